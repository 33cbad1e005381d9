/**
 * The vector index as the rest of the platform sees it. Shaped after Qdrant (which implements it in production):
 * a store of collections, one per model version; in a collection every item is a point with two named vectors and
 * its domain as payload; searches filter on domain.
 */

export type VectorName = 'semantic' | 'recommendation';

export const VECTOR_NAMES: readonly VectorName[] = ['semantic', 'recommendation'];

export interface CollectionDimensions {
  semantic: number;
  recommendation: number;
}

export interface VectorPoint {
  id: string;
  domain: string;
  vectors: Record<VectorName, Float32Array>;
}

export interface StoredVector {
  domain: string;
  vector: Float32Array;
}

export interface SearchRequest {
  /** Which named vector to search: semantic vectors rank by cosine, recommendation vectors by dot product. */
  using: VectorName;
  query: Float32Array;
  limit: number;
  /** Only points whose domain is one of these; all domains when absent. */
  domains?: readonly string[];
  /** Points never returned. */
  excludeIds?: ReadonlySet<string>;
  /**
   * Only these points (those present, in the domains asked), every one scored exactly: for candidates chosen
   * elsewhere, such as the items an attribute filter keeps.
   */
  ids?: readonly string[];
}

export interface SearchHit {
  id: string;
  domain: string;
  score: number;
}

export interface VectorCollection {
  readonly name: string;
  readonly dimensions: CollectionDimensions;
  /** Inserts or replaces points. */
  upsert(points: readonly VectorPoint[]): Promise<void>;
  delete(ids: readonly string[]): Promise<void>;
  /**
   * The domain and named vector of each id that is present, in the order asked: copies, which the caller may keep.
   * With `into` (room for a vector per id asked for), the vectors are written one after another into it and are
   * views of it, valid until the caller writes there again: a loop over a whole catalogue (a same-encoder model
   * switch) reuses one buffer instead of allocating memory outside V8's heap for every vector.
   */
  retrieve(ids: readonly string[], using: VectorName, into?: Float32Array): Promise<Map<string, StoredVector>>;
  search(request: SearchRequest): Promise<SearchHit[]>;
  count(domain?: string): Promise<number>;
  /** The ids of every point. */
  listIds(): Promise<string[]>;
  /** The domains that have at least one point. */
  listDomains(): Promise<string[]>;
  /** Makes every accepted write durable. */
  flush(): Promise<void>;
  /**
   * Runs `fill`, which writes much of the collection before it serves (a model switch filling a new version's
   * collection), letting the index defer the upkeep of its search structures to the end; resolves once they are
   * complete. Searches meanwhile still see every point written.
   */
  fillInBulk<T>(fill: () => Promise<T>): Promise<T>;
}

export interface VectorStore {
  /** Opens a collection, creating it when it does not exist. */
  collection(name: string, dimensions: CollectionDimensions): Promise<VectorCollection>;
  listCollections(): Promise<string[]>;
  /** Drops a collection and its points (the model switcher retires old versions' collections this way). */
  dropCollection(name: string): Promise<void>;
  close(): Promise<void>;
}

/** Collection name of a model version: one collection per version. */
export function collectionName(modelVersion: string): string {
  return `items_${modelVersion.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

/** Refuses a batch in which any point's vectors do not have the collection's dimensions. */
/** Throws unless `into` (a `retrieve` buffer) has room for `vectors` vectors of `dimensions` each. */
export function checkRoom(into: Float32Array | undefined, vectors: number, dimensions: number): void {
  if (into && into.length < vectors * dimensions) throw new RangeError(`room for ${Math.floor(into.length / dimensions)} vectors, ${vectors} asked for`);
}

export function checkDimensions(points: readonly VectorPoint[], dimensions: CollectionDimensions): void {
  for (const point of points) {
    for (const vectorName of VECTOR_NAMES) {
      const length = point.vectors[vectorName].length;
      if (length !== dimensions[vectorName]) {
        throw new Error(`point ${point.id}: ${vectorName} vector has ${length} dimensions, the collection ${dimensions[vectorName]}`);
      }
    }
  }
}
