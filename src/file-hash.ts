/**
 * sha256 of files, streamed: on the calling thread, or in a worker thread at background priority. A model bundle's
 * files are hundreds of MB, and hashing them took about 2 ms of CPU per MB; on the event loop during a model switch
 * that delayed requests by up to 12 ms at a time (2-core AMD EPYC, 2026-12-02).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Piscina } from 'piscina';
import { backgroundNice } from './background-priority.js';
import type { FileHashRequest } from './file-hash-worker.js';
import { workerModule } from './worker-module.js';

const WORKER = workerModule('file-hash-worker', import.meta.url);

export async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/** The sha256 of each file, in order, computed in a worker thread; rejects as sha256OfFile would. */
export async function sha256OfFilesOffThread(files: readonly string[]): Promise<string[]> {
  const pool = new Piscina({ filename: WORKER, minThreads: 0, maxThreads: 1 });
  try {
    return await pool.run({ files: [...files], nice: backgroundNice() } satisfies FileHashRequest);
  } finally {
    await pool.destroy();
  }
}
