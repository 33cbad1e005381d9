/**
 * The data layer's public surface: import database things from here, not from src/generated/prisma directly.
 *
 *   import { openDatabase, Prisma, type PrismaClient, type Item } from '../db/index.js';
 *
 * The generated client (src/generated/prisma) is git-ignored: run `npm run prisma:generate` after a fresh clone
 * and after every change to prisma/schema.prisma.
 */
export { openDatabase, parseDatabaseUrl, pgliteSession, pgSession } from './client.js';
export type { Database, DatabaseKind, OpenDatabaseOptions } from './client.js';
export {
  checksumMatches,
  defaultMigrationsDir,
  migrate,
  MigrationError,
  PRISMA_MIGRATE_ADVISORY_LOCK_KEY,
  readLocalMigrations,
  sha256Hex,
} from './migrate.js';
export type { LocalMigration, MigrateOptions, MigrateResult, SqlSession } from './migrate.js';
export { insertInteractions } from './interactions.js';
export { upsertItems } from './items.js';
export type { RawQueryExecutor } from './items.js';
export type { InsertInteractionsOptions, InteractionInput, RawExecutor } from './interactions.js';

export { Prisma, PrismaClient } from '../generated/prisma/client.js';
export type { Interaction, Item, ModelVersion, User } from '../generated/prisma/client.js';

