import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { describe, it } from 'node:test';
import {
  QdrantVectorStore,
  checkVectorsConfig,
  describeQdrantError,
  pointIdOf,
  pointsPerUpsert,
  searchFilter,
  uuidV5,
  vectorsConfig,
} from '../../src/index/qdrant-vector-store.js';
import { dims, vectorStoreContract } from './vector-store-contract.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('Qdrant point ids', () => {
  it('are RFC 4122 version-5 UUIDs', () => {
    // Python: uuid.uuid5(uuid.NAMESPACE_DNS, 'python.org')
    assert.equal(uuidV5('python.org', '6ba7b810-9dad-11d1-80b4-00c04fd430c8'), '886313e1-3b8a-5372-9b90-0c9aee199e5d');
  });

  it('stay the same for an item id, across runs', () => {
    // Pinned (computed with Python's uuid.uuid5): a change would orphan every point already stored in Qdrant.
    assert.equal(pointIdOf('item-1'), '03007255-7056-57f3-94f0-5590d7257f20');
    assert.equal(pointIdOf('B00005N5PF'), '82af2392-1f24-5f63-aee4-4ab7da0d6c44');
    assert.equal(pointIdOf('é ☃'), 'e44cc698-3308-5c3f-be4e-d609fd998d15');
    assert.equal(pointIdOf('item-1'), pointIdOf('item-1'));
  });

  it('differ between item ids', () => {
    const ids = [...Array.from({ length: 20000 }, (_, i) => `item-${i}`), '', ' ', 'Item-1', 'item-1 ', 'item–1'];
    const pointIds = ids.map(pointIdOf);
    assert.equal(new Set(pointIds).size, ids.length);
    assert.ok(pointIds.every((id) => UUID.test(id)));
  });
});

describe('Qdrant upsert batches', () => {
  it('carry 256 points, fewer when vectors are long', () => {
    assert.equal(pointsPerUpsert({ semantic: 896, recommendation: 128 }), 256);
    assert.equal(pointsPerUpsert({ semantic: 4096, recommendation: 256 }), 74);
    assert.equal(pointsPerUpsert({ semantic: 1_000_000, recommendation: 1 }), 1);
  });

  it('stay near 8 MiB, a quarter of Qdrant\'s default request limit, even with the longest JSON numbers', () => {
    const dimensions = { semantic: 4096, recommendation: 256 };
    // A float32 sent as a double in decimal: 17 significant digits after five zeros.
    const longest = Math.fround(-0.0000012345678);
    const vectors = { semantic: Array(4096).fill(longest), recommendation: Array(256).fill(longest) };
    const batch = Array.from({ length: pointsPerUpsert(dimensions) }, (_, i) => ({ id: pointIdOf(`item-${i}`), vector: vectors, payload: { id: `item-${i}`, domain: 'games' } }));
    assert.ok(JSON.stringify({ points: batch }).length < 9 * 1024 * 1024);
  });
});

describe('Qdrant search filter', () => {
  it('filters nothing when no domain or exclusion is asked for', () => {
    assert.equal(searchFilter({}), undefined);
    assert.equal(searchFilter({ excludeIds: new Set() }), undefined);
  });

  it('keeps the requested domains', () => {
    assert.deepEqual(searchFilter({ domains: ['games', 'movies'] }), {
      must: [{ key: 'domain', match: { any: ['games', 'movies'] } }],
    });
  });

  it('excludes item ids by their payload id', () => {
    assert.deepEqual(searchFilter({ excludeIds: new Set(['item-1', 'item-2']) }), {
      must_not: [{ key: 'id', match: { any: ['item-1', 'item-2'] } }],
    });
  });

  it('keeps only the given item ids, by their payload id', () => {
    assert.deepEqual(searchFilter({ domains: ['games'], ids: ['item-1', 'item-2'] }), {
      must: [{ key: 'domain', match: { any: ['games'] } }, { key: 'id', match: { any: ['item-1', 'item-2'] } }],
    });
  });

  it('combines both', () => {
    assert.deepEqual(searchFilter({ domains: ['games'], excludeIds: new Set(['item-1']) }), {
      must: [{ key: 'domain', match: { any: ['games'] } }],
      must_not: [{ key: 'id', match: { any: ['item-1'] } }],
    });
  });
});

describe('Qdrant collection vectors', () => {
  it('are a Cosine semantic vector and a Dot recommendation vector of the collection dimensions', () => {
    assert.deepEqual(vectorsConfig(dims), {
      semantic: { size: 8, distance: 'Cosine' },
      recommendation: { size: 4, distance: 'Dot' },
    });
    checkVectorsConfig('items_v1', vectorsConfig(dims), dims);
  });

  it('of an existing collection must match what the store writes', () => {
    assert.throws(() => checkVectorsConfig('items_v1', vectorsConfig(dims), { semantic: 16, recommendation: 4 }),
      /collection items_v1 stores semantic vectors of 8 dimensions, not 16/);
    assert.throws(() => checkVectorsConfig('items_v1', { ...vectorsConfig(dims), recommendation: { size: 4, distance: 'Cosine' } }, dims),
      /collection items_v1 compares recommendation vectors by Cosine, not Dot/);
    assert.throws(() => checkVectorsConfig('items_v1', { size: 8, distance: 'Cosine' }, dims), /collection items_v1 has no semantic vector/);
  });
});

/** A local port nothing listens on: connecting to it is refused at once. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('Qdrant errors', () => {
  it('say what Qdrant answered', () => {
    // The shape of the client's HTTP errors: statusText as message, the status and the parsed body alongside.
    const notFound = Object.assign(new Error('Not Found'), {
      status: 404,
      statusText: 'Not Found',
      data: { status: { error: 'Not found: Collection `items_v1` doesn\'t exist!' }, time: 0.0001 },
    });
    assert.equal(describeQdrantError(notFound), '404 Not Found: Not found: Collection `items_v1` doesn\'t exist!');
    const refused = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }) });
    assert.equal(describeQdrantError(refused), 'fetch failed (connect ECONNREFUSED 127.0.0.1:1)');
  });

  it('name the collection and the server', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const store = new QdrantVectorStore({ url, checkCompatibility: false });
    await assert.rejects(store.collection('items_v1', dims), {
      message: `Qdrant collection items_v1 at ${url}: existence check failed: fetch failed (connect ECONNREFUSED ${url.slice(7)})`,
    });
    await assert.rejects(store.listCollections(), { message: `Qdrant at ${url}: listing collections failed: fetch failed (connect ECONNREFUSED ${url.slice(7)})` });
  });
});

const qdrantUrl = process.env.QDRANT_URL;
const skipWithoutServer = qdrantUrl ? false : 'QDRANT_URL is not set: no Qdrant server to run the contract against';

describe('QdrantVectorStore', { skip: skipWithoutServer }, () => {
  // Collections of this run only, dropped afterwards: the server may hold other collections.
  const collectionPrefix = `test_${randomBytes(4).toString('hex')}_`;
  const open = () => new QdrantVectorStore({ url: qdrantUrl!, apiKey: process.env.QDRANT_API_KEY });
  const dropOurCollections = async () => {
    const store = open();
    for (const name of await store.listCollections()) {
      if (name.startsWith(collectionPrefix)) await store.dropCollection(name);
    }
  };

  vectorStoreContract(async () => ({ openStore: open, collectionPrefix, cleanUp: dropOurCollections }));

  it('names the collection when Qdrant refuses a request', async () => {
    const store = open();
    const collection = await store.collection(`${collectionPrefix}vanished`, dims);
    await store.dropCollection(collection.name);
    await assert.rejects(collection.count(), new RegExp(`Qdrant collection ${collection.name} at .*: count failed: 404`));
  });
});
