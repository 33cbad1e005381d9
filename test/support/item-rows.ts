/**
 * Item rows in one JavaScript order, for comparing the database with the read model and the index. The database's
 * own order is not it: PostgreSQL orders ids by code point, `<` and `Array.prototype.sort` by UTF-16 unit, and the
 * two differ once ids leave the Basic Multilingual Plane (a surrogate pair sorts before U+FF11 by unit, after it by
 * code point).
 */
import type { Database } from '../../src/db/index.js';

/** The rows by id as `<` orders ids: the order `Array.prototype.sort()` gives a list of the ids. */
export function sortById<T extends { id: string }>(rows: Iterable<T>): T[] {
  return [...rows].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Every row of the items table with the fields the read model holds, in `sortById` order. */
export async function itemRows(db: Database) {
  return sortById(await db.prisma.item.findMany({ select: { id: true, domain: true, title: true, attributes: true } }));
}
