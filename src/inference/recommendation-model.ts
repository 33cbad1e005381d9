/**
 * A loaded model bundle: tokenizer + item encoder + item adapter + sequence model, each an onnxruntime session.
 * The tokenizer and encoder run in a worker thread of their own (EncoderThread): their calls are long. The sequence
 * model, called once per recommendation, runs in another (SequenceModelThread), batched. The adapter, a small graph
 * called when items are stored, runs on the calling thread.
 *
 *   titles  -> tokenizer -> encoder -> item embeddings (semantic vectors)
 *           -> adapter   -> recommendation vectors
 *   history of recommendation vectors -> sequence model -> user vector
 */
import path from 'node:path';
import { adaptMatrix, adaptRows, openBundle, type BundleCheck, type EncoderVariant } from './bundle-loader.js';
import { rowViews } from './encoder.js';
import { EncoderThread } from './encoder-thread.js';
import { SequenceModelThread } from './sequence-model-thread.js';
import type { Manifest } from './manifest.js';
import { backgroundNice } from '../background-priority.js';
import { ort, type ExecutionProvider } from './onnx-runtime.js';
import { TitleTokenizer } from './tokenizer.js';

export type { EncoderVariant } from './bundle-loader.js';

export interface LoadOptions {
  /** onnxruntime execution provider (default cpu). */
  provider?: ExecutionProvider;
  /** Which encoder graph serves: the fp32 one (default) or the bundle's int8 variant. */
  encoder?: EncoderVariant;
  /** Called after each passed bundle check. */
  onCheck?: (check: BundleCheck) => void;
  /**
   * Nice value of the encoder's thread. Default: BACKGROUND_NICE_STEPS nicer than the
   * caller, so that a server's event loop comes first; tools that only embed (benchmarks) keep their own with null.
   */
  nice?: number | null;
  /**
   * Loaded models whose encoder thread this one may share: one whose encoder is the same (encoderIdentity: sha256
   * of the graph and the tokenizer, settings, variant, provider) lends its thread, and the graph is neither loaded
   * nor run again; the checks run through the shared thread (issue #16).
   */
  encoderFrom?: readonly RecommendationModel[];
}

/**
 * What an item's semantic vector depends on: the sha256 of the encoder graph in use (fp32 or int8), the sha256 of the
 * tokenizer and its settings, the embedding size and the execution provider. Two models with the same identity give
 * every title the same semantic vector.
 */
export function encoderIdentity(manifest: Manifest, variant: EncoderVariant, provider: ExecutionProvider): string {
  const graph = variant === 'int8' ? manifest.graphs.encoder_int8 : manifest.graphs.encoder;
  return JSON.stringify({
    variant,
    encoder: graph && manifest.files[graph.file]?.sha256,
    tokenizer: manifest.files[manifest.tokenizer.file]?.sha256,
    settings: [manifest.tokenizer.max_length, manifest.tokenizer.pad_token_id, manifest.tokenizer.add_special_tokens],
    dimensions: manifest.dimensions.item_embedding,
    provider,
  });
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
    /** The encoder graph in use: 'fp32' (graphs.encoder) or 'int8' (graphs.encoder_int8). */
    readonly encoderVariant: EncoderVariant,
    /** Where the sessions run: the configured provider, or 'cpu' when CUDA was asked for but is unavailable. */
    readonly executionProvider: ExecutionProvider,
    private readonly encoder: EncoderThread,
    private readonly adapter: ort.InferenceSession,
    private readonly sequenceModel: SequenceModelThread,
  ) {}

  get version(): string {
    return this.manifest.model_version;
  }

  /**
   * The bundle's tokenizer on the calling thread, loaded on first use (the encoder thread has its own): parsing it
   * takes tens to hundreds of milliseconds, which a model switch must not spend on the event loop.
   */
  tokenizer(): Promise<TitleTokenizer> {
    const { tokenizer } = this.manifest;
    this.loadedTokenizer ??= TitleTokenizer.fromFile(path.resolve(this.bundleDir, tokenizer.file), {
      maxLength: tokenizer.max_length, padTokenId: tokenizer.pad_token_id, addSpecialTokens: tokenizer.add_special_tokens,
    });
    return this.loadedTokenizer;
  }

  private loadedTokenizer?: Promise<TitleTokenizer>;

  /** See encoderIdentity(): equal for two models that give every title the same semantic vector. */
  get encoderIdentity(): string {
    return encoderIdentity(this.manifest, this.encoderVariant, this.executionProvider);
  }

  get dimensions(): { semantic: number; recommendation: number } {
    return { semantic: this.manifest.dimensions.item_embedding, recommendation: this.manifest.dimensions.recommendation };
  }

  get maxHistory(): number {
    return this.manifest.sequence_model.max_history;
  }

  /**
   * Opens a bundle's parts where they serve and refuses it (InvalidBundleError) unless every part passes its checks
   * (bundle-loader.ts): manifest, files and sha256, graph names, types and shapes, dynamic axes, and the sample
   * titles' token ids and embeddings. The encoder and the sequence model run in worker threads of their own, the
   * encoder's at a lower priority: onnxruntime-node creates and runs sessions synchronously, and on the event loop
   * the encoder's took up to seconds while a model switch loaded the next version (issue #16).
   */
  static async load(bundleDir: string, options: LoadOptions = {}): Promise<RecommendationModel> {
    const { provider = 'cpu', encoder = 'fp32', onCheck } = options;
    const nice = options.nice === null ? undefined : options.nice ?? backgroundNice();
    const opened = await openBundle(bundleDir, {
      provider, encoder, nice, onCheck,
      sharedEncoder: (manifest) => {
        const donor = options.encoderFrom?.find((model) => model.encoderIdentity === encoderIdentity(manifest, encoder, model.executionProvider)
          && (provider === model.executionProvider || provider === 'cpu'));
        return donor && { thread: donor.encoder, provider: donor.executionProvider };
      },
    });
    return new RecommendationModel(bundleDir, opened.manifest, encoder, opened.provider, opened.encoder, opened.adapter, opened.sequenceModel);
  }

  /** Item embeddings (semantic vectors) of titles, computed in the encoder thread. */
  async encode(titles: readonly string[]): Promise<Float32Array[]> {
    return this.encoder.encode(titles);
  }

  /** Recommendation vectors of item embeddings. */
  async adapt(embeddings: readonly Float32Array[]): Promise<Float32Array[]> {
    return adaptRows(this.adapter, embeddings);
  }

  /** Recommendation vectors of a [rows, item_embedding] matrix of item embeddings (not copied on the way in). */
  async adaptMatrix(embeddings: Float32Array, rows: number): Promise<Float32Array[]> {
    return adaptMatrix(this.adapter, embeddings, rows);
  }

  /**
   * Both vectors of each title. The encoder's matrix goes to the adapter as it is, and each item's vectors are views
   * of the two matrices: nothing is copied on the way to the index.
   */
  async embedItems(titles: readonly string[]): Promise<ItemVectors[]> {
    if (titles.length === 0) return [];
    const embeddings = await this.encoder.encodeMatrix(titles);
    const semantic = rowViews(embeddings, titles.length);
    const recommendation = await adaptMatrix(this.adapter, embeddings, titles.length);
    return semantic.map((vector, i) => ({ semantic: vector, recommendation: recommendation[i] }));
  }

  /**
   * The user vector of a history of recommendation vectors, oldest first. Only the most recent maxHistory
   * items count; the sequence is left-padded to maxHistory. Histories asked for together share a call.
   */
  async userVector(history: readonly Float32Array[]): Promise<Float32Array> {
    return this.sequenceModel.userVector(history);
  }

  /** User vectors of several histories in one sequence-model call. */
  async userVectors(histories: readonly (readonly Float32Array[])[]): Promise<Float32Array[]> {
    return this.sequenceModel.run(histories);
  }

  async release(): Promise<void> {
    await Promise.all([this.encoder.close(), this.adapter.release(), this.sequenceModel.close()]);
  }
}
