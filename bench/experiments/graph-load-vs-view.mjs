/**
 * What opening a saved HNSW graph costs on the event loop: usearch `load` (reads the whole graph into memory)
 * against `view` (memory-maps the file, read-only), for a graph the size of the amazon-games catalogue's semantic
 * graph (16,859 points, 576 dimensions, float16 as src/index/hnsw-graph.ts builds them). Also shows that a view
 * refuses writes, which is why the embedded index loads a viewed graph at the first write to its domain.
 *
 *   node bench/experiments/graph-load-vs-view.mjs [--rows 16859] [--dimensions 576]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { Index, MetricKind, ScalarKind } = createRequire(import.meta.url)('usearch');
const { values } = parseArgs({ options: { rows: { type: 'string', default: '16859' }, dimensions: { type: 'string', default: '576' } } });
const rows = Number(values.rows);
const dimensions = Number(values.dimensions);
const create = () => new Index({
  metric: MetricKind.Cos, dimensions, quantization: ScalarKind.F16, connectivity: 16, expansion_add: 128, expansion_search: 64, multi: false,
});
const dir = mkdtempSync(path.join(os.tmpdir(), 'graph-view-'));
const file = path.join(dir, 'graph.usearch');
try {
  const vectors = Float32Array.from({ length: rows * dimensions }, () => Math.random() - 0.5);
  const built = create();
  built.add(BigUint64Array.from({ length: rows }, (_, i) => BigInt(i)), vectors, 0);
  built.save(file);
  const query = vectors.slice(0, dimensions);
  for (let round = 1; round <= 3; round++) {
    let started = performance.now();
    create().load(file);
    const load = performance.now() - started;
    started = performance.now();
    const viewed = create();
    viewed.view(file);
    const view = performance.now() - started;
    started = performance.now();
    viewed.search(query, 10, 0);
    const firstSearch = performance.now() - started;
    let write = 'accepted';
    try { viewed.add(BigInt(rows + 1), query); } catch (error) { write = `refused (${error.message})`; }
    console.log(`round ${round}: load ${load.toFixed(1)} ms, view ${view.toFixed(1)} ms, first search on the view ${firstSearch.toFixed(2)} ms, a write to the view ${write}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
