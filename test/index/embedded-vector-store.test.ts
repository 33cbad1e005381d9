import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { EXACT_SEARCH_MAX_POINTS, EmbeddedVectorStore } from '../../src/index/embedded-vector-store.js';
import { GRAPH_WORK_PER_INSERTED_DIMENSION } from '../../src/index/hnsw-graph.js';
import { TurnBudget } from '../../src/turn-budget.js';
import { turnsDuring } from '../support/turns.js';
import type { VectorCollection, VectorPoint } from '../../src/index/vector-index.js';
import { dims, point, randomVector, vectorStoreContract } from './vector-store-contract.js';

describe('EmbeddedVectorStore', () => {
  vectorStoreContract(async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-index-'));
    return {
      openStore: () => new EmbeddedVectorStore(root),
      collectionPrefix: '',
      cleanUp: () => rm(root, { recursive: true, force: true }),
    };
  });
});

describe('EmbeddedVectorStore on a domain too large for an exact scan', () => {
  let root: string;
  after(() => rm(root, { recursive: true, force: true }));

  it('finds nearly all true nearest neighbours through its HNSW graph, with exact scores', async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-index-'));
    const store = new EmbeddedVectorStore(root);
    const collection = await store.collection('large', dims);
    const points = Array.from({ length: EXACT_SEARCH_MAX_POINTS * 2 }, (_, i) => point(i, 'games'));
    await collection.upsert(points);
    let found = 0;
    let wanted = 0;
    for (let q = 0; q < 20; q++) {
      const query = randomVector(50_000 + q, 4);
      const hits = await collection.search({ using: 'recommendation', query, limit: 10 });
      const exact = points
        .map((p) => ({ id: p.id, score: p.vectors.recommendation.reduce((sum, x, i) => sum + x * query[i], 0) }))
        .sort((a, b) => b.score - a.score)
        .slice(0, 10);
      const exactScore = new Map(points.map((p) => [p.id, p.vectors.recommendation.reduce((sum, x, i) => sum + x * query[i], 0)]));
      assert.equal(hits.length, 10);
      hits.forEach((hit) => assert.ok(Math.abs(hit.score - exactScore.get(hit.id)!) < 1e-5));
      const ids = new Set(hits.map((hit) => hit.id));
      found += exact.filter((e) => ids.has(e.id)).length;
      wanted += exact.length;
    }
    assert.ok(found / wanted >= 0.95, `recall@10 of the graph search is ${found / wanted}`);
    await store.close();
  });
});

describe('EmbeddedVectorStore writes', () => {
  let root: string;
  after(() => rm(root, { recursive: true, force: true }));

  it('spreads a large upsert over turns of the event loop, replacing each item at once', async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-index-'));
    const perPoint = (dims.semantic + dims.recommendation) * GRAPH_WORK_PER_INSERTED_DIMENSION;
    // A write budget of 10 graph inserts per turn and no time cap: the count alone decides the turns.
    const store = new EmbeddedVectorStore(root, new TurnBudget(), new TurnBudget(10 * perPoint, 1e9));
    const collection = await store.collection('items', dims);
    const points = Array.from({ length: 200 }, (_, i) => point(i, 'games'));
    const { turns } = await turnsDuring(() => collection.upsert(points));
    assert.ok(turns >= 19, `200 inserts at 10 per turn ran over ${turns} turns`);

    // New vectors for every item, while a reader looks at them between the turns of the write.
    const ids = points.map((p) => p.id);
    const replaced = points.map((p, i) => ({ ...p, vectors: { semantic: randomVector(9_000 + i, 8), recommendation: randomVector(19_000 + i, 4) } }));
    let looks = 0;
    let absent = 0;
    let writing = true;
    const reader = (async () => {
      while (writing) {
        absent += ids.length - (await collection.retrieve(ids, 'semantic')).size;
        looks++;
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    await collection.upsert(replaced);
    writing = false;
    await reader;
    assert.ok(looks >= 10, `the reader looked ${looks} times during the write`);
    assert.equal(absent, 0, 'an item was absent between its old and its new vectors');
    const stored = await collection.retrieve(ids, 'semantic');
    replaced.forEach((p) => assert.deepEqual(stored.get(p.id)!.vector, p.vectors.semantic));
    const hits = await collection.search({ using: 'semantic', query: replaced[7].vectors.semantic, limit: 1 });
    assert.equal(hits[0].id, replaced[7].id);
    await store.close();
  });

  it('saves a snapshot copied in many pieces through one buffer, each row as it was', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-index-'));
    try {
      // A write budget of 3 semantic rows: the snapshot's vectors go to their files in pieces of 3 rows or fewer.
      const store = new EmbeddedVectorStore(root, new TurnBudget(), new TurnBudget(3 * dims.semantic, 1e9));
      const collection = await store.collection('items', dims);
      const points = Array.from({ length: 50 }, (_, i) => point(i, i % 2 ? 'games' : 'science'));
      for (let start = 0; start < points.length; start += 10) await collection.upsert(points.slice(start, start + 10));
      await collection.delete([points[4].id]);
      await store.close();
      const reopened = await new EmbeddedVectorStore(root).collection('items', dims);
      const live = points.filter((_, i) => i !== 4);
      for (const name of ['semantic', 'recommendation'] as const) {
        const stored = await reopened.retrieve(live.map((p) => p.id), name);
        live.forEach((p) => assert.deepEqual(stored.get(p.id)!.vector, p.vectors[name]));
      }
      assert.equal(await reopened.count(), live.length);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('EmbeddedVectorStore graph files', () => {
  const roots: string[] = [];
  after(async () => { for (const root of roots) await rm(root, { recursive: true, force: true }); });

  const LARGE = EXACT_SEARCH_MAX_POINTS + 500;
  const QUERIES = Array.from({ length: 10 }, (_, q) => q);

  /** A store over a fresh directory, an empty collection, and points of a large domain (searched through its graphs) and a small one. */
  async function emptyStore() {
    const root = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-graphs-'));
    roots.push(root);
    const store = new EmbeddedVectorStore(root);
    const collection = await store.collection('items', dims);
    const points = [
      ...Array.from({ length: LARGE }, (_, i) => point(i, 'games')),
      ...Array.from({ length: 100 }, (_, i) => point(LARGE + i, 'movies')),
    ];
    return { root, store, collection, points };
  }

  /** emptyStore's collection holding its points. */
  async function filledStore() {
    const { root, store, collection, points } = await emptyStore();
    await collection.upsert(points);
    return { root, store, collection, points };
  }

  /** What a collection answers to fixed queries: both named vectors, both domains. */
  async function answers(collection: VectorCollection) {
    const result: string[][] = [];
    for (const q of QUERIES) {
      for (const domain of ['games', 'movies']) {
        result.push((await collection.search({ using: 'semantic', query: randomVector(70_000 + q, 8), limit: 10, domains: [domain] })).map((hit) => hit.id));
        result.push((await collection.search({ using: 'recommendation', query: randomVector(80_000 + q, 4), limit: 10, domains: [domain] })).map((hit) => hit.id));
      }
    }
    return result;
  }

  /** Share of the true top 10 (dot product over the live points of a domain) that the collection finds. */
  async function recall(collection: VectorCollection, live: readonly VectorPoint[], domain: string): Promise<number> {
    let found = 0;
    let wanted = 0;
    for (const q of QUERIES) {
      const query = randomVector(90_000 + q, 4);
      const exact = live.filter((p) => p.domain === domain)
        .map((p) => ({ id: p.id, score: p.vectors.recommendation.reduce((sum, x, i) => sum + x * query[i], 0) }))
        .sort((a, b) => b.score - a.score).slice(0, 10);
      const ids = new Set((await collection.search({ using: 'recommendation', query, limit: 10, domains: [domain] })).map((hit) => hit.id));
      found += exact.filter((e) => ids.has(e.id)).length;
      wanted += exact.length;
    }
    return found / wanted;
  }

  /** The games domain holds the points added (each its own nearest), none deleted, and its graph finds the live ones. */
  async function assertFollowsWrites(collection: VectorCollection, live: readonly VectorPoint[], added: readonly VectorPoint[], deleted: readonly string[]) {
    for (const p of added.slice(0, 5)) {
      const [top] = await collection.search({ using: 'semantic', query: p.vectors.semantic, limit: 1, domains: ['games'] });
      assert.equal(top.id, p.id);
    }
    const hits = await collection.search({ using: 'recommendation', query: randomVector(1, 4), limit: 200, domains: ['games'] });
    assert.ok(hits.every((hit) => !deleted.includes(hit.id)));
    assert.ok(await recall(collection, live, 'games') >= 0.95);
  }

  const snapshotOf = async (root: string) => JSON.parse(await readFile(path.join(root, 'items', 'collection.json'), 'utf8'));

  it('saves the graphs with the collection: reopened, it loads them and answers exactly as before', async () => {
    const { root, store, collection } = await filledStore();
    await collection.delete(['item-5', 'item-6']);
    await collection.upsert([point(7, 'games'), { ...point(8, 'movies') }]);
    const before = await answers(collection);
    await store.close();

    const reopened = await new EmbeddedVectorStore(root).collection('items', dims);
    assert.deepEqual(reopened.graphsOnOpen, { loaded: ['games', 'movies'], updated: [], rebuilt: [] });
    assert.deepEqual(await answers(reopened), before);
    assert.equal(await reopened.count(), LARGE + 100 - 2);
    // Only the files of the last snapshot are left: collection.json, two vector files, two graphs per domain.
    const files = (await readdir(path.join(root, 'items'))).sort();
    assert.equal(files.length, 7, files.join(', '));
    assert.equal(files.filter((file) => file.endsWith('.usearch')).length, 4);
  });

  it('brings graphs saved by an earlier flush up to date with the points written and deleted after it', async () => {
    const { root, collection, points } = await filledStore();
    await collection.flush();
    const firstGraphs = (await snapshotOf(root)).graphs;
    // Fewer changes than GRAPH_RESAVE_SHARE of the domain: the next flush keeps the saved graphs.
    const added = Array.from({ length: 40 }, (_, i) => point(200_000 + i, 'games'));
    const deleted = points.slice(0, 30).map((p) => p.id);
    await collection.upsert(added);
    await collection.delete(deleted);
    await collection.flush();
    assert.deepEqual((await snapshotOf(root)).graphs, firstGraphs);

    // Opened again without closing the first store (as after a crash).
    const reopened = await new EmbeddedVectorStore(root).collection('items', dims);
    assert.deepEqual(reopened.graphsOnOpen, { loaded: ['movies'], updated: ['games'], rebuilt: [] });
    const live = [...points.slice(30), ...added];
    assert.equal(await reopened.count('games'), LARGE - 30 + 40);
    await assertFollowsWrites(reopened, live, added, deleted);
  });

  it('rebuilds the graphs of a domain whose graph file is missing or damaged', async () => {
    const { root, store, points } = await filledStore();
    await store.close();
    const saved = await snapshotOf(root);
    const graphsOf = (domain: string) => saved.graphs.find((entry: any) => entry.domain === domain).files;
    // A file usearch itself would abort the process on: it must never be handed to usearch.
    await writeFile(path.join(root, 'items', graphsOf('games').semantic.file), 'garbage'.repeat(100));
    await rm(path.join(root, 'items', graphsOf('movies').recommendation.file));

    const reopened = await new EmbeddedVectorStore(root).collection('items', dims);
    assert.deepEqual(reopened.graphsOnOpen, { loaded: [], updated: [], rebuilt: ['games', 'movies'] });
    assert.ok(await recall(reopened, points, 'games') >= 0.95);
    assert.equal(await recall(reopened, points, 'movies'), 1);
    // The rebuilt graphs are saved by the next flush, and load from then on.
    await reopened.flush();
    const again = await new EmbeddedVectorStore(root).collection('items', dims);
    assert.deepEqual(again.graphsOnOpen, { loaded: ['games', 'movies'], updated: [], rebuilt: [] });
    assert.deepEqual(await answers(again), await answers(reopened));
  });

  it('rebuilds graphs saved with another scalar type (float32, before graphs held float16)', async () => {
    const { root, store, points } = await filledStore();
    await store.close();
    const saved = await snapshotOf(root);
    for (const entry of saved.graphs) for (const file of Object.values(entry.files) as { scalar?: string }[]) delete file.scalar;
    await writeFile(path.join(root, 'items', 'collection.json'), JSON.stringify(saved));

    const reopened = await new EmbeddedVectorStore(root).collection('items', dims);
    assert.deepEqual(reopened.graphsOnOpen, { loaded: [], updated: [], rebuilt: ['games', 'movies'] });
    assert.ok(await recall(reopened, points, 'games') >= 0.95);
  });

  it('renumbers a collection whose slots are mostly retired, and rebuilds its graphs', async () => {
    const { root, store, collection, points } = await filledStore();
    const movies = points.filter((p) => p.domain === 'movies');
    for (let round = 0; round < 60; round++) await collection.upsert(movies);
    await store.close();
    assert.ok((await snapshotOf(root)).nextSlot > 2 * points.length);

    const reopened = await new EmbeddedVectorStore(root).collection('items', dims);
    assert.deepEqual(reopened.graphsOnOpen, { loaded: [], updated: [], rebuilt: ['games', 'movies'] });
    assert.equal(await reopened.count(), points.length);
    assert.ok(await recall(reopened, points, 'games') >= 0.95);
    await reopened.flush();
    assert.equal((await snapshotOf(root)).nextSlot, points.length);
  });

  it('fills in bulk without graph inserts on the event loop, searches exactly meanwhile, then builds the graphs off it', async () => {
    const { root, store, collection, points } = await emptyStore();
    const added = Array.from({ length: 30 }, (_, i) => point(300_000 + i, 'games'));
    const deleted = points.slice(0, 20).map((p) => p.id);
    let bulkTurns = 0;
    let duringFill: string[] = [];
    let meanwhile: Promise<void> | undefined;
    await collection.fillInBulk(async () => {
      // A write in bulk only copies vectors: the whole batch fits one turn's write budget.
      ({ turns: bulkTurns } = await turnsDuring(() => collection.upsert(points)));
      // Before its graph exists the large domain is scanned exactly: the true top 10.
      const query = randomVector(5, 4);
      duringFill = (await collection.search({ using: 'recommendation', query, limit: 10, domains: ['games'] })).map((hit) => hit.id);
      const exact = points.filter((p) => p.domain === 'games')
        .map((p) => ({ id: p.id, score: p.vectors.recommendation.reduce((sum, x, i) => sum + x * query[i], 0) }))
        .sort((a, b) => b.score - a.score).slice(0, 10).map((e) => e.id);
      assert.deepEqual(duringFill, exact);
      // Writes that land while the graphs are being built, once this fill has returned.
      meanwhile = new Promise((resolve) => setImmediate(resolve)).then(async () => {
        await collection.upsert(added);
        await collection.delete(deleted);
      });
    });
    await meanwhile;
    assert.ok(bulkTurns <= 2, `a bulk upsert of ${points.length} points ran over ${bulkTurns} turns`);
    const perPointWrite = (dims.semantic + dims.recommendation) * GRAPH_WORK_PER_INSERTED_DIMENSION;
    assert.ok(points.length * perPointWrite > 20 * 2 ** 20, 'the same upsert outside a bulk fill would take many turns of graph inserts');

    const live = [...points.filter((p) => !deleted.includes(p.id)), ...added];
    assert.equal(await collection.count('games'), LARGE - 20 + 30);
    await assertFollowsWrites(collection, live, added, deleted);
    assert.equal(await recall(collection, live, 'movies'), 1);
    // The graphs built off the event loop are saved with the collection and load as they are; no build is left over.
    await store.close();
    assert.deepEqual((await snapshotOf(root)).graphs.map((entry: any) => entry.domain).sort(), ['games', 'movies']);
    assert.ok(!(await readdir(path.join(root, 'items'))).some((file) => file.startsWith('building-')));
    const reopened = await new EmbeddedVectorStore(root).collection('items', dims);
    assert.deepEqual(reopened.graphsOnOpen, { loaded: ['games', 'movies'], updated: [], rebuilt: [] });
    assert.ok(await recall(reopened, live, 'games') >= 0.95);
  });

  it('serves graphs built after a bulk fill as read-only views, and loads them at the first write to their domain', async () => {
    const { root, store, collection, points } = await emptyStore();
    await collection.fillInBulk(() => collection.upsert(points));
    // Nothing written since the fill: every domain's graphs are views of the files the worker saved.
    assert.deepEqual(collection.graphsViewed.sort(), ['games', 'movies']);
    assert.ok(await recall(collection, points, 'games') >= 0.95);
    // A write to one domain makes its graphs writable (loaded) and goes into them; the other stays a view.
    const added = Array.from({ length: 12 }, (_, i) => point(400_000 + i, 'games'));
    const deleted = points.slice(0, 7).map((p) => p.id);
    await collection.upsert(added);
    await collection.delete(deleted);
    assert.deepEqual(collection.graphsViewed, ['movies']);
    const live = [...points.filter((p) => !deleted.includes(p.id)), ...added];
    await assertFollowsWrites(collection, live, added, deleted);
    assert.equal(await recall(collection, live, 'movies'), 1);
    // Saved and reopened: the viewed graphs as they were built, the written ones brought up to date.
    await store.close();
    const reopened = await new EmbeddedVectorStore(root).collection('items', dims);
    assert.deepEqual([...reopened.graphsOnOpen.loaded, ...reopened.graphsOnOpen.updated].sort(), ['games', 'movies']);
    assert.deepEqual(reopened.graphsOnOpen.rebuilt, []);
    await assertFollowsWrites(reopened, live, added, deleted);
  });

  it('opens a collection saved before graphs were saved, and saves its graphs from then on', async () => {
    const { root, store, collection, points } = await filledStore();
    await store.close();
    // The earlier format: fixed vector file names, no slots, no graphs.
    const dir = path.join(root, 'items');
    const saved = await snapshotOf(root);
    for (const name of ['semantic', 'recommendation']) await rename(path.join(dir, saved.vectors[name]), path.join(dir, `${name}.f32`));
    await writeFile(path.join(dir, 'collection.json'), JSON.stringify({ dimensions: saved.dimensions, points: saved.points }));
    const before = await answers(collection);

    const reopened = await new EmbeddedVectorStore(root).collection('items', dims);
    assert.deepEqual(reopened.graphsOnOpen.rebuilt, ['games', 'movies']);
    assert.equal(await reopened.count(), points.length);
    // The small domain is searched exactly: the same answers; the large one through its new graph.
    const movies = (all: string[][]) => all.filter((_, i) => i % 4 >= 2);
    assert.deepEqual(movies(await answers(reopened)), movies(before));
    assert.ok(await recall(reopened, points, 'games') >= 0.95);
    await reopened.flush();
    assert.equal((await readdir(dir)).filter((file) => file.endsWith('.f32')).length, 2);
    assert.ok(!(await readdir(dir)).includes('semantic.f32'));
  });
});
