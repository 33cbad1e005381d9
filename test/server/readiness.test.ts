/**
 * /readyz turns unready, with the reason, when the process cannot serve catalogue writes (a failed write whose
 * effects could not be repaired yet), and ready again once it can (issue #12, finding 1: /readyz said ready while
 * every write failed). Real tiny bundle, PGlite, embedded index; the index's upsert is made to fail.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestPlatform } from '../support/http-platform.js';

const UPSERT = 'mutation($items: [ItemInput!]!) { upsertItems(items: $items) { count } }';

describe('readiness', () => {
  let api: TestPlatform;
  before(async () => {
    api = await TestPlatform.start();
  });
  after(() => api?.destroy());

  const readyz = async () => {
    const response = await fetch(new URL('/readyz', api.url));
    return { status: response.status, body: (await response.json()) as { status: string; reason?: string } };
  };

  it('is unready while catalogue writes are suspended, and ready once they catch up', async () => {
    assert.equal((await readyz()).status, 200);
    const collection = api.platform.collection;
    const upsert = collection.upsert;
    collection.upsert = async () => {
      throw new Error('the index is down');
    };
    try {
      const failed = await api.mutate(UPSERT, { items: [{ id: 'a', domain: 'd', title: 'Tetris' }] });
      assert.equal(failed.errors?.[0]?.extensions?.code, 'INTERNAL_SERVER_ERROR');
      const unready = await readyz();
      assert.equal(unready.status, 503);
      assert.match(unready.body.reason ?? '', /catalogue writes are suspended/);
      assert.doesNotMatch(JSON.stringify(unready.body), /index is down/, 'details stay in the log');
    } finally {
      collection.upsert = upsert;
    }
    const next = await api.mutate(UPSERT, { items: [{ id: 'b', domain: 'd', title: 'Doom' }] });
    assert.deepEqual(next.data, { upsertItems: { count: 1 } }, JSON.stringify(next.errors));
    assert.equal((await readyz()).status, 200);
    assert.deepEqual((await collection.listIds()).sort(), ['a', 'b'], 'the failed write was repaired');
  });
});
