/**
 * The catalogue's items by attribute value, kept with the rows in memory (item-read-model.ts), so that an attribute
 * filter starts from the items holding its rarest value instead of going through a whole domain: for each domain,
 * attribute key and scalar value (string, number, boolean; what filters compare with), the ids of the items whose
 * attributes hold that key with that value.
 */
import type { CatalogItem } from './item.js';

export type AttributeValue = string | number | boolean;
export type AttributeFilter = Readonly<Record<string, AttributeValue>>;

const EMPTY: ReadonlySet<string> = new Set();

/**
 * Whether attributes hold every key of the filter with exactly that value, as the database's JSON equality would:
 * `"2017"` is not `2017`.
 */
export function matchesFilter(attributes: Record<string, unknown> | undefined, filter: AttributeFilter): boolean {
  if (attributes === undefined) return false;
  for (const key in filter) {
    if (!Object.hasOwn(filter, key)) continue;
    if (!Object.hasOwn(attributes, key) || attributes[key] !== filter[key]) return false;
  }
  return true;
}

function entries(item: CatalogItem): [string, unknown][] {
  return item.attributes !== null && typeof item.attributes === 'object' ? Object.entries(item.attributes) : [];
}

function isScalar(value: unknown): value is AttributeValue {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}

export class AttributeIndex {
  private readonly lists = new Map<string, Set<string>>();

  /** JSON keeps the value's type apart ("1" vs 1) and makes 0 and -0 one key, as === does. */
  private static key(domain: string, attribute: string, value: AttributeValue): string {
    return JSON.stringify([domain, attribute, value]);
  }

  add(item: CatalogItem): void {
    for (const [attribute, value] of entries(item)) {
      if (!isScalar(value)) continue;
      const key = AttributeIndex.key(item.domain, attribute, value);
      let ids = this.lists.get(key);
      if (!ids) {
        ids = new Set();
        this.lists.set(key, ids);
      }
      ids.add(item.id);
    }
  }

  remove(item: CatalogItem): void {
    for (const [attribute, value] of entries(item)) {
      if (!isScalar(value)) continue;
      const key = AttributeIndex.key(item.domain, attribute, value);
      const ids = this.lists.get(key);
      if (!ids) continue;
      ids.delete(item.id);
      if (ids.size === 0) this.lists.delete(key);
    }
  }

  clear(): void {
    this.lists.clear();
  }

  /**
   * The shortest list among the filter's entries in a domain: every item of the domain that matches the filter is
   * in it (empty when some entry's value is held by no item). The filter must have at least one entry.
   */
  candidates(domain: string, filter: AttributeFilter): ReadonlySet<string> {
    let shortest: ReadonlySet<string> | undefined;
    for (const [attribute, value] of Object.entries(filter)) {
      const ids = this.lists.get(AttributeIndex.key(domain, attribute, value)) ?? EMPTY;
      if (shortest === undefined || ids.size < shortest.size) shortest = ids;
    }
    if (shortest === undefined) throw new Error('an attribute filter without entries has no candidate list');
    return shortest;
  }
}
