/**
 * What the scalar type of the HNSW graphs costs in recall and buys in search and load time: usearch graphs of the
 * prepared 100k catalogue's vectors, built as the embedded index builds them, as float32, float16, bfloat16 and
 * int8. `--vector recommendation` (dot product) is searched with queries shaped like user vectors (the mean of 10
 * random items' vectors); `--vector semantic` (cosine) with items' own vectors, as similarItems asks. Recall@10 is
 * against an exact ranking of the same rows; "load ms" reads the saved graph back (what a model switch's bulk fill
 * does on the event loop, hnsw-graph.ts loadGraphFile).
 *
 *   npx tsx bench/experiments/graph-precision.ts [--vector recommendation|semantic] [--rows 50000] [--queries 400]
 *
 * Needs the grown-100000 catalogue prepared by `npm run bench`.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Command } from 'commander';
import type * as Usearch from 'usearch';
import { BENCH_TMP } from '../lib/paths.js';

const { Index, MetricKind, ScalarKind } = createRequire(import.meta.url)('usearch') as typeof Usearch;
const o = new Command().option('--vector <name>', 'recommendation or semantic', 'recommendation')
  .option('--rows <n>', 'graph size', '50000').option('--queries <n>', 'queries', '400').parse().opts();
if (o.vector !== 'recommendation' && o.vector !== 'semantic') throw new Error('--vector must be recommendation or semantic');
const semantic = o.vector === 'semantic';
const rows = Number(o.rows);
const queryCount = Number(o.queries);

const data = (await readdir(path.join(BENCH_TMP, 'data'))).find((name) => name.startsWith('grown-100000-'));
if (!data) throw new Error('run `npm run bench` first: no grown-100000 catalogue in .tmp/bench/data');
const collections = path.join(BENCH_TMP, 'data', data, 'vectors');
const collection = path.join(collections, (await readdir(collections)).find((name) => name.startsWith('items_'))!);
const file = (await readdir(collection)).find((name) => name.startsWith(`${o.vector}.`) && name.endsWith('.f32'))!;
const bytes = await readFile(path.join(collection, file));
const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
const manifest = JSON.parse(await readFile(path.join(collection, 'collection.json'), 'utf8'));
const dim: number = manifest.dimensions[o.vector];
const matrix = all.slice(0, rows * dim);

let seed = 7;
const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
const queries = Array.from({ length: queryCount }, () => {
  if (semantic) {
    const row = Math.floor(random() * rows);
    return matrix.slice(row * dim, (row + 1) * dim);
  }
  const query = new Float32Array(dim);
  for (let n = 0; n < 10; n++) {
    const row = Math.floor(random() * rows);
    for (let j = 0; j < dim; j++) query[j] += matrix[row * dim + j] / 10;
  }
  return query;
});
// Cosine ranks by the dot product over the row's norm (the query's norm is the same for every row).
const norms = Float32Array.from({ length: rows }, (_, i) => semantic ? Math.hypot(...matrix.subarray(i * dim, (i + 1) * dim)) || 1 : 1);
const truth = queries.map((query) => {
  const scores = new Float32Array(rows);
  for (let i = 0; i < rows; i++) {
    let dot = 0;
    for (let j = 0; j < dim; j++) dot += matrix[i * dim + j] * query[j];
    scores[i] = dot / norms[i];
  }
  return new Set([...scores.keys()].sort((a, b) => scores[b] - scores[a]).slice(0, 10));
});

console.log(`${rows} rows of ${file}, ${queryCount} queries, k = 36 (as the index asks for 10 results)`);
const saved = await mkdtemp(path.join(os.tmpdir(), 'graph-precision-'));
console.log('scalar | build s | search us | recall@10 | file MB | load ms');
for (const [name, quantization] of [['f32', ScalarKind.F32], ['f16', ScalarKind.F16], ['bf16', ScalarKind.BF16], ['i8', ScalarKind.I8]] as const) {
  const graph = new Index({ metric: semantic ? MetricKind.Cos : MetricKind.IP, dimensions: dim, quantization, connectivity: 16, expansion_add: 128, expansion_search: 64, multi: false });
  const built = performance.now();
  graph.add(BigUint64Array.from({ length: rows }, (_, i) => BigInt(i)), matrix, 0);
  const buildSeconds = (performance.now() - built) / 1000;
  let found = 0;
  for (const [i, query] of queries.entries()) {
    const { keys } = graph.search(query, 36, 1);
    for (let j = 0; j < 10; j++) if (truth[i].has(Number(keys[j]))) found++;
  }
  const rounds = 3;
  const started = performance.now();
  for (let round = 0; round < rounds; round++) for (const query of queries) graph.search(query, 36, 1);
  const micros = ((performance.now() - started) * 1000) / (rounds * queryCount);
  const graphFile = path.join(saved, `${name}.usearch`);
  graph.save(graphFile);
  const loads = [1, 2, 3].map(() => {
    const copy = new Index({ metric: semantic ? MetricKind.Cos : MetricKind.IP, dimensions: dim, quantization, connectivity: 16, expansion_add: 128, expansion_search: 64, multi: false });
    const start = performance.now();
    copy.load(graphFile);
    return performance.now() - start;
  });
  const megabytes = (await readFile(graphFile)).byteLength / 1e6;
  console.log(`${name} | ${buildSeconds.toFixed(1)} | ${micros.toFixed(1)} | ${(found / (10 * queryCount)).toFixed(3)} | ${megabytes.toFixed(1)} | ${Math.min(...loads).toFixed(1)}`);
}
await rm(saved, { recursive: true, force: true });
