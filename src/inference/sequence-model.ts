/**
 * One call of the sequence model: histories of recommendation vectors in (cut to the last `length`, left-padded and
 * masked), user vectors out. Used by the worker thread that serves it and by the bundle checks.
 */
import { ort } from './onnx-runtime.js';

/** A batch of histories, left-padded to `length`: [rows, length, dim] vectors and a [rows, length] mask. */
export interface HistoryBatch {
  rows: number;
  length: number;
  dim: number;
  vectors: Float32Array;
  mask: BigInt64Array;
}

/** Keeps each history's last `length` vectors (oldest first) and left-pads it to `length`. */
export function padHistories(histories: readonly (readonly Float32Array[])[], length: number, dim: number): HistoryBatch {
  const vectors = new Float32Array(histories.length * length * dim);
  const mask = new BigInt64Array(histories.length * length);
  histories.forEach((history, row) => {
    if (history.length === 0) throw new Error('a history needs at least one item');
    const recent = history.slice(-length);
    const offset = row * length + length - recent.length;
    recent.forEach((vector, i) => {
      vectors.set(vector, (offset + i) * dim);
      mask[offset + i] = 1n;
    });
  });
  return { rows: histories.length, length, dim, vectors, mask };
}

/** The [rows, user vector] output of a session on a batch. */
export async function runSequenceModel(session: ort.InferenceSession, { rows, length, dim, vectors, mask }: HistoryBatch): Promise<ort.Tensor> {
  const output = await session.run({
    history: new ort.Tensor('float32', vectors, [rows, length, dim]),
    history_mask: new ort.Tensor('int64', mask, [rows, length]),
  });
  return output.user_vector;
}
