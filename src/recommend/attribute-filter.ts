/**
 * Attribute filters: `{ brand: "Nintendo", year: 2017 }` keeps the items whose attributes hold every one of these
 * keys with exactly that value. Attributes live in the database (JSON), so the filter is a database query over the
 * candidates the vector index found.
 */
import type { Database } from '../db/index.js';
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
  constructor(private readonly db: Database) {}

  /** The ids among `ids` whose attributes match the filter. */
  async matching(ids: readonly string[], filter: AttributeFilter): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await this.db.prisma.item.findMany({
      where: {
        id: { in: [...ids] },
        AND: Object.entries(filter).map(([key, value]) => ({ attributes: { path: [key], equals: value } })),
      },
      select: { id: true },
    });
    return new Set(rows.map((row) => row.id));
  }
}
