/**
 * Hostile and malformed arguments over real HTTP (issue #12, findings 1, 3 and 4): each is answered with its own
 * code, never INTERNAL_SERVER_ERROR, stores nothing, and leaves later valid writes working. A real tiny bundle and
 * PGlite in a temp dir.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadSettings } from '../../src/config.js';
import { API_KEY, TestPlatform, errorCode, type GraphQLResponse } from '../support/http-platform.js';

const UPSERT = 'mutation($items: [ItemInput!]!) { upsertItems(items: $items) { count } }';
const DELETE = 'mutation($ids: [ID!]!) { deleteItems(ids: $ids) { count } }';
const RECORD = 'mutation($e: [InteractionInput!]!) { recordInteractions(interactions: $e) { count } }';

const item = (id: string, extra: Record<string, unknown> = {}) => ({ id, domain: 'video_games', title: `Game ${id}`, ...extra });

function nested(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: 1 };
  for (let i = 1; i < depth; i++) value = { a: value };
  return value;
}

/** The JSON text of attributes nested `depth` deep (built as text: JSON.stringify itself overflows on it). */
const nestedJson = (depth: number) => `${'{"a":'.repeat(depth - 1)}{"leaf":1}${'}'.repeat(depth - 1)}`;

describe('argument checks at the API boundary', () => {
  let api: TestPlatform;

  const stored = () => api.stored();

  async function refused(text: string, variables: Record<string, unknown> | string, code: string): Promise<GraphQLResponse> {
    const before = await stored();
    const body = typeof variables === 'string' ? `{"query":${JSON.stringify(text)},"variables":${variables}}` : JSON.stringify({ query: text, variables });
    const http = await fetch(api.url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': API_KEY }, body });
    const response = (await http.json()) as GraphQLResponse;
    assert.equal(errorCode(response), code, `${text} ${body.slice(0, 200)}: ${JSON.stringify(response.errors)}`);
    assert.equal(await stored(), before, 'a refused request stores nothing');
    return response;
  }

  before(async () => {
    api = await TestPlatform.start();
    const loaded = await api.mutate(UPSERT, { items: [item('a'), item('b'), item('c')] });
    assert.deepEqual(loaded.data, { upsertItems: { count: 3 } }, JSON.stringify(loaded.errors));
    await api.mutate(RECORD, { e: [{ userId: 'u1', itemId: 'a', timestamp: '5' }] });
  });
  after(() => api?.destroy());

  it('finding 1: an id with NUL is refused, and catalogue writes keep working afterwards', async () => {
    await refused(UPSERT, { items: [item('x\u0000y')] }, 'INVALID_CHARACTERS');
    await refused(DELETE, { ids: ['a\u0000'] }, 'INVALID_CHARACTERS');
    const upsert = await api.mutate(UPSERT, { items: [item('d')] });
    assert.deepEqual(upsert.data, { upsertItems: { count: 1 } }, JSON.stringify(upsert.errors));
    const removed = await api.mutate(DELETE, { ids: ['d'] });
    assert.deepEqual(removed.data, { deleteItems: { count: 1 } }, JSON.stringify(removed.errors));
    await stored();
  });

  it('finding 3: NUL and other bad characters anywhere are INVALID_CHARACTERS', async () => {
    await refused(UPSERT, { items: [item('e', { title: 'Halo\u0000' })] }, 'INVALID_CHARACTERS');
    await refused(UPSERT, { items: [item('e', { attributes: { brand: 'Nin\u0000tendo' } })] }, 'INVALID_CHARACTERS');
    await refused(UPSERT, { items: [item('e', { attributes: { 'br\u0000and': 'x' } })] }, 'INVALID_CHARACTERS');
    await refused(UPSERT, { items: [item('e', { attributes: { tags: ['ok', 'b\u0000d'] } })] }, 'INVALID_CHARACTERS');
    await refused(UPSERT, { items: [item('e', { domain: 'video\u0000games' })] }, 'INVALID_CHARACTERS');
    await refused(UPSERT, { items: [item('e', { title: 'half a pair \ud83d' })] }, 'INVALID_CHARACTERS');
    await refused(UPSERT, { items: [item('e', { domain: 'line\nbreak' })] }, 'INVALID_CHARACTERS');
    await refused(RECORD, { e: [{ userId: 'u\u0000', itemId: 'a' }] }, 'INVALID_CHARACTERS');
    await refused(RECORD, { e: [{ userId: 'u1', itemId: 'a\u0000' }] }, 'INVALID_CHARACTERS');
    // Reads that would reach the database with it, too.
    for (const [text, variables] of [
      ['query($id: ID!) { user(id: $id) { id } }', { id: 'u\u0000' }],
      ['query($d: String!) { itemsByDomain(domain: $d) { edges { cursor } } }', { d: 'video\u0000' }],
      ['query($a: String) { itemsByDomain(domain: "video_games", after: $a) { edges { cursor } } }', { a: Buffer.from('a\u0000').toString('base64url') }],
      ['query($u: ID) { recommendations(userId: $u) { domain } }', { u: 'u\u0000' }],
    ] as const) {
      assert.equal(errorCode(await api.query(text, variables)), 'INVALID_CHARACTERS', text);
    }
    // Titles may hold tabs and line breaks.
    const ok = await api.mutate(UPSERT, { items: [item('tabbed', { title: 'Tab\there\nand there' })] });
    assert.deepEqual(ok.data, { upsertItems: { count: 1 } }, JSON.stringify(ok.errors));
  });

  it('finding 3: a timestamp beyond a 64-bit integer is VALUE_OUT_OF_RANGE', async () => {
    await refused(RECORD, { e: [{ userId: 'u1', itemId: 'a', timestamp: '1' + '0'.repeat(30) }] }, 'VALUE_OUT_OF_RANGE');
    await refused(RECORD, { e: [{ userId: 'u1', itemId: 'a', timestamp: '9223372036854775808' }] }, 'VALUE_OUT_OF_RANGE');
    await refused(RECORD, { e: [{ userId: 'u1', itemId: 'a', timestamp: '1e30' }] }, 'BAD_USER_INPUT');
    const largest = await api.mutate(RECORD, { e: [{ userId: 'u1', itemId: 'a', timestamp: '9223372036854775807' }] });
    assert.deepEqual(largest.data, { recordInteractions: { count: 1 } }, JSON.stringify(largest.errors));
  });

  it('finding 3: attributes nested 5,000 deep are NESTING_TOO_DEEP, as variables and as literals', async () => {
    await refused(UPSERT, `{"items":[{"id":"deep","domain":"d","title":"t","attributes":${nestedJson(5000)}}]}`, 'NESTING_TOO_DEEP');
    const literal = `mutation { upsertItems(items: [{ id: "deep", domain: "d", title: "t", attributes: ${'{ a: '.repeat(5000)}1${' }'.repeat(5000)} }]) { count } }`;
    await refused(literal, {}, 'NESTING_TOO_DEEP');
    await refused(UPSERT, { items: [item('deep', { attributes: nested(9) })] }, 'NESTING_TOO_DEEP');
    const deepest = await api.mutate(UPSERT, { items: [item('deep', { attributes: nested(8) })] });
    assert.deepEqual(deepest.data, { upsertItems: { count: 1 } }, JSON.stringify(deepest.errors));
  });

  it('finding 4: lengths are limited per field, timestamps are not negative, an empty delete is refused', async () => {
    await refused(UPSERT, { items: [item('i'.repeat(10_000))] }, 'VALUE_TOO_LONG');
    await refused(UPSERT, { items: [item('big', { title: 't'.repeat(1 << 20) })] }, 'VALUE_TOO_LONG');
    await refused(UPSERT, { items: [item('big', { domain: 'd'.repeat(129) })] }, 'VALUE_TOO_LONG');
    await refused(UPSERT, { items: [item('big', { attributes: { description: 'x'.repeat(70_000) } })] }, 'VALUE_TOO_LONG');
    await refused(RECORD, { e: [{ userId: 'u'.repeat(257), itemId: 'a' }] }, 'VALUE_TOO_LONG');
    await refused(DELETE, { ids: ['i'.repeat(10_000)] }, 'VALUE_TOO_LONG');
    await refused(RECORD, { e: [{ userId: 'u1', itemId: 'a', timestamp: '-1' }] }, 'VALUE_OUT_OF_RANGE');
    await refused(DELETE, { ids: [] }, 'BAD_USER_INPUT');
    await refused(UPSERT, { items: [] }, 'BAD_USER_INPUT');
    const atLimit = await api.mutate(UPSERT, { items: [item('i'.repeat(256), { title: 't'.repeat(2000) })] });
    assert.deepEqual(atLimit.data, { upsertItems: { count: 1 } }, JSON.stringify(atLimit.errors));
  });

  it('reads the limits from the environment', async () => {
    const defaults = loadSettings({});
    assert.deepEqual(
      [defaults.maxIdLength, defaults.maxDomainLength, defaults.maxTitleLength, defaults.maxAttributesSize, defaults.maxAttributesDepth],
      [256, 128, 2000, 65536, 8],
    );
    const set = loadSettings({
      LLM2REC_MAX_ID_LENGTH: '10', LLM2REC_MAX_DOMAIN_LENGTH: '11', LLM2REC_MAX_TITLE_LENGTH: '12',
      LLM2REC_MAX_ATTRIBUTES_SIZE: '13', LLM2REC_MAX_ATTRIBUTES_DEPTH: '2',
    });
    assert.deepEqual([set.maxIdLength, set.maxDomainLength, set.maxTitleLength, set.maxAttributesSize, set.maxAttributesDepth], [10, 11, 12, 13, 2]);
    const small = await TestPlatform.start({ maxIdLength: 3, maxTitleLength: 5, maxAttributesDepth: 1 });
    try {
      assert.equal(errorCode(await small.mutate(UPSERT, { items: [item('abcd')] })), 'VALUE_TOO_LONG');
      assert.equal(errorCode(await small.mutate(UPSERT, { items: [{ id: 'a', domain: 'd', title: 'sixsix' }] })), 'VALUE_TOO_LONG');
      assert.equal(errorCode(await small.mutate(UPSERT, { items: [{ id: 'a', domain: 'd', title: 'five', attributes: { x: [] } }] })), 'NESTING_TOO_DEEP');
      const ok = await small.mutate(UPSERT, { items: [{ id: 'abc', domain: 'd', title: 'five', attributes: { x: 1 } }] });
      assert.deepEqual(ok.data, { upsertItems: { count: 1 } }, JSON.stringify(ok.errors));
    } finally {
      await small.destroy();
    }
  });
});
