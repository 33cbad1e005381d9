/**
 * The databases the data-layer tests run against: PGlite always, PostgreSQL when TEST_DATABASE_URL is set
 * (`export TEST_DATABASE_URL="$(bash scripts/postgres-test-server.sh start)"`).
 *
 * Every call of `fresh()` gives an empty database: a new PGlite data directory, or a new PostgreSQL schema
 * (selected with Prisma's `?schema=` URL parameter) that is dropped by `cleanup()`, so reruns start clean.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { openDatabase, type Database, type DatabaseKind } from '../../src/db/index.js';

export type Query = <R = Record<string, unknown>>(sql: string) => Promise<R[]>;

export interface TestTarget {
  /** Opens (and migrates) this database; can be called again to re-open it. */
  open(options?: { migrationsDir?: string }): Promise<Database>;
  /** Runs `fn` with a plain driver connection to this database: no migration, for looking at what is there. */
  raw<T>(fn: (query: Query) => Promise<T>): Promise<T>;
}

export interface Backend {
  kind: DatabaseKind;
  /** Why this backend's tests are skipped, if they are. */
  skip: string | false;
  fresh(): TestTarget;
  cleanup(): Promise<void>;
}

const tempDirs: string[] = [];

export function tempDir(prefix = 'llm2rec-db-test-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A copy of the project's migrations directory that a test may add files to. */
export function copyOfMigrations(): string {
  const dir = path.join(tempDir('llm2rec-migrations-'), 'migrations');
  cpSync(path.resolve(import.meta.dirname, '../../prisma/migrations'), dir, { recursive: true });
  return dir;
}

const pglite: Backend = {
  kind: 'pglite',
  skip: false,
  fresh() {
    const dataDir = tempDir();
    return {
      open: (options = {}) => openDatabase({ dataDir, ...options }),
      async raw(fn) {
        const db = await PGlite.create(path.join(dataDir, 'pglite'));
        try {
          return await fn(async (sql) => (await db.query<never>(sql)).rows);
        } finally {
          await db.close();
        }
      },
    };
  },
  async cleanup() {
    removeTempDirs();
  },
};

const testDatabaseUrl = process.env.TEST_DATABASE_URL;
const schemas: string[] = [];
let counter = 0;

const postgres: Backend = {
  kind: 'postgres',
  skip: testDatabaseUrl
    ? false
    : 'TEST_DATABASE_URL is not set; run `export TEST_DATABASE_URL="$(bash scripts/postgres-test-server.sh start)"` to include PostgreSQL',
  fresh() {
    const schema = `test_${process.pid}_${Date.now().toString(36)}_${counter++}`;
    schemas.push(schema);
    const url = new URL(testDatabaseUrl!);
    url.searchParams.set('schema', schema);
    const dataDir = tempDir();
    return {
      open: (options = {}) => openDatabase({ databaseUrl: url.toString(), dataDir, ...options }),
      async raw(fn) {
        const client = new pg.Client({ connectionString: testDatabaseUrl, options: `-c search_path="${schema}"` });
        await client.connect();
        try {
          return await fn(async (sql) => (await client.query(sql)).rows);
        } finally {
          await client.end();
        }
      },
    };
  },
  async cleanup() {
    removeTempDirs();
    if (!testDatabaseUrl || schemas.length === 0) return;
    const client = new pg.Client({ connectionString: testDatabaseUrl });
    await client.connect();
    try {
      for (const schema of schemas.splice(0)) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    } finally {
      await client.end();
    }
  },
};

export const backends: Backend[] = [pglite, postgres];
