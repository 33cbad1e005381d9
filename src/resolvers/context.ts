/** What every resolver receives: the platform's services and per-request loaders. */
import DataLoader from 'dataloader';
import { toCatalogItem, type CatalogItem } from '../catalog/catalog.js';
import type { Platform } from '../platform.js';

export type ItemRecord = CatalogItem;

export interface RequestContext {
  platform: Platform;
  /** Batches the item lookups of one request into one query. */
  items: DataLoader<string, ItemRecord | null>;
}

/** Items by id through the request's loader, null where unknown; a failed lookup fails the field. */
export async function loadItems(context: RequestContext, ids: readonly string[]): Promise<(ItemRecord | null)[]> {
  const rows = await context.items.loadMany(ids);
  const failure = rows.find((row): row is Error => row instanceof Error);
  if (failure) throw failure;
  return rows as (ItemRecord | null)[];
}

export function createContext(platform: Platform): RequestContext {
  const items = new DataLoader<string, ItemRecord | null>(async (ids) => {
    const rows = await platform.db.prisma.item.findMany({ where: { id: { in: [...ids] } } });
    const byId = new Map(rows.map((row) => [row.id, toCatalogItem(row)]));
    return ids.map((id) => byId.get(id) ?? null);
  });
  return { platform, items };
}
