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

const DEFAULT_OUT = path.join(REPO, 'reports/hot-swap.json');

const program = new Command('bench:hot-swap')
  .description('Switch model versions while recommendation requests flow; report failed requests and latency')
  .option('--bundle <dir>', 'model bundle (a copy is published under a second version)', path.join(REPO, 'bundles/quick'))
  .option('--datasets <list>', 'datasets of ../shared/data in the catalogue', 'amazon-games')
  .option('--limit-per-dir <n>', 'only the first n items of each dataset')
  .option('--concurrency <n>', 'most requests in flight (keep-alive connections)', '8')
  .option('--rate <n>', 'requests per second, steady (open loop)', '20')
  .option('--warmup <s>', 'unmeasured load first', '3')
  .option('--before <s>', 'measured seconds before the switch', '15')
  .option('--after <s>', 'measured seconds after the switch', '5')
  .option('--swap-timeout <s>', 'longest the switch may take', '900')
  .option('--samples <n>', 'histories to cycle through', '500')
  .option('--history-length <n>', 'items per history', '10')
  .option('--first <n>', 'results per list', '10')
  .option('--server-log-level <level>', 'server LOG_LEVEL', 'info')
  .option('--work-dir <dir>', 'caches, data directories and logs', BENCH_TMP)
  .option('--out <file>', 'JSON report', DEFAULT_OUT)
  .option('--docs-from <file>', 'only rewrite the docs section from an existing JSON report')
  .option('--no-docs', 'do not rewrite the hot-swap section of docs/BENCHMARKS.md')
  .parse();

const o = program.opts();
if (o.docsFrom) {
  const saved = JSON.parse(await readFile(path.resolve(o.docsFrom), 'utf8'));
  await replaceSection(path.join(REPO, 'docs/BENCHMARKS.md'), 'hot-swap', hotSwapMarkdown(saved));
  console.log('updated docs/BENCHMARKS.md');
  process.exit(0);
}
const int = (value: string) => Number.parseInt(value, 10);
const out = path.resolve(o.out);
const report = await runHotSwap({
  bundleDir: path.resolve(o.bundle),
  datasets: String(o.datasets).split(',').map((d) => d.trim()).filter((d) => d !== ''),
  limitPerDir: o.limitPerDir ? int(o.limitPerDir) : undefined,
  concurrency: int(o.concurrency),
  rate: Number(o.rate),
  warmupSeconds: Number(o.warmup),
  beforeSeconds: Number(o.before),
  afterSeconds: Number(o.after),
  swapTimeoutSeconds: Number(o.swapTimeout),
  samples: int(o.samples),
  historyLength: int(o.historyLength),
  first: int(o.first),
  workDir: path.resolve(o.workDir),
  serverLogLevel: o.serverLogLevel,
  command: ['npm run bench:hot-swap', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
  log: (message) => console.log(`[hot-swap ${new Date().toISOString().slice(11, 19)}] ${message}`),
});
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, JSON.stringify(report, null, 2) + '\n');
console.log(`wrote ${path.relative(process.cwd(), out)}`);
if (o.docs && out === DEFAULT_OUT) {
  await replaceSection(path.join(REPO, 'docs/BENCHMARKS.md'), 'hot-swap', hotSwapMarkdown(report));
  console.log('updated docs/BENCHMARKS.md');
}
console.log(`requests ${report.requests}, failed ${report.failed}, p99 before ${report.p99_ms_before} ms, during ${report.p99_ms_during} ms, switch ${report.swap_seconds} s`);
if (report.failed > 0) process.exitCode = 1;
