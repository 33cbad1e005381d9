/**
 * The sequence model in a worker thread (piscina, one thread), fed in batches.
 *
 * A sequence-model call is small (about 0.1 ms) but it was a quarter of the main thread's time per recommendation
 * under load (docs/BENCHMARKS.md). In the thread it runs beside the event loop. Histories asked for in the same turn
 * of the event loop (requests that arrived together) go in one call: DataLoader collects them until the loop's check
 * phase (setImmediate), after every ready socket has been read, and onnxruntime runs a batch of 8 in about half the
 * time of 8 single calls.
 */
import DataLoader from 'dataloader';
import { Piscina } from 'piscina';
import { rowViews } from './encoder.js';
import { padHistories, type HistoryBatch } from './sequence-model.js';
import type { SequenceModelDescription, SequenceModelWorkerData } from './sequence-model-worker.js';
import { workerModule } from '../worker-module.js';

const WORKER = workerModule('sequence-model-worker', import.meta.url);

/** Most histories in one call. */
export const MAX_BATCH = 64;

export class SequenceModelThread {
  private readonly batcher: DataLoader<readonly Float32Array[], Float32Array>;
  /** Calls made to the thread so far, and the histories they carried. */
  readonly made = { calls: 0, histories: 0 };

  private constructor(
    private readonly pool: Piscina,
    /** Histories are cut to their last `length` items and left-padded to it. */
    private readonly length: number,
    private readonly dim: number,
  ) {
    this.batcher = new DataLoader((histories) => this.run(histories), {
      cache: false,
      maxBatchSize: MAX_BATCH,
      batchScheduleFn: (dispatch) => setImmediate(dispatch),
    });
  }

  static start(data: SequenceModelWorkerData, shape: { length: number; dim: number }): SequenceModelThread {
    const pool = new Piscina({ filename: WORKER, workerData: data, minThreads: 1, maxThreads: 1, idleTimeout: Infinity });
    pool.on('error', () => undefined);
    return new SequenceModelThread(pool, shape.length, shape.dim);
  }

  /** The user vector of one history, batched with the others asked for in the same turn. */
  userVector(history: readonly Float32Array[]): Promise<Float32Array> {
    // Refused here, not in the batch: one bad history must not fail the requests it would be batched with.
    if (history.length === 0) return Promise.reject(new Error('a history needs at least one item'));
    return this.batcher.load(history);
  }

  /** User vectors of several histories in one call. */
  async run(histories: readonly (readonly Float32Array[])[]): Promise<Float32Array[]> {
    if (histories.length === 0) return [];
    this.made.calls += 1;
    this.made.histories += histories.length;
    return this.runBatch(padHistories(histories, this.length, this.dim));
  }

  /** User vectors of a batch already padded (any length: the bundle checks try lengths the server never sends). */
  async runBatch(batch: HistoryBatch): Promise<Float32Array[]> {
    const transferList = [batch.vectors.buffer as ArrayBuffer, batch.mask.buffer as ArrayBuffer];
    const matrix: Float32Array = await this.pool.run({ run: batch }, { transferList });
    return rowViews(matrix, batch.rows);
  }

  /** The graph's signature, or why the thread could not load it (for the checks). */
  describe(): Promise<SequenceModelDescription> {
    return this.pool.run({ describe: true });
  }

  /** Stops the thread; calls not yet answered are rejected. */
  close(): Promise<void> {
    return this.pool.destroy();
  }
}
