/**
 * The databases tests run on: the embedded PGlite always, PostgreSQL when TEST_DATABASE_URL is set
 * (`.ci/run` and `npm run test:full` start one from Debian's package).
 */
import pg from 'pg';

export interface TestDatabase {
  name: 'pglite' | 'postgres';
  /** Undefined for PGlite; a fresh, empty PostgreSQL database otherwise. */
  createUrl(): Promise<string | undefined>;
}

const pglite: TestDatabase = { name: 'pglite', createUrl: async () => undefined };

function postgres(serverUrl: string): TestDatabase {
  return {
    name: 'postgres',
    async createUrl() {
      const name = `test_${process.pid}_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
      const client = new pg.Client({ connectionString: serverUrl });
      await client.connect();
      await client.query(`CREATE DATABASE "${name}"`);
      await client.end();
      const url = new URL(serverUrl);
      url.pathname = `/${name}`;
      return url.toString();
    },
  };
}

export const TEST_DATABASES: TestDatabase[] = process.env.TEST_DATABASE_URL
  ? [pglite, postgres(process.env.TEST_DATABASE_URL)]
  : [pglite];

if (!process.env.TEST_DATABASE_URL) {
  console.warn('TEST_DATABASE_URL is not set: PostgreSQL variants are skipped (npm run test:full starts a server)');
}
