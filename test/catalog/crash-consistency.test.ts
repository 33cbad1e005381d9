/**
 * Crash consistency (issue #12): a server killed with SIGKILL after upsertItems and deleteItems answered (the
 * database committed, the embedded index had not flushed yet), in the middle of a large upsertItems and during a model
 * activation restarts into a state where the database, the rows it serves from memory and the vectors agree: every
 * item's points hold the vectors of its current title. One crash with all of it, because each server start takes
 * seconds. Real server processes (`src/cli/serve.ts`), the tiny
 * bundle, PGlite and the embedded index in a temp dir.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openDatabase } from '../../src/db/index.js';
import { EmbeddedVectorStore } from '../../src/index/embedded-vector-store.js';
import { collectionName } from '../../src/index/vector-index.js';
import { RecommendationModel } from '../../src/inference/recommendation-model.js';
import { freePort, publishTinyBundle, REPO, tinyBundle } from '../support/fixtures.js';
import { itemRows } from '../support/item-rows.js';

const KEY = 'crash-key';
const UPSERT = 'mutation($items: [ItemInput!]!) { upsertItems(items: $items) { count } }';


class ServerProcess {
  child!: ChildProcess;
  url!: string;

  constructor(private readonly dataDir: string, private readonly registry: string) {}

  async start(): Promise<void> {
    const port = await freePort();
    this.url = `http://127.0.0.1:${port}`;
    this.child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/serve.ts', '--bundle', tinyBundle(), '--data-dir', this.dataDir, '--port', String(port)], {
      cwd: REPO,
      // No periodic index flush within the test: what a kill loses is decided by the test, not by a timer.
      env: { ...process.env, LOG_LEVEL: 'warn', LLM2REC_API_KEY: KEY, LLM2REC_MODEL_REGISTRY: this.registry, LLM2REC_INDEX_FLUSH_INTERVAL_MS: '3600000' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const deadline = Date.now() + 120_000;
    for (;;) {
      assert.equal(this.child.exitCode, null, 'the server exited while starting');
      const ready = await fetch(`${this.url}/readyz`).then((response) => response.ok, () => false);
      if (ready) {
        if (process.env.CRASH_DEBUG) console.error(`ready after ${Date.now() - deadline + 120_000} ms`);
        return;
      }
      assert.ok(Date.now() < deadline, 'the server did not become ready');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async graphql(query: string, variables: Record<string, unknown> = {}): Promise<any> {
    const response = await fetch(`${this.url}/graphql`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': KEY }, body: JSON.stringify({ query, variables }),
    });
    return response.json();
  }

  async stop(signal: NodeJS.Signals): Promise<void> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    const started = Date.now();
    this.child.kill(signal);
    await exited;
    if (process.env.CRASH_DEBUG) console.error(`${signal} took ${Date.now() - started} ms`);
  }
}

const items = (prefix: string, ids: number[], title: (i: number) => string) =>
  ids.map((i) => ({ id: `${prefix}${i}`, domain: 'video_games', title: title(i) }));
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);

describe('crash consistency', () => {
  let dataDir: string;
  let registry: string;
  let server: ServerProcess;
  let model: RecommendationModel;

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-crash-'));
    registry = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-crash-registry-'));
    model = await RecommendationModel.load(tinyBundle());
    server = new ServerProcess(dataDir, registry);
    await server.start();
    const loaded = await server.graphql(UPSERT, { items: items('g', range(0, 60), (i) => `Old game ${i}`) });
    assert.deepEqual(loaded.data, { upsertItems: { count: 60 } }, JSON.stringify(loaded.errors));
  });
  after(async () => {
    await server?.stop('SIGKILL');
    await model?.release();
    await rm(dataDir, { recursive: true, force: true });
    await rm(registry, { recursive: true, force: true });
  });

  /**
   * Restarts after a crash and reads what the server serves; kills it again (the restart's own catch-up was flushed
   * before it answered /readyz, and nothing was written since) and compares with the database and the serving
   * collection's vectors on disk.
   */
  async function restartAndCheck(context: string): Promise<void> {
    await server.start();
    const active = (await server.graphql('{ activeModel { version } }')).data.activeModel.version as string;
    const served = new Map<string, string>();
    for (let after: string | null = null; ;) {
      const page: any = await server.graphql('query($after: String) { itemsByDomain(domain: "video_games", first: 100, after: $after) { edges { node { id title } } pageInfo { hasNextPage endCursor } } }', { after });
      const ids = page.data.itemsByDomain.edges.map((edge: any) => edge.node.id);
      const nodes = (await server.graphql('query($ids: [ID!]!) { items(ids: $ids) { id title } }', { ids })).data.items;
      for (const node of nodes) served.set(node.id, node.title);
      if (!page.data.itemsByDomain.pageInfo.hasNextPage) break;
      after = page.data.itemsByDomain.pageInfo.endCursor;
    }
    await server.stop('SIGKILL');

    const db = await openDatabase({ dataDir });
    const rows = await itemRows(db);
    await db.close();
    assert.deepEqual(served, new Map(rows.map((row) => [row.id, row.title])), `${context}: what the server serves is the database`);

    const store = new EmbeddedVectorStore(path.join(dataDir, 'vectors'));
    const collection = await store.collection(collectionName(active), model.dimensions);
    assert.deepEqual((await collection.listIds()).sort(), rows.map((row) => row.id), `${context}: the index holds the database's items`);
    const stored = await collection.retrieve(rows.map((row) => row.id), 'semantic');
    const expected = await model.embedItems(rows.map((row) => row.title));
    rows.forEach((row, k) => {
      const vector = stored.get(row.id)!.vector;
      const gap = Math.max(...expected[k].semantic.map((value, d) => Math.abs(value - vector[d])));
      assert.ok(gap < 1e-4, `${context}: the vectors of ${row.id} are those of its title ${JSON.stringify(row.title)} (gap ${gap})`);
    });
  }

  it('after a kill with writes answered but not flushed, an upsert in flight and an activation running', async () => {
    // A model activation (the catalogue embedded into the new version's collection; it answers once the bundle is
    // checked) ...
    const version = 'tiny-crash-next';
    await publishTinyBundle(registry, version);
    const activation = await server.graphql('mutation($v: String!) { activateModel(version: $v) { state } }', { v: version });
    assert.equal(activation.errors, undefined, JSON.stringify(activation.errors));
    // ... writes answered, so committed in the database, but not flushed to the embedded index ...
    const replaced = await server.graphql(UPSERT, { items: items('g', range(0, 40), (i) => `New game ${i}`) });
    assert.deepEqual(replaced.data, { upsertItems: { count: 40 } }, JSON.stringify(replaced.errors));
    const deleted = await server.graphql('mutation($ids: [ID!]!) { deleteItems(ids: $ids) { count } }', { ids: ['g1', 'g2', 'g3'] });
    assert.deepEqual(deleted.data, { deleteItems: { count: 3 } }, JSON.stringify(deleted.errors));
    // ... while a large upsert is in flight; the kill comes in the middle of both.
    const pending = server.graphql(UPSERT, { items: items('g', range(20, 260), (i) => `Renamed game ${i}`) }).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await server.stop('SIGKILL');
    await pending;
    await restartAndCheck('after the kill');
  });
});
