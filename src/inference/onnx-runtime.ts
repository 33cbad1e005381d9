/** onnxruntime-node sessions on the configured execution provider (CPU by default, CUDA by configuration). */
import * as ort from 'onnxruntime-node';

export type ExecutionProvider = 'cpu' | 'cuda';

export { ort };

/**
 * How a graph is run. `small` graphs (the adapter and the sequence model: one small matrix product per request) run
 * on the calling thread: onnxruntime's intra-op pool costs more than they do and takes CPU from the event loop
 * (measured in docs/BENCHMARKS.md with bench/experiments/onnx-threads.ts). The encoder keeps the pool.
 */
export type GraphSize = 'large' | 'small';

export async function createSession(file: string, provider: ExecutionProvider, size: GraphSize = 'large'): Promise<ort.InferenceSession> {
  const executionProviders = provider === 'cuda' ? ['cuda', 'cpu'] : ['cpu'];
  const threads = size === 'small' ? { intraOpNumThreads: 1, interOpNumThreads: 1 } : {};
  return ort.InferenceSession.create(file, { executionProviders, graphOptimizationLevel: 'all', ...threads });
}

/** A session and the provider it runs on: the CPU, with the reason, when CUDA was asked for but cannot load. */
export interface OpenedSession {
  session: ort.InferenceSession;
  provider: ExecutionProvider;
  cudaUnavailable?: string;
}

/**
 * createSession, falling back to the CPU when CUDA is asked for and this onnxruntime-node cannot load its CUDA
 * provider (not the graph's fault). Any other failure throws.
 */
export async function openSession(file: string, provider: ExecutionProvider, size: GraphSize = 'large'): Promise<OpenedSession> {
  try {
    return { session: await createSession(file, provider, size), provider };
  } catch (error) {
    const message = (error as Error).message;
    if (provider !== 'cuda' || !/cuda|provider|shared library/i.test(message)) throw error;
    return { session: await createSession(file, 'cpu', size), provider: 'cpu', cudaUnavailable: message };
  }
}

/** What a graph takes and gives, as plain data (it crosses from worker threads): names, element types, shapes. */
export interface GraphSignature {
  inputNames: readonly string[];
  outputNames: readonly string[];
  inputMetadata: readonly ort.InferenceSession.ValueMetadata[];
  outputMetadata: readonly ort.InferenceSession.ValueMetadata[];
}

export function signatureOf(session: ort.InferenceSession): GraphSignature {
  const plain = (values: readonly ort.InferenceSession.ValueMetadata[]) =>
    values.map((value) => ({ ...value, ...(value.isTensor ? { shape: [...value.shape] } : {}) }) as ort.InferenceSession.ValueMetadata);
  return {
    inputNames: [...session.inputNames],
    outputNames: [...session.outputNames],
    inputMetadata: plain(session.inputMetadata),
    outputMetadata: plain(session.outputMetadata),
  };
}

/** Whether two lists hold the same names, in any order. */
export function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name) => b.includes(name));
}

/** Checks that a graph has exactly the input and output names the manifest promises. */
export function checkGraphNames(
  graph: GraphSignature,
  expected: { inputs: readonly string[]; outputs: readonly string[] },
): string | null {
  if (!sameNames(graph.inputNames, expected.inputs)) {
    return `inputs are [${graph.inputNames}], the manifest says [${expected.inputs}]`;
  }
  if (!sameNames(graph.outputNames, expected.outputs)) {
    return `outputs are [${graph.outputNames}], the manifest says [${expected.outputs}]`;
  }
  return null;
}
