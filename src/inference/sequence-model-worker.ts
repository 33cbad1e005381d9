/**
 * The worker thread behind SequenceModelThread: a sequence-model session of its own, which turns batches of padded
 * histories into user vectors away from the server's event loop. piscina loads this module in the thread.
 */
import { workerData } from 'piscina';
import { createSession, type ExecutionProvider } from './onnx-runtime.js';
import { runSequenceModel, type HistoryBatch } from './sequence-model.js';

export interface SequenceModelWorkerData {
  /** The sequence-model graph, an absolute path. */
  file: string;
  provider: ExecutionProvider;
}

/** A batch in, its [rows, user vector] matrix out, row-major. */
export type SequenceModelTask = (batch: HistoryBatch) => Promise<Float32Array>;

async function start(data: SequenceModelWorkerData): Promise<SequenceModelTask> {
  try {
    const session = await createSession(data.file, data.provider, 'small');
    return async (batch) => (await runSequenceModel(session, batch)).data as Float32Array;
  } catch (error) {
    // Every task reports why the thread could not start (see encoder-worker.ts).
    return async () => { throw error; };
  }
}

export default start(workerData as SequenceModelWorkerData);
