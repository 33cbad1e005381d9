import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PlatformError } from '../../src/errors.js';
import { EmbeddedVectorStore } from '../../src/index/embedded-vector-store.js';
import { reportingIndexFailures } from '../../src/index/index-failures.js';
import type { VectorPoint } from '../../src/index/vector-index.js';

const dims = { semantic: 3, recommendation: 2 };
const point = (id: string): VectorPoint => ({
  id, domain: 'games', vectors: { semantic: new Float32Array([1, 0, 0]), recommendation: new Float32Array([0, 1]) },
});

describe('reportingIndexFailures', () => {
  let root: string;
  before(async () => { root = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-index-failures-')); });
  after(() => rm(root, { recursive: true, force: true }));

  it('passes results through and reports a failing store operation as VECTOR_INDEX_UNAVAILABLE, with the cause', async () => {
    const store = new EmbeddedVectorStore(root);
    // A directory where the collection's record file goes: the collection opens, every flush fails.
    await mkdir(path.join(root, 'broken', 'collection.json', 'occupied'), { recursive: true });
    const collection = reportingIndexFailures(await store.collection('broken', dims));
    await collection.upsert([point('a'), point('b')]);
    assert.deepEqual((await collection.listIds()).sort(), ['a', 'b']);
    assert.equal((await collection.search({ using: 'recommendation', query: new Float32Array([0, 1]), limit: 1 }))[0].score, 1);
    await assert.rejects(collection.flush(), (error: unknown) => {
      assert.ok(error instanceof PlatformError);
      assert.equal(error.code, 'VECTOR_INDEX_UNAVAILABLE');
      assert.equal(error.message, 'the vector index failed: flush in collection broken');
      assert.match((error.cause as Error).message, /EISDIR/);
      return true;
    });
    await store.close().catch(() => undefined);
  });

  it('lets what a bulk fill itself throws pass unchanged: only the index\'s own failures are relabelled', async () => {
    const store = new EmbeddedVectorStore(root);
    const collection = reportingIndexFailures(await store.collection('fine', dims));
    const encoderFailure = new Error('the encoder crashed');
    await assert.rejects(collection.fillInBulk(async () => { throw encoderFailure; }), (error) => error === encoderFailure);
    const coded = new PlatformError('INVALID_BUNDLE', 'bad graph');
    await assert.rejects(collection.fillInBulk(async () => { throw coded; }), (error) => error === coded);
    assert.equal(await collection.fillInBulk(async () => { await collection.upsert([point('c')]); return 7; }), 7);
    assert.equal(await collection.count(), 1);
    await store.close();
  });
});
