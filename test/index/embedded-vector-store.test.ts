import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EmbeddedVectorStore } from '../../src/index/embedded-vector-store.js';
import type { VectorPoint } from '../../src/index/vector-index.js';

const dims = { semantic: 8, recommendation: 4 };

/** Deterministic pseudo-random vectors, so an exact brute-force ranking can be compared with the index's. */
function randomVector(seed: number, dim: number): Float32Array {
  const vector = new Float32Array(dim);
  let state = seed * 2654435761 % 4294967296;
  for (let i = 0; i < dim; i++) {
    state = (state * 1664525 + 1013904223) % 4294967296;
    vector[i] = state / 4294967296 - 0.5;
  }
  return vector;
}

function point(i: number, domain: string): VectorPoint {
  return { id: `item-${i}`, domain, vectors: { semantic: randomVector(i, 8), recommendation: randomVector(i + 1000, 4) } };
}

const dot = (a: Float32Array, b: Float32Array) => a.reduce((sum, x, i) => sum + x * b[i], 0);

describe('EmbeddedVectorStore', () => {
  let root: string;
  before(async () => { root = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-index-')); });
  after(async () => { await rm(root, { recursive: true, force: true }); });

  it('ranks recommendation vectors by dot product within the requested domains', async () => {
    const store = new EmbeddedVectorStore(root);
    const collection = await store.collection('ranking', dims);
    const points = Array.from({ length: 200 }, (_, i) => point(i, i % 2 === 0 ? 'games' : 'movies'));
    await collection.upsert(points);
    const query = randomVector(7777, 4);
    const hits = await collection.search({ using: 'recommendation', query, limit: 10, domains: ['games'] });
    const expected = points
      .filter((p) => p.domain === 'games')
      .map((p) => ({ id: p.id, score: dot(p.vectors.recommendation, query) }))
      .sort((a, b) => b.score - a.score)
      .slice(0, 10);
    assert.deepEqual(hits.map((hit) => hit.id), expected.map((e) => e.id));
    hits.forEach((hit, i) => assert.ok(Math.abs(hit.score - expected[i].score) < 1e-5));
    assert.ok(hits.every((hit) => hit.domain === 'games'));
    assert.equal(await collection.count(), 200);
    assert.equal(await collection.count('movies'), 100);
  });

  it('never returns excluded or deleted points, and still fills the limit', async () => {
    const store = new EmbeddedVectorStore(root);
    const collection = await store.collection('exclusion', dims);
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

  it('moves a point to its new domain when it is upserted again', async () => {
    const store = new EmbeddedVectorStore(root);
    const collection = await store.collection('move', dims);
    await collection.upsert([point(1, 'games'), point(2, 'games')]);
    await collection.upsert([{ ...point(1, 'movies') }]);
    assert.equal(await collection.count('games'), 1);
    assert.equal(await collection.count('movies'), 1);
    const hits = await collection.search({ using: 'semantic', query: randomVector(1, 8), limit: 5, domains: ['games'] });
    assert.deepEqual(hits.map((hit) => hit.id), ['item-2']);
  });

  it('persists collections across a restart', async () => {
    const store = new EmbeddedVectorStore(root);
    const collection = await store.collection('persisted', dims);
    await collection.upsert(Array.from({ length: 30 }, (_, i) => point(i, 'games')));
    await collection.delete(['item-3']);
    await store.close();

    const reopened = await new EmbeddedVectorStore(root).collection('persisted', dims);
    assert.equal(await reopened.count(), 29);
    const vectors = await reopened.retrieve(['item-4', 'item-3'], 'recommendation');
    assert.deepEqual([...vectors.keys()], ['item-4']);
    assert.deepEqual(vectors.get('item-4'), { domain: 'games', vector: randomVector(1004, 4) });
    assert.ok((await new EmbeddedVectorStore(root).listCollections()).includes('persisted'));
  });

  it('refuses vectors of the wrong size without storing anything', async () => {
    const store = new EmbeddedVectorStore(root);
    const collection = await store.collection('sizes', dims);
    await collection.upsert([point(1, 'games')]);
    const bad = { id: 'bad', domain: 'games', vectors: { semantic: new Float32Array(3), recommendation: new Float32Array(4) } };
    await assert.rejects(collection.upsert([point(2, 'games'), bad]), /3 dimensions/);
    assert.equal(await collection.count(), 1);
  });
});
