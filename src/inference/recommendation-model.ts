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
import { checkBundleInThread } from './bundle-check-thread.js';
import { SAMPLE_TOLERANCE, type BundleCheck, type EncoderVariant } from './bundle-validator.js';
import { splitRows } from './encoder.js';
import { EncoderThread } from './encoder-thread.js';
import { SequenceModelThread } from './sequence-model-thread.js';
import { InvalidBundleError, parseManifest, type Manifest } from './manifest.js';
import { backgroundNice } from '../background-priority.js';
import { createSession, ort, type ExecutionProvider } from './onnx-runtime.js';
import { TitleTokenizer } from './tokenizer.js';

export type { EncoderVariant } from './bundle-validator.js';

export interface LoadOptions {
  /** onnxruntime execution provider (default cpu). */
  provider?: ExecutionProvider;
  /** Which encoder graph serves: the fp32 one (default) or the bundle's int8 variant. */
  encoder?: EncoderVariant;
  /** Called after each passed bundle check. */
  onCheck?: (check: BundleCheck) => void;
  /**
   * Nice value of the encoder's and the bundle checks' threads. Default: BACKGROUND_NICE_STEPS nicer than the
   * caller, so that a server's event loop comes first; tools that only embed (benchmarks) keep their own with null.
   */
  nice?: number | null;
  /**
   * Loaded models whose encoder thread this one may share: one whose encoder is the same (encoderIdentity: sha256
   * of the graph and the tokenizer, settings, variant, provider) lends its thread, and the graph is neither loaded
   * nor run again to check it; the sample titles are compared through the shared thread instead (issue #16).
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
   * Loads a bundle and refuses it (InvalidBundleError) unless it passes every check of validateBundle: manifest, files
   * and sha256, graph names, types and shapes, dynamic axes, and the sample titles' token ids and embeddings.
   * The second argument may be just the execution provider.
   */
  static async load(bundleDir: string, options: LoadOptions = {}): Promise<RecommendationModel> {
    const { provider = 'cpu', encoder = 'fp32', onCheck } = options;
    const nice = options.nice === null ? undefined : options.nice ?? backgroundNice();
    // Every check runs in a thread of its own: onnxruntime-node creates and runs sessions synchronously, and the
    // encoder's took the event loop for up to seconds while a model switch loaded the next version (issue #16).
    // An encoder already running with the same graph: its thread is shared, and it computes the samples to check.
    const listed = options.encoderFrom?.length ? await parseManifest(bundleDir) : undefined;
    const donor = listed && options.encoderFrom!.find((model) =>
      model.encoderIdentity === encoderIdentity(listed, encoder, model.executionProvider) && (provider === model.executionProvider || provider === 'cpu'));
    let sampleEmbeddings: Float32Array | undefined;
    if (donor && listed) {
      const rows = await donor.encode(listed.samples.length > 0 ? listed.samples.map((sample) => sample.title) : ['Tetris']);
      sampleEmbeddings = new Float32Array(rows.length * listed.dimensions.item_embedding);
      rows.forEach((row, i) => sampleEmbeddings!.set(row, i * row.length));
    }
    const checked = await checkBundleInThread({ bundleDir, provider: donor ? donor.executionProvider : provider, encoder, nice, sampleEmbeddings });
    for (const check of checked.checks) onCheck?.(check);
    const { manifest, titles } = checked;
    const settings = { maxLength: manifest.tokenizer.max_length, padTokenId: manifest.tokenizer.pad_token_id, addSpecialTokens: manifest.tokenizer.add_special_tokens };
    const graph = encoder === 'int8' ? manifest.graphs.encoder_int8! : manifest.graphs.encoder;
    const adapter = await createSession(path.resolve(bundleDir, manifest.graphs.adapter.file), checked.provider, 'small');
    const encoderThread = donor ? donor.encoder.retain() : EncoderThread.start({
      encoderFile: path.resolve(bundleDir, graph.file),
      tokenizerFile: path.resolve(bundleDir, manifest.tokenizer.file),
      tokenizer: settings,
      provider: checked.provider,
      nice,
    });
    const histories = { length: manifest.sequence_model.max_history, dim: manifest.dimensions.recommendation };
    const sequenceThread = SequenceModelThread.start(
      { file: path.resolve(bundleDir, manifest.graphs.sequence_model.file), provider: checked.provider }, histories);
    let failing = graph.file;
    try {
      // The threads opened their own sessions of the checked graphs: they must give what the checked sessions give.
      const expected = splitRows(checked.embeddings, titles.length);
      assertClose(bundleDir, graph.file, expected, await encoderThread.encode(titles));

      failing = manifest.graphs.sequence_model.file;
      const items = await adaptWith(adapter, expected);
      const prefixes = items.map((_, end) => items.slice(0, end + 1));
      assertClose(bundleDir, failing, splitRows(checked.userVectors, prefixes.length), await sequenceThread.run(prefixes));
    } catch (error) {
      await Promise.allSettled([encoderThread.close(), sequenceThread.close(), adapter.release()]);
      throw error instanceof InvalidBundleError ? error : new InvalidBundleError(bundleDir, `${failing} fails in its worker thread (${(error as Error).message})`);
    }
    return new RecommendationModel(bundleDir, manifest, encoder, checked.provider, encoderThread, adapter, sequenceThread);
  }

  /** Item embeddings (semantic vectors) of titles, computed in the encoder thread. */
  async encode(titles: readonly string[]): Promise<Float32Array[]> {
    return this.encoder.encode(titles);
  }

  /** Recommendation vectors of item embeddings. */
  async adapt(embeddings: readonly Float32Array[]): Promise<Float32Array[]> {
    return adaptWith(this.adapter, embeddings);
  }

  /** Both vectors of each title. */
  async embedItems(titles: readonly string[]): Promise<ItemVectors[]> {
    const semantic = await this.encode(titles);
    const recommendation = await this.adapt(semantic);
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

/** Recommendation vectors of item embeddings through an adapter session. */
async function adaptWith(adapter: ort.InferenceSession, embeddings: readonly Float32Array[]): Promise<Float32Array[]> {
  if (embeddings.length === 0) return [];
  const dim = embeddings[0].length;
  const input = new Float32Array(embeddings.length * dim);
  embeddings.forEach((row, i) => input.set(row, i * dim));
  const output = await adapter.run({ item_embedding: new ort.Tensor('float32', input, [embeddings.length, dim]) });
  return splitRows(output.recommendation_vector, embeddings.length);
}

/** Refuses the bundle when a worker thread's session gives other numbers than the checked session. */
function assertClose(bundleDir: string, file: string, expected: readonly Float32Array[], actual: readonly Float32Array[]): void {
  const worst = Math.max(...expected.flatMap((row, i) => Array.from(row, (value, j) => Math.abs(value - actual[i][j]))));
  if (!(worst <= SAMPLE_TOLERANCE)) {
    throw new InvalidBundleError(bundleDir, `${file} gives other results in its worker thread (difference ${worst})`);
  }
}
