/**
 * `npm run bench:hot-swap`: the hot-swap load test. Writes reports/hot-swap.json and the hot-swap section of
 * docs/BENCHMARKS.md (unless --out points elsewhere). Exits 1 when a request failed.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command } from 'commander';
import { hotSwapMarkdown, replaceSection } from './lib/markdown.js';
import { BENCH_TMP, REPO } from './lib/paths.js';
import { runHotSwap } from './hot-swap.js';
import { invokedAs } from './lib/invoked-as.js';
import { drawPlot } from './lib/plot.js';

const DEFAULT_OUT = path.join(REPO, 'reports/hot-swap.json');

const program = new Command('bench:hot-swap')
  .description('Switch model versions (same encoder, several times, then a new one) while recommendation requests flow, at each rate of a sweep; report failed requests, latency, event-loop delay and switch times')
  .option('--bundle <dir>', 'model bundle (a copy is published under a second version)', path.join(REPO, 'bundles/quick'))
  .option('--datasets <list>', 'datasets of ../shared/data in the catalogue', 'amazon-games')
  .option('--limit-per-dir <n>', 'only the first n items of each dataset')
  .option('--concurrency <n>', 'most requests in flight (keep-alive connections)', '16')
  .option('--rate <list>', 'requests per second (open loop) of the switch runs, comma-separated', '20,100,300')
  .option('--no-find-max', 'skip the search for the highest steady rate (and the switch run at it)')
  .option('--steady <s>', 'seconds of each step of that search', '8')
  .option('--warmup <s>', 'unmeasured load first', '3')
  .option('--before <s>', 'measured seconds before the first switch of a run (30: the p99 the ratios divide by rests on enough requests)', '30')
  .option('--same-encoder-switches <n>', 'same-encoder switches per rate, each to a version of its own, measured together', '3')
  .option('--no-new-encoder', 'skip the switch to a new encoder (minutes of re-embedding): only the same-encoder switches')
  .option('--between <s>', 'measured seconds after each switch but the last', '5')
  .option('--after <s>', 'measured seconds after the last switch', '5')
  .option('--swap-timeout <s>', 'longest the switch may take', '900')
  .option('--samples <n>', 'histories to cycle through', '500')
  .option('--history-length <n>', 'items per history', '10')
  .option('--first <n>', 'results per list', '10')
  .option('--server-log-level <level>', 'server LOG_LEVEL', 'info')
  .option('--server-node-args <args>', 'more node options for the server process, space-separated (e.g. "--cpu-prof --cpu-prof-dir .tmp/prof"), for experiments')
  .option('--work-dir <dir>', 'caches, data directories and logs', BENCH_TMP)
  .option('--out <file>', 'JSON report', DEFAULT_OUT)
  .option('--docs-from <file>', 'only rewrite the docs section from an existing JSON report')
  .option('--no-docs', 'do not rewrite the hot-swap section of docs/BENCHMARKS.md')
  .option('--no-plot', 'do not draw the plot (reports/hot-swap.png next to the JSON report)')
  .parse();

const o = program.opts();
if (o.docsFrom) {
  const saved = JSON.parse(await readFile(path.resolve(o.docsFrom), 'utf8'));
  await replaceSection(path.join(REPO, 'docs/BENCHMARKS.md'), 'hot-swap', hotSwapMarkdown(saved));
  console.log('updated docs/BENCHMARKS.md');
  if (o.plot) await drawPlot('bench/plot-hot-swap.py', path.resolve(o.docsFrom));
  process.exit(0);
}
const int = (value: string) => Number.parseInt(value, 10);
const out = path.resolve(o.out);
const report = await runHotSwap({
  bundleDir: path.resolve(o.bundle),
  datasets: String(o.datasets).split(',').map((d) => d.trim()).filter((d) => d !== ''),
  limitPerDir: o.limitPerDir ? int(o.limitPerDir) : undefined,
  concurrency: int(o.concurrency),
  rates: String(o.rate).split(',').map(Number).filter((rate) => rate > 0),
  findMax: Boolean(o.findMax),
  steadySeconds: Number(o.steady),
  warmupSeconds: Number(o.warmup),
  beforeSeconds: Number(o.before),
  sameEncoderSwitches: int(o.sameEncoderSwitches),
  newEncoder: Boolean(o.newEncoder),
  betweenSeconds: Number(o.between),
  afterSeconds: Number(o.after),
  swapTimeoutSeconds: Number(o.swapTimeout),
  samples: int(o.samples),
  historyLength: int(o.historyLength),
  first: int(o.first),
  workDir: path.resolve(o.workDir),
  serverLogLevel: o.serverLogLevel,
  serverNodeArgs: o.serverNodeArgs ? String(o.serverNodeArgs).split(' ').filter((arg) => arg !== '') : undefined,
  command: invokedAs('bench:hot-swap'),
  log: (message) => console.log(`[hot-swap ${new Date().toISOString().slice(11, 19)}] ${message}`),
});
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, JSON.stringify(report, null, 2) + '\n');
console.log(`wrote ${path.relative(process.cwd(), out)}`);
if (o.plot) await drawPlot('bench/plot-hot-swap.py', out);
if (o.docs && out === DEFAULT_OUT) {
  await replaceSection(path.join(REPO, 'docs/BENCHMARKS.md'), 'hot-swap', hotSwapMarkdown(report));
  console.log('updated docs/BENCHMARKS.md');
}
console.log(hotSwapMarkdown(report));
console.log(`requests ${report.requests}, failed ${report.failed}; highest steady rate ${report.max_steady_rate ?? 'n/a'} requests/s; `
  + report.runs.map((run) => `${run.rate}/s: switches ${run.switches.map((s) => `${s.kind} ${s.seconds} s`).join(', ')}`).join('; '));
if (report.failed > 0) process.exitCode = 1;
