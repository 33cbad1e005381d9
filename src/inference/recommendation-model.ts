/**
 * A loaded model bundle: tokenizer + item encoder + item adapter + sequence model, each an onnxruntime session.
 *
 *   titles  -> tokenizer -> encoder -> item embeddings (semantic vectors)
 *           -> adapter   -> recommendation vectors
 *   history of recommendation vectors -> sequence model -> user vector
 */
import path from 'node:path';
import { InvalidBundleError, readManifest, type Manifest } from './manifest.js';
import { checkGraphNames, createSession, ort, type ExecutionProvider } from './onnx-runtime.js';
import { TitleTokenizer } from './tokenizer.js';

export interface ItemVectors {
  /** LLM2Rec item embedding: used for item-to-item similarity. */
  semantic: Float32Array;
  /** Adapter output: scored against user vectors. */
  recommendation: Float32Array;
}

/** Largest absolute difference allowed between the server's encoder and the PyTorch values in the manifest. */
const SAMPLE_TOLERANCE = 1e-3;

export class RecommendationModel {
  private constructor(
    readonly bundleDir: string,
    readonly manifest: Manifest,
    readonly tokenizer: TitleTokenizer,
    private readonly encoder: ort.InferenceSession,
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

  /** Loads a bundle and refuses it unless its files, graphs and sample embeddings are what the manifest says. */
  static async load(bundleDir: string, provider: ExecutionProvider = 'cpu'): Promise<RecommendationModel> {
    const manifest = await readManifest(bundleDir);
    const tokenizer = await TitleTokenizer.fromFile(path.join(bundleDir, manifest.tokenizer.file), {
      maxLength: manifest.tokenizer.max_length,
      padTokenId: manifest.tokenizer.pad_token_id,
      addSpecialTokens: manifest.tokenizer.add_special_tokens,
    });
    const sessions: ort.InferenceSession[] = [];
    for (const name of ['encoder', 'adapter', 'sequence_model'] as const) {
      const graph = manifest.graphs[name];
      let session: ort.InferenceSession;
      try {
        session = await createSession(path.join(bundleDir, graph.file), provider);
      } catch (error) {
        throw new InvalidBundleError(bundleDir, `${graph.file} does not load in onnxruntime (${(error as Error).message})`);
      }
      const mismatch = checkGraphNames(session, graph);
      if (mismatch) throw new InvalidBundleError(bundleDir, `${graph.file}: ${mismatch}`);
      sessions.push(session);
    }
    const model = new RecommendationModel(bundleDir, manifest, tokenizer, sessions[0], sessions[1], sessions[2]);
    await model.checkSamples();
    return model;
  }

  /** The manifest's sample titles must tokenize and embed here as they did in training. */
  private async checkSamples(): Promise<void> {
    const { samples } = this.manifest;
    if (samples.length === 0) return;
    for (const sample of samples) {
      const ids = this.tokenizer.ids(sample.title);
      if (ids.join(',') !== sample.input_ids.join(',')) {
        throw new InvalidBundleError(this.bundleDir, `tokenizer gives [${ids}] for ${JSON.stringify(sample.title)}, training gave [${sample.input_ids}]`);
      }
    }
    const embeddings = await this.encode(samples.map((sample) => sample.title));
    samples.forEach((sample, i) => {
      sample.item_embedding_head.forEach((expected, j) => {
        const actual = embeddings[i][j];
        if (!(Math.abs(actual - expected) <= SAMPLE_TOLERANCE)) {
          throw new InvalidBundleError(this.bundleDir, `encoder gives ${actual} at [${i}, ${j}] for ${JSON.stringify(sample.title)}, training gave ${expected}`);
        }
      });
    });
  }

  /** Item embeddings (semantic vectors) of titles. */
  async encode(titles: readonly string[]): Promise<Float32Array[]> {
    if (titles.length === 0) return [];
    const batch = this.tokenizer.batch(titles);
    const shape = [batch.batchSize, batch.length];
    const output = await this.encoder.run({
      input_ids: new ort.Tensor('int64', batch.inputIds, shape),
      attention_mask: new ort.Tensor('int64', batch.attentionMask, shape),
    });
    return splitRows(output.item_embedding, titles.length);
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
    await Promise.all([this.encoder.release(), this.adapter.release(), this.sequenceModel.release()]);
  }
}

function splitRows(tensor: ort.Tensor, rows: number): Float32Array[] {
  const data = tensor.data as Float32Array;
  const dim = data.length / rows;
  return Array.from({ length: rows }, (_, i) => data.slice(i * dim, (i + 1) * dim));
}
