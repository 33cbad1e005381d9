/**
 * A real platform behind a real HTTP server for API tests: the tiny bundle, a fresh database, the embedded index,
 * and datasets loaded through the load-dataset command.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadSettings, type Settings } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { openPlatform, type Platform } from '../../src/platform.js';
import { startHttpServer, type RunningServer } from '../../src/server/http-server.js';
import { REPO, tinyBundle } from './fixtures.js';
import { itemRows, sortById } from './item-rows.js';

const run = promisify(execFile);

export interface GraphQLResponse<T = any> {
  data?: T;
  errors?: { message: string; extensions?: { code?: string } }[];
}

export const API_KEY = 'test-key';

export class TestPlatform {
  platform!: Platform;
  server!: RunningServer;

  private constructor(readonly settings: Settings) {}

  static async start(overrides: Partial<Settings> = {}): Promise<TestPlatform> {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-api-'));
    const settings = loadSettings({}, { dataDir, bundleDir: tinyBundle(), apiKey: API_KEY, ...overrides });
    const test = new TestPlatform(settings);
    await test.open();
    return test;
  }

  get url(): string {
    return this.server.url;
  }

  async open(): Promise<void> {
    this.platform = await openPlatform(this.settings, createLogger('warn'));
    this.server = await startHttpServer(this.platform, { host: '127.0.0.1', port: 0 });
  }

  async close(): Promise<void> {
    await this.server.close();
    await this.platform.close();
  }

  async destroy(): Promise<void> {
    await this.close();
    await rm(this.settings.dataDir, { recursive: true, force: true });
  }

  /** Loads a shared-layout dataset through the load-dataset command, as an operator would. */
  async load(datasetDir: string): Promise<void> {
    await run(process.execPath, ['--import', 'tsx', 'src/cli/load-dataset.ts', datasetDir,
      '--url', this.url, '--api-key', API_KEY, '--item-batch', '100', '--interaction-batch', '400'], { cwd: REPO });
  }

  async query<T = any>(text: string, variables: Record<string, unknown> = {}, apiKey?: string): Promise<GraphQLResponse<T>> {
    const response = await fetch(this.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(apiKey && { 'x-api-key': apiKey }) },
      body: JSON.stringify({ query: text, variables }),
    });
    return (await response.json()) as GraphQLResponse<T>;
  }

  mutate<T = any>(text: string, variables: Record<string, unknown> = {}): Promise<GraphQLResponse<T>> {
    return this.query<T>(text, variables, API_KEY);
  }

  /**
   * Everything the stores hold, as text: item rows, users and interactions. Fails when the read model or the index
   * holds other items than the database.
   */
  async stored(): Promise<string> {
    const { prisma } = this.platform.db;
    const rows = await itemRows(this.platform.db);
    const memory = sortById(this.platform.catalog.items.values());
    assert.equal(JSON.stringify(memory), JSON.stringify(rows), 'the read model holds the database rows');
    assert.deepEqual((await this.platform.collection.listIds()).sort(), rows.map((row) => row.id), 'the index holds the database rows');
    const users = await prisma.user.findMany({ orderBy: { id: 'asc' }, select: { id: true } });
    const interactions = await prisma.interaction.findMany({ orderBy: { id: 'asc' }, select: { userId: true, itemId: true, timestamp: true } });
    return JSON.stringify({ rows, users, interactions: interactions.map((row) => [row.userId, row.itemId, String(row.timestamp)]) });
  }
}

/** The error code of a response, failing loudly when there is none. */
export function errorCode(response: GraphQLResponse): string | undefined {
  return response.errors?.[0]?.extensions?.code;
}
