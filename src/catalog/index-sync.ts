/**
 * Brings a model version's vector collection in step with the catalogue's rows: embeds the items it lacks and drops
 * the points of items the catalogue no longer has. The model switcher runs it for the version it starts with and
 * for every version before it serves; the catalogue's own writes embed their items with embedPoints.
 */
import type { Database } from '../db/index.js';
import type { ItemEmbedder } from '../cluster/shared-embeddings.js';
import type { VectorPoint } from '../index/vector-index.js';
import type { EmbeddingTarget, Progress } from './catalog.js';
import type { ItemReadModel } from './item-read-model.js';

export interface SyncResult {
  /** Items run through the encoder. */
  embedded: number;
  /** Points of items the catalogue no longer has. */
  dropped: number;
}

export class IndexSync {
  constructor(
    private readonly db: Database,
    /** The catalogue's rows in memory (the Catalog's read model). */
    readonly items: ItemReadModel,
    /** Titles per encoder call. */
    private readonly encodeBatchSize: number,
  ) {}

  /**
   * Makes a model version's collection match the catalogue: embeds the items it lacks and drops the points of items
   * the catalogue no longer has. Run at start-up (writes the index had not flushed) and before a version serves.
   * With `changedSince`, the items the database changed since then are embedded again whether indexed or not.
   */
  async sync(target: EmbeddingTarget, progress?: Progress, options: { changedSince?: Date } = {}): Promise<SyncResult> {
    const { collection, embedder } = target;
    const indexed = new Set(await collection.listIds());
    // Items the database changed after the index's last durable state (a crash, index-journal.ts): their points may
    // hold the vectors of an older title, so they are embedded again.
    if (options.changedSince) {
      const changed = await this.db.prisma.item.findMany({ where: { updatedAt: { gte: options.changedSince } }, select: { id: true } });
      for (const row of changed) indexed.delete(row.id);
    }
    // The rows come from the read model: reading the whole table would hold the event loop (PGlite runs in it).
    const missing = [...this.items.values()].filter((row) => !indexed.has(row.id));
    const stale = [...indexed].filter((id) => !this.items.has(id));
    await collection.delete(stale);
    // One encoder call's worth per step: the index inserts of a step run on the event loop, so serving waits for at
    // most one step's (issue #16).
    const batch = this.encodeBatchSize;
    progress?.(0, missing.length);
    for (let start = 0; start < missing.length; start += batch) {
      const chunk = missing.slice(start, start + batch);
      const points = await embedPoints(embedder, chunk, this.encodeBatchSize);
      // An item replaced or deleted while its title was being embedded keeps out: its old vectors must not land
      // after the write's own. A replaced one is still missing here, so the next pass embeds its new title.
      const current = new Set(chunk.filter((row) => this.items.get(row.id) === row).map((row) => row.id));
      await collection.upsert(points.filter((point) => current.has(point.id)));
      progress?.(start + chunk.length, missing.length);
    }
    await collection.flush();
    return { embedded: missing.length, dropped: stale.length };
  }
}

/** Both vectors of each item, `batchSize` titles per encoder call. */
export async function embedPoints(
  model: ItemEmbedder,
  items: readonly { id: string; domain: string; title: string }[],
  batchSize: number,
): Promise<VectorPoint[]> {
  const points: VectorPoint[] = [];
  for (let start = 0; start < items.length; start += batchSize) {
    const chunk = items.slice(start, start + batchSize);
    const vectors = await model.embedItems(chunk.map((item) => item.title));
    chunk.forEach((item, i) => points.push({ id: item.id, domain: item.domain, vectors: vectors[i] }));
  }
  return points;
}
