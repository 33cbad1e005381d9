/**
 * The HNSW graphs of the embedded index (usearch): one per domain and named vector, keyed by slot numbers. Here they
 * are created, searched, saved and loaded back.
 *
 * A saved graph is known by its file's sha256, and a file is only handed to usearch once that matches: on some
 * damaged files usearch aborts the whole process (std::bad_alloc) instead of throwing.
 */
import { createRequire } from 'node:module';
import { Piscina } from 'piscina';
import type * as Usearch from 'usearch';
import { backgroundNice } from '../background-priority.js';
import { sha256OfFile } from '../file-hash.js';
import type { GraphBuildRequest, GraphBuildResult } from './graph-build-worker.js';
import type { VectorName } from './vector-index.js';
import { workerModule } from '../worker-module.js';

// usearch's ESM entry cannot find its native build (it walks up from a file: URL); its CommonJS entry can.
const { Index, MetricKind, ScalarKind } = createRequire(import.meta.url)('usearch') as typeof Usearch;

const BUILD_WORKER = workerModule('graph-build-worker', import.meta.url);

export type Graph = Usearch.Index;

/** Cosine for item-to-item similarity, inner product for user-to-item scores. */
const METRIC: Record<VectorName, Usearch.MetricKind> = { semantic: MetricKind.Cos, recommendation: MetricKind.IP };

/** Whether a named vector is ranked by cosine (else by dot product). */
export function ranksByCosine(using: VectorName): boolean {
  return METRIC[using] === MetricKind.Cos;
}

/**
 * The graphs hold their vectors as float16: half the memory of float32 and a quarter less search time, for nearly
 * the same recall (50k recommendation vectors of the bench catalogue: 61 -> 45 us per search, recall@10 0.971 ->
 * 0.963; `npx tsx bench/experiments/graph-precision.ts`, 2026-11-24). They only propose candidates; the index
 * scores those exactly on its float32 rows.
 */
export const GRAPH_SCALAR = ScalarKind.F16;

export function createGraph(using: VectorName, dimensions: number): Graph {
  return new Index({
    metric: METRIC[using],
    dimensions,
    quantization: GRAPH_SCALAR,
    connectivity: 16,
    expansion_add: 128,
    expansion_search: 64,
    multi: false,
  });
}

/**
 * Adds rows of a matrix (row-major, `keys.length` rows) under their keys, on `threads` threads (0: one per core).
 * Writes while serving use one: usearch waits for its slowest thread, and with the other core busy (the encoder
 * re-embedding, say) a two-thread add of 5 points held the event loop 60-100 ms instead of about 5
 * (`npm run bench:hot-swap` with a CPU profile, 2026-12-02).
 */
export function addToGraph(graph: Graph, keys: readonly number[], matrix: Float32Array, threads: number): void {
  if (keys.length === 0) return;
  graph.add(BigUint64Array.from(keys, (key) => BigInt(key)), matrix, threads);
}

/**
 * Builds a graph of rows of a matrix, each under its row number as key, in a worker thread (graph-build-worker.ts)
 * at background priority, and saves it to `file`; returns the file's sha256. The event loop only waits: adding
 * 16,859 points of 576 dimensions takes about 8 s of one core (2-core AMD EPYC, 2026-12-02).
 */
export async function buildGraphOffThread(request: Omit<GraphBuildRequest, 'nice'>): Promise<string> {
  const pool = new Piscina({ filename: BUILD_WORKER, minThreads: 0, maxThreads: 1 });
  try {
    const built: GraphBuildResult = await pool.run({ ...request, nice: backgroundNice() } satisfies GraphBuildRequest);
    if (built.size !== request.keys.length) throw new Error(`the graph built in a worker holds ${built.size} points, not ${request.keys.length}`);
    return built.sha256;
  } finally {
    await pool.destroy();
  }
}

/** A graph read back from a file this process just wrote (buildGraphOffThread). Synchronous: about 24 ms for 16,859 points of 576 dimensions. */
export function loadGraphFile(file: string, using: VectorName, dimensions: number): Graph {
  const graph = createGraph(using, dimensions);
  graph.load(file);
  return graph;
}

/**
 * A read-only graph over a file this process just wrote (buildGraphOffThread): memory-mapped (usearch `view`), about
 * 2 ms whatever its size, against 17 ms to load it (16,859 points of 576 dimensions, `node` timing both, 2-core AMD
 * EPYC, 2026-12-03). It can be searched, not written to: adding or removing points throws.
 */
export function viewGraphFile(file: string, using: VectorName, dimensions: number): Graph {
  const graph = createGraph(using, dimensions);
  graph.view(file);
  return graph;
}

/**
 * The keys among the graph's `wanted` nearest to the query that `accept` takes, nearest first by the graph's
 * (float16) distance. One synchronous call into usearch, whose cost grows with `wanted` (GRAPH_WORK_PER_CANDIDATE).
 */
export function searchGraph(graph: Graph, query: Float32Array, wanted: number, accept: (key: number) => boolean): number[] {
  // usearch reads the query from the start of its buffer, ignoring byteOffset: pass a copy.
  const { keys } = graph.search(query.slice(), Math.min(wanted, graph.size()), 0);
  const accepted: number[] = [];
  for (const key of keys) if (accept(Number(key))) accepted.push(Number(key));
  return accepted;
}

/**
 * What a graph search costs per candidate asked for and dimension, in the units of turn-budget.ts (vector
 * components scored exactly): a search for k candidates explores about k nodes and computes distances to their
 * neighbours (connectivity 16, 32 on the base layer) in float16 SIMD, several times faster per component than the
 * JavaScript dot products of exact scoring.
 */
export const GRAPH_WORK_PER_CANDIDATE = 8;

/**
 * What adding one point to a graph costs per dimension, in the same units: an insert is a search for
 * `expansion_add` (128) candidates plus linking the point into their neighbour lists, 128 x GRAPH_WORK_PER_CANDIDATE.
 * Measured on a 16k-point graph, one thread, 2-core AMD EPYC: about 1 ms per 576-dimension point and 0.16 ms per
 * 128-dimension point (2026-12-02): one turn's write budget (sharedWriteBudget) adds one or two such items.
 */
export const GRAPH_WORK_PER_INSERTED_DIMENSION = 128 * GRAPH_WORK_PER_CANDIDATE;

/** A saved graph: its file (relative to the collection's directory), the file's sha256 and its vectors' scalar type. */
export interface GraphFile {
  file: string;
  sha256: string;
  /** GRAPH_SCALAR when it was saved; absent for graphs saved as float32 before. */
  scalar?: string;
}

/**
 * Writes a graph to `file`. Synchronous (usearch has no asynchronous save), so graphs saved one after another
 * without an await in between hold the same moment.
 */
export function saveGraph(graph: Graph, file: string): void {
  graph.save(file);
}

/**
 * A graph read back from `saved.file` (an absolute path), or null when the file is missing, is not the one saved
 * (another sha256), holds another scalar type than GRAPH_SCALAR, or does not hold vectors of `dimensions`.
 */
export async function loadGraph(saved: GraphFile, using: VectorName, dimensions: number): Promise<Graph | null> {
  const { file, sha256, scalar = 'f32' } = saved;
  if (scalar !== GRAPH_SCALAR) return null;
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

