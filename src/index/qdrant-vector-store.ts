/**
 * The vector index on a Qdrant server: one Qdrant collection per model version, each item a point with the named
 * vectors `semantic` (Cosine) and `recommendation` (Dot) and the payload `{ id, domain }`.
 *
 * Qdrant point ids must be unsigned integers or UUIDs, so a point's id is a UUID v5 of its item id (pointIdOf) and
 * the item id itself is kept in the payload: exclusions filter on it and results read it back from there.
 * Every write is sent with wait=true: when the call returns, Qdrant has applied it and recorded it in its write-ahead
 * log, which it replays after a restart. There is nothing left for flush to do (and no flush in Qdrant's API).
 */
import { createHash } from 'node:crypto';
import { QdrantClient, type Schemas } from '@qdrant/js-client-rest';
import type {
  CollectionDimensions,
  SearchHit,
  SearchRequest,
  StoredVector,
  VectorCollection,
  VectorName,
  VectorPoint,
  VectorStore,
} from './vector-index.js';
import { VECTOR_NAMES, checkDimensions, checkRoom } from './vector-index.js';

/** The alias that names the collection of the active model version, so that a new version can be swapped in. */

/** Cosine for item-to-item similarity, dot product for user-to-item scores: the embedded store's metrics. */
const DISTANCE: Record<VectorName, Schemas['Distance']> = { semantic: 'Cosine', recommendation: 'Dot' };
/**
 * Payload fields with a keyword index: `domain` for the domain filter, counts and facets; `id` for exclusions,
 * which otherwise read every candidate's payload (kept on disk by default) and which Qdrant's strict mode refuses
 * on unindexed fields.
 */
const INDEXED_PAYLOAD_FIELDS = ['domain', 'id'] as const;
/** Most points per upsert request; fewer when vectors are long (pointsPerUpsert). */
const MAX_POINTS_PER_UPSERT = 256;
/** JSON of the vectors of one upsert request: at most a quarter of Qdrant's default 32 MiB request limit. */
const UPSERT_REQUEST_BYTES = 8 * 1024 * 1024;
/** Longest JSON of one float32 vector component sent as a double, with its comma: `-0.0000012345677760094986,`. */
const JSON_BYTES_PER_COMPONENT = 26;
/** Point ids per delete request. */
const IDS_PER_DELETE = 1000;
/** Points per scroll page when listing ids. */
const SCROLL_PAGE_SIZE = 1000;
/** Facet values asked for first when listing domains; grown until Qdrant returns fewer. */
const FIRST_FACET_LIMIT = 100;

/**
 * Namespace of the UUIDs derived from item ids. Changing it changes every point id, orphaning the points of
 * existing collections: never change it.
 */
const ITEM_ID_NAMESPACE = '0adaa4d0-122e-4518-b103-5bb033d2aad8';

/** The RFC 4122 version-5 (SHA-1, name-based) UUID of `name` in `namespace`. */
export function uuidV5(name: string, namespace: string): string {
  const bytes = createHash('sha1')
    .update(Buffer.from(namespace.replace(/-/g, ''), 'hex'))
    .update(name, 'utf8')
    .digest()
    .subarray(0, 16);
  bytes[6] = (bytes[6] & 0x0f) | 0x50; // version 5
  bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The Qdrant point id of an item: the same item id always gives the same UUID. */
export function pointIdOf(itemId: string): string {
  return uuidV5(itemId, ITEM_ID_NAMESPACE);
}

/**
 * The Qdrant filter of a search: the point's domain is one of `domains` (all domains when absent), its item id one
 * of `ids` (when given) and none of `excludeIds`. Undefined when nothing is filtered. An empty `domains` list matches
 * no point.
 */
export function searchFilter(request: Pick<SearchRequest, 'domains' | 'excludeIds' | 'ids'>): Schemas['Filter'] | undefined {
  const filter: Schemas['Filter'] = {};
  const must: Schemas['Condition'][] = [];
  if (request.domains !== undefined) must.push({ key: 'domain', match: { any: [...request.domains] } });
  if (request.ids !== undefined) must.push({ key: 'id', match: { any: [...request.ids] } });
  if (must.length > 0) filter.must = must;
  if (request.excludeIds !== undefined && request.excludeIds.size > 0) {
    filter.must_not = [{ key: 'id', match: { any: [...request.excludeIds] } }];
  }
  return filter.must || filter.must_not ? filter : undefined;
}

/** How many points one upsert request carries: up to MAX_POINTS_PER_UPSERT, as many as fit UPSERT_REQUEST_BYTES. */
export function pointsPerUpsert(dimensions: CollectionDimensions): number {
  const bytesPerPoint = JSON_BYTES_PER_COMPONENT * (dimensions.semantic + dimensions.recommendation);
  return Math.max(1, Math.min(MAX_POINTS_PER_UPSERT, Math.floor(UPSERT_REQUEST_BYTES / bytesPerPoint)));
}

/** The named vectors of a collection with these dimensions. */
export function vectorsConfig(dimensions: CollectionDimensions): Record<VectorName, Schemas['VectorParams']> {
  return {
    semantic: { size: dimensions.semantic, distance: DISTANCE.semantic },
    recommendation: { size: dimensions.recommendation, distance: DISTANCE.recommendation },
  };
}

/** Throws unless an existing collection's vectors are the named vectors, sizes and distances this store writes. */
export function checkVectorsConfig(
  collection: string,
  config: Schemas['VectorsConfig'] | undefined,
  dimensions: CollectionDimensions,
): void {
  // A collection of one unnamed vector has a VectorParams (with a size) as its whole vectors config.
  const named = config === undefined || typeof config.size === 'number' ? {} : config as Record<string, Schemas['VectorParams'] | undefined>;
  for (const vectorName of VECTOR_NAMES) {
    const params = named[vectorName];
    if (!params) throw new Error(`collection ${collection} has no ${vectorName} vector`);
    if (params.size !== dimensions[vectorName]) {
      throw new Error(`collection ${collection} stores ${vectorName} vectors of ${params.size} dimensions, not ${dimensions[vectorName]}`);
    }
    if (params.distance !== DISTANCE[vectorName]) {
      throw new Error(`collection ${collection} compares ${vectorName} vectors by ${params.distance}, not ${DISTANCE[vectorName]}`);
    }
  }
}

/**
 * What went wrong in a Qdrant call, in one line. HTTP failures of the client carry the response's status and body,
 * whose `status.error` is Qdrant's own explanation; network failures carry their cause (e.g. ECONNREFUSED).
 */
export function describeQdrantError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const response = error as Error & { status?: unknown; statusText?: unknown; data?: unknown };
  if (typeof response.status === 'number') {
    const status = `${response.status} ${typeof response.statusText === 'string' ? response.statusText : ''}`.trim();
    const explanation = qdrantExplanation(response.data);
    return explanation ? `${status}: ${explanation}` : status;
  }
  const cause = error.cause instanceof Error ? error.cause.message || (error.cause as NodeJS.ErrnoException).code : undefined;
  return cause ? `${error.message} (${cause})` : error.message;
}

function qdrantExplanation(body: unknown): string | undefined {
  if (typeof body === 'string') return body || undefined;
  const status = (body as { status?: unknown } | null | undefined)?.status;
  const explanation = (status as { error?: unknown } | null | undefined)?.error;
  return typeof explanation === 'string' ? explanation : undefined;
}

/** Runs one Qdrant call; its failure becomes an error that says where and what. */
async function call<T>(where: string, what: string, send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (error) {
    throw new Error(`Qdrant ${where}: ${what} failed: ${describeQdrantError(error)}`, { cause: error });
  }
}

type PointWithPayload = Pick<Schemas['Record'], 'id' | 'payload'>;

/** A string field of a point's payload; points this store did not write may lack it. */
function payloadField(point: PointWithPayload, field: 'id' | 'domain', collection: string): string {
  const value = point.payload?.[field];
  if (typeof value !== 'string') throw new Error(`point ${point.id} of collection ${collection} has no ${field} in its payload`);
  return value;
}

class QdrantCollection implements VectorCollection {
  private constructor(
    readonly name: string,
    readonly dimensions: CollectionDimensions,
    private readonly client: QdrantClient,
    private readonly url: string,
  ) {}

  /** Opens the collection, creating it (with its payload indexes) when it does not exist. */
  static async open(client: QdrantClient, url: string, name: string, dimensions: CollectionDimensions): Promise<QdrantCollection> {
    const collection = new QdrantCollection(name, dimensions, client, url);
    const { exists } = await collection.send('existence check', () => client.collectionExists(name));
    let indexed: readonly string[] = [];
    if (exists) {
      const info = await collection.send('description', () => client.getCollection(name));
      checkVectorsConfig(name, info.config.params.vectors, dimensions);
      indexed = Object.keys(info.payload_schema);
    } else {
      await collection.send('creation', () => client.createCollection(name, { vectors: vectorsConfig(dimensions) }));
    }
    for (const field of INDEXED_PAYLOAD_FIELDS.filter((field) => !indexed.includes(field))) {
      await collection.send(`creation of the ${field} payload index`, () =>
        client.createPayloadIndex(name, { field_name: field, field_schema: 'keyword', wait: true }));
    }
    return collection;
  }

  private send<T>(what: string, request: () => Promise<T>): Promise<T> {
    return call(`collection ${this.name} at ${this.url}`, what, request);
  }

  async upsert(points: readonly VectorPoint[]): Promise<void> {
    // Every point is checked before the first request, as the embedded store does, so a bad point stores nothing.
    checkDimensions(points, this.dimensions);
    const batchSize = pointsPerUpsert(this.dimensions);
    for (let start = 0; start < points.length; start += batchSize) {
      const batch: Schemas['PointStruct'][] = points.slice(start, start + batchSize).map((point) => ({
        id: pointIdOf(point.id),
        vector: { semantic: Array.from(point.vectors.semantic), recommendation: Array.from(point.vectors.recommendation) },
        payload: { id: point.id, domain: point.domain },
      }));
      await this.send(`upsert of ${batch.length} points`, () => this.client.upsert(this.name, { points: batch, wait: true }));
    }
  }

  async delete(ids: readonly string[]): Promise<void> {
    for (let start = 0; start < ids.length; start += IDS_PER_DELETE) {
      const batch = ids.slice(start, start + IDS_PER_DELETE).map(pointIdOf);
      await this.send(`delete of ${batch.length} points`, () => this.client.delete(this.name, { points: batch, wait: true }));
    }
  }

  async retrieve(ids: readonly string[], using: VectorName, into?: Float32Array): Promise<Map<string, StoredVector>> {
    const wanted = [...new Set(ids)];
    const found = new Map<string, StoredVector>();
    if (wanted.length === 0) return found;
    const records = await this.send(`retrieve of ${wanted.length} points`, () => this.client.retrieve(this.name, {
      ids: wanted.map(pointIdOf),
      with_payload: ['id', 'domain'],
      with_vector: [using],
    }));
    const byId = new Map(records.map((record) => [payloadField(record, 'id', this.name), record]));
    // In the order asked for, as the embedded store answers.
    const dimensions = this.dimensions[using];
    checkRoom(into, wanted.length, dimensions);
    for (const id of wanted) {
      const record = byId.get(id);
      if (!record) continue;
      const vector = this.namedVector(record, using);
      const kept = into ? into.subarray(found.size * dimensions, (found.size + 1) * dimensions) : vector;
      if (into) kept.set(vector);
      found.set(id, { domain: payloadField(record, 'domain', this.name), vector: kept });
    }
    return found;
  }

  private namedVector(record: Schemas['Record'], using: VectorName): Float32Array {
    const vectors = record.vector;
    const vector = vectors && !Array.isArray(vectors) ? (vectors as Record<string, unknown>)[using] : undefined;
    if (!Array.isArray(vector) || !vector.every((x) => typeof x === 'number')) {
      throw new Error(`point ${record.id} of collection ${this.name} came back without its ${using} vector`);
    }
    return Float32Array.from(vector as number[]);
  }

  async search(request: SearchRequest): Promise<SearchHit[]> {
    if (request.limit < 1 || request.domains?.length === 0 || request.ids?.length === 0) return [];
    // Qdrant scores Cosine as the cosine similarity and Dot as the dot product, like the embedded store.
    const { points } = await this.send(`search of ${request.using} vectors`, () => this.client.query(this.name, {
      query: Array.from(request.query),
      using: request.using,
      filter: searchFilter(request),
      limit: request.limit,
      with_payload: ['id', 'domain'],
    }));
    return points.map((point) => ({
      id: payloadField(point, 'id', this.name),
      domain: payloadField(point, 'domain', this.name),
      score: point.score,
    }));
  }

  async count(domain?: string): Promise<number> {
    const filter = domain === undefined ? undefined : { must: [{ key: 'domain', match: { value: domain } }] };
    const { count } = await this.send('count', () => this.client.count(this.name, { filter, exact: true }));
    return count;
  }

  async listIds(): Promise<string[]> {
    const ids: string[] = [];
    let offset: Schemas['ExtendedPointId'] | undefined;
    do {
      const page = await this.send('scroll', () => this.client.scroll(this.name, {
        limit: SCROLL_PAGE_SIZE,
        offset,
        with_payload: ['id'],
        with_vector: false,
      }));
      for (const point of page.points) ids.push(payloadField(point, 'id', this.name));
      const next = page.next_page_offset;
      offset = typeof next === 'string' || typeof next === 'number' ? next : undefined;
    } while (offset !== undefined);
    return ids;
  }

  /**
   * A facet on the indexed `domain` field (Qdrant 1.12+), not a scroll over every point. Exact counts, because an
   * exact facet counts the live points of each value the index still knows, so a domain whose points were all
   * deleted comes back with count 0 and is dropped here. The facet returns at most `limit` values (the most
   * frequent), so the limit grows until fewer come back.
   */
  async listDomains(): Promise<string[]> {
    for (let limit = FIRST_FACET_LIMIT; ; limit *= 4) {
      const { hits } = await this.send('facet on domain', () => this.client.facet(this.name, { key: 'domain', limit, exact: true }));
      if (hits.length < limit) {
        return hits.flatMap((hit) => (hit.count > 0 && typeof hit.value === 'string' ? [hit.value] : [])).sort();
      }
    }
  }

  /** Writes were acknowledged with wait=true: already applied and in Qdrant's write-ahead log. */
  async flush(): Promise<void> {}

  /** Qdrant indexes in its own process, away from this server's event loop: nothing to defer here. */
  fillInBulk<T>(fill: () => Promise<T>): Promise<T> {
    return fill();
  }
}

export interface QdrantConnection {
  /** e.g. http://localhost:6333 */
  url: string;
  apiKey?: string;
  /** Warn when the server's version is more than one minor version from the client's (default true). */
  checkCompatibility?: boolean;
}

/** Collections on a Qdrant server. */
export class QdrantVectorStore implements VectorStore {
  private readonly client: QdrantClient;
  private readonly open = new Map<string, Promise<QdrantCollection>>();

  constructor(private readonly connection: QdrantConnection) {
    this.client = new QdrantClient({
      url: connection.url,
      apiKey: connection.apiKey,
      checkCompatibility: connection.checkCompatibility,
    });
  }

  async collection(name: string, dimensions: CollectionDimensions): Promise<VectorCollection> {
    let opening = this.open.get(name);
    if (!opening) {
      const attempt = QdrantCollection.open(this.client, this.connection.url, name, dimensions);
      this.open.set(name, attempt);
      // A failed open is not remembered: the next call tries again.
      attempt.catch(() => {
        if (this.open.get(name) === attempt) this.open.delete(name);
      });
      opening = attempt;
    }
    return opening;
  }

  async listCollections(): Promise<string[]> {
    const { collections } = await this.send('listing collections', () => this.client.getCollections());
    return collections.map((collection) => collection.name).sort();
  }

  /** Drops the collection; dropping a missing collection is not an error. */
  async dropCollection(name: string): Promise<void> {
    this.open.delete(name);
    await this.send(`dropping collection ${name}`, () => this.client.deleteCollection(name));
  }

  /** Forgets the open collections; the client holds no resources that need closing. */
  async close(): Promise<void> {
    this.open.clear();
  }

  private send<T>(what: string, request: () => Promise<T>): Promise<T> {
    return call(`at ${this.connection.url}`, what, request);
  }
}
