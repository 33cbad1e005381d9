/**
 * The bundle checks of validateBundle, run in a worker thread of their own. Creating the encoder's onnxruntime
 * session (hundreds of MB, graph optimizations) and running it on the probe and sample titles are synchronous calls
 * of onnxruntime-node: on the main thread they held the event loop for up to seconds while a model switch loaded the
 * new version, and requests waiting on it were delayed or, on idle keep-alive connections, reset (issue #16).
 */
import { Piscina } from 'piscina';
import type { BundleCheckAnswer, BundleCheckRequest } from './bundle-check-worker.js';
import { InvalidBundleError } from './manifest.js';
import { workerModule } from '../worker-module.js';

const WORKER = workerModule('bundle-check-worker', import.meta.url);

export type BundleCheckResult = Extract<BundleCheckAnswer, { ok: true }>;

/** Checks a bundle in a new worker thread; rejects with InvalidBundleError when a check fails. */
export async function checkBundleInThread(request: BundleCheckRequest): Promise<BundleCheckResult> {
  const pool = new Piscina({ filename: WORKER, minThreads: 0, maxThreads: 1 });
  let answer: BundleCheckAnswer;
  try {
    answer = await pool.run(request);
  } finally {
    await pool.destroy();
  }
  if (answer.ok) return answer;
  // The worker's InvalidBundleError, with its message as it was.
  if (answer.invalidBundle) throw Object.assign(new InvalidBundleError(request.bundleDir, ''), { message: answer.message });
  throw new Error(answer.message);
}
