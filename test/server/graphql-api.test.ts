/**
 * End to end over HTTP: a real tiny bundle, a real database (PGlite, and PostgreSQL when available), the embedded
 * index, the load-dataset command and GraphQL queries.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { loadSettings } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { openPlatform, type Platform } from '../../src/platform.js';
import { startHttpServer, type RunningServer } from '../../src/server/http-server.js';
import { TEST_DATABASES } from '../support/databases.js';
import { REPO, cutDataset, tinyBundle } from '../support/fixtures.js';

const run = promisify(execFile);

interface GraphQLResponse<T> {
  data?: T;
  errors?: { message: string; extensions?: { code?: string } }[];
}

async function query<T = any>(url: string, text: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query: text, variables }),
  });
  return (await response.json()) as GraphQLResponse<T>;
}

const RECOMMEND = `query Recommend($history: [ID!], $userId: ID, $domain: String, $first: Int!) {
  recommendations(history: $history, userId: $userId, domain: $domain, first: $first) {
    modelVersion domain items { score item { id domain title } }
  }
}`;

for (const database of TEST_DATABASES) {
  describe(`GraphQL API over HTTP on ${database.name}`, () => {
    let dataDir: string;
    let datasetDir: string;
    let platform: Platform;
    let server: RunningServer;
    let settings: ReturnType<typeof loadSettings>;
    let histories: Map<string, string[]>;

    async function start() {
      platform = await openPlatform(settings, createLogger('warn'));
      server = await startHttpServer(platform, { host: '127.0.0.1', port: 0 });
    }

    async function stop() {
      await server.close();
      await platform.close();
    }

    before(async () => {
      dataDir = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-e2e-'));
      datasetDir = await cutDataset('amazon-games', 150);
      settings = loadSettings({}, {
        dataDir,
        bundleDir: tinyBundle(),
        databaseUrl: await database.createUrl(),
        apiKey: 'test-key',
        maxResults: 50,
        maxHistoryInput: 20,
      });
      await start();
      await run(process.execPath, ['--import', 'tsx', 'src/cli/load-dataset.ts', datasetDir,
        '--url', server.url, '--api-key', 'test-key', '--item-batch', '100', '--interaction-batch', '400'], { cwd: REPO });
      histories = new Map();
      const lines = (await readFile(path.join(datasetDir, 'interactions.csv'), 'utf8')).trim().split('\n').slice(1);
      for (const line of lines) {
        const [user, item] = line.split(',');
        const id = `amazon-games:${user}`;
        histories.set(id, [...(histories.get(id) ?? []), `amazon-games:${item}`]);
      }
    });

    after(async () => {
      await stop();
      await rm(dataDir, { recursive: true, force: true });
    });

    it('loaded the catalogue and the interactions through the API', async () => {
      const items = (await readFile(path.join(datasetDir, 'items.jsonl'), 'utf8')).trim().split('\n').length;
      const result = await query(server.url, '{ domains { name items } activeModel { version status } }');
      assert.deepEqual(result.data.domains, [{ name: 'video_games', items }]);
      assert.equal(result.data.activeModel.status, 'active');
      assert.equal(await platform.collection.count(), items);
      assert.equal(await platform.db.prisma.interaction.count(), [...histories.values()].flat().length);
    });

    it('recommends ten other games for a history of five', async () => {
      const history = [...histories.values()].find((items) => new Set(items).size >= 5)!.slice(0, 5);
      const result = await query(server.url, RECOMMEND, { history, first: 10 });
      assert.equal(result.errors, undefined);
      const list = result.data.recommendations;
      assert.equal(list.items.length, 10);
      assert.equal(list.domain, 'video_games');
      assert.equal(list.modelVersion, platform.model.version);
      for (const { item, score } of list.items) {
        assert.ok(!history.includes(item.id), `${item.id} is in the history`);
        assert.equal(item.domain, 'video_games');
        assert.ok(item.title.length > 0);
        assert.equal(typeof score, 'number');
      }
      const scores = list.items.map((entry: { score: number }) => entry.score);
      assert.deepEqual(scores, [...scores].sort((a, b) => b - a));
    });

    it('ranks by the sequence model: user vector . item vector, computed here independently', async () => {
      const history = [...histories.values()][3].slice(-5);
      const result = await query(server.url, RECOMMEND, { history, first: 5 });
      const stored = await platform.collection.retrieve(history, 'recommendation');
      const user = await platform.model.userVector(history.map((id) => stored.get(id)!.vector));
      const top = result.data.recommendations.items;
      const vectors = await platform.collection.retrieve(top.map((entry: any) => entry.item.id), 'recommendation');
      for (const entry of top) {
        const v = vectors.get(entry.item.id)!.vector;
        const dot = v.reduce((sum, x, i) => sum + x * user[i], 0);
        assert.ok(Math.abs(dot - entry.score) < 1e-4, `score ${entry.score} vs ${dot}`);
      }
    });

    it('prints recommendations with the recommend command', async () => {
      const history = [...histories.values()][1].slice(0, 3);
      const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/cli/recommend.ts', ...history,
        '--url', server.url, '--first', '4'], { cwd: REPO });
      const lines = stdout.trim().split('\n');
      assert.equal(lines[0], 'history:');
      assert.equal(lines.filter((line) => /^\s+-?\d+\.\d{4}\s+amazon-games:/.test(line)).length, 4, stdout);
      assert.match(stdout, /recommended in video_games by model/);
    });

    it('answers an unknown item id in a history with UNKNOWN_ITEM', async () => {
      const history = [[...histories.values()][0][0], 'no-such-item'];
      const result = await query(server.url, RECOMMEND, { history, first: 10 });
      assert.equal(result.errors?.[0].extensions?.code, 'UNKNOWN_ITEM');
      assert.match(result.errors![0].message, /no-such-item/);
    });

    it('reports bad requests with their codes', async () => {
      const anyItem = [...histories.values()][0][0];
      const cases: [Record<string, unknown>, string][] = [
        [{ history: [], first: 10 }, 'EMPTY_HISTORY'],
        [{ history: Array(21).fill(anyItem), first: 10 }, 'HISTORY_TOO_LONG'],
        [{ history: [anyItem], first: 51 }, 'LIMIT_EXCEEDED'],
        [{ history: [anyItem], first: 0 }, 'LIMIT_EXCEEDED'],
        [{ history: [anyItem], domain: 'books', first: 10 }, 'UNKNOWN_DOMAIN'],
        [{ userId: 'nobody', first: 10 }, 'UNKNOWN_USER'],
        [{ first: 10 }, 'BAD_USER_INPUT'],
        [{ history: [anyItem], userId: 'x', first: 10 }, 'BAD_USER_INPUT'],
      ];
      for (const [variables, code] of cases) {
        const result = await query(server.url, RECOMMEND, variables);
        assert.equal(result.errors?.[0].extensions?.code, code, JSON.stringify(variables));
      }
    });

    it('counts a recorded interaction in the very next recommendation for that user', async () => {
      const [userId, history] = [...histories.entries()][5];
      const before = await query(server.url, RECOMMEND, { userId, first: 3 });
      const next = before.data.recommendations.items[0].item.id;
      const recorded = await query(server.url,
        'mutation($events: [InteractionInput!]!) { recordInteractions(interactions: $events) { count } }',
        { events: [{ userId, itemId: next }] }, { 'x-api-key': 'test-key' });
      assert.deepEqual(recorded.data, { recordInteractions: { count: 1 } });
      const after = await query(server.url, RECOMMEND, { userId, first: 3 });
      const ids = after.data.recommendations.items.map((entry: any) => entry.item.id);
      assert.ok(!ids.includes(next), 'the item just interacted with is now part of the history');
      const expected = await query(server.url, RECOMMEND, { history: [...history, next], first: 3 });
      assert.deepEqual(after.data.recommendations, expected.data.recommendations);
    });

    it('rejects mutations without the API key and bad batches without storing anything', async () => {
      const interactions = await platform.db.prisma.interaction.count();
      const items = await platform.db.prisma.item.count();
      const mutation = 'mutation($events: [InteractionInput!]!) { recordInteractions(interactions: $events) { count } }';
      const known = [...histories.values()][0][0];
      const noKey = await query(server.url, mutation, { events: [{ userId: 'u', itemId: known }] });
      assert.equal(noKey.errors?.[0].extensions?.code, 'UNAUTHENTICATED');
      const unknown = await query(server.url, mutation,
        { events: [{ userId: 'u', itemId: known }, { userId: 'u', itemId: 'missing' }] }, { 'x-api-key': 'test-key' });
      assert.equal(unknown.errors?.[0].extensions?.code, 'UNKNOWN_ITEM');
      const badItem = await query(server.url,
        'mutation($items: [ItemInput!]!) { upsertItems(items: $items) { count } }',
        { items: [{ id: 'new-1', domain: 'video_games', title: 'A new game' }, { id: 'new-2', domain: 'video_games', title: '  ' }] },
        { 'x-api-key': 'test-key' });
      assert.equal(badItem.errors?.[0].extensions?.code, 'BAD_USER_INPUT');
      assert.equal(await platform.db.prisma.interaction.count(), interactions);
      assert.equal(await platform.db.prisma.item.count(), items);
      assert.equal(await platform.collection.count(), items);
    });

    it('recommends an item added after training, from its title alone', async () => {
      const result = await query(server.url,
        'mutation($items: [ItemInput!]!) { upsertItems(items: $items) { count } }',
        { items: [{ id: 'new-game', domain: 'video_games', title: 'Fire Emblem: Three Houses - Nintendo Switch' }] },
        { 'x-api-key': 'test-key' });
      assert.deepEqual(result.data, { upsertItems: { count: 1 } });
      const item = await query(server.url, '{ item(id: "new-game") { id title domain } }');
      assert.equal(item.data.item.title, 'Fire Emblem: Three Houses - Nintendo Switch');
      const vectors = await platform.collection.retrieve(['new-game'], 'recommendation');
      assert.equal(vectors.get('new-game')?.domain, 'video_games');
      const recommendedNew = await query(server.url, RECOMMEND, { history: ['new-game'], first: 5 });
      assert.equal(recommendedNew.data.recommendations.items.length, 5);
    });

    it('keeps its data, vectors and the active version\'s activation time across a restart', async () => {
      const history = [...histories.values()][7].slice(-5);
      const MODELS = '{ activeModel { version activatedAt } modelVersions { version status activatedAt } }';
      const before = await query(server.url, RECOMMEND, { history, first: 10 });
      const modelsBefore = await query(server.url, MODELS);
      assert.match(modelsBefore.data.activeModel.activatedAt, /^\d{4}-\d\d-\d\dT/);
      await stop();
      await new Promise((resolve) => setTimeout(resolve, 20)); // a reset would give a later time
      await start();
      const after = await query(server.url, RECOMMEND, { history, first: 10 });
      assert.deepEqual(after.data, before.data);
      // The same version, activated when the first process started: a restart is not an activation.
      assert.deepEqual((await query(server.url, MODELS)).data, modelsBefore.data);
    });
  });
}
