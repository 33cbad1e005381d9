import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import {
  checksumMatches,
  defaultMigrationsDir,
  MigrationError,
  readLocalMigrations,
  type Database,
} from '../../src/db/index.js';
import { backends, copyOfMigrations, removeTempDirs, type Query } from './backends.js';

const MIGRATIONS_DIR = path.resolve(import.meta.dirname, '../../prisma/migrations');
const INIT = '20261123230656_init';
/** The project's migrations, in order. */
const PROJECT = [INIT, '20261203120000_replicas'];
const APP_TABLES = ['_prisma_migrations', 'interactions', 'item_vectors', 'items', 'model_versions', 'platform_events', 'replicas', 'users'];

interface MigrationRow {
  id: string;
  checksum: string;
  finished_at: Date | null;
  migration_name: string;
  logs: string | null;
  rolled_back_at: Date | null;
  started_at: Date;
  applied_steps_count: number;
}

async function migrationRows(db: Database): Promise<MigrationRow[]> {
  return db.prisma.$queryRawUnsafe<MigrationRow[]>('SELECT * FROM "_prisma_migrations" ORDER BY started_at, migration_name');
}

async function tables(db: Database): Promise<string[]> {
  const rows = await db.prisma.$queryRawUnsafe<{ table_name: string }[]>(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name",
  );
  return rows.map((row) => row.table_name);
}

function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function addMigration(dir: string, name: string, sql: string): void {
  mkdirSync(path.join(dir, name));
  writeFileSync(path.join(dir, name, 'migration.sql'), sql);
}

describe('migration files', () => {
  test('are in Prisma layout, postgresql lockfile, found from the source tree', () => {
    assert.equal(defaultMigrationsDir(), MIGRATIONS_DIR);
    assert.match(readFileSync(path.join(MIGRATIONS_DIR, 'migration_lock.toml'), 'utf8'), /^provider = "postgresql"$/m);
    const local = readLocalMigrations();
    assert.deepEqual(local.map((m) => m.name), PROJECT);
    for (const migration of local) assert.equal(migration.checksum, sha256File(path.join(MIGRATIONS_DIR, migration.name, 'migration.sql')));
  });

  test('are ordered by name like Prisma, whatever the directory order', () => {
    const dir = copyOfMigrations();
    addMigration(dir, '20270101000000_b', 'SELECT 1;\n');
    addMigration(dir, '20261231000000_a', 'SELECT 1;\n');
    assert.deepEqual(readLocalMigrations(dir).map((m) => m.name), [...PROJECT, '20261231000000_a', '20270101000000_b']);
  });

  test('checksums ignore line-ending conversions, like Prisma', () => {
    const lf = 'CREATE TABLE "a" (\n    "id" TEXT\n);\n';
    const sum = createHash('sha256').update(lf).digest('hex');
    assert.ok(checksumMatches(lf, sum));
    assert.ok(checksumMatches(lf.replace(/\n/g, '\r\n'), sum));
    assert.ok(!checksumMatches(lf.replace('TEXT', 'INTEGER'), sum));
  });
});

for (const backend of backends) {
  describe(`migrations on ${backend.kind}`, { skip: backend.skip }, () => {
    after(() => backend.cleanup());

    test('apply on an empty database and record Prisma-compatible rows', async () => {
      const db = await backend.fresh().open();
      try {
        assert.equal(db.kind, backend.kind);
        assert.deepEqual(db.migrations.applied, PROJECT);
        assert.deepEqual(await tables(db), APP_TABLES);
        const rows = await migrationRows(db);
        assert.deepEqual(rows.map((r) => r.migration_name), PROJECT);
        const [row] = rows;
        assert.equal(row.migration_name, INIT);
        assert.equal(row.checksum, sha256File(path.join(MIGRATIONS_DIR, INIT, 'migration.sql')));
        assert.match(row.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        assert.ok(row.finished_at instanceof Date, 'finished_at is set');
        assert.ok(row.started_at instanceof Date);
        assert.ok(row.finished_at.getTime() >= row.started_at.getTime());
        assert.equal(row.applied_steps_count, 1);
        assert.equal(row.rolled_back_at, null);
        assert.equal(row.logs, null);
      } finally {
        await db.close();
      }
    });

    test('are idempotent: a second open applies nothing and changes no row', async () => {
      const target = backend.fresh();
      const first = await target.open();
      const before = await migrationRows(first);
      await first.close();
      const second = await target.open();
      try {
        assert.deepEqual(second.migrations, { applied: [], all: PROJECT });
        assert.deepEqual(await migrationRows(second), before);
      } finally {
        await second.close();
      }
    });

    test('a tampered checksum is refused and nothing changes', async () => {
      const target = backend.fresh();
      const db = await target.open();
      await db.prisma.$executeRawUnsafe(`UPDATE "_prisma_migrations" SET checksum = '${'0'.repeat(64)}'`);
      await db.close();
      const snapshot = (query: Query) =>
        Promise.all([
          query('SELECT * FROM "_prisma_migrations" ORDER BY migration_name'),
          query("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name"),
        ]);
      const before = await target.raw(snapshot);
      assert.equal(before[0].length, PROJECT.length);

      // A pending migration must not be applied either.
      const dir = copyOfMigrations();
      addMigration(dir, '20270101000000_extra', 'CREATE TABLE "extra" ("id" TEXT NOT NULL);\n');
      for (const options of [{}, { migrationsDir: dir }]) {
        await assert.rejects(target.open(options), (error: unknown) => {
          assert.ok(error instanceof MigrationError);
          assert.match(error.message, new RegExp(`modified after they were applied: ${INIT} \\(database 0{64}, file [0-9a-f]{64}\\)`));
          return true;
        });
      }
      assert.deepEqual(await target.raw(snapshot), before);
    });

    test('apply new migrations in order, each atomically; a failing one leaves no trace', async () => {
      const target = backend.fresh();
      const dir = copyOfMigrations();
      addMigration(dir, '20270101000000_add_notes', 'CREATE TABLE "notes" ("id" TEXT NOT NULL, CONSTRAINT "notes_pkey" PRIMARY KEY ("id"));\n');
      addMigration(dir, '20270102000000_broken', 'CREATE TABLE "half_done" ("id" TEXT);\nSELECT 1 / 0;\n');
      await assert.rejects(target.open({ migrationsDir: dir }), (error: unknown) => {
        assert.ok(error instanceof MigrationError);
        assert.match(error.message, /20270102000000_broken failed and was rolled back: .*division by zero/);
        return true;
      });

      writeFileSync(path.join(dir, '20270102000000_broken', 'migration.sql'), 'CREATE TABLE "half_done" ("id" TEXT);\n');
      const db = await target.open({ migrationsDir: dir });
      try {
        assert.deepEqual(db.migrations.applied, ['20270102000000_broken'], 'init and add_notes were kept from the first run');
        assert.deepEqual(db.migrations.all, [...PROJECT, '20270101000000_add_notes', '20270102000000_broken']);
        const rows = await migrationRows(db);
        assert.deepEqual(rows.map((r) => r.migration_name), [...PROJECT, '20270101000000_add_notes', '20270102000000_broken']);
        assert.ok(rows.every((r) => r.finished_at !== null && r.applied_steps_count === 1));
        assert.deepEqual(await tables(db), [...APP_TABLES, 'half_done', 'notes'].sort());
      } finally {
        await db.close();
      }
    });

    test('refuses a database migrated by a newer version, or with an unfinished migration', async () => {
      const target = backend.fresh();
      const db = await target.open();
      await db.prisma.$executeRawUnsafe(
        `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, finished_at, applied_steps_count)
         VALUES ('00000000-0000-4000-8000-000000000001', '${'a'.repeat(64)}', '29990101000000_future', now(), 1)`,
      );
      await db.close();
      await assert.rejects(target.open(), /not in the migrations directory: 29990101000000_future/);

      const other = backend.fresh();
      const db2 = await other.open();
      await db2.prisma.$executeRawUnsafe(
        `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, logs, applied_steps_count)
         VALUES ('00000000-0000-4000-8000-000000000002', '${'b'.repeat(64)}', '20270101000000_crashed', 'boom', 0)`,
      );
      await db2.close();
      await assert.rejects(other.open(), /started but not finished.*20270101000000_crashed.*boom/s);
    });

    if (backend.kind === 'postgres') {
      test('concurrent start-ups migrate once (advisory lock)', async () => {
        const target = backend.fresh();
        const dbs = await Promise.all([target.open(), target.open(), target.open()]);
        try {
          assert.deepEqual(dbs.map((d) => d.migrations.applied.length).sort(), [0, 0, PROJECT.length]);
          assert.equal((await migrationRows(dbs[0])).length, PROJECT.length);
        } finally {
          await Promise.all(dbs.map((d) => d.close()));
        }
      });
    }
  });
}

after(() => removeTempDirs());
