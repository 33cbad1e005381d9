/**
 * The worker thread behind SequenceModelThread: a sequence-model session of its own, which turns batches of padded
 * histories into user vectors away from the server's event loop, and tells the bundle checks the graph's signature.
 * piscina loads this module in the thread.
 */
import { move, workerData } from 'piscina';
import { createSession, signatureOf, type ExecutionProvider, type GraphSignature } from './onnx-runtime.js';
import { runSequenceModel, type HistoryBatch } from './sequence-model.js';

export interface SequenceModelWorkerData {
  /** The sequence-model graph, an absolute path. */
  file: string;
  provider: ExecutionProvider;
}

export type SequenceModelTask =
  | { run: HistoryBatch } // -> Float32Array: the [rows, user vector] matrix, row-major
  | { describe: true }; // -> SequenceModelDescription

export type SequenceModelDescription = { ok: true; signature: GraphSignature } | { ok: false; message: string };

type Answer = Float32Array | SequenceModelDescription;

async function start(data: SequenceModelWorkerData): Promise<(task: SequenceModelTask) => Promise<Answer>> {
  try {
    const session = await createSession(data.file, data.provider, 'small');
    const description: SequenceModelDescription = { ok: true, signature: signatureOf(session) };
    return async (task) => ('run' in task ? move((await runSequenceModel(session, task.run)).data as Float32Array) as Float32Array : description);
  } catch (error) {
    // `describe` says why the thread could not start, every run rejects with it (see encoder-worker.ts).
    return async (task) => {
      if ('describe' in task) return { ok: false, message: (error as Error).message };
      throw error;
    };
  }
}

export default start(workerData as SequenceModelWorkerData);
