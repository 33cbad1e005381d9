/**
 * The worker thread behind EncoderThread: a tokenizer and an encoder session of its own, which turn batches of
 * titles into item embeddings away from the server's event loop. piscina loads this module in the thread; the
 * bundle's files come in workerData. Besides encoding, it answers what the bundle checks ask of the serving encoder
 * (bundle-loader.ts): the graph's signature and the provider it runs on, and the tokenizer's ids of titles.
 */
import { runAtNice } from '../background-priority.js';
import { move, workerData } from 'piscina';
import { runEncoder } from './encoder.js';
import { openSession, signatureOf, type ExecutionProvider, type GraphSignature } from './onnx-runtime.js';
import { TitleTokenizer, type TokenizerSettings } from './tokenizer.js';

export interface EncoderWorkerData {
  /** The encoder graph (fp32 or int8), an absolute path. */
  encoderFile: string;
  tokenizerFile: string;
  tokenizer: TokenizerSettings;
  /** Asked for; the thread falls back to the CPU when CUDA cannot load (EncoderDescription says so). */
  provider: ExecutionProvider;
  /** Nice value of this thread and of the onnxruntime threads its session starts; undefined leaves it as it is. */
  nice?: number;
}

export type EncoderTask =
  | { encode: string[] } // -> Float32Array: a [titles, item_embedding] matrix, row-major
  | { tokenize: string[] } // -> number[][]: each title's token ids
  | { describe: true }; // -> EncoderDescription

/** What the thread loaded, or which part failed to load and why. */
export type EncoderDescription =
  | { ok: true; signature: GraphSignature; provider: ExecutionProvider; cudaUnavailable?: string }
  | { ok: false; failed: 'tokenizer' | 'graph'; message: string };

type Answer = Float32Array | number[][] | EncoderDescription;

async function start(data: EncoderWorkerData): Promise<(task: EncoderTask) => Promise<Answer>> {
  runAtNice(data.nice); // before the session exists: its intra-op threads inherit this thread's value
  let tokenizer: TitleTokenizer;
  try {
    tokenizer = await TitleTokenizer.fromFile(data.tokenizerFile, data.tokenizer);
  } catch (error) {
    return failing('tokenizer', error as Error);
  }
  let opened: Awaited<ReturnType<typeof openSession>>;
  try {
    opened = await openSession(data.encoderFile, data.provider, 'large');
  } catch (error) {
    return failing('graph', error as Error);
  }
  const { session, provider, cudaUnavailable } = opened;
  const description: EncoderDescription = { ok: true, signature: signatureOf(session), provider, cudaUnavailable };
  return async (task) => {
    if ('encode' in task) return move((await runEncoder(session, tokenizer, task.encode)).data as Float32Array) as Float32Array;
    if ('tokenize' in task) return task.tokenize.map((title) => tokenizer.ids(title));
    return description;
  };
}

/**
 * A thread that could not start: `describe` says which part failed, every other task rejects with the reason. (A
 * rejected start would reach the caller as piscina's failure to load this module by other means, with the reason lost.)
 */
function failing(failed: 'tokenizer' | 'graph', error: Error): (task: EncoderTask) => Promise<Answer> {
  return async (task) => {
    if ('describe' in task) return { ok: false, failed, message: error.message };
    throw error;
  };
}

export default start(workerData as EncoderWorkerData);
