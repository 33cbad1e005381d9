/**
 * Interaction events: who interacted with which item, in order. A recorded interaction counts in the very next
 * recommendation for its user, because recommendations read the user's history from the database.
 */
import type { KnownItems } from '../catalog/item-read-model.js';
import { insertInteractions, type Database } from '../db/index.js';
import { PlatformError } from '../errors.js';

export interface InteractionInput {
  userId: string;
  itemId: string;
  /** The dataset's timestamp or epoch milliseconds; now when absent. */
  timestamp?: bigint;
}

export class Interactions {
  constructor(
    private readonly db: Database,
    /** The catalogue, which says which items exist. */
    private readonly items: KnownItems,
    private readonly limits: { maxInteractionsPerBatch: number },
  ) {}

  /** Stores a batch of interactions in its order; refuses the whole batch if any item is unknown. */
  async record(events: readonly InteractionInput[]): Promise<number> {
    if (events.length === 0) throw new PlatformError('BAD_USER_INPUT', 'no interactions given');
    if (events.length > this.limits.maxInteractionsPerBatch) {
      throw new PlatformError('BATCH_TOO_LARGE', `at most ${this.limits.maxInteractionsPerBatch} interactions per batch, got ${events.length}`);
    }
    if (events.some((event) => event.userId.trim() === '')) throw new PlatformError('BAD_USER_INPUT', 'a user id is empty');
    this.items.requireItems(events.map((event) => event.itemId));
    const now = BigInt(Date.now());
    const userIds = [...new Set(events.map((event) => event.userId))];
    const rows = events.map((event) => ({ userId: event.userId, itemId: event.itemId, timestamp: event.timestamp ?? now }));
    await this.db.prisma.$transaction(async (tx) => {
      await tx.user.createMany({ data: userIds.map((id) => ({ id })), skipDuplicates: true });
      await insertInteractions(tx, rows, { analyze: false });
    }, { timeout: 60_000 });
    return events.length;
  }

  /** The most recent `limit` item ids of a user, oldest first; null for an unknown user. */
  async history(userId: string, limit: number): Promise<string[] | null> {
    const entries = await this.recent(userId, limit);
    return entries && entries.map((entry) => entry.itemId);
  }

  /** The most recent `limit` interactions of a user, oldest first; null for an unknown user. */
  async recent(userId: string, limit: number): Promise<{ itemId: string; timestamp: bigint }[] | null> {
    const user = await this.db.prisma.user.findUnique({ where: { id: userId }, select: { id: true } });
    if (!user) return null;
    const rows = await this.db.prisma.interaction.findMany({
      where: { userId },
      orderBy: { id: 'desc' },
      take: limit,
      select: { itemId: true, timestamp: true },
    });
    return rows.reverse();
  }
}
