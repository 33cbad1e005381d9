/**
 * The HNSW graphs of the embedded index (usearch): one per domain and named vector, keyed by slot numbers. Here they
 * are created, searched, saved and loaded back.
 *
 * A saved graph is known by its file's sha256, and a file is only handed to usearch once that matches: on some
 * damaged files usearch aborts the whole process (std::bad_alloc) instead of throwing.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import { pipeline } from 'node:stream/promises';
import type * as Usearch from 'usearch';
import type { SearchHit, VectorName } from './vector-index.js';

// usearch's ESM entry cannot find its native build (it walks up from a file: URL); its CommonJS entry can.
const { Index, MetricKind, ScalarKind } = createRequire(import.meta.url)('usearch') as typeof Usearch;

export type Graph = Usearch.Index;

/** Cosine for item-to-item similarity, inner product for user-to-item scores. */
const METRIC: Record<VectorName, Usearch.MetricKind> = { semantic: MetricKind.Cos, recommendation: MetricKind.IP };

/** Whether a named vector is ranked by cosine (else by dot product). */
export function ranksByCosine(using: VectorName): boolean {
  return METRIC[using] === MetricKind.Cos;
}

export function createGraph(using: VectorName, dimensions: number): Graph {
  return new Index({
    metric: METRIC[using],
    dimensions,
    quantization: ScalarKind.F32,
    connectivity: 16,
    expansion_add: 128,
    expansion_search: 64,
    multi: false,
  });
}

/** Adds rows of a matrix (row-major, `keys.length` rows) under their keys. */
export function addToGraph(graph: Graph, keys: readonly number[], matrix: Float32Array): void {
  if (keys.length === 0) return;
  graph.add(BigUint64Array.from(keys, (key) => BigInt(key)), matrix, 0);
}

/**
 * The best `limit` hits of one graph, skipping the keys `accept` turns down. Asks the graph for more candidates
 * until enough are accepted; null when even the whole graph's answer falls short (HNSW is approximate, and
 * removed points can leave parts of a graph unreachable), so the caller can scan exactly.
 */
export function searchGraph(
  graph: Graph,
  query: Float32Array,
  limit: number,
  accept: (key: number) => SearchHit | null,
): SearchHit[] | null {
  const size = graph.size();
  // usearch reads the query from the start of its buffer, ignoring byteOffset: pass a copy.
  const ownQuery = query.slice();
  for (let wanted = Math.min(size, limit * 2 + 16); ; wanted = Math.min(size, wanted * 4)) {
    const matches = graph.search(ownQuery, wanted, 0);
    const hits: SearchHit[] = [];
    for (let i = 0; i < matches.keys.length; i++) {
      const hit = accept(Number(matches.keys[i]));
      if (hit) hits.push({ ...hit, score: 1 - matches.distances[i] });
    }
    if (hits.length >= limit) return hits.slice(0, limit);
    if (wanted >= size) return null;
  }
}

/** A saved graph: its file (relative to the collection's directory) and the file's sha256. */
export interface GraphFile {
  file: string;
  sha256: string;
}

/**
 * Writes a graph to `file`. Synchronous (usearch has no asynchronous save), so graphs saved one after another
 * without an await in between hold the same moment.
 */
export function saveGraph(graph: Graph, file: string): void {
  graph.save(file);
}

/**
 * A graph read back from `file`, or null when the file is missing, is not the one saved (another sha256), or does
 * not hold vectors of `dimensions` for `using`.
 */
export async function loadGraph(file: string, sha256: string, using: VectorName, dimensions: number): Promise<Graph | null> {
  const actual = await sha256OfFile(file).catch(() => null);
  if (actual !== sha256) return null;
  const graph = createGraph(using, dimensions);
  try {
    graph.load(file);
  } catch {
    return null;
  }
  // usearch takes the dimensions from the file, whatever the index was created with.
  return graph.dimensions() === dimensions ? graph : null;
}

export async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}
