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

/** Checks that a session has exactly the input and output names the manifest promises. */
export function checkGraphNames(
  session: ort.InferenceSession,
  expected: { inputs: readonly string[]; outputs: readonly string[] },
): string | null {
  const same = (a: readonly string[], b: readonly string[]) =>
    a.length === b.length && a.every((name) => b.includes(name));
  if (!same(session.inputNames, expected.inputs)) {
    return `inputs are [${session.inputNames}], the manifest says [${expected.inputs}]`;
  }
  if (!same(session.outputNames, expected.outputs)) {
    return `outputs are [${session.outputNames}], the manifest says [${expected.outputs}]`;
  }
  return null;
}
