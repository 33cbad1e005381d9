/**
 * The worker thread behind EncoderThread: a tokenizer and an encoder session of its own, which turn batches of
 * titles into item embeddings away from the server's event loop. piscina loads this module in the thread; the
 * bundle's files come in workerData.
 */
import { runAtNice } from '../background-priority.js';
import { workerData } from 'piscina';
import { runEncoder } from './encoder.js';
import { createSession, type ExecutionProvider } from './onnx-runtime.js';
import { TitleTokenizer, type TokenizerSettings } from './tokenizer.js';

export interface EncoderWorkerData {
  /** The encoder graph (fp32 or int8), an absolute path. */
  encoderFile: string;
  tokenizerFile: string;
  tokenizer: TokenizerSettings;
  provider: ExecutionProvider;
  /** Nice value of this thread and of the onnxruntime threads its session starts; undefined leaves it as it is. */
  nice?: number;
}

/** Titles in, their embeddings out: a [titles, item_embedding] matrix, row-major. */
export type EncodeTask = (titles: string[]) => Promise<Float32Array>;

async function start(data: EncoderWorkerData): Promise<EncodeTask> {
  runAtNice(data.nice); // before the session exists: its intra-op threads inherit this thread's value
  try {
    const tokenizer = await TitleTokenizer.fromFile(data.tokenizerFile, data.tokenizer);
    const encoder = await createSession(data.encoderFile, data.provider, 'large');
    return async (titles) => (await runEncoder(encoder, tokenizer, titles)).data as Float32Array;
  } catch (error) {
    // Every task reports why the thread could not start. (A rejected start would reach the caller as piscina's
    // failure to load this module by other means, with the reason lost.)
    return async () => { throw error; };
  }
}

export default start(workerData as EncoderWorkerData);
