/**
 * Attribute filters: `{ brand: "Nintendo", year: 2017 }` keeps the items whose attributes hold every one of these
 * keys with exactly that value (as the database's JSON equality would: `"2017"` is not `2017`). They run on the
 * catalogue's item rows in memory and its attribute index (catalog/attribute-index.ts): a filter starts from the
 * items holding its rarest value, never from a whole domain.
 */
import { matchesFilter, type AttributeFilter, type AttributeIndex } from '../catalog/attribute-index.js';
import type { CatalogItem } from '../catalog/item.js';
import { sharedTurnBudget, VISIT_WORK, type TurnBudget } from '../turn-budget.js';
import { PlatformError } from '../errors.js';

export type { AttributeFilter, AttributeValue } from '../catalog/attribute-index.js';

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

/** Ids checked against a filter between two looks at the turn budget. */
const CHECK_CHUNK = 1024;

/** What the recommender asks of attribute filters. */
export interface AttributeFilters {
  /** Whether an item matches the filter. */
  matches(id: string, filter: AttributeFilter): boolean;
  /** A domain's matching ids when at most `max` items can match (a cheap question), else undefined. */
  fewMatching(domain: string, filter: AttributeFilter, max: number): string[] | undefined;
  /** Every matching id of a domain, checked a chunk per turn budget. */
  allMatching(domain: string, filter: AttributeFilter): Promise<string[]>;
}

export class AttributeMatcher implements AttributeFilters {
  constructor(
    private readonly items: { get(id: string): CatalogItem | undefined; readonly attributeIndex: AttributeIndex },
    private readonly budget: TurnBudget = sharedTurnBudget,
  ) {}

  matches(id: string, filter: AttributeFilter): boolean {
    return matchesFilter(this.items.get(id)?.attributes, filter);
  }

  /** The ids among `ids` whose attributes match the filter. */
  matching(ids: readonly string[], filter: AttributeFilter): Set<string> {
    return new Set(ids.filter((id) => this.matches(id, filter)));
  }

  fewMatching(domain: string, filter: AttributeFilter, max: number): string[] | undefined {
    const candidates = this.items.attributeIndex.candidates(domain, filter);
    if (candidates.size > max) return undefined;
    const ids: string[] = [];
    for (const id of candidates) if (this.matches(id, filter)) ids.push(id);
    return ids;
  }

  async allMatching(domain: string, filter: AttributeFilter): Promise<string[]> {
    const ids: string[] = [];
    let checked = 0;
    // The list may change while this waits for a turn: an item written meanwhile may or may not be in the answer.
    for (const id of this.items.attributeIndex.candidates(domain, filter)) {
      if (this.matches(id, filter)) ids.push(id);
      if (++checked % CHECK_CHUNK === 0) await this.budget.take(CHECK_CHUNK * VISIT_WORK);
    }
    return ids;
  }
}
