/**
 * The ranking itself (src/recommend/recommender.ts), below the resolvers: what a history, a user or an item is
 * turned into, which items may come back, and how each refusal is coded. Real components: the tiny bundle's
 * sequence model (user vectors), the embedded vector index, PGlite for recorded histories; the catalogue's vectors
 * are made up and written straight into the collection, so every expected ranking is computed here independently.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { random } from '../../bench/lib/catalogue.js';
import { ItemReadModel } from '../../src/catalog/item-read-model.js';
import { openDatabase, upsertItems, type Database } from '../../src/db/index.js';
import { PlatformError } from '../../src/errors.js';
import { Interactions } from '../../src/events/interactions.js';
import { EmbeddedVectorStore } from '../../src/index/embedded-vector-store.js';
import type { VectorCollection, VectorPoint } from '../../src/index/vector-index.js';
import { RecommendationModel } from '../../src/inference/recommendation-model.js';
import { AttributeMatcher } from '../../src/recommend/attribute-filter.js';
import { Recommender } from '../../src/recommend/recommender.js';
import { tinyBundle } from '../support/fixtures.js';
import { cosine, dot } from '../support/vectors.js';


const LIMITS = { maxResults: 20, maxHistoryInput: 30 };
const DOMAINS = { games: 60, books: 40 };

/** Rejects with a PlatformError of `code`. */
async function refuses(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => error instanceof PlatformError && error.code === code);
}

describe('Recommender', () => {
  let dir: string;
  let db: Database;
  let model: RecommendationModel;
  let recommender: Recommender;
  let readModel: ItemReadModel;
  let collection: VectorCollection;
  const vectors = new Map<string, { domain: string; semantic: Float32Array; recommendation: Float32Array }>();

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-recommender-'));
    db = await openDatabase({ dataDir: dir });
    model = await RecommendationModel.load(tinyBundle());
    const next = random(7);
    const vector = (n: number) => Float32Array.from({ length: n }, () => next() * 2 - 1);
    const points: VectorPoint[] = [];
    for (const [domain, size] of Object.entries(DOMAINS)) {
      for (let i = 0; i < size; i++) {
        const own = { domain, semantic: vector(model.dimensions.semantic), recommendation: vector(model.dimensions.recommendation) };
        vectors.set(`${domain}:${i}`, own);
        points.push({ id: `${domain}:${i}`, domain, vectors: own });
      }
    }
    const rows = [...vectors].map(([id, { domain }]) => ({ id, domain, title: id, attributes: {} }));
    await upsertItems(db.prisma, rows);
    readModel = await ItemReadModel.load(db);
    collection = await new EmbeddedVectorStore(path.join(dir, 'vectors')).collection('items_test', model.dimensions);
    await collection.upsert(points);
    const interactions = new Interactions(db, readModel, { maxInteractionsPerBatch: 100 });
    await interactions.record(['games:3', 'books:1', 'games:8'].map((itemId) => ({ userId: 'ana', itemId })));
    await db.prisma.user.create({ data: { id: 'newcomer' } });
    recommender = new Recommender(model, collection, readModel, interactions, LIMITS, new AttributeMatcher(readModel));
  });

  after(async () => {
    await model?.release();
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The ids of a domain ranked by `score`, best first, `skip` left out. */
  function ranked(domain: string, score: (id: string) => number, first: number, skip: readonly string[] = []): string[] {
    return [...vectors].filter(([id, v]) => v.domain === domain && !skip.includes(id))
      .map(([id]) => ({ id, score: score(id) }))
      .sort((a, b) => b.score - a.score)
      .slice(0, first)
      .map((hit) => hit.id);
  }

  const userVectorOf = (history: readonly string[]) =>
    model.userVector(history.slice(-model.maxHistory).map((id) => vectors.get(id)!.recommendation));

  it("ranks the last history item's domain by dot product with the user vector, the history left out", async () => {
    const history = ['books:2', 'games:5', 'games:11'];
    const user = await userVectorOf(history);
    const list = await recommender.recommend({ history }, { first: 10 });
    assert.equal(list.domain, 'games');
    assert.deepEqual(list.items.map((hit) => hit.id), ranked('games', (id) => dot(vectors.get(id)!.recommendation, user), 10, history));
    list.items.forEach((hit) => assert.ok(Math.abs(hit.score - dot(vectors.get(hit.id)!.recommendation, user)) < 1e-4));
  });

  it('keeps the history in with includeHistory, and leaves out excludeIds', async () => {
    const history = ['games:1', 'games:2'];
    const user = await userVectorOf(history);
    const all = ranked('games', (id) => dot(vectors.get(id)!.recommendation, user), DOMAINS.games);
    const withHistory = await recommender.recommend({ history }, { first: 20, filter: { includeHistory: true } });
    assert.deepEqual(withHistory.items.map((hit) => hit.id), all.slice(0, 20));
    const excluded = all.filter((id) => !history.includes(id)).slice(0, 3);
    const list = await recommender.recommend({ history }, { first: 5, filter: { excludeIds: excluded } });
    assert.deepEqual(list.items.map((hit) => hit.id), all.filter((id) => !history.includes(id) && !excluded.includes(id)).slice(0, 5));
  });

  it('feeds only the most recent maxHistory items to the sequence model, yet leaves every history item out', async () => {
    const history = Array.from({ length: model.maxHistory + 4 }, (_, i) => `games:${i}`);
    const user = await userVectorOf(history);
    const list = await recommender.recommend({ history }, { first: 10 });
    assert.deepEqual(list.items.map((hit) => hit.id), ranked('games', (id) => dot(vectors.get(id)!.recommendation, user), 10, history));
    const reason = await list.contributions(list.items[0].id);
    assert.deepEqual(reason.map((c) => c.id).sort(), history.slice(-model.maxHistory).sort());
  });

  it("ranks a user's recorded history as the same explicit history", async () => {
    const recorded = await recommender.recommend({ userId: 'ana' }, { first: 8 });
    const explicit = await recommender.recommend({ history: ['games:3', 'books:1', 'games:8'] }, { first: 8 });
    assert.deepEqual(recorded.items, explicit.items);
    assert.equal(recorded.domain, 'games');
  });

  it('ranks one user vector in each asked domain, once per distinct domain', async () => {
    const history = ['games:4', 'books:9'];
    const user = await userVectorOf(history);
    const lists = await recommender.recommendAcrossDomains({ history }, { first: 4, domains: ['games', 'books', 'games'] });
    assert.deepEqual(lists.map((list) => list.domain), ['games', 'books']);
    for (const list of lists) {
      assert.deepEqual(list.items.map((hit) => hit.id), ranked(list.domain, (id) => dot(vectors.get(id)!.recommendation, user), 4, history));
    }
  });

  it('finds similar items by cosine of the semantic vectors, in the own domain unless another is asked for', async () => {
    const query = vectors.get('books:5')!.semantic;
    const own = await recommender.similarItems('books:5', { first: 6 });
    assert.equal(own.domain, 'books');
    assert.deepEqual(own.items.map((hit) => hit.id), ranked('books', (id) => cosine(vectors.get(id)!.semantic, query), 6, ['books:5']));
    const other = await recommender.similarItems('books:5', { first: 6, domain: 'games', filter: { excludeIds: ['games:0'] } });
    assert.deepEqual(other.items.map((hit) => hit.id), ranked('games', (id) => cosine(vectors.get(id)!.semantic, query), 6, ['games:0']));
  });

  it("explains an item by how much its score drops without each history item, largest first", async () => {
    const history = ['games:20', 'games:21', 'games:22'];
    const list = await recommender.recommend({ history }, { first: 3 });
    const item = vectors.get(list.items[0].id)!.recommendation;
    const full = dot(await userVectorOf(history), item);
    const expected = await Promise.all(history.map(async (id) => ({
      id, weight: full - dot(await userVectorOf(history.filter((other) => other !== id)), item),
    })));
    const reason = await list.contributions(list.items[0].id);
    assert.deepEqual(reason.map((c) => c.id), expected.sort((a, b) => b.weight - a.weight).map((c) => c.id));
    reason.forEach((c) => assert.ok(Math.abs(c.weight - expected.find((e) => e.id === c.id)!.weight) < 1e-4));
    const single = await recommender.recommend({ history: ['games:20'] }, { first: 1 });
    assert.deepEqual(await single.contributions(single.items[0].id), [{ id: 'games:20', weight: 1 }]);
  });

  it('refuses what it cannot rank, each with its own code', async () => {
    await refuses(recommender.recommend({ history: [] }, { first: 5 }), 'EMPTY_HISTORY');
    await refuses(recommender.recommend({ userId: 'newcomer' }, { first: 5 }), 'EMPTY_HISTORY');
    await refuses(recommender.recommend({ userId: 'nobody' }, { first: 5 }), 'UNKNOWN_USER');
    const long = Array.from({ length: LIMITS.maxHistoryInput + 1 }, (_, i) => `games:${i}`);
    await refuses(recommender.recommend({ history: long }, { first: 5 }), 'HISTORY_TOO_LONG');
    await refuses(recommender.recommend({ history: ['games:1', 'games:999'] }, { first: 5 }), 'UNKNOWN_ITEM');
    await refuses(recommender.similarItems('books:999', { first: 5 }), 'UNKNOWN_ITEM');
    for (const first of [0, -1, 1.5, LIMITS.maxResults + 1]) {
      await refuses(recommender.recommend({ history: ['games:1'] }, { first }), 'LIMIT_EXCEEDED');
    }
    await refuses(recommender.recommend({ history: ['games:1'] }, { first: 5, domain: 'music' }), 'UNKNOWN_DOMAIN');
    await refuses(recommender.recommendAcrossDomains({ history: ['games:1'] }, { first: 5, domains: [] }), 'BAD_USER_INPUT');
    await refuses(recommender.similarItems('games:1', { first: 5, domain: 'music' }), 'UNKNOWN_DOMAIN');
  });

  it('asks the catalogue whether an item exists, and says so when only its vectors are missing', async () => {
    // In the index but not in the catalogue: unknown, whatever the index holds.
    const stray = { domain: 'games', semantic: vectors.get('games:0')!.semantic, recommendation: vectors.get('games:0')!.recommendation };
    await collection.upsert([{ id: 'games:stray', domain: 'games', vectors: stray }]);
    await refuses(recommender.recommend({ history: ['games:stray'] }, { first: 5 }), 'UNKNOWN_ITEM');
    await refuses(recommender.similarItems('games:stray', { first: 5 }), 'UNKNOWN_ITEM');
    await collection.delete(['games:stray']);
    // In the catalogue but not (yet) in this version's index: not reported as absent from the catalogue.
    readModel.put([{ id: 'games:pending', domain: 'games', title: 'Pending', attributes: {} }]);
    try {
      await refuses(recommender.recommend({ history: ['games:1', 'games:pending'] }, { first: 5 }), 'ITEM_NOT_INDEXED');
      await refuses(recommender.similarItems('games:pending', { first: 5 }), 'ITEM_NOT_INDEXED');
    } finally {
      readModel.remove(['games:pending']);
    }
  });
});
