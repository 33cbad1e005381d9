/**
 * The worker thread behind checkBundleInThread (a piscina task): runs every check of validateBundle (which creates the bundle's
 * onnxruntime sessions and runs the encoder on the probe and sample titles) away from the server's event loop, and
 * computes what the serving threads must reproduce: the sample titles' item embeddings and the user vectors of the
 * histories made of them. The thread runs at a lower CPU priority than the event loop.
 */
import { runAtNice } from '../background-priority.js';
import { validateBundle, type BundleCheck, type EncoderVariant } from './bundle-validator.js';
import { runEncoder } from './encoder.js';
import { InvalidBundleError, type Manifest } from './manifest.js';
import { ort, type ExecutionProvider } from './onnx-runtime.js';
import { padHistories, runSequenceModel } from './sequence-model.js';

export interface BundleCheckRequest {
  bundleDir: string;
  provider: ExecutionProvider;
  encoder: EncoderVariant;
  /** Nice value of this thread (and of the onnxruntime threads it starts); undefined leaves it as it is. */
  nice?: number;
  /** The sample titles' embeddings from a running encoder with the same graph: the encoder is not loaded here. */
  sampleEmbeddings?: Float32Array;
}

export type BundleCheckAnswer =
  | {
      ok: true;
      manifest: Manifest;
      /** The execution provider the sessions run on. */
      provider: ExecutionProvider;
      checks: BundleCheck[];
      /** The titles checked (the manifest's samples, or one stand-in). */
      titles: string[];
      /** Their item embeddings from the checked encoder session: [titles, item_embedding] row-major. */
      embeddings: Float32Array;
      /** User vectors of the histories titles[0..i], through the checked adapter and sequence model: [titles, dim]. */
      userVectors: Float32Array;
    }
  | { ok: false; invalidBundle: boolean; message: string };

export default async function check(request: BundleCheckRequest): Promise<BundleCheckAnswer> {
  runAtNice(request.nice);
  const checks: BundleCheck[] = [];
  try {
    const bundle = await validateBundle(request.bundleDir, {
      provider: request.provider, encoder: request.encoder, onCheck: (c) => checks.push(c), sampleEmbeddings: request.sampleEmbeddings,
    });
    try {
      const { manifest } = bundle;
      const titles = manifest.samples.length > 0 ? manifest.samples.map((sample) => sample.title) : ['Tetris'];
      const embeddings = bundle.encoder
        ? (await runEncoder(bundle.encoder, bundle.tokenizer, titles)).data as Float32Array
        : request.sampleEmbeddings!;
      const itemDim = manifest.dimensions.item_embedding;
      const recDim = manifest.dimensions.recommendation;
      const adapted = await bundle.adapter.run({ item_embedding: new ort.Tensor('float32', embeddings, [titles.length, itemDim]) });
      const items = adapted.recommendation_vector.data as Float32Array;
      const rows = Array.from({ length: titles.length }, (_, i) => items.slice(i * recDim, (i + 1) * recDim));
      const prefixes = rows.map((_, end) => rows.slice(0, end + 1));
      const users = await runSequenceModel(bundle.sequenceModel, padHistories(prefixes, manifest.sequence_model.max_history, recDim));
      return { ok: true, manifest, provider: bundle.provider, checks, titles, embeddings, userVectors: users.data as Float32Array };
    } finally {
      await Promise.allSettled([bundle.encoder?.release(), bundle.adapter.release(), bundle.sequenceModel.release()]);
    }
  } catch (error) {
    return { ok: false, invalidBundle: error instanceof InvalidBundleError, message: (error as Error).message };
  }
}
