// Prisma 7 configuration (read by the `prisma` CLI only; the app builds its own client in src/db/client.ts).
//
// The datasource URL is only needed by commands that talk to a database (migrate, db, introspect).
// `prisma generate` must work without DATABASE_URL, so the URL is left out when it is not set instead of
// using `env('DATABASE_URL')`, which throws when the variable is missing.
import { defineConfig } from 'prisma/config';

const databaseUrl = process.env.DATABASE_URL;

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  ...(databaseUrl ? { datasource: { url: databaseUrl } } : {}),
});
