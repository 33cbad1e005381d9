/**
 * The worker thread behind buildGraphOffThread (a piscina task): builds one HNSW graph of rows of a collection's
 * matrix, saves it to a file and returns the file's sha256. usearch's add is a synchronous native call, about a
 * millisecond per point of a large graph, so a whole collection's graph built on the event loop would hold it for
 * seconds. The thread reads the rows from the matrix's shared blocks and runs at a lower CPU priority than the event loop.
 */
import { runAtNice } from '../background-priority.js';
import { BlockMatrix } from './block-matrix.js';
import { sha256OfFile } from '../file-hash.js';
import { addToGraph, createGraph, saveGraph } from './hnsw-graph.js';
import type { VectorName } from './vector-index.js';

export interface GraphBuildRequest {
  using: VectorName;
  dimensions: number;
  /** The rows (slots) to add, each under its own number as key. */
  keys: number[];
  /** The matrix's blocks (BlockMatrix.blocks: shared, not copied). */
  blocks: Float32Array[];
  /** usearch threads (0: one per core). */
  threads: number;
  /** Where the graph is saved. */
  file: string;
  /** Nice value of this thread; undefined leaves it as it is. */
  nice?: number;
}

export interface GraphBuildResult {
  size: number;
  sha256: string;
}

export default async function build(request: GraphBuildRequest): Promise<GraphBuildResult> {
  runAtNice(request.nice);
  const graph = createGraph(request.using, request.dimensions);
  addToGraph(graph, request.keys, new BlockMatrix(request.dimensions, request.blocks).rows(request.keys), request.threads);
  saveGraph(graph, request.file);
  return { size: graph.size(), sha256: await sha256OfFile(request.file) };
}
