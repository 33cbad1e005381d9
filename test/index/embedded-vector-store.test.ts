import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { EXACT_SEARCH_MAX_POINTS, EmbeddedVectorStore } from '../../src/index/embedded-vector-store.js';
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
