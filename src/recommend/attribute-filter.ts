/**
 * Attribute filters: `{ brand: "Nintendo", year: 2017 }` keeps the items whose attributes hold every one of these
 * keys with exactly that value (as the database's JSON equality would: `"2017"` is not `2017`). The filter runs over
 * the candidates the vector index found, on the catalogue's item rows in memory.
 */
import type { CatalogItem } from '../catalog/item.js';
import { PlatformError } from '../errors.js';

export type AttributeValue = string | number | boolean;
export type AttributeFilter = Readonly<Record<string, AttributeValue>>;

/** Checks a filter given by a caller: scalar values only. */
export function parseAttributeFilter(raw: Record<string, unknown> | null | undefined): AttributeFilter | undefined {
  if (!raw) return undefined;
  for (const [key, value] of Object.entries(raw)) {
    if (!['string', 'number', 'boolean'].includes(typeof value)) {
      throw new PlatformError('BAD_USER_INPUT', `attribute filter ${JSON.stringify(key)} must be a string, number or boolean`);
    }
  }
  return raw as AttributeFilter;
}

export class AttributeMatcher {
  constructor(private readonly items: { get(id: string): CatalogItem | undefined }) {}

  /** The ids among `ids` whose attributes match the filter. */
  matching(ids: readonly string[], filter: AttributeFilter): Set<string> {
    const entries = Object.entries(filter);
    return new Set(ids.filter((id) => {
      const attributes = this.items.get(id)?.attributes;
      return attributes !== undefined && entries.every(([key, value]) => Object.hasOwn(attributes, key) && attributes[key] === value);
    }));
  }
}
