/**
 * Bulk upsert of items: one `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE` per batch. Prisma has no
 * multi-row upsert, and one upsert per item in a transaction cost 25-30 times more per item (measured with
 * bench/experiments/catalog-costs.ts, docs/BENCHMARKS.md). The statement returns the rows as stored (attributes as
 * jsonb gives them back), which is what the catalogue's in-memory read model keeps.
 */
import type { CatalogItem } from '../catalog/item.js';
import type { PrismaClient } from '../generated/prisma/client.js';

// updated_at is what Prisma's @updatedAt writes: the current UTC time in a column without time zone.
const UPSERT_SQL =
  'INSERT INTO "items" ("id", "domain", "title", "attributes", "updated_at") ' +
  "SELECT i, d, t, a::jsonb, now() AT TIME ZONE 'UTC' FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS r(i, d, t, a) " +
  'ON CONFLICT ("id") DO UPDATE SET "domain" = EXCLUDED."domain", "title" = EXCLUDED."title", ' +
  '"attributes" = EXCLUDED."attributes", "updated_at" = EXCLUDED."updated_at" ' +
  'RETURNING "id", "domain", "title", "attributes"';

/** A PrismaClient or the `tx` of an interactive transaction. */
export type RawQueryExecutor = Pick<PrismaClient, '$queryRawUnsafe'>;

/** Inserts or replaces items in one statement; ids must be unique within `rows`. Returns the rows as stored. */
export function upsertItems(db: RawQueryExecutor, rows: readonly CatalogItem[]): Promise<CatalogItem[]> {
  return db.$queryRawUnsafe<CatalogItem[]>(
    UPSERT_SQL,
    rows.map((row) => row.id),
    rows.map((row) => row.domain),
    rows.map((row) => row.title),
    rows.map((row) => JSON.stringify(row.attributes)),
  );
}
