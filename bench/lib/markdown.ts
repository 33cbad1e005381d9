/** The result sections of docs/BENCHMARKS.md, generated from the JSON reports. */
import { readFile, writeFile } from 'node:fs/promises';
import type { HotSwapReport } from '../hot-swap.js';
import type { ReplicasReport } from '../replicas.js';
import type { LoadSnapshot } from './machine.js';
import type { ScenarioResult, ServingReport } from '../serving.js';

function machineLine(report: { machine: ServingReport['machine']; date: string; git: ServingReport['git'] }): string {
  const m = report.machine;
  const changes = report.git.src_changes.length ? ` plus uncommitted changes to ${report.git.src_changes.length} files of src/` : '';
  return `${m.nproc} cores (nproc), ${m.cpu_model}, ${m.memory_gib} GiB memory, Node ${m.node}, Linux ${m.kernel}; ${report.date}; commit ${report.git.commit}${changes}`;
}

function loadLines(load: { note: string; start: LoadSnapshot; end: LoadSnapshot }, otherCoresMean?: number): string[] {
  const lines = [`- Machine load: ${load.note}. Load average (1, 5, 15 min) ${load.start.loadavg.join(', ')} at the start, ${load.end.loadavg.join(', ')} at the end` +
    (otherCoresMean !== undefined ? `; other processes used ${otherCoresMean} of the cores on average while measuring.` : '.')];
  for (const process of load.start.busy_processes) lines.push(`  - busy at the start: \`${process.replace(/`/g, "'")}\``);
  return lines;
}

const fmt = (value: number | undefined, digits = 2) => (value === undefined || !Number.isFinite(value) ? 'n/a' : value.toFixed(digits));

export function servingMarkdown(report: ServingReport): string {
  const lines: string[] = [
    `Command: \`${report.command}\` → \`reports/serving-bench.json\` (${report.duration_seconds} s).`,
    '',
    `- Machine: ${machineLine(report)}.`,
    ...loadLines(report.machine_load, report.machine_load.other_cores_mean),
    `- Bundle: \`${report.bundle.version}\`. Each run: ${report.settings.warmup_seconds} s warm-up, then ${report.settings.duration_seconds} s measured (at most ${report.settings.max_requests} requests); first: ${report.settings.first}; server log level ${report.settings.server_log_level}.`,
    '',
  ];
  for (const catalogue of report.catalogues) {
    const size = catalogue.items as number;
    lines.push(`### ${catalogue.name}: ${size} items`, '');
    lines.push(`Domains: ${Object.entries(catalogue.by_domain as Record<string, number>).map(([d, n]) => `${d} ${n}`).join(', ')}.` +
      (catalogue.made_up_items ? ` ${catalogue.made_up_items} made-up items (vectors ${catalogue.made_up_vectors}).` : '') +
      ` Server start-up ${catalogue.server_startup_seconds} s.`, '');
    lines.push('| scenario | c | HTTP p50 ms | HTTP p99 ms | HTTP req/s | HTTP CPU ms/req | failed | raw p50 ms | raw p99 ms | raw req/s | raw CPU ms/req | floor p50 ms | floor p99 ms | floor req/s | floor CPU ms/req | other load (cores) |');
    lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const served of report.scenarios.filter((s) => s.catalogue === size)) {
      const raw = report.raw.find((r) => r.catalogue === size && r.name === served.name && r.concurrency === served.concurrency);
      const floor = report.floor.find((f) => f.name === served.name && f.concurrency === served.concurrency);
      const row = (r: ScenarioResult | undefined) => [fmt(r?.p50_ms), fmt(r?.p99_ms), fmt(r?.rps, 0), fmt(r?.cpu_ms_per_request, 3)];
      const [p50, p99, rps, cpu] = row(served);
      lines.push(`| ${served.name} | ${served.concurrency} | ${p50} | ${p99} | ${rps} | ${cpu} | ${served.failed} | ${row(raw).join(' | ')} | ${row(floor).join(' | ')} | ${fmt(served.cpu?.other_cores)} |`);
    }
    lines.push('');
  }
  const floorCatalogue = report.floor[0]?.catalogue;
  if (floorCatalogue) lines.push(`The floor answers the ${floorCatalogue}-item catalogue's responses (same bytes: ${[...new Set(report.floor.map((f) => `${f.name} ${f.response_bytes} B`))].join(', ')}).`, '');
  const ing = report.ingestion;
  if (Number.isFinite(ing.items_per_s)) {
    lines.push('### Ingestion', '');
    lines.push(`| path | items/s |`, '| --- | ---: |');
    lines.push(`| \`upsertItems\` over HTTP (GraphQL), ${ing.upsert_batch} items per call, ${ing.items} items | ${ing.items_per_s} |`);
    lines.push(`| \`model.embedItems\` in process, same batches, ${ing.encode_batch} titles per call (mean of ${(ing.encoder_passes_items_per_s as number[]).join(' and ')}) | ${ing.encoder_items_per_s} |`);
    lines.push('', `Ratio: ${fmt(100 * (ing.ratio as number), 1)}%.`, '');
  }
  lines.push('### Targets', '', '| target | this run | met |', '| --- | --- | --- |');
  for (const target of report.targets) lines.push(`| ${target.target} | ${target.value} | ${target.met ? 'yes' : '**no**'} |`);
  return lines.join('\n');
}

const PHASE_LABELS: Record<string, string> = {
  before: 'before the switches',
  during_same_encoder: 'during the same-encoder switches',
  between: 'between the switches',
  during_new_encoder: 'during the new-encoder switch',
  after: 'after the switches',
};

export function hotSwapMarkdown(report: HotSwapReport): string {
  const loop = (value: number | null) => (value === null ? 'n/a' : fmt(value, 0));
  const ratio = (value: number | null) => (value === null ? 'no such switch' : `${fmt(value)}x`);
  const lines = [
    `Command: \`${report.command}\` → \`reports/hot-swap.json\`.`,
    '',
    `- Machine: ${machineLine(report)}.`,
    ...loadLines(report.machine_load),
    `- ${report.catalogue.items} items (${report.catalogue.datasets.join(', ')}); bundle \`${report.bundle_version}\`; ${report.load.request}, open loop at a steady rate, at most ${report.load.max_in_flight} in flight (keep-alive connections); latency counted from when each request was due. Event-loop delay: the server's own (perf_hooks.monitorEventLoopDelay, read from /metrics every second).`,
    '',
  ];
  if (report.steady.length > 0) {
    lines.push('Steady load, no switch (the search for the highest rate answered in full: all answered, >= 95% of the offered rate per second, p99 < 100 ms):', '',
      '| offered req/s | requests | failed | answered/s | p50 ms | p99 ms | max ms | event-loop delay max ms | kept up |',
      '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
      ...report.steady.map((s) => `| ${s.rate} | ${s.requests} | ${s.failed} | ${fmt(s.answered_per_s, 0)} | ${fmt(s.p50_ms)} | ${fmt(s.p99_ms)} | ${fmt(s.max_ms)} | ${loop(s.event_loop_max_ms)} | ${s.kept_up ? 'yes' : 'no'} |`),
      '', `Highest steady rate kept up with: **${report.max_steady_rate ?? 'none'} requests/s**.`, '');
  }
  for (const run of report.runs) {
    lines.push(`#### ${run.rate} requests/s, ${run.concurrency} connections`, '');
    for (const s of run.switches) {
      lines.push(`- ${s.kind === 'same_encoder' ? 'Same encoder' : 'New encoder'}: \`${s.from_version}\` → \`${s.to_version}\` in **${fmt(s.seconds, 1)} s** (server ${s.server_seconds ?? 'n/a'} s: loading and checking the bundle ${s.load_seconds ?? 'n/a'} s, filling the collection ${s.fill_seconds ?? 'n/a'} s, ${s.mode}: ${s.reused ?? 0} items reused, ${s.embedded ?? 0} embedded); CPU ${s.cpu.measured_cores} cores for the server and the load generator, ${s.cpu.other_cores} for other processes; old version after the first answer of the new: ${s.old_version_answers_after_first_new}.`);
    }
    lines.push(`- Load average (1 min) ${run.load.start.loadavg[0]} at the start, ${run.load.end.loadavg[0]} at the end${run.load.start.busy_processes.length ? `; busy at the start: ${run.load.start.busy_processes.map((p) => `\`${p.replace(/`/g, "'")}\``).join(', ')}` : ''}.`,
      '',
      '| phase (requests by when they were due) | requests | failed | p50 ms | p99 ms | max ms | p99 ms from send | answered/s | event-loop delay max ms | event-loop delay p99 ms |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...Object.entries(run.phases).map(([name, p]) => `| ${PHASE_LABELS[name] ?? name} | ${p.requests} | ${p.failed} | ${fmt(p.p50_ms)} | ${fmt(p.p99_ms)} | ${fmt(p.max_ms)} | ${fmt(p.p99_ms_from_send)} | ${fmt(p.answered_per_s, 0)} | ${loop(p.event_loop_max_ms)} | ${loop(p.event_loop_p99_ms)} |`),
      '',
      `${run.requests} requests, **${run.failed} failed**${run.failed ? ` (${Object.entries(run.failures).map(([kind, n]) => `${kind}: ${n}`).join(', ')})` : ''}; p99 during the switches / before: ${ratio(run.p99_ratio_same_encoder)} (same encoder), ${ratio(run.p99_ratio_new_encoder)} (new encoder).`,
      '');
  }
  lines.push(`Total: ${report.requests} requests through the switches, **${report.failed} failed**.`);
  return lines.join('\n');
}

const REPLICA_PHASE_LABELS: Record<string, string> = {
  before: 'before the switch',
  switch: 'during the switch (activateModel until every replica names the new version)',
  after_switch: 'after the switch',
  kill: 'killed replica still in rotation (SIGKILL until 2 failed checks)',
  restart: 'killed replica out of rotation, restarting',
  after_restart: 'after it is back in rotation',
};

/** Inline code that may itself hold backticks. */
function codeSpan(text: string): string {
  return text.includes('`') ? `\`\` ${text} \`\`` : `\`${text}\``;
}

export function replicasMarkdown(report: ReplicasReport): string {
  const kinds = (failures: Record<string, number>) => Object.entries(failures).map(([kind, n]) => `${kind}: ${n}`).join(', ');
  const byReplica = (counts: Record<string, number>) => Object.entries(counts).map(([name, n]) => `${name.replace('replica-', '#')} ${n}`).join(', ');
  const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
  const perCollection = (rows: Record<string, number>) => Object.entries(rows).map(([collection, n]) => `\`${collection}\` ${n}`).join(', ') || 'none';
  const lines = [
    `Command: ${codeSpan(report.command)} → \`reports/replicas.json\`, plot \`reports/replicas.png\` (${fmt(report.duration_seconds, 0)} s).`,
    '',
    `- Machine: ${machineLine(report)}. The replicas, PostgreSQL ${report.database.postgres_version} and the load generator share it.`,
    ...loadLines(report.machine_load),
    ...(report.note ? [`- Note: ${report.note}`] : []),
    `- ${report.catalogue.items} items (${report.catalogue.datasets.join(', ')}); bundle \`${report.bundle_version}\`; database \`${report.database.name}\` (${report.database.kept ? 'kept' : 'dropped at the end'}), seeded directly: ${report.seeding.items} rows and ${report.seeding.titles} titles' vectors (\`item_vectors\`, collection \`${report.seeding.collection}\`) in ${report.seeding.seconds} s. Requests: ${report.load.request}, ${report.load.histories} histories cycled.`,
    `- Load balancer: ${report.balancer}.`,
    `- Replica start-ups (empty data directory, embedded index filled from \`item_vectors\`): ${report.starts.map((s) => `${s.replica} ${fmt(s.startup_s, 1)} s, ${total(s.titles_encoded)} titles encoded`).join('; ')}.`,
    '',
  ];
  if (report.closed.length > 0) {
    const c = report.closed[0];
    lines.push(`#### Closed loop: ${c.concurrency} clients, ${fmt(c.seconds, 0)} s per run`, '',
      '| replicas | req/s | p50 ms | p99 ms | max ms | requests | failed | answered by replica | CPU cores: machine / replicas + generator / generator alone / other | RSS per replica MiB |',
      '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |',
      ...report.closed.map((r) => `| ${r.replicas} | ${fmt(r.rps, 0)} | ${fmt(r.p50_ms)} | ${fmt(r.p99_ms)} | ${fmt(r.max_ms)} | ${r.requests} | ${r.failed}${r.failed ? ` (${kinds(r.failures)})` : ''} | ${byReplica(r.by_replica)} | ${r.cpu.machine_cores} / ${r.cpu.measured_cores} / ${r.generator_cores} / ${r.cpu.other_cores} | ${Object.values(r.replica_rss_mib).join(', ')} |`),
      '');
  }
  for (const run of report.events) {
    const sw = run.switch;
    const k = run.kill;
    const at = (value: number | null) => (value === null ? 'n/a' : `${fmt(value, 1)} s`);
    lines.push(`#### Switch and kill: ${run.replicas} replicas, ${run.rate} requests/s (open loop), at most ${run.concurrency} in flight`, '');
    lines.push(`- Switch: \`${sw.from_version}\` → \`${sw.to_version}\`, \`activateModel\` sent to ${sw.asked}: answered in ${at(sw.accepted_s)}; every replica's \`/readyz\` named the new version after **${at(sw.seconds)}** (${Object.entries(sw.replica_s).map(([name, s]) => `${name} ${fmt(s, 1)} s`).join(', ')}); ${sw.mode ?? 'n/a'}: ${sw.reused ?? 0} items reused, ${sw.embedded ?? 0} embedded on ${sw.asked}. Answers from the old version among requests sent after that: **${sw.old_version_after}**.${sw.error ? ` **Error**: ${sw.error}.` : ''}`);
    lines.push(`- \`item_vectors\` rows after the switch: ${perCollection(sw.item_vectors_rows)}.`);
    lines.push(`- Kill, ${fmt(run.after_switch_seconds, 0)} s after the switch: ${k.replica} killed with SIGKILL and started again at once on its data directory and port: process gone after ${at(k.exited_s)}, out of rotation after ${k.out_of_rotation_s === null ? 'never (back before two checks failed)' : at(k.out_of_rotation_s)}, \`/readyz\` 200 after **${at(k.ready_s)}** (its start-up ${at(k.startup_s)}), back in rotation after **${at(k.back_in_rotation_s)}**; it serves \`${k.version ?? 'n/a'}\`; titles it ran through the encoder: ${total(k.titles_encoded)}${Object.keys(k.titles_encoded).length ? ` (${kinds(k.titles_encoded)})` : ''}.${k.error ? ` **Error**: ${k.error}.` : ''}`);
    lines.push(`- The whole machine used ${run.machine_cores} cores on average. Load average (1 min) ${run.load.start.loadavg[0]} at the start, ${run.load.end.loadavg[0]} at the end.`, '');
    lines.push('| phase (requests by when they were due) | from s | to s | requests | failed | failed on the killed replica (written after the SIGKILL) | passed to another replica | p50 ms | p99 ms | max ms | p99 ms from send | answered by replica |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
      ...Object.entries(run.phases).map(([name, p]) => `| ${REPLICA_PHASE_LABELS[name] ?? name} | ${fmt(p.start_s, 1)} | ${fmt(p.end_s, 1)} | ${p.requests} | ${p.failed} | ${p.failed_on_killed} (${p.failed_on_killed_sent_after_kill}) | ${p.retried} | ${fmt(p.p50_ms)} | ${fmt(p.p99_ms)} | ${fmt(p.max_ms)} | ${fmt(p.p99_ms_from_send)} | ${byReplica(p.by_replica)} |`),
      '',
      `${run.requests} requests, **${run.failed} failed**${run.failed ? ` (${kinds(run.failures)})` : ''}, **${run.failed_unexpected}** of them other than in flight on the killed replica; answers by version: ${Object.entries(run.responses_by_version).map(([version, n]) => `\`${version}\` ${n}`).join(', ')}.`,
      '');
  }
  const j = report.join;
  if (j) {
    const encoded = total(j.titles_encoded);
    lines.push(`#### A replica joining after the switches (no load)`, '',
      `${j.replica}, started on an empty data directory while the others served \`${j.version ?? 'n/a'}\`: \`/readyz\` 200 after **${fmt(j.startup_s, 1)} s**, **${encoded} titles** run through the encoder${encoded ? ` (${kinds(j.titles_encoded)})` : ''}. \`item_vectors\` rows before: ${perCollection(j.item_vectors_rows_before)}; after: ${perCollection(j.item_vectors_rows_after)}.${j.error ? ` **Error**: ${j.error}.` : ''}`,
      '');
  }
  lines.push(`Failed other than on the killed replica: **${report.failed_unexpected}**; answers from the old version after a switch: **${report.old_version_after_switch}** (the command exits 1 when either is not 0).`);
  return lines.join('\n');
}

/** Replaces the text between `<!-- name:begin -->` and `<!-- name:end -->` in a Markdown file. */
export async function replaceSection(file: string, name: string, content: string): Promise<void> {
  const text = await readFile(file, 'utf8');
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  if (from < 0 || to < from) throw new Error(`${file} has no ${begin} ... ${end} section`);
  await writeFile(file, `${text.slice(0, from + begin.length)}\n${content}\n${text.slice(to)}`);
}
