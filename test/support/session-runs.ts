/**
 * Which onnxruntime sessions run on the calling thread: every session of a thread runs through the class's
 * prototype, so while `action` runs, each call's input names are recorded (sorted, comma-joined: a graph's
 * signature). Sessions in worker threads have their own prototype and are not seen.
 */
import { ort } from '../../src/inference/onnx-runtime.js';

export async function graphsRunOnThisThread<T>(action: () => Promise<T>): Promise<{ result: T; graphs: string[] }> {
  const sessions = (ort.InferenceSession as unknown as { prototype: ort.InferenceSession }).prototype;
  const run = sessions.run;
  const graphs: string[] = [];
  sessions.run = function (this: ort.InferenceSession, ...args: Parameters<typeof run>) {
    graphs.push(Object.keys(args[0]).sort().join(','));
    return run.apply(this, args);
  } as typeof run;
  try {
    return { result: await action(), graphs };
  } finally {
    sessions.run = run;
  }
}
