/**
 * The hot-swap load test (`npm run bench:hot-swap`): recommendation requests flow at a steady rate while the
 * server switches model versions, per rate: first, several times, to a version whose encoder is the serving one's
 * (a copy of the bundle under another model_version: the daily "retrained sequence model" switch, which reuses the
 * semantic vectors), then to a version whose encoder differs in its bytes (bench/lib/bundle.ts markEncoder: the same
 * function, another sha256), which re-embeds the whole catalogue with the real encoder. Reports the failed requests
 * (the target is 0), latency and the server's event-loop delay per phase, and the time of each switch; repeated for
 * each rate of a sweep, after a search for the highest rate the server keeps up with outside a switch.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { RecommendationModel } from '../src/inference/recommendation-model.js';
import { publishWithOtherEncoder, snapshotBundle } from './lib/bundle.js';
import { readCatalogue, sampleHistories } from './lib/catalogue.js';
import { round, summarize } from './lib/load.js';
import { pacedLoad, type PacedSample } from './lib/paced.js';
import { CpuMeter, gitState, loadNote, loadSnapshot, machineInfo, type CpuUse, type LoadSnapshot, type MachineInfo } from './lib/machine.js';
import { metricSeries } from './lib/metrics.js';
import { REPO, SHARED_DATA } from './lib/paths.js';
import { benchSettings, openCatalogue } from './lib/prepare.js';
import { startPlatformServer } from './lib/server-process.js';
import { VectorCache } from './lib/vector-cache.js';

export interface HotSwapOptions {
  bundleDir: string;
  /** Datasets (directories of ../shared/data) whose catalogues are loaded. */
  datasets: string[];
  limitPerDir?: number;
  /** Most requests in flight (keep-alive connections). */
  concurrency: number;
  /** Unmeasured load before the measurement starts. */
  warmupSeconds: number;
  /** Requests per second (open loop, steady) of each switch run. */
  rates: number[];
  /**
   * Before the switch runs: find the highest rate answered in full outside a switch (rates doubled from the first
   * until one is not kept up with, then halfway steps), and run the switches at it too.
   */
  findMax: boolean;
  /** Seconds of each step of that search. */
  steadySeconds: number;
  beforeSeconds: number;
  /**
   * Same-encoder switches per rate, each to a version of its own, measured together: one switch of ~9 s at 20 req/s
   * gives ~180 requests, and the p99 of so few is their second-slowest.
   */
  sameEncoderSwitches: number;
  /** After them, the switch to a version with a new encoder (re-embeds the catalogue: minutes). */
  newEncoder: boolean;
  /** Seconds after each same-encoder switch (before the next switch). */
  betweenSeconds: number;
  afterSeconds: number;
  /** Each switch must finish within this; the run stops either way. */
  swapTimeoutSeconds: number;
  samples: number;
  historyLength: number;
  first: number;
  workDir: string;
  serverLogLevel: string;
  /** More node options for the server process (e.g. --cpu-prof), for experiments. */
  serverNodeArgs?: string[];
  command: string;
  log: (message: string) => void;
}

export interface PhaseStats {
  /** Requests due in the phase, and how many of them failed. */
  requests: number;
  failed: number;
  /** Latency from when a request was due (includes waiting for one of the connections). */
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  /** Latency from when a request was written to a connection: the server's share. */
  p50_ms_from_send: number;
  p99_ms_from_send: number;
  /** Offered load: requests due per second. */
  rps: number;
  /** Responses that arrived during the phase, per second: what the server kept up with. */
  answered_per_s: number;
}

type PhaseName = 'before' | 'during_same_encoder' | 'between' | 'during_new_encoder' | 'after';
const PHASES: PhaseName[] = ['before', 'during_same_encoder', 'between', 'during_new_encoder', 'after'];

interface PhaseReport extends PhaseStats {
  /** Largest event-loop delay the server measured (perf_hooks.monitorEventLoopDelay via /metrics) in the phase. */
  event_loop_max_ms: number | null;
  /** Largest per-second p99 of that delay in the phase. */
  event_loop_p99_ms: number | null;
  /**
   * The phase's slowest requests (at most SLOWEST_KEPT): when each was due, in seconds from the start of its part of
   * the phase (`part`: which one, where the phase has several, e.g. three same-encoder switches), and its latency.
   */
  slowest: { part?: number; at_s: number; ms: number }[];
}

/** How many of a phase's slowest requests the report keeps, to show when in a switch requests wait. */
const SLOWEST_KEPT = 8;

export interface SwitchRecord {
  kind: 'same_encoder' | 'new_encoder';
  from_version: string;
  to_version: string;
  /** From the activateModel call to the first modelActivation poll that said `active` (polled every 250 ms). */
  seconds: number;
  /** The server's own startedAt..finishedAt. */
  server_seconds: number | null;
  /** How the server filled the new collection: reuse (semantic vectors kept, adapter only) or embed. */
  mode: string | null;
  /** The server's time to load and check the bundle, and to fill the collection (from its log). */
  load_seconds: number | null;
  fill_seconds: number | null;
  reused: number | null;
  embedded: number | null;
  /** Requests due after the first answer of the new version, yet answered by the old one (should be 0). */
  old_version_answers_after_first_new: number;
  cpu: CpuUse;
}

export interface RateRun {
  rate: number;
  concurrency: number;
  requests: number;
  failed: number;
  failures: Record<string, number>;
  first_failures: string[];
  /** The phases the run had (without a new-encoder switch, none during one). */
  phases: Partial<Record<PhaseName, PhaseReport>>;
  switches: SwitchRecord[];
  responses_by_version: Record<string, number>;
  /** p99 during each kind of switch over p99 before the switches (target: at most 3); null without that switch. */
  p99_ratio_same_encoder: number | null;
  p99_ratio_new_encoder: number | null;
  load: { start: LoadSnapshot; end: LoadSnapshot };
}

export interface SteadyStep {
  rate: number;
  seconds: number;
  requests: number;
  failed: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  answered_per_s: number;
  event_loop_max_ms: number | null;
  /** All answered, at least 95% of the offered rate answered per second, p99 from due under 100 ms. */
  kept_up: boolean;
}

export interface HotSwapReport {
  /** Over every switch run. */
  requests: number;
  failed: number;
  steady: SteadyStep[];
  /** The highest rate of the search that was kept up with (null without a search). */
  max_steady_rate: number | null;
  runs: RateRun[];
  catalogue: { datasets: string[]; items: number };
  bundle_version: string;
  load: { generator: string; max_in_flight: number; request: string; histories: number };
  command: string;
  date: string;
  machine: MachineInfo;
  git: ReturnType<typeof gitState>;
  machine_load: { note: string; start: LoadSnapshot; end: LoadSnapshot };
}

const RECOMMEND = 'query HotSwap($h: [ID!], $first: Int!) { recommendations(history: $h, first: $first) { modelVersion items { score item { id title } } } }';
const ACTIVATE = 'mutation Activate($v: String!) { activateModel(version: $v) { version state } }';
const PROGRESS = '{ modelActivation { version state done total startedAt loadedAt finishedAt error mode reused embedded } activeModel { version } }';
const API_KEY = 'bench-hot-swap';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The server's event-loop delay, read from /metrics every second (prom-client resets its histogram on each read). */
class EventLoopProbe {
  readonly samples: { at: number; max_ms: number; p99_ms: number }[] = [];
  private running = true;
  private readonly done: Promise<void>;

  constructor(origin: string) {
    this.done = (async () => {
      while (this.running) {
        await sleep(1000);
        const text = await fetch(`${origin}/metrics`).then((response) => response.text(), () => '');
        const value = (name: string) => Number(metricSeries(text, name)['']) * 1000;
        const max = value('nodejs_eventloop_lag_max_seconds');
        if (Number.isFinite(max)) this.samples.push({ at: performance.now(), max_ms: round(max, 1), p99_ms: round(value('nodejs_eventloop_lag_p99_seconds'), 1) });
      }
    })();
  }

  /** Over the readings that cover [from, to] (each covers the second before it). */
  between(from: number, to: number): { max_ms: number | null; p99_ms: number | null } {
    const inside = this.samples.filter(({ at }) => at > from && at - 1000 < to);
    if (inside.length === 0) return { max_ms: null, p99_ms: null };
    return { max_ms: Math.max(...inside.map((s) => s.max_ms)), p99_ms: Math.max(...inside.map((s) => s.p99_ms)) };
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

export async function runHotSwap(options: HotSwapOptions): Promise<HotSwapReport> {
  const { log } = options;
  const startLoad = await loadSnapshot();
  if (startLoad.busy_processes.length > 0) {
    log(`warning: other processes use the CPU, numbers will be low:\n  ${startLoad.busy_processes.join('\n  ')}`);
  }
  const registry = path.join(options.workDir, 'registry-hot-swap');
  // Versions published by earlier runs go: every run switches to versions the server has not seen.
  await rm(registry, { recursive: true, force: true });
  const from = await snapshotBundle(options.bundleDir, registry, { dirName: 'a' });

  // The catalogue, written directly with the first version's vectors (cached per bundle).
  const items = await readCatalogue(options.datasets.map((name) => path.join(SHARED_DATA, name)), { limitPerDir: options.limitPerDir });
  // The encoder at the benchmark's own priority: nothing here serves meanwhile.
  const model = await RecommendationModel.load(from.dir, { nice: null });
  const cache = await VectorCache.open(model, path.join(options.workDir, 'vectors'));
  await cache.fill(items.map((item) => item.title), {
    onProgress: (done, total, rate) => log(`embedding catalogue titles for the vector cache: ${done}/${total} (${rate.toFixed(0)}/s)`),
  });
  await model.release();
  const dataDir = path.join(options.workDir, 'data', `hot-swap-${process.pid}`);
  await rm(dataDir, { recursive: true, force: true });
  const settings = benchSettings({ dataDir, bundleDir: from.dir, modelRegistryDir: registry });
  const opened = await openCatalogue({ settings, items, vectorsOf: (i) => cache.get(items[i].title), modelVersion: from.version, log });
  await opened.platform.close();
  const histories = await sampleHistories(path.join(SHARED_DATA, 'amazon-games'), {
    count: options.samples, length: options.historyLength, known: new Set(items.map((item) => item.id)),
  });
  if (histories.length === 0) throw new Error('no amazon-games history fits the catalogue');

  const logFile = path.join(options.workDir, 'logs', 'serve-hot-swap.log');
  await rm(logFile, { force: true }); // the server appends: one run's log, not every run's (a sweep logs ~1 GB of requests)
  const server = await startPlatformServer({
    dataDir, bundleDir: from.dir, registryDir: registry, apiKey: API_KEY, logLevel: options.serverLogLevel, logFile,
    nodeArgs: options.serverNodeArgs,
  });
  /** How the server filled a version's collection, from its modelActivation record (not its log: reading a log of
   * every request stalled this process, and so the requests it paces, for hundreds of ms after each switch). */
  const fillRecord = (activation: any): { mode?: string; reused?: number; embedded?: number; load_seconds?: number; fill_seconds?: number } => {
    const at = (value: string | null | undefined) => (value ? Date.parse(value) : undefined);
    const [started, loaded, finished] = [at(activation.startedAt), at(activation.loadedAt), at(activation.finishedAt)];
    return {
      mode: activation.mode?.toLowerCase(), reused: activation.reused ?? undefined, embedded: activation.embedded ?? undefined,
      load_seconds: started !== undefined && loaded !== undefined ? (loaded - started) / 1000 : undefined,
      fill_seconds: loaded !== undefined && finished !== undefined ? (finished - loaded) / 1000 : undefined,
    };
  };
  log(`server ready in ${server.startupSeconds.toFixed(1)} s on ${items.length} items`);
  const graphql = async (query: string, variables: Record<string, unknown> = {}) => {
    const response = await fetch(`${server.origin}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
      body: JSON.stringify({ query, variables }),
    });
    return response.json() as Promise<{ data?: any; errors?: { message: string }[] }>;
  };

  const inspect = (body: string): string | null => {
    try {
      const parsed = JSON.parse(body);
      const list = parsed.data?.recommendations;
      return parsed.errors || !list || list.items.length !== options.first ? null : String(list.modelVersion);
    } catch {
      return null;
    }
  };
  const bodies = histories.map((h) => JSON.stringify({ query: RECOMMEND, variables: { h, first: options.first } }));
  const load = (rate: number, seconds: number) => pacedLoad({
    url: `${server.origin}/graphql`, bodies, rate, maxInFlight: options.concurrency, maxSeconds: seconds, inspect,
  });
  const probe = new EventLoopProbe(server.origin);

  /** One switch, timed; the activation record as the server ended it. */
  const switchTo = async (version: string): Promise<{ seconds: number; server: number | null; activation: any }> => {
    const started = performance.now();
    const answer = await graphql(ACTIVATE, { v: version });
    if (answer.errors) throw new Error(`activateModel(${version}) failed: ${JSON.stringify(answer.errors)}`);
    let lastLogged = performance.now();
    for (;;) {
      const activation = (await graphql(PROGRESS)).data?.modelActivation;
      if (activation?.state === 'failed') throw new Error(`activation failed: ${activation.error}`);
      if (activation?.state === 'active') {
        const seconds = (performance.now() - started) / 1000;
        const server = activation.finishedAt ? (Date.parse(activation.finishedAt) - Date.parse(activation.startedAt)) / 1000 : null;
        return { seconds, server, activation };
      }
      if (performance.now() - started > options.swapTimeoutSeconds * 1000) {
        throw new Error(`the switch to ${version} did not finish in ${options.swapTimeoutSeconds} s (${activation?.done}/${activation?.total})`);
      }
      if (performance.now() - lastLogged > 10_000) {
        lastLogged = performance.now();
        log(`  switching: ${activation?.state} ${activation?.done}/${activation?.total}`);
      }
      await sleep(250);
    }
  };

  const steady: SteadyStep[] = [];
  const runs: RateRun[] = [];
  let serving = from;
  try {
    await load(Math.min(...options.rates, 100), options.warmupSeconds).done;

    // The highest steady rate outside a switch.
    let maxRate: number | null = null;
    if (options.findMax) {
      const step = async (rate: number): Promise<SteadyStep> => {
        const started = performance.now();
        const samples = await load(rate, options.steadySeconds).done;
        const ended = performance.now();
        const ok = samples.filter((sample) => sample.ok);
        const stats = summarize(ok.map((sample) => sample.end - sample.due), samples.length - ok.length, options.steadySeconds);
        const answered = round(samples.filter(({ end }) => end - started <= options.steadySeconds * 1000).length / options.steadySeconds, 1);
        const result: SteadyStep = {
          rate, seconds: options.steadySeconds, requests: stats.requests, failed: stats.failed, p50_ms: stats.p50_ms,
          p99_ms: stats.p99_ms, max_ms: stats.max_ms, answered_per_s: answered, event_loop_max_ms: probe.between(started, ended).max_ms,
          kept_up: stats.failed === 0 && answered >= 0.95 * rate && stats.p99_ms < 100,
        };
        log(`steady ${rate}/s: answered ${answered}/s, p50 ${stats.p50_ms} ms, p99 ${stats.p99_ms} ms, max ${stats.max_ms} ms, failed ${stats.failed}: ${result.kept_up ? 'kept up' : 'fell behind'}`);
        steady.push(result);
        await sleep(2000); // the queue of a step that fell behind drains before the next
        return result;
      };
      let good = 0;
      let bad = 0;
      for (let rate = Math.max(50, Math.min(...options.rates)); bad === 0 && rate <= 20_000; rate *= 2) {
        if ((await step(rate)).kept_up) good = rate;
        else bad = rate;
      }
      for (let i = 0; i < 2 && bad > 0 && bad - good > Math.max(10, good * 0.1); i++) {
        const rate = Math.round((good + bad) / 2);
        if ((await step(rate)).kept_up) good = rate;
        else bad = rate;
      }
      maxRate = good > 0 ? good : null;
      log(`highest steady rate kept up with: ${maxRate ?? 'none'} requests/s`);
    }

    const rates = [...new Set([...options.rates, ...(maxRate ? [maxRate] : [])])];
    for (const [index, rate] of rates.entries()) {
      const plan: ['same_encoder' | 'new_encoder', { dir: string; version: string }][] = [];
      for (let k = 1; k <= options.sameEncoderSwitches; k++) {
        const name = `r${index}-same${options.sameEncoderSwitches > 1 ? k : ''}`;
        plan.push(['same_encoder', await snapshotBundle(serving.dir, registry, { dirName: name, version: `${from.version}-${name}` })]);
      }
      if (options.newEncoder) {
        plan.push(['new_encoder', await publishWithOtherEncoder(serving.dir, registry, { dirName: `r${index}-new`, version: `${from.version}-r${index}-new`, mark: `run ${process.pid} rate ${rate}` })]);
      }
      log(`rate ${rate}/s: ${[serving.version, ...plan.map(([kind, target]) => `${target.version} (${kind.replace('_', ' ')})`)].join(' -> ')}`);
      const loadStart = await loadSnapshot();
      const run = load(rate, options.beforeSeconds + plan.length * (options.betweenSeconds + options.swapTimeoutSeconds) + options.afterSeconds + 30);
      // Each request's phase, by when it was due: before the first switch, during a switch of either kind, between
      // switches, after the last.
      const windows: Record<PhaseName, [number, number][]> = { before: [], during_same_encoder: [], between: [], during_new_encoder: [], after: [] };
      const switches: SwitchRecord[] = [];
      let samples: PacedSample[];
      let mark = performance.now();
      try {
        await sleep(options.beforeSeconds * 1000);
        for (const [step, [kind, target]] of plan.entries()) {
          const meter = new CpuMeter(() => [server.pid]);
          windows[step === 0 ? 'before' : 'between'].push([mark, (mark = performance.now())]);
          const done = await switchTo(target.version);
          windows[kind === 'same_encoder' ? 'during_same_encoder' : 'during_new_encoder'].push([mark, (mark = performance.now())]);
          const a = fillRecord(done.activation);
          switches.push({
            kind, from_version: serving.version, to_version: target.version, seconds: round(done.seconds, 2),
            server_seconds: done.server === null ? null : round(done.server, 2), mode: a.mode ?? null,
            load_seconds: a.load_seconds === undefined ? null : round(a.load_seconds, 2),
            fill_seconds: a.fill_seconds === undefined ? null : round(a.fill_seconds, 2),
            reused: a.reused ?? null, embedded: a.embedded ?? null, old_version_answers_after_first_new: 0, cpu: meter.read(),
          });
          log(`  ${kind}: ${round(done.seconds, 1)} s (server: load and check ${a.load_seconds?.toFixed(1)} s, ${a.mode} ${a.fill_seconds?.toFixed(1)} s)`);
          serving = target;
          await sleep((step < plan.length - 1 ? options.betweenSeconds : options.afterSeconds) * 1000);
        }
      } finally {
        run.stop();
        samples = await run.done;
      }
      windows.after.push([mark, Infinity]);
      const phases = Object.fromEntries(PHASES.filter((name) => windows[name].length > 0).map((name) => {
        const parts = windows[name].map(([start, end]) => {
          const inPart = samples.filter(({ due }) => due >= start && due < end);
          const seconds = inPart.length < 2 ? 1 / rate : (inPart.at(-1)!.due - inPart[0].due) / 1000 + 1 / rate;
          const last = Number.isFinite(end) ? end : samples.reduce((most, sample) => Math.max(most, sample.end), -Infinity);
          const answered = samples.filter((sample) => sample.end >= start && sample.end < last).length;
          return { start, inPart, seconds, last, answered };
        });
        const inPhase = parts.flatMap((part) => part.inPart);
        const ok = inPhase.filter((sample) => sample.ok);
        const seconds = parts.reduce((sum, part) => sum + part.seconds, 0);
        const stats = summarize(ok.map((sample) => sample.end - sample.due), inPhase.length - ok.length, seconds);
        const fromSend = summarize(ok.map((sample) => sample.end - sample.sent), 0, seconds);
        const loops = parts.map((part) => probe.between(part.start, part.last));
        const most = (values: (number | null)[]) => (values.some((v) => v !== null) ? Math.max(...values.filter((v): v is number => v !== null)) : null);
        const span = parts.reduce((sum, part) => sum + Math.max(1e-3, (part.last - part.start) / 1000), 0);
        const report: PhaseReport = {
          requests: stats.requests, failed: stats.failed, p50_ms: stats.p50_ms, p99_ms: stats.p99_ms, max_ms: stats.max_ms,
          p50_ms_from_send: fromSend.p50_ms, p99_ms_from_send: fromSend.p99_ms, rps: stats.rps,
          answered_per_s: round(parts.reduce((sum, part) => sum + part.answered, 0) / span, 1),
          event_loop_max_ms: most(loops.map((loop) => loop.max_ms)), event_loop_p99_ms: most(loops.map((loop) => loop.p99_ms)),
          slowest: parts.flatMap((part, k) => part.inPart.filter((sample) => sample.ok)
            .map((sample) => ({ ...(parts.length > 1 ? { part: k + 1 } : {}), at_s: round((sample.due - part.start) / 1000, 2), ms: round(sample.end - sample.due, 1) })))
            .sort((a, b) => b.ms - a.ms).slice(0, SLOWEST_KEPT),
        };
        return [name, report];
      })) as Partial<Record<PhaseName, PhaseReport>>;
      for (const record of switches) {
        const firstNew = samples.reduce((least, s) => (s.label === record.to_version ? Math.min(least, s.end) : least), Infinity);
        record.old_version_answers_after_first_new = samples.filter((s) => s.label === record.from_version && s.due > firstNew).length;
      }
      const responsesByVersion: Record<string, number> = {};
      for (const sample of samples) if (sample.label) responsesByVersion[sample.label] = (responsesByVersion[sample.label] ?? 0) + 1;
      const failures = samples.filter((s) => !s.ok);
      const errorKinds: Record<string, number> = {};
      for (const failure of failures) {
        const kind = failure.status ? `HTTP ${failure.status}` : failure.error ?? 'unknown';
        errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
      }
      const result: RateRun = {
        rate, concurrency: options.concurrency, requests: samples.length, failed: failures.length, failures: errorKinds,
        first_failures: failures.slice(0, 5).map((f) => f.error ?? `HTTP ${f.status}`), phases, switches,
        responses_by_version: responsesByVersion,
        p99_ratio_same_encoder: phases.during_same_encoder ? round(phases.during_same_encoder.p99_ms / phases.before!.p99_ms, 2) : null,
        p99_ratio_new_encoder: phases.during_new_encoder ? round(phases.during_new_encoder.p99_ms / phases.before!.p99_ms, 2) : null,
        load: { start: loadStart, end: await loadSnapshot() },
      };
      runs.push(result);
      const during = (name: PhaseName) => (phases[name] ? `${phases[name].p99_ms} ms (max ${phases[name].max_ms})` : 'n/a');
      log(`rate ${rate}/s: ${result.requests} requests, ${result.failed} failed; p99 before ${phases.before!.p99_ms} ms, `
        + `during same-encoder switches ${during('during_same_encoder')}, during new-encoder switch ${during('during_new_encoder')}; `
        + `event loop max ${Object.entries(phases).map(([name, phase]) => `${name} ${phase.event_loop_max_ms}`).join(', ')} ms`);
    }
  } finally {
    await probe.stop();
    await server.stop();
  }
  await rm(dataDir, { recursive: true, force: true });

  const endLoad = await loadSnapshot();
  return {
    requests: runs.reduce((sum, run) => sum + run.requests, 0),
    failed: runs.reduce((sum, run) => sum + run.failed, 0),
    steady,
    max_steady_rate: options.findMax ? (steady.filter((step) => step.kept_up).map((step) => step.rate).sort((a, b) => b - a)[0] ?? null) : null,
    runs,
    catalogue: { datasets: options.datasets, items: items.length },
    bundle_version: from.version,
    load: {
      generator: 'open loop at a steady rate (bench/lib/paced.ts); latency counted from when each request was due',
      max_in_flight: options.concurrency,
      request: `recommendations(history: last ${options.historyLength} items of an amazon-games user, first: ${options.first})`,
      histories: histories.length,
    },
    command: options.command,
    date: new Date().toISOString(),
    machine: machineInfo(),
    git: gitState(REPO),
    machine_load: { note: loadNote(startLoad, endLoad), start: startLoad, end: endLoad },
  };
}
