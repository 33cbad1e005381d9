/**
 * What every VectorStore must do, written once and run against each backend: call vectorStoreContract inside a
 * describe block of the backend's test file.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import type { VectorPoint, VectorStore } from '../../src/index/vector-index.js';
import { cosine, dot } from '../support/vectors.js';

export interface ContractBackend {
  /** Opens a store over the backend's storage; a store opened later sees what earlier ones wrote. */
  openStore(): VectorStore;
  /** Prefix of every collection the suite uses, which keeps them apart on a shared server. */
  collectionPrefix: string;
  /** Removes whatever the suite stored. */
  cleanUp(): Promise<void>;
}

export const dims = { semantic: 8, recommendation: 4 };

/** Deterministic pseudo-random vectors, so an exact brute-force ranking can be compared with the index's. */
export function randomVector(seed: number, dim: number): Float32Array {
  const vector = new Float32Array(dim);
  let state = seed * 2654435761 % 4294967296;
  for (let i = 0; i < dim; i++) {
    state = (state * 1664525 + 1013904223) % 4294967296;
    vector[i] = state / 4294967296 - 0.5;
  }
  return vector;
}

export function point(i: number, domain: string): VectorPoint {
  return { id: `item-${i}`, domain, vectors: { semantic: randomVector(i, 8), recommendation: randomVector(i + 1000, 4) } };
}


/** The best `limit` points by `score`, as an exact search would rank them. */
function bruteForce(points: readonly VectorPoint[], score: (p: VectorPoint) => number, limit: number) {
  return points.map((p) => ({ id: p.id, score: score(p) })).sort((a, b) => b.score - a.score).slice(0, limit);
}

export function vectorStoreContract(setUp: () => Promise<ContractBackend>): void {
  let backend: ContractBackend;
  const opened: VectorStore[] = [];
  const openStore = () => {
    const store = backend.openStore();
    opened.push(store);
    return store;
  };
  const name = (base: string) => `${backend.collectionPrefix}${base}`;

  before(async () => { backend = await setUp(); });
  after(async () => {
    for (const store of opened) await store.close();
    await backend.cleanUp();
  });

  it('ranks recommendation vectors by dot product within the requested domains', async () => {
    const collection = await openStore().collection(name('ranking'), dims);
    const points = Array.from({ length: 200 }, (_, i) => point(i, i % 2 === 0 ? 'games' : 'movies'));
    await collection.upsert(points);
    const query = randomVector(7777, 4);
    const hits = await collection.search({ using: 'recommendation', query, limit: 10, domains: ['games'] });
    const expected = bruteForce(points.filter((p) => p.domain === 'games'), (p) => dot(p.vectors.recommendation, query), 10);
    assert.deepEqual(hits.map((hit) => hit.id), expected.map((e) => e.id));
    hits.forEach((hit, i) => assert.ok(Math.abs(hit.score - expected[i].score) < 1e-5));
    assert.ok(hits.every((hit) => hit.domain === 'games'));
    assert.equal(await collection.count(), 200);
    assert.equal(await collection.count('movies'), 100);
  });

  it('ranks semantic vectors by cosine similarity', async () => {
    const collection = await openStore().collection(name('cosine'), dims);
    // Vectors of very different lengths: a dot-product ranking would differ from the cosine one.
    const points = Array.from({ length: 120 }, (_, i) => {
      const p = point(i, 'books');
      return { ...p, vectors: { ...p.vectors, semantic: p.vectors.semantic.map((x) => x * (1 + (i % 7) * 3)) } };
    });
    await collection.upsert(points);
    const query = randomVector(4242, 8);
    const hits = await collection.search({ using: 'semantic', query, limit: 15 });
    const expected = bruteForce(points, (p) => cosine(p.vectors.semantic, query), 15);
    assert.deepEqual(hits.map((hit) => hit.id), expected.map((e) => e.id));
    hits.forEach((hit, i) => assert.ok(Math.abs(hit.score - expected[i].score) < 1e-5));
  });

  it('searches the union of the requested domains, and nothing for an empty list or an unknown domain', async () => {
    const collection = await openStore().collection(name('domains'), dims);
    const domains = ['games', 'movies', 'books'];
    const points = Array.from({ length: 90 }, (_, i) => point(i, domains[i % 3]));
    await collection.upsert(points);
    const query = randomVector(99, 4);
    const hits = await collection.search({ using: 'recommendation', query, limit: 20, domains: ['games', 'books'] });
    const inDomains = points.filter((p) => p.domain !== 'movies');
    assert.deepEqual(hits.map((hit) => hit.id), bruteForce(inDomains, (p) => dot(p.vectors.recommendation, query), 20).map((e) => e.id));
    assert.deepEqual(new Set(hits.map((hit) => hit.domain)), new Set(['games', 'books']));
    assert.deepEqual(await collection.search({ using: 'recommendation', query, limit: 5, domains: [] }), []);
    assert.deepEqual(await collection.search({ using: 'recommendation', query, limit: 5, domains: ['music'] }), []);
  });

  it('never returns excluded or deleted points, and still fills the limit', async () => {
    const collection = await openStore().collection(name('exclusion'), dims);
    await collection.upsert(Array.from({ length: 50 }, (_, i) => point(i, 'games')));
    const query = randomVector(1, 8);
    const first = await collection.search({ using: 'semantic', query, limit: 5 });
    await collection.delete([first[0].id]);
    const excludeIds = new Set([first[1].id, first[2].id]);
    const hits = await collection.search({ using: 'semantic', query, limit: 45, excludeIds });
    assert.equal(hits.length, 45);
    const ids = new Set(hits.map((hit) => hit.id));
    assert.ok(!ids.has(first[0].id) && !ids.has(first[1].id) && !ids.has(first[2].id));
    assert.ok(ids.has(first[3].id));
  });

  it('scores exactly the ids it is given, within the domains and exclusions asked', async () => {
    const collection = await openStore().collection(name('ids'), dims);
    const points = [...Array.from({ length: 30 }, (_, i) => point(i, 'games')), ...Array.from({ length: 10 }, (_, i) => point(100 + i, 'books'))];
    await collection.upsert(points);
    const query = randomVector(3, 4);
    const given = points.filter((_, i) => i % 3 === 0);
    const ids = [...given.map((p) => p.id), 'never-stored'];
    const excludeIds = new Set([given[0].id]);
    const hits = await collection.search({ using: 'recommendation', query, limit: 4, domains: ['games'], excludeIds, ids });
    const wanted = given.filter((p) => p.domain === 'games' && !excludeIds.has(p.id));
    assert.deepEqual(hits.map((hit) => hit.id), bruteForce(wanted, (p) => dot(p.vectors.recommendation, query), 4).map((e) => e.id));
    const everywhere = await collection.search({ using: 'recommendation', query, limit: 100, ids });
    assert.deepEqual(everywhere.map((hit) => hit.id).sort(), given.map((p) => p.id).sort());
    assert.deepEqual(await collection.search({ using: 'recommendation', query, limit: 5, ids: [] }), []);
  });

  it('forgets deleted points everywhere, and ignores ids it does not have', async () => {
    const collection = await openStore().collection(name('delete'), dims);
    await collection.upsert(Array.from({ length: 10 }, (_, i) => point(i, 'games')));
    await collection.delete(['item-2', 'item-5', 'never-stored']);
    assert.equal(await collection.count(), 8);
    assert.equal(await collection.count('games'), 8);
    assert.deepEqual((await collection.retrieve(['item-2', 'item-3'], 'recommendation')).size, 1);
    assert.ok(!(await collection.listIds()).includes('item-5'));
    const hits = await collection.search({ using: 'recommendation', query: point(2, 'games').vectors.recommendation, limit: 10 });
    assert.equal(hits.length, 8);
    assert.ok(hits.every((hit) => hit.id !== 'item-2' && hit.id !== 'item-5'));
  });

  it('moves a point to its new domain when it is upserted again', async () => {
    const collection = await openStore().collection(name('move'), dims);
    await collection.upsert([point(1, 'games'), point(2, 'games')]);
    await collection.upsert([{ ...point(1, 'movies') }]);
    assert.equal(await collection.count('games'), 1);
    assert.equal(await collection.count('movies'), 1);
    const hits = await collection.search({ using: 'semantic', query: randomVector(1, 8), limit: 5, domains: ['games'] });
    assert.deepEqual(hits.map((hit) => hit.id), ['item-2']);
    assert.equal((await collection.retrieve(['item-1'], 'recommendation')).get('item-1')?.domain, 'movies');
  });

  it('retrieves the domain and the named vector of the ids it has, in the order asked', async () => {
    const collection = await openStore().collection(name('retrieve'), dims);
    await collection.upsert([point(1, 'games'), point(2, 'movies'), point(3, 'games')]);
    const stored = await collection.retrieve(['item-3', 'missing', 'item-1', 'item-3'], 'recommendation');
    assert.deepEqual([...stored.keys()], ['item-3', 'item-1']);
    assert.deepEqual(stored.get('item-3'), { domain: 'games', vector: randomVector(1003, 4) });
    assert.deepEqual(stored.get('item-1'), { domain: 'games', vector: randomVector(1001, 4) });
    // A semantic vector comes back pointing the same way; its length may be normalised (Qdrant's Cosine does).
    const semantic = (await collection.retrieve(['item-2'], 'semantic')).get('item-2');
    assert.equal(semantic?.domain, 'movies');
    assert.equal(semantic?.vector.length, 8);
    assert.ok(Math.abs(cosine(semantic!.vector, randomVector(2, 8)) - 1) < 1e-6);
    assert.equal((await collection.retrieve([], 'semantic')).size, 0);
    // Copies: what the caller does with them changes nothing stored, nor the other vectors of the same answer.
    stored.get('item-3')!.vector.fill(7);
    assert.deepEqual(stored.get('item-1')!.vector, randomVector(1001, 4));
    assert.deepEqual((await collection.retrieve(['item-3'], 'recommendation')).get('item-3')!.vector, randomVector(1003, 4));
  });

  it('retrieves into a buffer of the caller: the same vectors, as views of it, one after another', async () => {
    const collection = await openStore().collection(name('retrieve-into'), dims);
    await collection.upsert([point(1, 'games'), point(2, 'movies'), point(3, 'games')]);
    const into = new Float32Array(4 * 4).fill(-1);
    const stored = await collection.retrieve(['item-3', 'missing', 'item-1', 'item-2'], 'recommendation', into);
    assert.deepEqual([...stored.keys()], ['item-3', 'item-1', 'item-2']);
    assert.deepEqual([...stored.values()].map((found) => [found.vector.buffer === into.buffer, found.vector.byteOffset / 16]), [[true, 0], [true, 1], [true, 2]]);
    assert.deepEqual(into.subarray(0, 12), Float32Array.from([...randomVector(1003, 4), ...randomVector(1001, 4), ...randomVector(1002, 4)]));
    assert.deepEqual(stored.get('item-1'), { domain: 'games', vector: randomVector(1001, 4) });
    await assert.rejects(collection.retrieve(['item-1', 'item-2'], 'recommendation', new Float32Array(4)), RangeError);
  });

  it('counts, lists ids and lists the domains that have points', async () => {
    const collection = await openStore().collection(name('listing'), dims);
    assert.equal(await collection.count(), 0);
    assert.deepEqual(await collection.listIds(), []);
    assert.deepEqual(await collection.listDomains(), []);
    const points = Array.from({ length: 30 }, (_, i) => point(i, ['movies', 'games', 'books'][i % 3]));
    await collection.upsert(points);
    assert.deepEqual((await collection.listIds()).sort(), points.map((p) => p.id).sort());
    assert.deepEqual(await collection.listDomains(), ['books', 'games', 'movies']);
    await collection.delete(points.filter((p) => p.domain === 'books').map((p) => p.id));
    assert.deepEqual(await collection.listDomains(), ['games', 'movies']);
    assert.equal(await collection.count('books'), 0);
    assert.equal(await collection.count('games'), 10);
    assert.equal(await collection.count(), 20);
  });

  it('persists collections across a restart', async () => {
    const store = openStore();
    const collection = await store.collection(name('persisted'), dims);
    await collection.upsert(Array.from({ length: 30 }, (_, i) => point(i, 'games')));
    await collection.delete(['item-3']);
    await store.close();

    const reopened = await openStore().collection(name('persisted'), dims);
    assert.equal(await reopened.count(), 29);
    const vectors = await reopened.retrieve(['item-4', 'item-3'], 'recommendation');
    assert.deepEqual([...vectors.keys()], ['item-4']);
    assert.deepEqual(vectors.get('item-4'), { domain: 'games', vector: randomVector(1004, 4) });
    assert.ok((await openStore().listCollections()).includes(name('persisted')));
  });

  it('refuses to reopen a collection with other dimensions', async () => {
    const store = openStore();
    await (await store.collection(name('dimensions'), dims)).upsert([point(1, 'games')]);
    await store.close();
    await assert.rejects(openStore().collection(name('dimensions'), { semantic: 16, recommendation: 4 }), /semantic vectors of 8 dimensions, not 16/);
  });

  it('refuses vectors of the wrong size without storing anything', async () => {
    const collection = await openStore().collection(name('sizes'), dims);
    await collection.upsert([point(1, 'games')]);
    const bad = { id: 'bad', domain: 'games', vectors: { semantic: new Float32Array(3), recommendation: new Float32Array(4) } };
    await assert.rejects(collection.upsert([point(2, 'games'), bad]), /3 dimensions/);
    assert.equal(await collection.count(), 1);
  });

  it('lists and drops collections', async () => {
    const store = openStore();
    const collection = await store.collection(name('dropped'), dims);
    await collection.upsert([point(1, 'games')]);
    await collection.flush();
    assert.ok((await store.listCollections()).includes(name('dropped')));
    await store.dropCollection(name('dropped'));
    assert.ok(!(await store.listCollections()).includes(name('dropped')));
    await store.dropCollection(name('dropped'));
    assert.equal(await (await store.collection(name('dropped'), dims)).count(), 0);
  });

  it('keeps every write when flushes overlap each other and further writes', async () => {
    const store = openStore();
    const collection = await store.collection(name('overlap'), dims);
    const flushes: Promise<void>[] = [];
    for (let i = 0; i < 20; i++) {
      await collection.upsert([point(i, i % 2 ? 'games' : 'movies')]);
      flushes.push(collection.flush());
    }
    await Promise.all(flushes);
    const reopened = await openStore().collection(name('overlap'), dims);
    assert.equal(await reopened.count(), 20);
  });
}
