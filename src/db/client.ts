/**
 * Opens the platform database: embedded PGlite (no server) by default, PostgreSQL when a URL is given.
 * Migrations are applied before the Prisma client is handed out.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { COMPONENTS_PER_TURN, sharedTurnBudget } from '../turn-budget.js';
import { PrismaClient } from '../generated/prisma/client.js';
import { migrate, type MigrateResult, type SqlSession } from './migrate.js';

export type DatabaseKind = 'pglite' | 'postgres';

export interface Database {
  prisma: PrismaClient;
  kind: DatabaseKind;
  /** What start-up migration did. */
  migrations: MigrateResult;
  /**
   * PostgreSQL only: the node-postgres pool Prisma runs on, for what Prisma does not offer (LISTEN, session-held
   * connections for advisory locks: src/cluster/).
   */
  pool?: pg.Pool;
  /** Disconnects Prisma and closes the underlying driver (PGlite flushes its data directory). */
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /**
   * PostgreSQL connection string. A Prisma-style `?schema=NAME` parameter selects (and creates) a schema other than
   * `public`. When absent, an embedded PGlite database is used.
   */
  databaseUrl?: string;
  /** Data directory of the application; PGlite keeps its files in `<dataDir>/pglite`. */
  dataDir: string;
  /** Overrides the migrations directory (tests). */
  migrationsDir?: string;
  /** Progress lines (migrations applied). */
  log?: (message: string) => void;
}

/** A migration session over a PGlite instance (PGlite is a single connection). */
export function pgliteSession(db: PGlite): SqlSession {
  return {
    async query<R>(sql: string, params?: unknown[]) {
      return (await db.query<R>(sql, params)).rows;
    },
    async exec(script: string) {
      await db.exec(script);
    },
  };
}

/** A migration session over one node-postgres connection. */
export function pgSession(client: pg.ClientBase): SqlSession {
  return {
    async query<R>(sql: string, params?: unknown[]) {
      return (await client.query(sql, params)).rows as R[];
    },
    async exec(script: string) {
      // Without parameters node-postgres uses the simple query protocol, which accepts several statements.
      await client.query(script);
    },
  };
}

/** Splits Prisma's `?schema=` parameter off a PostgreSQL URL (node-postgres does not know it). */
export function parseDatabaseUrl(databaseUrl: string): { connectionString: string; schema?: string } {
  const url = new URL(databaseUrl);
  const schema = url.searchParams.get('schema') ?? undefined;
  url.searchParams.delete('schema');
  return { connectionString: url.toString(), schema: schema || undefined };
}

export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  return options.databaseUrl ? openPostgres(options.databaseUrl, options) : openPglite(options);
}

async function openPglite(options: OpenDatabaseOptions): Promise<Database> {
  const dir = path.resolve(options.dataDir, 'pglite');
  mkdirSync(dir, { recursive: true });
  const db = await PGlite.create(dir);
  let migrations: MigrateResult;
  try {
    migrations = await migrate(pgliteSession(db), { migrationsDir: options.migrationsDir, log: options.log });
  } catch (error) {
    await db.close();
    throw error;
  }
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(takingTurns(db)) });
  return {
    prisma,
    kind: 'pglite',
    migrations,
    close: once(async () => {
      await prisma.$disconnect();
      if (!db.closed) await db.close();
    }),
  };
}

/**
 * What one query costs in the turn budget's units. PGlite runs in this thread (WebAssembly) and its queries resolve
 * as promises, so queries awaited one after another, or many at once, run within one turn of the event loop however
 * long they take together (200 concurrent reads of a user's history: 180 ms without a turn, 2026-12-02). Taking a
 * share of the budget before each lets the turn end between them.
 */
const QUERY_WORK = COMPONENTS_PER_TURN / 16;

/**
 * The PGlite instance as Prisma's adapter sees it: its queries one after another (PGlite runs one at a time anyway),
 * each taking its share of the turn budget once the one before it is done. (A share taken by many queries at once,
 * before any of them ran, would let them all run in one turn.)
 */
function takingTurns(db: PGlite): PGlite {
  let previous: Promise<unknown> = Promise.resolve();
  const query = (...args: Parameters<PGlite['query']>) => {
    const result = previous.then(async () => {
      await sharedTurnBudget.take(QUERY_WORK);
      return db.query(...args);
    });
    previous = result.catch(() => undefined);
    return result;
  };
  return new Proxy(db, {
    get(target, property) {
      if (property === 'query') return query;
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

async function openPostgres(databaseUrl: string, options: OpenDatabaseOptions): Promise<Database> {
  const { connectionString, schema } = parseDatabaseUrl(databaseUrl);
  const pool = new pg.Pool({
    connectionString,
    // Unqualified names in raw SQL resolve to the selected schema too, like Prisma's generated queries.
    ...(schema ? { options: `-c search_path="${schema.replace(/"/g, '""')}"` } : {}),
  });
  let migrations: MigrateResult;
  try {
    const client = await pool.connect();
    try {
      migrations = await migrate(pgSession(client), { migrationsDir: options.migrationsDir, schema, log: options.log });
    } finally {
      client.release();
    }
  } catch (error) {
    await pool.end();
    throw error;
  }
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool, schema ? { schema } : undefined) });
  return {
    prisma,
    kind: 'postgres',
    migrations,
    pool,
    close: once(async () => {
      await prisma.$disconnect();
      await pool.end();
    }),
  };
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let promise: Promise<void> | undefined;
  return () => (promise ??= fn());
}
