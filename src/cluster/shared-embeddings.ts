/**
 * Item vectors computed once per model version for every replica: each title's two vectors are kept in PostgreSQL
 * (`item_vectors`, keyed by the version's collection and the title's sha256) by the replica that computed them, and
 * the other replicas read them instead of running the encoder. A replica's own vector index (embedded, or its view
 * of shared Qdrant collections) is filled from here.
 *
 * Titles no replica has computed yet are computed under a transaction-level advisory lock per collection: replicas
 * filling the same version at once take turns, and each finds what the one before it stored (a replica that dies
 * holding the lock loses its connection, which releases it).
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { ItemVectors } from '../inference/recommendation-model.js';

/** What turns titles into both vectors of each: a model, or this store in front of one. */
export interface ItemEmbedder {
  embedItems(titles: readonly string[]): Promise<ItemVectors[]>;
  /** Keeps vectors computed another way (a same-encoder switch: vector-reuse.ts) for the other replicas, if shared. */
  keep?(titles: readonly string[], vectors: readonly ItemVectors[]): Promise<void>;
}

/** Titles per lookup query. */
const LOOKUP_PAGE = 1000;

export class SharedEmbeddings implements ItemEmbedder {
  constructor(
    private readonly encoder: ItemEmbedder,
    private readonly pool: pg.Pool,
    /** The version's collection name: what the vectors belong to. */
    readonly collection: string,
    /** Told how many titles this process ran through the encoder (the others came from the database). */
    private readonly encoded: (titles: number) => void = () => undefined,
  ) {}

  async embedItems(titles: readonly string[]): Promise<ItemVectors[]> {
    if (titles.length === 0) return [];
    const keys = titles.map(titleKey);
    const titleOf = new Map(keys.map((key, i) => [key, titles[i]]));
    const found = await this.lookup(this.pool, [...titleOf.keys()]);
    if (found.size < titleOf.size) await this.computeMissing(titleOf, found);
    return keys.map((key) => found.get(key)!);
  }

  /** Computes (once, across replicas) the vectors of titles `found` lacks, adding them to it. */
  private async computeMissing(titleOf: Map<string, string>, found: Map<string, ItemVectors>): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`llm2rec-embed:${this.collection}`]);
      // Another replica may have stored some while this one waited for the lock.
      const late = await this.lookup(client, [...titleOf.keys()].filter((key) => !found.has(key)));
      late.forEach((vectors, key) => found.set(key, vectors));
      const missing = [...titleOf.keys()].filter((key) => !found.has(key));
      if (missing.length > 0) {
        const vectors = await this.encoder.embedItems(missing.map((key) => titleOf.get(key)!));
        await this.store(client, missing, vectors);
        missing.forEach((key, i) => found.set(key, vectors[i]));
        this.encoded(missing.length);
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async keep(titles: readonly string[], vectors: readonly ItemVectors[]): Promise<void> {
    if (titles.length > 0) await this.store(this.pool, titles.map(titleKey), vectors);
  }

  private async store(db: pg.Pool | pg.PoolClient, keys: readonly string[], vectors: readonly ItemVectors[]): Promise<void> {
    await db.query(
      'INSERT INTO "item_vectors" ("collection", "title_sha256", "semantic", "recommendation") ' +
      'SELECT $1, k, s, r FROM unnest($2::text[], $3::bytea[], $4::bytea[]) AS v(k, s, r) ON CONFLICT DO NOTHING',
      [this.collection, keys, vectors.map((v) => bytes(v.semantic)), vectors.map((v) => bytes(v.recommendation))],
    );
  }

  private async lookup(db: pg.Pool | pg.PoolClient, keys: readonly string[]): Promise<Map<string, ItemVectors>> {
    const found = new Map<string, ItemVectors>();
    for (let start = 0; start < keys.length; start += LOOKUP_PAGE) {
      const { rows } = await db.query<{ title_sha256: string; semantic: Buffer; recommendation: Buffer }>(
        'SELECT "title_sha256", "semantic", "recommendation" FROM "item_vectors" WHERE "collection" = $1 AND "title_sha256" = ANY($2::text[])',
        [this.collection, keys.slice(start, start + LOOKUP_PAGE)],
      );
      for (const row of rows) found.set(row.title_sha256, { semantic: floats(row.semantic), recommendation: floats(row.recommendation) });
    }
    return found;
  }
}

/** What a title's vectors are stored under. */
export function titleKey(title: string): string {
  return createHash('sha256').update(title, 'utf8').digest('hex');
}

/** A vector's bytes as stored (float32, the platform's byte order: little-endian on every machine Node runs on). */
function bytes(vector: Float32Array): Buffer {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
}

function floats(stored: Buffer): Float32Array {
  const copy = new Float32Array(stored.byteLength / 4);
  new Uint8Array(copy.buffer).set(stored);
  return copy;
}
