/**
 * A loaded model bundle: tokenizer + item encoder + item adapter + sequence model, each an onnxruntime session.
 * The tokenizer and encoder run in a worker thread of their own (EncoderThread): their calls are long. The adapter
 * and sequence model, small graphs, run on the calling thread.
 *
 *   titles  -> tokenizer -> encoder -> item embeddings (semantic vectors)
 *           -> adapter   -> recommendation vectors
 *   history of recommendation vectors -> sequence model -> user vector
 */
import path from 'node:path';
import { SAMPLE_TOLERANCE, validateBundle, type BundleCheck, type EncoderVariant } from './bundle-validator.js';
import { runEncoder, splitRows } from './encoder.js';
import { EncoderThread } from './encoder-thread.js';
import { InvalidBundleError, type Manifest } from './manifest.js';
import { ort, type ExecutionProvider } from './onnx-runtime.js';
import type { TitleTokenizer } from './tokenizer.js';

export type { EncoderVariant } from './bundle-validator.js';

export interface LoadOptions {
  /** onnxruntime execution provider (default cpu). */
  provider?: ExecutionProvider;
  /** Which encoder graph serves: the fp32 one (default) or the bundle's int8 variant. */
  encoder?: EncoderVariant;
  /** Called after each passed bundle check. */
  onCheck?: (check: BundleCheck) => void;
}

export interface ItemVectors {
  /** LLM2Rec item embedding: used for item-to-item similarity. */
  semantic: Float32Array;
  /** Adapter output: scored against user vectors. */
  recommendation: Float32Array;
}

export class RecommendationModel {
  private constructor(
    readonly bundleDir: string,
    readonly manifest: Manifest,
    readonly tokenizer: TitleTokenizer,
    /** The encoder graph in use: 'fp32' (graphs.encoder) or 'int8' (graphs.encoder_int8). */
    readonly encoderVariant: EncoderVariant,
    /** Where the sessions run: the configured provider, or 'cpu' when CUDA was asked for but is unavailable. */
    readonly executionProvider: ExecutionProvider,
    private readonly encoder: EncoderThread,
    private readonly adapter: ort.InferenceSession,
    private readonly sequenceModel: ort.InferenceSession,
  ) {}

  get version(): string {
    return this.manifest.model_version;
  }

  get dimensions(): { semantic: number; recommendation: number } {
    return { semantic: this.manifest.dimensions.item_embedding, recommendation: this.manifest.dimensions.recommendation };
  }

  get maxHistory(): number {
    return this.manifest.sequence_model.max_history;
  }

  /**
   * Loads a bundle and refuses it (InvalidBundleError) unless it passes every check of validateBundle: manifest, files
   * and sha256, graph names, types and shapes, dynamic axes, and the sample titles' token ids and embeddings.
   * The second argument may be just the execution provider.
   */
  static async load(bundleDir: string, options: LoadOptions = {}): Promise<RecommendationModel> {
    const { provider = 'cpu', encoder = 'fp32', onCheck } = options;
    const bundle = await validateBundle(bundleDir, { provider, encoder, onCheck });
    const { manifest, tokenizer } = bundle;
    const graph = encoder === 'int8' ? manifest.graphs.encoder_int8! : manifest.graphs.encoder;
    const thread = EncoderThread.start({
      encoderFile: path.resolve(bundleDir, graph.file),
      tokenizerFile: path.resolve(bundleDir, manifest.tokenizer.file),
      tokenizer: tokenizer.settings,
      provider: bundle.provider,
    });
    try {
      // The thread opened its own session of the checked graph: it must give what the checked session gives.
      const titles = manifest.samples.length > 0 ? manifest.samples.map((sample) => sample.title) : ['Tetris'];
      const checked = splitRows(await runEncoder(bundle.encoder, tokenizer, titles), titles.length);
      const threaded = await thread.encode(titles);
      const worst = Math.max(...checked.flatMap((row, i) => Array.from(row, (value, j) => Math.abs(value - threaded[i][j]))));
      if (!(worst <= SAMPLE_TOLERANCE)) {
        throw new InvalidBundleError(bundleDir, `${graph.file} gives other embeddings in the encoder thread (difference ${worst})`);
      }
    } catch (error) {
      await Promise.allSettled([thread.close(), bundle.adapter.release(), bundle.sequenceModel.release()]);
      throw error instanceof InvalidBundleError ? error : new InvalidBundleError(bundleDir, `the encoder thread fails (${(error as Error).message})`);
    } finally {
      await bundle.encoder.release();
    }
    return new RecommendationModel(bundleDir, manifest, tokenizer, encoder, bundle.provider, thread, bundle.adapter, bundle.sequenceModel);
  }

  /** Item embeddings (semantic vectors) of titles, computed in the encoder thread. */
  async encode(titles: readonly string[]): Promise<Float32Array[]> {
    return this.encoder.encode(titles);
  }

  /** Recommendation vectors of item embeddings. */
  async adapt(embeddings: readonly Float32Array[]): Promise<Float32Array[]> {
    if (embeddings.length === 0) return [];
    const dim = this.dimensions.semantic;
    const input = new Float32Array(embeddings.length * dim);
    embeddings.forEach((row, i) => input.set(row, i * dim));
    const output = await this.adapter.run({ item_embedding: new ort.Tensor('float32', input, [embeddings.length, dim]) });
    return splitRows(output.recommendation_vector, embeddings.length);
  }

  /** Both vectors of each title. */
  async embedItems(titles: readonly string[]): Promise<ItemVectors[]> {
    const semantic = await this.encode(titles);
    const recommendation = await this.adapt(semantic);
    return semantic.map((vector, i) => ({ semantic: vector, recommendation: recommendation[i] }));
  }

  /**
   * The user vector of a history of recommendation vectors, oldest first. Only the most recent maxHistory
   * items count; the sequence is left-padded to maxHistory.
   */
  async userVector(history: readonly Float32Array[]): Promise<Float32Array> {
    const [vector] = await this.userVectors([history]);
    return vector;
  }

  /** User vectors of several histories in one sequence-model call. */
  async userVectors(histories: readonly (readonly Float32Array[])[]): Promise<Float32Array[]> {
    if (histories.some((history) => history.length === 0)) throw new Error('a history needs at least one item');
    const length = this.maxHistory;
    const dim = this.dimensions.recommendation;
    const vectors = new Float32Array(histories.length * length * dim);
    const mask = new BigInt64Array(histories.length * length);
    histories.forEach((history, row) => {
      const recent = history.slice(-length);
      const offset = row * length + length - recent.length;
      recent.forEach((vector, i) => {
        vectors.set(vector, (offset + i) * dim);
        mask[offset + i] = 1n;
      });
    });
    const output = await this.sequenceModel.run({
      history: new ort.Tensor('float32', vectors, [histories.length, length, dim]),
      history_mask: new ort.Tensor('int64', mask, [histories.length, length]),
    });
    return splitRows(output.user_vector, histories.length);
  }

  async release(): Promise<void> {
    await Promise.all([this.encoder.close(), this.adapter.release(), this.sequenceModel.release()]);
  }
}
