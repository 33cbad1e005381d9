/** onnxruntime-node sessions on the configured execution provider (CPU by default, CUDA by configuration). */
import * as ort from 'onnxruntime-node';

export type ExecutionProvider = 'cpu' | 'cuda';

export { ort };

export async function createSession(file: string, provider: ExecutionProvider): Promise<ort.InferenceSession> {
  const executionProviders = provider === 'cuda' ? ['cuda', 'cpu'] : ['cpu'];
  return ort.InferenceSession.create(file, { executionProviders, graphOptimizationLevel: 'all' });
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
