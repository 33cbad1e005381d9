/**
 * The catalogue's item rows in memory: what serving reads (the items of every response, attribute filters, the
 * rows re-embedded for a new model version) instead of asking the database on every request, which took a third
 * of the main thread (docs/BENCHMARKS.md, "What costs the time").
 *
 * The database stays the source of truth: the read model is loaded from it at start-up and changed only by the
 * Catalog, with the rows the database returned from a write it took. So it holds what the database held at
 * start-up plus what this process wrote since: **one server process per database**. Rows that anything else writes
 * to the same database (a second server, a script with its own connection) are not seen until a restart or reload().
 */
import type { Database } from '../db/index.js';
import { PlatformError, listSome } from '../errors.js';
import { AttributeIndex } from './attribute-index.js';
import { toCatalogItem, type CatalogItem } from './item.js';

/** Rows per query when the whole table is read. */
const PAGE = 5000;

/**
 * Whether items exist, as every request that names items asks it (deleting them, recording interactions with them,
 * recommending from a history of them): the catalogue's rows answer, nothing else.
 */
export interface KnownItems {
  /** Refuses with UNKNOWN_ITEM, naming them, ids the catalogue does not have. */
  requireItems(ids: readonly string[]): void;
}

export class ItemReadModel implements KnownItems {
  private rows = new Map<string, CatalogItem>();
  /** Items per domain, kept with the rows, so `domains` costs the number of domains, not of items. */
  private domainCounts = new Map<string, number>();
  /** The sorted answer of domains(), until the rows change. */
  private domainList: { name: string; items: number }[] | undefined;
  /** The ids by domain, attribute and value, kept with the rows: attribute filters start from them. */
  readonly attributeIndex = new AttributeIndex();

  private constructor(private readonly db: Database) {}

  /** Reads every item row of the database. */
  static async load(db: Database): Promise<ItemReadModel> {
    const model = new ItemReadModel(db);
    await model.reload();
    return model;
  }

  /** Reads every row again: for rows written to the database by something other than the Catalog. */
  async reload(): Promise<void> {
    const rows = new Map<string, CatalogItem>();
    let after: string | undefined;
    for (;;) {
      const page = await this.db.prisma.item.findMany({
        where: after === undefined ? {} : { id: { gt: after } },
        orderBy: { id: 'asc' },
        take: PAGE,
        select: { id: true, domain: true, title: true, attributes: true },
      });
      for (const row of page) rows.set(row.id, toCatalogItem(row));
      if (page.length < PAGE) break;
      after = page[page.length - 1].id;
    }
    this.rows = rows;
    this.domainCounts = new Map();
    this.attributeIndex.clear();
    for (const row of rows.values()) {
      this.count(row.domain, 1);
      this.attributeIndex.add(row);
    }
  }

  /** The domains with their item counts, by name. */
  domains(): readonly { name: string; items: number }[] {
    this.domainList ??= [...this.domainCounts].map(([name, items]) => ({ name, items }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return this.domainList;
  }

  private count(domain: string, change: number): void {
    const items = (this.domainCounts.get(domain) ?? 0) + change;
    if (items > 0) this.domainCounts.set(domain, items);
    else this.domainCounts.delete(domain);
    this.domainList = undefined;
  }

  /** Reads the rows of some ids again: those the database has replace, the others go. */
  async refresh(ids: readonly string[]): Promise<void> {
    const found = await this.read(ids);
    this.remove(ids);
    this.put(found);
  }

  /** The rows the database has of some ids, without applying them. */
  async read(ids: readonly string[]): Promise<CatalogItem[]> {
    const found = await this.db.prisma.item.findMany({
      where: { id: { in: [...ids] } },
      select: { id: true, domain: true, title: true, attributes: true },
    });
    return found.map(toCatalogItem);
  }

  get size(): number {
    return this.rows.size;
  }

  get(id: string): CatalogItem | undefined {
    return this.rows.get(id);
  }

  has(id: string): boolean {
    return this.rows.has(id);
  }

  requireItems(ids: readonly string[]): void {
    const unknown = [...new Set(ids)].filter((id) => !this.rows.has(id));
    if (unknown.length > 0) throw new PlatformError('UNKNOWN_ITEM', `unknown item ids: ${listSome(unknown)}`, { ids: unknown });
  }

  /** Every row, in no particular order. */
  values(): IterableIterator<CatalogItem> {
    return this.rows.values();
  }

  /** Adds or replaces rows the database has taken. */
  put(items: readonly CatalogItem[]): void {
    for (const item of items) {
      const old = this.rows.get(item.id);
      if (old) {
        this.count(old.domain, -1);
        this.attributeIndex.remove(old);
      }
      this.rows.set(item.id, item);
      this.count(item.domain, 1);
      this.attributeIndex.add(item);
    }
  }

  /** Forgets rows the database has deleted. */
  remove(ids: readonly string[]): void {
    for (const id of ids) {
      const old = this.rows.get(id);
      if (!old) continue;
      this.rows.delete(id);
      this.count(old.domain, -1);
      this.attributeIndex.remove(old);
    }
  }
}
