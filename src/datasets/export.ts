/**
 * The platform's own catalogue and interactions in the shared dataset layout, streamed page by page from the
 * database: what training needs to produce the next model version from live data.
 */
import type { Database } from '../db/index.js';

const PAGE = 5000;

/** items.jsonl lines: id, title, domain, then the item's attributes. */
export async function* itemLines(db: Database): AsyncGenerator<string> {
  let after: string | undefined;
  for (;;) {
    const rows = await db.prisma.item.findMany({
      where: after === undefined ? {} : { id: { gt: after } },
      orderBy: { id: 'asc' },
      take: PAGE,
    });
    for (const row of rows) {
      yield `${JSON.stringify({ id: row.id, title: row.title, domain: row.domain, ...(row.attributes as object) })}\n`;
    }
    if (rows.length < PAGE) return;
    after = rows[rows.length - 1].id;
  }
}

/** interactions.csv lines, header first; each user's rows in sequence order (the order they were recorded). */
export async function* interactionLines(db: Database): AsyncGenerator<string> {
  yield 'user_id,item_id,timestamp\n';
  let after: { userId: string; id: bigint } | undefined;
  for (;;) {
    const rows = await db.prisma.interaction.findMany({
      where: after === undefined ? {} : {
        OR: [{ userId: { gt: after.userId } }, { userId: after.userId, id: { gt: after.id } }],
      },
      orderBy: [{ userId: 'asc' }, { id: 'asc' }],
      take: PAGE,
      select: { id: true, userId: true, itemId: true, timestamp: true },
    });
    for (const row of rows) yield `${csvField(row.userId)},${csvField(row.itemId)},${row.timestamp}\n`;
    if (rows.length < PAGE) return;
    const last = rows[rows.length - 1];
    after = { userId: last.userId, id: last.id };
  }
}

/** Quotes a CSV field when it needs it (RFC 4180). */
function csvField(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}
