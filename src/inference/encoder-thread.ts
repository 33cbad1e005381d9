/**
 * The item encoder in a worker thread (piscina, one thread). An encoder call takes tens to hundreds of milliseconds
 * of CPU; on the main thread it held every request for that long, and re-embedding the catalogue for a model switch
 * made that the p99 of serving (docs/BENCHMARKS.md). In the thread, calls run beside the event loop, one at a time,
 * in the order they were made.
 */
import { Piscina } from 'piscina';
import { rowViews } from './encoder.js';
import type { EncoderDescription, EncoderWorkerData } from './encoder-worker.js';
import { workerModule } from '../worker-module.js';

const WORKER = workerModule('encoder-worker', import.meta.url);

export class EncoderThread {
  /** Models using this thread: versions whose encoder graph is the same share one (RecommendationModel.load). */
  private users = 1;

  private constructor(private readonly pool: Piscina) {}

  /** One more model uses the thread; each closes it once. */
  retain(): this {
    this.users += 1;
    return this;
  }

  /** Starts the thread; it loads the tokenizer and the encoder graph on its own. */
  static start(data: EncoderWorkerData): EncoderThread {
    const pool = new Piscina({ filename: WORKER, workerData: data, minThreads: 1, maxThreads: 1, idleTimeout: Infinity });
    // Errors of a task reject its promise; this only hears of a thread that died between tasks (a new one starts).
    pool.on('error', () => undefined);
    return new EncoderThread(pool);
  }

  /** Item embeddings of titles, one row each (views of one matrix). */
  async encode(titles: readonly string[]): Promise<Float32Array[]> {
    return rowViews(await this.encodeMatrix(titles), titles.length);
  }

  /** Item embeddings of titles as one [titles, item_embedding] matrix, row-major (moved from the thread, not copied). */
  async encodeMatrix(titles: readonly string[]): Promise<Float32Array> {
    if (titles.length === 0) return new Float32Array(0);
    return this.pool.run({ encode: [...titles] });
  }

  /** Token ids of titles, as the thread's tokenizer gives them. */
  tokenize(titles: readonly string[]): Promise<number[][]> {
    return this.pool.run({ tokenize: [...titles] });
  }

  /** The encoder graph's signature and the provider it runs on, or which part failed to load (for the checks). */
  describe(): Promise<EncoderDescription> {
    return this.pool.run({ describe: true });
  }

  /** Stops the thread once its last user closes it; calls not yet answered are rejected. */
  close(): Promise<void> {
    this.users -= 1;
    return this.users > 0 ? Promise.resolve() : this.pool.destroy();
  }
}
