/**
 * What the server refuses, over real HTTP: operations too deep or too complex, request bodies that are not JSON or
 * too large, unknown paths, mutations without the API key. A real tiny bundle and PGlite in a temp dir; the limits
 * are set low so that small queries cross them.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadSettings } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { openPlatform, type Platform } from '../../src/platform.js';
import { startHttpServer, type RunningServer } from '../../src/server/http-server.js';
import { tinyBundle } from '../support/fixtures.js';

const MAX_DEPTH = 4;
const MAX_COMPLEXITY = 50;
const MAX_ALIASES = 4;
const MAX_ROOT_FIELDS = 5;

async function send(url: string, body: string, headers: Record<string, string> = {}) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await response.text();
  assert.match(response.headers.get('content-type') ?? '', /^application\/(graphql-response\+)?json/, text);
  return { status: response.status, body: JSON.parse(text) as { data?: any; errors?: { message: string; extensions?: Record<string, unknown> }[] } };
}

const post = (url: string, query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  send(url, JSON.stringify({ query, variables }), headers);

const ids = (n: number) => Array.from({ length: n }, (_, i) => `id-${i}`);

describe('request limits over HTTP', () => {
  let dataDir: string;
  let platform: Platform;
  let server: RunningServer;

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-limits-'));
    platform = await openPlatform(loadSettings({}, {
      dataDir,
      bundleDir: tinyBundle(),
      apiKey: 'test-key',
      maxQueryDepth: MAX_DEPTH,
      maxQueryComplexity: MAX_COMPLEXITY,
      maxAliases: MAX_ALIASES,
      maxRootFields: MAX_ROOT_FIELDS,
      maxBodySize: '2kb',
    }), createLogger('silent'));
    server = await startHttpServer(platform, { host: '127.0.0.1', port: 0 });
  });

  after(async () => {
    await server?.close();
    await platform?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('reads the limits from the environment, with defaults', () => {
    const defaults = loadSettings({});
    assert.equal(defaults.maxQueryDepth, 8);
    assert.equal(defaults.maxQueryComplexity, 5000);
    assert.equal(defaults.maxBodySize, '8mb');
    const set = loadSettings({ LLM2REC_MAX_QUERY_DEPTH: '5', LLM2REC_MAX_QUERY_COMPLEXITY: '300', LLM2REC_MAX_BODY_SIZE: '512kb' });
    assert.deepEqual([set.maxQueryDepth, set.maxQueryComplexity, set.maxBodySize], [5, 300, '512kb']);
    assert.equal(loadSettings({ LLM2REC_MAX_BODY_SIZE: '1048576' }).maxBodySize, '1048576');
    assert.throws(() => loadSettings({ LLM2REC_MAX_BODY_SIZE: 'lots' }));
    assert.throws(() => loadSettings({ LLM2REC_MAX_QUERY_DEPTH: '0' }));
  });

  it('answers queries within the depth limit, fragments adding no level', async () => {
    const atLimit = await post(server.url, '{ user(id: "nobody") { history(first: 2) { item { id } } } }');
    assert.equal(atLimit.status, 200, JSON.stringify(atLimit.body));
    assert.deepEqual(atLimit.body, { data: { user: null } });
    const viaFragments = await post(server.url,
      '{ user(id: "nobody") { ...U } } fragment U on User { history(first: 2) { ...H } } fragment H on HistoryEntry { item { id } }');
    assert.deepEqual(viaFragments.body, { data: { user: null } });
  });

  it('refuses a query deeper than the limit with QUERY_TOO_DEEP and HTTP 400', async () => {
    const deep = `query Deep { crossDomainRecommendations(history: ["x"], domains: ["video_games"]) {
      items { because { item { id } } } } }`;
    const result = await post(server.url, deep);
    assert.equal(result.status, 400);
    assert.equal(result.body.data, undefined);
    assert.equal(result.body.errors?.length, 1);
    assert.equal(result.body.errors![0].extensions?.code, 'QUERY_TOO_DEEP');
    assert.equal(result.body.errors![0].extensions?.maxDepth, MAX_DEPTH);
    assert.match(result.body.errors![0].message, /deeper than the limit of 4/);
    assert.equal(result.body.errors![0].extensions?.stacktrace, undefined);

    const viaFragment = await post(server.url, `query Deep { ...Q } fragment Q on Query {
      crossDomainRecommendations(domains: ["video_games"], history: ["x"]) { items { because { item { id } } } } }`);
    assert.equal(viaFragment.status, 400);
    assert.equal(viaFragment.body.errors![0].extensions?.code, 'QUERY_TOO_DEEP');
  });

  it('does not crash on a fragment that spreads itself', async () => {
    const result = await post(server.url, '{ ...F } fragment F on Query { ...F }');
    assert.equal(result.status, 400);
    assert.equal(result.body.errors![0].extensions?.code, 'GRAPHQL_VALIDATION_FAILED');
  });

  it('weighs `first` from the variables: at the limit runs, past it is QUERY_TOO_COMPLEX with HTTP 400', async () => {
    // recommendations(first: n) { items { item { id title } } } costs 20 + n * (1 + 1 + (1 + 2)) = 20 + 5n: the
    // field's own work once (a model call and a search, FIELD_COSTS) and its subtree once per result.
    const query = 'query Recs($n: Int!) { recommendations(history: ["x"], first: $n) { items { item { id title } } } }';
    const atLimit = await post(server.url, query, { n: (MAX_COMPLEXITY - 20) / 5 });
    assert.equal(atLimit.status, 200);
    assert.equal(atLimit.body.errors![0].extensions?.code, 'UNKNOWN_ITEM', 'it ran');
    const over = await post(server.url, query, { n: (MAX_COMPLEXITY - 20) / 5 + 1 });
    assert.equal(over.status, 400);
    assert.equal(over.body.data, undefined);
    assert.equal(over.body.errors![0].extensions?.code, 'QUERY_TOO_COMPLEX');
    assert.equal(over.body.errors![0].extensions?.complexity, 55);
    assert.equal(over.body.errors![0].extensions?.maxComplexity, MAX_COMPLEXITY);
  });

  it('weighs list fields by the number of ids asked for', async () => {
    // items(ids: [...]) { id } costs 2 per id.
    const query = 'query Items($ids: [ID!]!) { items(ids: $ids) { id } }';
    const within = await post(server.url, query, { ids: ids(25) });
    assert.equal(within.status, 200);
    assert.equal(within.body.data.items.length, 25);
    const over = await post(server.url, query, { ids: ids(26) });
    assert.equal(over.status, 400);
    assert.equal(over.body.errors![0].extensions?.code, 'QUERY_TOO_COMPLEX');
    const aliased = await post(server.url, `{ a: items(ids: ${JSON.stringify(ids(15))}) { id } b: items(ids: ${JSON.stringify(ids(15))}) { id } }`);
    assert.equal(aliased.body.errors![0].extensions?.code, 'QUERY_TOO_COMPLEX');
  });

  it('cannot be talked down by a negative `first` or a field whose arguments fail', async () => {
    const negative = await post(server.url, `{ a: items(ids: ${JSON.stringify(ids(26))}) { id } b: similarItems(id: "x", first: -1000) { domain } }`);
    assert.equal(negative.body.errors![0].extensions?.code, 'QUERY_TOO_COMPLEX');
    // A null for a non-null argument fails field `a` alone at execution; the rest of the operation still counts.
    const nulled = await post(server.url,
      'query($n: Int, $ids: [ID!]!) { a: similarItems(id: "x", first: $n) { domain } b: items(ids: $ids) { id } }',
      { n: null, ids: ids(26) });
    assert.equal(nulled.body.errors![0].extensions?.code, 'QUERY_TOO_COMPLEX');
  });

  it('limits aliases and root fields (issue #12, finding 2: 2,500 aliases of `domains` held the event loop 12 s)', async () => {
    const aliases = (n: number, field = 'domains { name }') => `{ ${Array.from({ length: n }, (_, i) => `a${i}: ${field}`).join(' ')} }`;
    const many = await post(server.url, aliases(60)); // the body limit here is 2kb; 2,500 with the defaults in input-checks.test.ts
    assert.equal(many.status, 400);
    assert.equal(many.body.errors![0].extensions?.code, 'TOO_MANY_ALIASES');
    const atLimit = await post(server.url, aliases(MAX_ALIASES, 'activeModel { version }'));
    assert.equal(atLimit.status, 200, JSON.stringify(atLimit.body));
    assert.equal(Object.keys(atLimit.body.data).length, MAX_ALIASES);
    const viaFragment = await post(server.url, `{ ...F b: activeModel { version } } fragment F on Query { ${aliases(MAX_ALIASES).slice(1, -1)} }`);
    assert.equal(viaFragment.body.errors![0].extensions?.code, 'TOO_MANY_ALIASES');
    const roots = ['domains { name }', 'activeModel { version }', 'modelVersions { version }', 'trafficSplit { share }', 'modelActivation { state }'];
    const tooManyRoots = await post(server.url, `{ ${roots.join(' ')} x: domains { items } }`);
    assert.equal(tooManyRoots.status, 400);
    assert.equal(tooManyRoots.body.errors![0].extensions?.code, 'TOO_MANY_ROOT_FIELDS');
    const inFragments = await post(server.url, `{ ...A ... on Query { ...B } } fragment A on Query { ${roots.slice(0, 3).join(' ')} } fragment B on Query { ${roots.slice(3).join(' ')} x: domains { items } }`);
    assert.equal(inFragments.body.errors![0].extensions?.code, 'TOO_MANY_ROOT_FIELDS');
    const fine = await post(server.url, `{ ${roots.join(' ')} }`);
    assert.equal(fine.status, 200, JSON.stringify(fine.body));
  });

  it('answers a malformed JSON body with 400 and a GraphQL-style JSON error', async () => {
    const result = await send(server.url, '{"query": "{ domains { name } }"');
    assert.equal(result.status, 400);
    const requestId = result.body.errors![0].extensions?.requestId;
    assert.equal(typeof requestId, 'string');
    assert.deepEqual(result.body, { errors: [{ message: 'the request body is not valid JSON', extensions: { code: 'BAD_REQUEST', requestId } }] });
  });

  it('answers a body over the size limit with 413 and a JSON error', async () => {
    const result = await post(server.url, '{ domains { name } }', { padding: 'x'.repeat(4096) });
    assert.equal(result.status, 413);
    assert.equal(result.body.errors![0].extensions?.code, 'PAYLOAD_TOO_LARGE');
    assert.match(result.body.errors![0].message, /2kb/);
  });

  it('marks GraphQL answers no-store, and answers queries sent with GET', async () => {
    const posted = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ domains { name } }' }) });
    assert.equal(posted.status, 200);
    assert.equal(posted.headers.get('cache-control'), 'no-store');
    const url = new URL(server.url);
    url.searchParams.set('query', '{ domains { name } }');
    // Apollo's CSRF prevention wants a header a simple cross-site request cannot carry.
    const got = await fetch(url, { headers: { 'apollo-require-preflight': 'true' } });
    assert.equal(got.status, 200);
    assert.equal(got.headers.get('cache-control'), 'no-store');
    assert.deepEqual(await got.json(), await posted.json());
    const mutationByGet = new URL(server.url);
    mutationByGet.searchParams.set('query', 'mutation { deleteItems(ids: ["x"]) { count } }');
    assert.equal((await fetch(mutationByGet, { headers: { 'apollo-require-preflight': 'true' } })).status, 405);
  });

  it('answers unknown paths with a JSON 404', async () => {
    const response = await fetch(new URL('/nope', server.url));
    assert.equal(response.status, 404);
    assert.equal((await response.json() as any).errors[0].extensions.code, 'NOT_FOUND');
  });

  it('refuses mutations without the API key with 401 UNAUTHENTICATED', async () => {
    const mutation = 'mutation { deleteItems(ids: ["x"]) { count } }';
    const refused = await post(server.url, mutation);
    assert.equal(refused.status, 401);
    assert.equal(refused.body.errors![0].extensions?.code, 'UNAUTHENTICATED');
    const allowed = await post(server.url, mutation, {}, { 'x-api-key': 'test-key' });
    assert.equal(allowed.status, 200);
    assert.equal(allowed.body.errors![0].extensions?.code, 'UNKNOWN_ITEM');
  });
});
