/**
 * `npm run bench:replicas`: throughput and latency through 1, 2 and 3 replicas over one PostgreSQL, then a model
 * switch and a killed replica under a steady load (bench/replicas.ts). Writes reports/replicas.json, the plot
 * reports/replicas.png and the "Replicas: results" section of docs/BENCHMARKS.md (unless --out points elsewhere).
 * Exits 1 when a request failed other than in flight on the killed replica, or an answer came from the old version
 * after every replica had switched.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command } from 'commander';
import { replaceSection, replicasMarkdown } from './lib/markdown.js';
import { BENCH_TMP, REPO } from './lib/paths.js';
import { defaultDatabaseUrl, runReplicas, type ReplicasReport } from './replicas.js';
import { invokedAs } from './lib/invoked-as.js';
import { drawPlot } from './lib/plot.js';

const DEFAULT_OUT = path.join(REPO, 'reports/replicas.json');

const program = new Command('bench:replicas')
  .description('Replicas over one PostgreSQL behind a load balancer: closed-loop throughput through 1, 2, 3 replicas; then at a steady rate a model switch and a replica killed (SIGKILL) and restarted; failed requests, latency per phase and per second')
  .option('--bundle <dir>', 'model bundle (a copy is published under another version for the switch)', path.join(REPO, 'bundles/quick'))
  .option('--datasets <list>', 'datasets of ../shared/data in the catalogue', 'amazon-games')
  .option('--limit-per-dir <n>', 'only the first n items of each dataset')
  .option('--database-url <url>', 'PostgreSQL server; a database bench_replicas_<time> is created there and dropped at the end (default: scripts/postgres-test-server.sh url)')
  .option('--keep', 'keep the database and the replicas\' data directories')
  .option('--replicas <list>', 'replica counts of the closed-loop runs', '1,2,3')
  .option('--closed-seconds <s>', 'measured seconds of each closed-loop run', '20')
  .option('--concurrency <n>', 'clients of the closed-loop runs (one request in flight each)', '16')
  .option('--warmup <s>', 'unmeasured load before each run', '3')
  .option('--event-replicas <list>', 'replica counts of the switch-and-kill runs (each >= 2; run in descending order)', '3')
  .option('--rate <n>', 'requests per second of the switch-and-kill runs (default: half the closed-loop rate through one replica)')
  .option('--event-concurrency <n>', 'most requests in flight in the switch-and-kill runs', '16')
  .option('--before <s>', 'measured seconds before the switch', '15')
  .option('--after-switch <list>', 'seconds between the switch and the kill, per switch-and-kill run in the order they run (the last value for the rest)', '15')
  .option('--after-restart <s>', 'seconds after the killed replica is back in rotation', '10')
  .option('--switch-timeout <s>', 'longest the switch may take', '300')
  .option('--restart-timeout <s>', 'longest the restarted replica may take to be ready', '300')
  .option('--samples <n>', 'histories to cycle through', '500')
  .option('--history-length <n>', 'items per history', '10')
  .option('--first <n>', 'results per list', '10')
  .option('--server-log-level <level>', 'replicas\' LOG_LEVEL', 'info')
  .option('--no-join', 'skip the replica started on an empty data directory after the switches')
  .option('--note <text>', 'a note kept in the report and the docs (e.g. what was paused while it ran)')
  .option('--work-dir <dir>', 'caches, data directories and logs', BENCH_TMP)
  .option('--out <file>', 'JSON report', DEFAULT_OUT)
  .option('--docs-from <file>', 'only rewrite the docs section (and the plot) from an existing JSON report')
  .option('--no-docs', 'do not rewrite the replicas section of docs/BENCHMARKS.md')
  .option('--no-plot', 'do not draw the plot (reports/replicas.png next to the JSON report)')
  .parse();

const o = program.opts();
const int = (value: string) => Number.parseInt(value, 10);
const list = (value: string) => String(value).split(',').map((v) => int(v.trim())).filter((v) => v > 0);

/** Draws <report>.png with bench/plot-replicas.py. */
async function plot(reportFile: string): Promise<void> {
  if (o.plot) await drawPlot('bench/plot-replicas.py', reportFile);
}

if (o.docsFrom) {
  const file = path.resolve(o.docsFrom);
  const saved = JSON.parse(await readFile(file, 'utf8')) as ReplicasReport;
  await replaceSection(path.join(REPO, 'docs/BENCHMARKS.md'), 'replicas', replicasMarkdown(saved));
  console.log('updated docs/BENCHMARKS.md');
  await plot(file);
  process.exit(0);
}

const out = path.resolve(o.out);
const report = await runReplicas({
  bundleDir: path.resolve(o.bundle),
  datasets: String(o.datasets).split(',').map((d) => d.trim()).filter((d) => d !== ''),
  limitPerDir: o.limitPerDir ? int(o.limitPerDir) : undefined,
  databaseUrl: o.databaseUrl ?? defaultDatabaseUrl(),
  keep: Boolean(o.keep),
  replicaCounts: list(o.replicas).sort((a, b) => a - b),
  closedSeconds: Number(o.closedSeconds),
  closedConcurrency: int(o.concurrency),
  warmupSeconds: Number(o.warmup),
  eventReplicaCounts: list(o.eventReplicas),
  rate: o.rate ? Number(o.rate) : undefined,
  eventConcurrency: int(o.eventConcurrency),
  beforeSeconds: Number(o.before),
  afterSwitchSeconds: String(o.afterSwitch).split(',').map(Number).filter((v) => v >= 0),
  afterRestartSeconds: Number(o.afterRestart),
  switchTimeoutSeconds: Number(o.switchTimeout),
  restartTimeoutSeconds: Number(o.restartTimeout),
  samples: int(o.samples),
  historyLength: int(o.historyLength),
  first: int(o.first),
  workDir: path.resolve(o.workDir),
  serverLogLevel: o.serverLogLevel,
  join: Boolean(o.join),
  note: o.note,
  command: invokedAs('bench:replicas'),
  log: (message) => console.log(`[replicas ${new Date().toISOString().slice(11, 19)}] ${message}`),
});
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, JSON.stringify(report, null, 2) + '\n');
console.log(`wrote ${path.relative(process.cwd(), out)}`);
await plot(out);
if (o.docs && out === DEFAULT_OUT) {
  await replaceSection(path.join(REPO, 'docs/BENCHMARKS.md'), 'replicas', replicasMarkdown(report));
  console.log('updated docs/BENCHMARKS.md');
}
console.log(replicasMarkdown(report));
if (report.failed_unexpected > 0 || report.old_version_after_switch > 0) process.exitCode = 1;
