/**
 * The platform's events over PostgreSQL, which every replica hears in commit order: the change that makes an event
 * writes its row (`platform_events`) in its own transaction, and each replica applies the rows after the last one
 * it applied. LISTEN/NOTIFY wakes the replicas at once; a poll catches up after a lost connection or a missed
 * notification, so a replica is never more than one poll behind while the database answers.
 *
 * Order: an event takes a transaction-level advisory lock before its sequence number, so it commits before the
 * next event gets one. A replica that has seen seq N has therefore seen every event below N that will ever commit
 * (numbers of rolled-back transactions are simply missing).
 */
import type pg from 'pg';
import type { RawQueryExecutor } from '../db/index.js';
import type { Logger } from '../logger.js';

/** The NOTIFY channel events are announced on (the payload is the event's seq). */
export const EVENTS_CHANNEL = 'llm2rec_events';
/** The advisory lock key that orders events: any constant no other lock of the platform uses. */
const EVENT_ORDER_LOCK = 4_151_015;

export interface PlatformEvent {
  seq: bigint;
  origin: string;
  kind: string;
  payload: unknown;
}

/** A query inside the caller's transaction: Prisma's `tx.$queryRawUnsafe` or a node-postgres client's. */
export type TransactionQuery = (sql: string, values: unknown[]) => Promise<unknown[]>;

/** Prisma's transaction client as a TransactionQuery. */
export const prismaQuery = (tx: RawQueryExecutor): TransactionQuery => (sql, values) => tx.$queryRawUnsafe(sql, ...values);

/**
 * Records an event inside the caller's transaction (the one making the change): it becomes visible, and is
 * announced, when that transaction commits. Returns its seq.
 */
export async function recordEvent(query: TransactionQuery, origin: string, kind: string, payload: unknown): Promise<bigint> {
  // (The functions return void, which the driver cannot read: they are called in FROM and a column of ours returned.)
  await query('SELECT 1 AS locked FROM pg_advisory_xact_lock($1::bigint)', [EVENT_ORDER_LOCK]);
  const rows = await query(
    'WITH event AS (INSERT INTO "platform_events" ("origin", "kind", "payload") VALUES ($1, $2, $3::jsonb) RETURNING "seq") ' +
    'SELECT event."seq"::text AS seq FROM event, LATERAL pg_notify($4, event."seq"::text)',
    [origin, kind, JSON.stringify(payload), EVENTS_CHANNEL],
  ) as { seq: string }[];
  return BigInt(rows[0].seq);
}

/** The seq of the latest event: a replica loading the state reads it first and applies the events after it. */
export async function latestEventSeq(pool: pg.Pool): Promise<bigint> {
  const { rows } = await pool.query<{ seq: string | null }>('SELECT max("seq")::text AS seq FROM "platform_events"');
  return BigInt(rows[0].seq ?? 0);
}

export interface FeedOptions {
  /** This replica: its own events are skipped (it applied them when it made them). */
  origin: string;
  /** Applies one event; the feed waits for it before the next. A throw is logged and the event tried again. */
  apply: (event: PlatformEvent) => Promise<void>;
  /** Events after this seq are applied. */
  after: bigint;
  logger: Logger;
  /** How often the feed looks for events without a notification. */
  pollMs?: number;
  /** Events older than this are deleted (by every replica, now and then). */
  retentionMs?: number;
}

/** Events read per query. */
const PAGE = 500;

/** Follows the events of other replicas until stop(). */
export class EventFeed {
  private applied: bigint;
  private listener?: pg.PoolClient;
  private running?: Promise<void>;
  private again = false;
  private stopped = false;
  private readonly timer: NodeJS.Timeout;
  private readonly pruner: NodeJS.Timeout;

  private constructor(private readonly pool: pg.Pool, private readonly options: FeedOptions) {
    this.applied = options.after;
    this.timer = setInterval(() => this.wake(), options.pollMs ?? 500);
    this.pruner = setInterval(() => this.prune(), 60_000);
    this.timer.unref();
    this.pruner.unref();
  }

  static start(pool: pg.Pool, options: FeedOptions): EventFeed {
    const feed = new EventFeed(pool, options);
    void feed.listen();
    feed.wake();
    return feed;
  }

  /** The seq of the last event applied (or skipped as this replica's own). */
  get position(): bigint {
    return this.applied;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearInterval(this.pruner);
    await this.running?.catch(() => undefined);
    const listener = this.listener;
    this.listener = undefined;
    listener?.release(true);
  }

  /** Reads and applies what is new; a wake while reading makes one more pass after it. */
  private wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain()
      .catch((error) => this.options.logger.warn({ err: error }, 'following the platform events failed; trying again'))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }

  private async drain(): Promise<void> {
    for (;;) {
      const { rows } = await this.pool.query<{ seq: string; origin: string; kind: string; payload: unknown }>(
        'SELECT "seq"::text AS seq, "origin", "kind", "payload" FROM "platform_events" WHERE "seq" > $1 ORDER BY "seq" LIMIT $2',
        [this.applied.toString(), PAGE],
      );
      for (const row of rows) {
        if (this.stopped) return;
        const event = { seq: BigInt(row.seq), origin: row.origin, kind: row.kind, payload: row.payload };
        if (event.origin !== this.options.origin) await this.options.apply(event);
        this.applied = event.seq;
      }
      if (rows.length < PAGE) return;
    }
  }

  /** A connection that LISTENs; lost, it is opened again (the poll covers the gap). */
  private async listen(): Promise<void> {
    while (!this.stopped) {
      try {
        const client = await this.pool.connect();
        this.listener = client;
        const lost = new Promise<void>((resolve) => {
          client.on('error', () => resolve()); // every error handled: an unhandled one would end the process
          client.once('end', () => resolve());
        });
        client.on('notification', () => this.wake());
        await client.query(`LISTEN ${EVENTS_CHANNEL}`);
        this.wake(); // what committed before LISTEN took
        await lost;
        if (this.listener === client) {
          this.listener = undefined;
          client.release(true);
        }
      } catch (error) {
        if (!this.stopped) this.options.logger.warn({ err: error }, 'listening for platform events failed; polling meanwhile');
      }
      if (!this.stopped) await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  private prune(): void {
    const retention = this.options.retentionMs ?? 24 * 3600_000;
    this.pool.query('DELETE FROM "platform_events" WHERE "created_at" < LOCALTIMESTAMP - make_interval(secs => $1)', [retention / 1000])
      .catch((error) => this.options.logger.warn({ err: error }, 'deleting old platform events failed'));
  }
}
