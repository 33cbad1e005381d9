/**
 * `npm run bench`: the serving benchmark. Writes reports/serving-bench.json and the results section of
 * docs/BENCHMARKS.md (unless --out points elsewhere). See docs/BENCHMARKS.md.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command } from 'commander';
import { replaceSection, servingMarkdown } from './lib/markdown.js';
import { BENCH_TMP, REPO } from './lib/paths.js';
import { evaluateTargets, runServingBench } from './serving.js';
import { invokedAs } from './lib/invoked-as.js';

const DEFAULT_OUT = path.join(REPO, 'reports/serving-bench.json');
const list = (value: string) => value.split(',').map((part) => part.trim()).filter((part) => part !== '');

const program = new Command('bench')
  .description('Serving benchmark: HTTP vs floor vs raw at several concurrencies, on the real and a grown catalogue; ingestion')
  .option('--bundle <dir>', 'model bundle to serve', path.join(REPO, 'bundles/quick'))
  .option('--catalogues <list>', '"real" and/or item totals grown from it', 'real,100000')
  .option('--concurrency <list>', 'connections (HTTP) or workers (raw)', '1,8,32')
  .option('--duration <s>', 'measured seconds per run', '8')
  .option('--warmup <s>', 'unmeasured seconds before each run', '2')
  .option('--max-requests <n>', 'most measured requests per run', '200000')
  .option('--samples <n>', 'histories and similar-item ids to cycle through', '500')
  .option('--history-length <n>', 'items per history (the last ones of an amazon-games user)', '10')
  .option('--first <n>', 'results per list', '10')
  .option('--ingest-items <n>', 'titles ingested through upsertItems (0: skip)', '2048')
  .option('--ingest-batch <n>', 'items per upsertItems call', '256')
  .option('--synthetic-vectors <how>', 'made-up items: "derived" from their parents\' vectors, or "encoded"', 'derived')
  .option('--limit-per-dir <n>', 'only the first n items of each dataset (quick trials)')
  .option('--server-log-level <level>', 'server LOG_LEVEL', 'info')
  .option('--work-dir <dir>', 'caches, data directories and logs', BENCH_TMP)
  .option('--out <file>', 'JSON report', DEFAULT_OUT)
  .option('--docs-from <file>', 'only rewrite the docs section from an existing JSON report')
  .option('--no-docs', 'do not rewrite the results section of docs/BENCHMARKS.md')
  .parse();

const o = program.opts();
if (o.docsFrom) {
  const saved = JSON.parse(await readFile(path.resolve(o.docsFrom), 'utf8'));
  // Targets are judged again, so a change in how they are judged reaches saved reports too.
  saved.targets = evaluateTargets(saved);
  await writeFile(path.resolve(o.docsFrom), JSON.stringify(saved, null, 2) + '\n');
  await replaceSection(path.join(REPO, 'docs/BENCHMARKS.md'), 'serving-bench', servingMarkdown(saved));
  console.log('updated docs/BENCHMARKS.md');
  process.exit(0);
}
const int = (value: string) => Number.parseInt(value, 10);
const out = path.resolve(o.out);
const report = await runServingBench({
  bundleDir: path.resolve(o.bundle),
  catalogues: list(o.catalogues).map((c) => (c === 'real' ? 'real' : int(c))),
  limitPerDir: o.limitPerDir ? int(o.limitPerDir) : undefined,
  concurrency: list(o.concurrency).map(int),
  durationSeconds: Number(o.duration),
  warmupSeconds: Number(o.warmup),
  maxRequests: int(o.maxRequests),
  samples: int(o.samples),
  historyLength: int(o.historyLength),
  first: int(o.first),
  ingestItems: int(o.ingestItems),
  ingestBatch: int(o.ingestBatch),
  syntheticVectors: o.syntheticVectors === 'encoded' ? 'encoded' : 'derived',
  workDir: path.resolve(o.workDir),
  serverLogLevel: o.serverLogLevel,
  command: invokedAs('bench'),
  log: (message) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`),
});
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, JSON.stringify(report, null, 2) + '\n');
console.log(`wrote ${path.relative(process.cwd(), out)}`);
if (o.docs && out === DEFAULT_OUT) {
  await replaceSection(path.join(REPO, 'docs/BENCHMARKS.md'), 'serving-bench', servingMarkdown(report));
  console.log('updated docs/BENCHMARKS.md');
}
for (const target of report.targets) console.log(`${target.met ? 'met   ' : 'MISSED'} ${target.target}: ${target.value}`);
