/** The item encoder graph run on titles: tokenizer -> encoder session -> one item embedding per title. */
import { ort } from './onnx-runtime.js';
import type { TitleTokenizer } from './tokenizer.js';

/** The encoder's output tensor for a batch of titles: [titles, item_embedding]. */
export async function runEncoder(encoder: ort.InferenceSession, tokenizer: TitleTokenizer, titles: readonly string[]): Promise<ort.Tensor> {
  const batch = tokenizer.batch(titles);
  const shape = [batch.batchSize, batch.length];
  const output = await encoder.run({
    input_ids: new ort.Tensor('int64', batch.inputIds, shape),
    attention_mask: new ort.Tensor('int64', batch.attentionMask, shape),
  });
  return output.item_embedding;
}

/**
 * The rows of a [rows, dim] float32 tensor (or its data) as views of it, not copies: a batch's vectors stay one
 * matrix from the graph that made them to the index that stores them (which copies each row once, into its own).
 */
export function rowViews(tensor: ort.Tensor | Float32Array, rows: number): Float32Array[] {
  const data = (tensor instanceof Float32Array ? tensor : tensor.data) as Float32Array;
  const dim = data.length / rows;
  return Array.from({ length: rows }, (_, i) => data.subarray(i * dim, (i + 1) * dim));
}
