/**
 * The catalogue: items as rows in the database (the source of truth), as an in-memory read model of those rows
 * (what serving reads) and as points in the vector collection of every model version being served or prepared
 * (derived: text -> encoder -> adapter -> vectors; index-sync.ts fills a version's collection from the rows). Writes validate and embed first, then store, so a rejected
 * batch changes nothing. Writes are applied one at a time, and the read model changes only with what the database
 * took, so it agrees with the database after every write, failed ones included.
 */
import { Mutex } from 'async-mutex';
import { upsertItems as upsertItemRows, type Database, type Prisma, type RawQueryExecutor } from '../db/index.js';
import { PlatformError } from '../errors.js';
import type { RecommendationModel } from '../inference/recommendation-model.js';
import type { VectorCollection } from '../index/vector-index.js';
import type { ItemEmbedder } from '../cluster/shared-embeddings.js';
import { toCatalogItem, type CatalogItem } from './item.js';
import { embedPoints } from './index-sync.js';
import type { ItemReadModel } from './item-read-model.js';

/** A model version's encoder and the collection that holds its vectors. */
export interface EmbeddingTarget {
  model: RecommendationModel;
  /** What embeds titles for the version (the model, or vectors shared between replicas in front of it). */
  embedder: ItemEmbedder;
  collection: VectorCollection;
}

export interface ItemInput {
  id: string;
  domain: string;
  title: string;
  attributes?: Record<string, unknown>;
}

export interface CatalogLimits {
  /** Most items one upsert may carry. */
  maxItemsPerBatch: number;
  /** Titles per encoder call. */
  encodeBatchSize: number;
}

export type Progress = (done: number, total: number) => void;

export class Catalog {
  /** Catalogue writes run one at a time, so the read model applies them in the order the database did. */
  private readonly writes = new Mutex();
  /** Ids whose rows the read model may hold wrongly: a write of them failed, perhaps after reaching the database. */
  private readonly unsettled = new Set<string>();

  constructor(
    private readonly db: Database,
    /** The item rows in memory, kept in step with the database by this catalogue's writes. */
    readonly items: ItemReadModel,
    /** The model versions whose collections must follow the catalogue: the serving one and any being prepared. */
    private readonly targets: () => readonly EmbeddingTarget[],
    private readonly limits: CatalogLimits,
    /**
     * Replicas over one PostgreSQL: tells the others which items a write changed, inside the write's transaction
     * (cluster/event-feed.ts); they apply it with follow().
     */
    private readonly announce?: (tx: RawQueryExecutor, ids: readonly string[]) => Promise<void>,
  ) {}

  /** Inserts or replaces items and their vectors. */
  async upsertItems(items: readonly ItemInput[]): Promise<number> {
    this.validate(items);
    const targets = this.targets();
    const points = await Promise.all(targets.map((target) => embedPoints(target.embedder, items, this.limits.encodeBatchSize)));
    const rows = items.map((item) => ({ id: item.id, domain: item.domain, title: item.title, attributes: item.attributes ?? {} }));
    const ids = rows.map((row) => row.id);
    await this.write(ids, async () => {
      this.items.put(await this.transaction(ids, (tx) => upsertItemRows(tx, rows)));
      await Promise.all(targets.map((target, i) => target.collection.upsert(points[i])));
    });
    return items.length;
  }

  /** Deletes items (and, through the database, their interactions); unknown ids are reported, nothing is deleted. */
  async deleteItems(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) throw new PlatformError('BAD_USER_INPUT', 'no item ids given');
    if (ids.length > this.limits.maxItemsPerBatch) {
      throw new PlatformError('BATCH_TOO_LARGE', `at most ${this.limits.maxItemsPerBatch} items per batch, got ${ids.length}`);
    }
    return this.write(ids, async () => {
      this.items.requireItems(ids); // settled before each write: the rows are the database's
      const { count } = await this.transaction(ids, (tx) => tx.item.deleteMany({ where: { id: { in: [...ids] } } }));
      this.items.remove(ids);
      await Promise.all(this.targets().map((target) => target.collection.delete(ids)));
      return count;
    });
  }

  /** A write of the rows of `ids`, announced to the other replicas when there are any (in the same transaction). */
  private transaction<T>(ids: readonly string[], work: (tx: Prisma.TransactionClient) => Promise<T>): Promise<T> {
    const announce = this.announce;
    if (!announce) return work(this.db.prisma);
    return this.db.prisma.$transaction(async (tx) => {
      const result = await work(tx);
      await announce(tx, ids);
      return result;
    });
  }

  /**
   * Applies a catalogue write another replica made: the rows of `ids` as the database has them now, each item's
   * vectors in every collection before its row serves (settle).
   */
  follow(ids: readonly string[]): Promise<void> {
    return this.writes.runExclusive(async () => {
      ids.forEach((id) => this.unsettled.add(id));
      await this.settle();
    });
  }

  /** The read model read anew from the database: after rows were written there other than through this catalogue. */
  reloadItems(): Promise<void> {
    return this.writes.runExclusive(async () => {
      await this.items.reload();
      this.unsettled.clear();
    });
  }

  /**
   * Runs a write of the rows of `ids` after the writes before it. When it fails other than by refusing the request,
   * the database may or may not have taken it (a connection lost after the commit), and the vector collections may
   * hold some of its points: those ids are unsettled until the read model has read their rows back and every
   * collection holds exactly their vectors again, at once or, if a store does not answer, before the next write.
   */
  private write<T>(ids: readonly string[], work: () => Promise<T>): Promise<T> {
    return this.writes.runExclusive(async () => {
      await this.settle();
      try {
        return await work();
      } catch (error) {
        if (!(error instanceof PlatformError)) {
          ids.forEach((id) => this.unsettled.add(id));
          await this.settle().catch(() => undefined);
        }
        throw error;
      }
    });
  }

  /** Why catalogue writes cannot be served now (a failed write whose effects could not be read back yet), if so. */
  get unavailable(): string | undefined {
    return this.settleError && this.unsettled.size > 0
      ? `catalogue writes are suspended: ${this.unsettled.size} items of a failed write could not be read back yet`
      : undefined;
  }

  /** Why settling last failed (logged by readiness checks, never sent to clients). */
  settleError: Error | undefined;

  /**
   * Makes the read model and the collections agree with the database on the rows of failed writes. Reading the rows
   * back can itself be refused for ids the database could never have stored; the whole table is read then.
   */
  private async settle(): Promise<void> {
    if (this.unsettled.size === 0) return;
    const ids = [...this.unsettled];
    try {
      const present = await this.items.read(ids).catch(async () => {
        await this.items.reload();
        return ids.flatMap((id) => this.items.get(id) ?? []);
      });
      const found = new Set(present.map((row) => row.id));
      const absent = ids.filter((id) => !found.has(id));
      this.items.remove(absent); // out of serving before their points go
      for (const target of this.targets()) {
        const points = await embedPoints(target.embedder, present, this.limits.encodeBatchSize);
        await target.collection.upsert(points);
        await target.collection.delete(absent);
      }
      this.items.put(present); // a row serves once every collection holds its vectors
      ids.forEach((id) => this.unsettled.delete(id));
      this.settleError = undefined;
    } catch (error) {
      this.settleError = error as Error;
      throw error;
    }
  }

  /** A page of a domain's items ordered by id, after the item with id `afterId`. */
  async page(domain: string, first: number, afterId?: string): Promise<{ items: CatalogItem[]; hasNextPage: boolean }> {
    if (!Number.isInteger(first) || first < 1 || first > this.limits.maxItemsPerBatch) {
      throw new PlatformError('LIMIT_EXCEEDED', `first must be between 1 and ${this.limits.maxItemsPerBatch}, got ${first}`);
    }
    const rows = await this.db.prisma.item.findMany({
      where: { domain, ...(afterId !== undefined && { id: { gt: afterId } }) },
      orderBy: { id: 'asc' },
      take: first + 1,
    });
    if (rows.length === 0 && afterId === undefined) {
      throw new PlatformError('UNKNOWN_DOMAIN', `no items in domain ${JSON.stringify(domain)}`, { domain });
    }
    return { items: rows.slice(0, first).map(toCatalogItem), hasNextPage: rows.length > first };
  }

  private validate(items: readonly ItemInput[]): void {
    if (items.length === 0) throw new PlatformError('BAD_USER_INPUT', 'no items given');
    if (items.length > this.limits.maxItemsPerBatch) {
      throw new PlatformError('BATCH_TOO_LARGE', `at most ${this.limits.maxItemsPerBatch} items per batch, got ${items.length}`);
    }
    const seen = new Set<string>();
    for (const item of items) {
      if (item.id.trim() === '') throw new PlatformError('BAD_USER_INPUT', 'an item id is empty');
      if (item.domain.trim() === '') throw new PlatformError('BAD_USER_INPUT', `item ${JSON.stringify(item.id)} has an empty domain`);
      if (item.title.trim() === '') throw new PlatformError('BAD_USER_INPUT', `item ${JSON.stringify(item.id)} has an empty title`);
      if (seen.has(item.id)) throw new PlatformError('BAD_USER_INPUT', `item ${JSON.stringify(item.id)} appears twice in the batch`);
      seen.add(item.id);
    }
  }
}
