/** What every resolver receives: the platform's services and per-request loaders. */
import DataLoader from 'dataloader';
import type { Platform } from '../platform.js';

export interface ItemRecord {
  id: string;
  domain: string;
  title: string;
  attributes: Record<string, unknown>;
}

export interface RequestContext {
  platform: Platform;
  /** Batches the item lookups of one request into one query. */
  items: DataLoader<string, ItemRecord | null>;
}

export function createContext(platform: Platform): RequestContext {
  const items = new DataLoader<string, ItemRecord | null>(async (ids) => {
    const rows = await platform.db.prisma.item.findMany({ where: { id: { in: [...ids] } } });
    const byId = new Map(rows.map((row) => [row.id, { ...row, attributes: row.attributes as Record<string, unknown> }]));
    return ids.map((id) => byId.get(id) ?? null);
  });
  return { platform, items };
}
