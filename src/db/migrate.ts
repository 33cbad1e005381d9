/**
 * Applies the versioned SQL migrations in prisma/migrations/ at start-up, the way `prisma migrate deploy` does,
 * because Prisma's schema engine cannot be downloaded on every machine this project runs on.
 *
 * Compatibility with Prisma Migrate:
 * - the layout is Prisma's: `<migrationsDir>/<name>/migration.sql`, applied in the order Prisma uses
 *   (directory names compared with `localeCompare`), plus `migration_lock.toml`;
 * - the bookkeeping table is Prisma's `_prisma_migrations`, created with Prisma's own DDL, and every applied
 *   migration gets the row Prisma would write (uuid id, sha256 hex checksum of the file, finished_at,
 *   applied_steps_count = 1), so `prisma migrate deploy` / `migrate status` on a machine with the engine agree;
 * - the same advisory lock key as Prisma's schema engine (72707369) serialises concurrent runners, including
 *   `prisma migrate deploy` itself.
 *
 * Stricter than `migrate deploy` on purpose: it refuses to start when an applied migration's checksum differs from
 * the file, when a migration is recorded as failed / unfinished, or when the database has a migration that this
 * code does not know (a newer release migrated it). Nothing is changed in those cases.
 *
 * Unlike Prisma, each migration (its SQL and its bookkeeping row) runs in one transaction, so a failing migration
 * leaves no trace. Consequence: a migration must not contain statements that cannot run inside a transaction block
 * (e.g. `CREATE INDEX CONCURRENTLY`).
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** One database session (a single connection): what the migrator needs from a driver. */
export interface SqlSession {
  /** Runs one statement with `$1`-style parameters and returns its rows. */
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  /** Runs a script of one or more statements without parameters (simple query protocol). */
  exec(script: string): Promise<void>;
}

export interface LocalMigration {
  /** Directory name, e.g. `20261123230656_init`; Prisma's `migration_name`. */
  name: string;
  /** Contents of `migration.sql`. */
  sql: string;
  /** sha256 hex of the file's bytes, as Prisma records it. */
  checksum: string;
}

export interface MigrateOptions {
  /** Directory holding `<name>/migration.sql`; defaults to the project's `prisma/migrations`. */
  migrationsDir?: string;
  /** Create this schema (if missing) and make it the search_path of the session before migrating. */
  schema?: string;
  /** Called with a line of progress for each migration applied. */
  log?: (message: string) => void;
}

export interface MigrateResult {
  /** Names of the migrations applied by this call, in order (empty when the database was up to date). */
  applied: string[];
  /** Names of all migrations known to the database after this call. */
  all: string[];
}

/** Thrown when the migration history in the database does not match the migration files. Nothing was changed. */
export class MigrationError extends Error {
  override name = 'MigrationError';
}

/** Same key as Prisma's schema engine uses for `pg_advisory_lock` while migrating. */
export const PRISMA_MIGRATE_ADVISORY_LOCK_KEY = 72707369;

/** Prisma's own DDL for the bookkeeping table (PostgreSQL connector), made idempotent. */
const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
)`;

export function sha256Hex(content: string | Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

/**
 * Whether `checksum` (from `_prisma_migrations`) matches the script. Like Prisma, line-ending differences
 * (a checkout with CRLF vs LF) are not treated as an edit.
 */
export function checksumMatches(script: string, checksum: string): boolean {
  const lf = script.replace(/\r\n/g, '\n');
  const candidates = new Set([script, lf, lf.replace(/\n/g, '\r\n')]);
  for (const candidate of candidates) if (sha256Hex(candidate) === checksum) return true;
  return false;
}

/** Finds `prisma/migrations` by walking up from this module (works from src/ under tsx and from a dist/ build). */
export function defaultMigrationsDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'prisma', 'migrations');
    if (existsSync(path.join(candidate, 'migration_lock.toml'))) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) throw new MigrationError(`cannot find prisma/migrations above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** Reads the migration files, in the order Prisma applies them. */
export function readLocalMigrations(migrationsDir: string = defaultMigrationsDir()): LocalMigration[] {
  const lockfile = path.join(migrationsDir, 'migration_lock.toml');
  if (existsSync(lockfile)) {
    const provider = /^\s*provider\s*=\s*"([^"]*)"/m.exec(readFileSync(lockfile, 'utf8'))?.[1];
    if (provider && provider !== 'postgresql') {
      throw new MigrationError(`${lockfile} is for provider "${provider}", expected "postgresql"`);
    }
  }
  return readdirSync(migrationsDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort((a, b) => a.localeCompare(b))
    .map((name) => {
      const file = path.join(migrationsDir, name, 'migration.sql');
      if (!existsSync(file)) throw new MigrationError(`migration ${name} has no migration.sql (${file})`);
      const bytes = readFileSync(file);
      return { name, sql: bytes.toString('utf8'), checksum: sha256Hex(bytes) };
    });
}

interface MigrationRow {
  id: string;
  checksum: string;
  finished_at: Date | string | null;
  migration_name: string;
  logs: string | null;
  rolled_back_at: Date | string | null;
  started_at: Date | string;
  applied_steps_count: number;
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Checks the history against the files and returns the migrations still to apply. Throws MigrationError, changing
 * nothing, when the history is not a prefix-compatible, unedited record of the files.
 */
function plan(local: LocalMigration[], rows: MigrationRow[]): LocalMigration[] {
  const failed = rows.filter((row) => row.finished_at === null && row.rolled_back_at === null);
  if (failed.length > 0) {
    const names = failed.map((row) => `${row.migration_name} (started ${String(row.started_at)}${row.logs ? `: ${row.logs}` : ''})`);
    throw new MigrationError(
      `migration(s) recorded as started but not finished in _prisma_migrations: ${names.join('; ')}. ` +
        'Fix the database by hand, then mark it with `prisma migrate resolve --applied|--rolled-back <name>` ' +
        'or delete its row from _prisma_migrations.',
    );
  }
  const applied = rows.filter((row) => row.finished_at !== null && row.rolled_back_at === null);
  const byName = new Map(local.map((m) => [m.name, m]));
  const unknown = applied.filter((row) => !byName.has(row.migration_name)).map((row) => row.migration_name);
  if (unknown.length > 0) {
    throw new MigrationError(
      `the database has migration(s) that are not in the migrations directory: ${[...new Set(unknown)].join(', ')}. ` +
        'It was migrated by a newer version of this application; refusing to run against a schema this code does not know.',
    );
  }
  const edited = applied
    .filter((row) => !checksumMatches(byName.get(row.migration_name)!.sql, row.checksum))
    .map((row) => `${row.migration_name} (database ${row.checksum}, file ${byName.get(row.migration_name)!.checksum})`);
  if (edited.length > 0) {
    throw new MigrationError(
      `migration(s) were modified after they were applied: ${edited.join('; ')}. ` +
        'Applied migrations must never be edited: restore the file, and put schema changes in a new migration.',
    );
  }
  const appliedNames = new Set(applied.map((row) => row.migration_name));
  return local.filter((m) => !appliedNames.has(m.name));
}

/**
 * Applies the unapplied migrations in order, each in its own transaction, recording them in `_prisma_migrations`.
 * Idempotent and safe to call on every start-up, also from several processes at once.
 */
export async function migrate(session: SqlSession, options: MigrateOptions = {}): Promise<MigrateResult> {
  const local = readLocalMigrations(options.migrationsDir);
  const log = options.log ?? (() => {});
  // Advisory locks are per database, so this also serialises concurrent CREATE SCHEMA IF NOT EXISTS (which can race).
  await session.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_ADVISORY_LOCK_KEY]);
  try {
    if (options.schema) {
      await session.exec(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(options.schema)}; SET search_path TO ${quoteIdent(options.schema)}`);
    }
    await session.exec(CREATE_MIGRATIONS_TABLE);
    const rows = await session.query<MigrationRow>(
      'SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count ' +
        'FROM "_prisma_migrations" ORDER BY started_at ASC',
    );
    const pending = plan(local, rows);
    const applied: string[] = [];
    for (const migration of pending) {
      const started = Date.now();
      await session.exec('BEGIN');
      try {
        const id = randomUUID();
        await session.query(
          'INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) ' +
            'VALUES ($1, $2, $3, clock_timestamp(), 0)',
          [id, migration.checksum, migration.name],
        );
        await session.exec(migration.sql);
        await session.query(
          'UPDATE "_prisma_migrations" SET finished_at = clock_timestamp(), applied_steps_count = applied_steps_count + 1 WHERE id = $1',
          [id],
        );
        await session.exec('COMMIT');
      } catch (error) {
        await session.exec('ROLLBACK').catch(() => {});
        const message = error instanceof Error ? error.message : String(error);
        throw new MigrationError(`migration ${migration.name} failed and was rolled back: ${message}`, { cause: error });
      }
      applied.push(migration.name);
      log(`applied migration ${migration.name} in ${Date.now() - started} ms`);
    }
    const known = rows.filter((row) => row.finished_at !== null && row.rolled_back_at === null).map((row) => row.migration_name);
    return { applied, all: [...new Set([...known, ...applied])] };
  } finally {
    await session.query('SELECT pg_advisory_unlock($1)', [PRISMA_MIGRATE_ADVISORY_LOCK_KEY]).catch(() => {});
  }
}
