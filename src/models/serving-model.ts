/** One model version ready to serve: its ONNX sessions, its vector collection and the recommender over both. */
import type { KnownItems } from '../catalog/item-read-model.js';
import type { Interactions } from '../events/interactions.js';
import type { ExecutionProvider } from '../inference/onnx-runtime.js';
import { RecommendationModel, type EncoderVariant } from '../inference/recommendation-model.js';
import { reportingIndexFailures } from '../index/index-failures.js';
import { collectionName, type VectorCollection, type VectorStore } from '../index/vector-index.js';
import type { ItemEmbedder } from '../cluster/shared-embeddings.js';
import { PlatformError } from '../errors.js';
import type { AttributeFilters } from '../recommend/attribute-filter.js';
import { Recommender, type RecommendationLimits } from '../recommend/recommender.js';

export interface ServingDependencies {
  vectors: VectorStore;
  /** The catalogue, which says which items exist. */
  items: KnownItems;
  interactions: Interactions;
  attributes: AttributeFilters;
  limits: RecommendationLimits;
  provider: ExecutionProvider;
  encoder: EncoderVariant;
  /**
   * Replicas over one PostgreSQL: puts the store of vectors computed once for every replica in front of a version's
   * model (cluster/shared-embeddings.ts). Absent, the model embeds every title it is given.
   */
  sharedEmbeddings?: (model: RecommendationModel, collection: string) => ItemEmbedder;
}

/**
 * The vector collection of a model version: one per version and encoder variant (the int8 encoder's vectors differ
 * slightly from fp32's, so they get a collection of their own).
 */
export function versionCollection(version: string, variant: EncoderVariant): string {
  return collectionName(variant === 'fp32' ? version : `${version}+${variant}`);
}

export class ServingModel {
  private constructor(
    readonly model: RecommendationModel,
    /** What embeds the catalogue's titles for this version: the model, or the replicas' shared vectors before it. */
    readonly embedder: ItemEmbedder,
    readonly collection: VectorCollection,
    readonly recommender: Recommender,
  ) {}

  /**
   * Loads and checks a bundle and opens its version's collection; what fails says which: INVALID_BUNDLE (the
   * bundle's checks, with the reason) or VECTOR_INDEX_UNAVAILABLE (the vector store). An encoder identical to one of
   * `loaded`'s is shared, not loaded again.
   */
  static async open(bundleDir: string, dependencies: ServingDependencies, loaded: readonly ServingModel[] = []): Promise<ServingModel> {
    // A loaded version with the same encoder graph lends its encoder thread (see RecommendationModel.load).
    let model: RecommendationModel;
    try {
      model = await RecommendationModel.load(bundleDir, {
        provider: dependencies.provider, encoder: dependencies.encoder, encoderFrom: loaded.map((serving) => serving.model),
      });
    } catch (error) {
      throw new PlatformError('INVALID_BUNDLE', (error as Error).message);
    }
    let collection: VectorCollection;
    const name = versionCollection(model.version, model.encoderVariant);
    try {
      collection = reportingIndexFailures(await dependencies.vectors.collection(name, model.dimensions));
    } catch (error) {
      await model.release().catch(() => undefined);
      throw new PlatformError('VECTOR_INDEX_UNAVAILABLE', `opening vector collection ${name} failed: ${(error as Error).message}`);
    }
    const recommender = new Recommender(model, collection, dependencies.items, dependencies.interactions, dependencies.limits, dependencies.attributes);
    const embedder = dependencies.sharedEmbeddings?.(model, name) ?? model;
    return new ServingModel(model, embedder, collection, recommender);
  }

  get version(): string {
    return this.model.version;
  }

  async release(): Promise<void> {
    await this.collection.flush();
    await this.model.release();
  }
}
