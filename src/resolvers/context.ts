/** What every resolver receives: the platform's services. */
import type { CatalogItem } from '../catalog/item.js';
import type { Platform } from '../platform.js';

export interface RequestContext {
  platform: Platform;
}

/** Items by id from the catalogue's rows in memory, null where unknown. */
export function loadItems(context: RequestContext, ids: readonly string[]): (CatalogItem | null)[] {
  const { items } = context.platform.catalog;
  return ids.map((id) => items.get(id) ?? null);
}

export function createContext(platform: Platform): RequestContext {
  return { platform };
}
