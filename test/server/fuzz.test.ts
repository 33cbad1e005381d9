/**
 * Property-based fuzzing of the GraphQL API over real HTTP (issue #12): random operations with random variables
 * (hostile strings, wrong types, odd numbers, deep JSON) and randomly mutated documents, against a real server (tiny
 * bundle, PGlite, embedded index) holding a small catalogue. For every request:
 *
 * - the answer is not a 5xx and carries no INTERNAL_SERVER_ERROR;
 * - a rejected request (any error in a mutation, and every query) changes no stored data: items, interactions and
 *   users in the database, the rows in memory and the index's points;
 * - /healthz, asked while each request is handled, answers within 100 ms.
 *
 * Bounded: a fixed number of runs per property, each property also stopped by a time limit, so the suite adds well
 * under a minute. The seed is printed by fast-check on failure (FUZZ_SEED replays it; FUZZ_RUNS raises the count).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import fc from 'fast-check';
import { API_KEY, TestPlatform } from '../support/http-platform.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 100);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const TIME_LIMIT_MS = 10_000;
const HEALTHZ_LIMIT_MS = 100;

const KNOWN_IDS = ['g1', 'g2', 'g3', 's1', 's2'];
const KNOWN_USERS = ['u1', 'u2'];

// Strings a hostile client would try, beside random ones.
const HOSTILE = [
  '', ' ', '\u0000', 'a\u0000b', '\ud800', '\udc00x', '\u001b[31m', '\u007f', '\u0085', '\r\n', '\t',
  '../../etc/passwd', "'; DROP TABLE items; --", '%s%n%x', '${jndi:ldap://x}', '__proto__', 'constructor',
  'x'.repeat(257), 't'.repeat(2001), '\u{1F600}'.repeat(50), 'null', '-1', '1e30', '9223372036854775808',
  '99999999999999999999999999999', '0x10', ' 12', '１２',
];

const text = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...KNOWN_IDS, ...KNOWN_USERS, 'video_games', 'industrial_scientific') },
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE) },
  { weight: 2, arbitrary: fc.string({ maxLength: 24 }) },
  { weight: 2, arbitrary: fc.fullUnicodeString({ maxLength: 24 }) },
);
const integer = fc.oneof(
  fc.integer({ min: -3, max: 120 }),
  fc.constantFrom(0, -1, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 53, 1e30, 0.5, -0.0),
);
/** JSON values, sometimes nested deeper than the attributes limit. */
const json = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.integer({ min: 5, max: 40 }).map((depth) => {
    let value: unknown = 'leaf';
    for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { k: value };
    return value;
  }),
  fc.dictionary(text, fc.oneof(text, fc.integer(), fc.boolean(), fc.constant(null)), { maxKeys: 4 }),
);
/** Any value at all, for wrong types. */
const anything = fc.oneof(fc.constant(null), fc.boolean(), integer, text, fc.array(text, { maxLength: 3 }), json);
const maybe = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: undefined, freq: 3 });
const sometimesWrong = <T>(arbitrary: fc.Arbitrary<T>) => fc.oneof({ weight: 5, arbitrary }, { weight: 1, arbitrary: anything });

const ids = fc.array(text, { maxLength: 4 });
const itemInput = fc.record({ id: text, domain: text, title: text, attributes: maybe(json) }, { requiredKeys: ['id', 'domain', 'title'] });
const interaction = fc.record({ userId: text, itemId: text, timestamp: maybe(fc.oneof(text, integer.map(String))) }, { requiredKeys: ['userId', 'itemId'] });
const filter = fc.record({ excludeIds: maybe(ids), attributes: maybe(json), includeHistory: maybe(fc.boolean()) }, { requiredKeys: [] });
const subject = fc.oneof(
  fc.record({ history: sometimesWrong(ids) }),
  fc.record({ userId: sometimesWrong(text) }),
  fc.record({ history: ids, userId: text }),
  fc.constant({}),
);

interface Operation {
  document: string;
  variables: fc.Arbitrary<Record<string, unknown>>;
}

const LIST = 'modelVersion domain items { score item { id title attributes } because(first: 2) { weight item { id } } }';

const OPERATIONS: Operation[] = [
  { document: 'mutation($items: [ItemInput!]!) { upsertItems(items: $items) { count } }', variables: fc.record({ items: sometimesWrong(fc.array(itemInput, { maxLength: 3 })) }) },
  { document: 'mutation($ids: [ID!]!) { deleteItems(ids: $ids) { count } }', variables: fc.record({ ids: sometimesWrong(ids) }) },
  { document: 'mutation($e: [InteractionInput!]!) { recordInteractions(interactions: $e) { count } }', variables: fc.record({ e: sometimesWrong(fc.array(interaction, { maxLength: 3 })) }) },
  {
    document: `query($history: [ID!], $userId: ID, $domain: String, $first: Int!, $filter: RecommendationFilter) {
      recommendations(history: $history, userId: $userId, domain: $domain, first: $first, filter: $filter) { ${LIST} } }`,
    variables: fc.tuple(subject, fc.record({ domain: maybe(text), first: integer, filter: maybe(filter) }, { requiredKeys: ['first'] }))
      .map(([a, b]) => ({ ...a, ...b })),
  },
  {
    document: `query($history: [ID!], $userId: ID, $domains: [String!]!, $first: Int!, $filter: RecommendationFilter) {
      crossDomainRecommendations(history: $history, userId: $userId, domains: $domains, first: $first, filter: $filter) { ${LIST} } }`,
    variables: fc.tuple(subject, fc.record({ domains: sometimesWrong(ids), first: integer, filter: maybe(filter) }, { requiredKeys: ['domains', 'first'] }))
      .map(([a, b]) => ({ ...a, ...b })),
  },
  {
    document: 'query($id: ID!, $domain: String, $first: Int!, $filter: ItemFilter) { similarItems(id: $id, domain: $domain, first: $first, filter: $filter) { domain items { score item { id } } } }',
    variables: fc.record({ id: sometimesWrong(text), domain: maybe(text), first: integer, filter: maybe(fc.record({ excludeIds: maybe(ids), attributes: maybe(json) }, { requiredKeys: [] })) }, { requiredKeys: ['id', 'first'] }),
  },
  { document: 'query($id: ID!) { item(id: $id) { id title domain attributes } }', variables: fc.record({ id: sometimesWrong(text) }) },
  { document: 'query($ids: [ID!]!) { items(ids: $ids) { id } }', variables: fc.record({ ids: sometimesWrong(ids) }) },
  {
    document: 'query($domain: String!, $first: Int!, $after: String) { itemsByDomain(domain: $domain, first: $first, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }',
    variables: fc.record({ domain: text, first: integer, after: maybe(fc.oneof(text, text.map((value) => Buffer.from(value).toString('base64url')))) }, { requiredKeys: ['domain', 'first'] }),
  },
  { document: 'query($id: ID!, $first: Int!) { user(id: $id) { id history(first: $first) { timestamp item { id } } } }', variables: fc.record({ id: sometimesWrong(text), first: integer }) },
  { document: '{ domains { name items } activeModel { version status } modelVersions { version } registeredModels { version path } modelActivation { state } trafficSplit { share } }', variables: fc.constant({}) },
  { document: 'mutation($version: String!) { activateModel(version: $version) { state error } }', variables: fc.record({ version: sometimesWrong(text) }) },
  { document: 'mutation($version: String!, $share: Float!) { splitTraffic(version: $version, share: $share) { state } }', variables: fc.record({ version: text, share: fc.oneof(fc.double(), integer) }) },
  { document: 'mutation { rollbackModel { state } clearTrafficSplit }', variables: fc.constant({}) },
];

/** A document with random edits: characters deleted, inserted or repeated. */
const mutatedDocument = fc.tuple(
  fc.constantFrom(...OPERATIONS.map((operation) => operation.document)),
  fc.array(fc.tuple(fc.nat(), fc.constantFrom('delete', 'insert', 'repeat'), fc.oneof(fc.constantFrom('{', '}', '[', ']', '(', ')', '$', ':', '!', '"', '\\', '...', '@skip', '#', 'a:', ' __schema ', ' __typename ', '\u0000'), fc.string({ maxLength: 6 }))), { minLength: 1, maxLength: 5 }),
).map(([document, edits]) => {
  let out = document;
  for (const [at, kind, insert] of edits) {
    const position = at % (out.length + 1);
    if (kind === 'delete') out = out.slice(0, position) + out.slice(position + 1 + (at % 4));
    else if (kind === 'insert') out = out.slice(0, position) + insert + out.slice(position);
    else out = out.slice(0, position) + out.slice(position, position + 1 + (at % 30)).repeat(1 + (at % 5)) + out.slice(position);
  }
  return out;
});

describe('fuzzing the GraphQL API', () => {
  let api: TestPlatform;
  let registry: string;
  let slowest = 0;
  let slowestDuring = '';
  let probes = 0;
  const eld = monitorEventLoopDelay({ resolution: 5 });
  eld.enable();

  const stored = () => api.stored();

  async function send(body: string): Promise<{ status: number; json: any }> {
    const response = await fetch(api.url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': API_KEY }, body });
    const raw = await response.text();
    let json: any;
    try {
      json = JSON.parse(raw);
    } catch {
      assert.fail(`HTTP ${response.status} with a body that is not JSON: ${raw.slice(0, 200)}`);
    }
    return { status: response.status, json };
  }

  async function probeHealthz(during: string): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    eld.reset();
    const started = performance.now();
    const response = await fetch(new URL('/healthz', api.url));
    await response.arrayBuffer();
    const took = performance.now() - started;
    probes++;
    if (process.env.FUZZ_DEBUG && took > 60) console.error(`healthz ${took.toFixed(0)} ms; event loop max delay meanwhile ${(eld.max / 1e6).toFixed(0)} ms; cpu ${JSON.stringify(process.cpuUsage())}`);
    if (took > slowest) [slowest, slowestDuring] = [took, during.slice(0, 300)];
  }

  /** Sends one request and checks the properties; returns nothing, throws on a violation. */
  async function check(document: string, variables: unknown): Promise<void> {
    const before = await stored();
    const body = JSON.stringify({ query: document, variables });
    // /healthz asked while the request is being handled (not while this test reads the stores, in the same thread).
    const [{ status, json }] = await Promise.all([send(body), probeHealthz(body)]);
    const shown = `${body.slice(0, 400)} -> ${status} ${JSON.stringify(json).slice(0, 400)}`;
    assert.ok(status < 500, `5xx: ${shown}`);
    const codes = (json.errors ?? []).map((error: any) => error.extensions?.code);
    assert.ok(!codes.includes('INTERNAL_SERVER_ERROR'), `INTERNAL_SERVER_ERROR: ${shown}`);
    const mutation = /^\s*mutation\b/.test(document);
    if (!mutation || json.errors?.length) assert.equal(await stored(), before, `a rejected request or a query changed stored data: ${shown}`);
  }

  before(async () => {
    registry = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-fuzz-registry-'));
    api = await TestPlatform.start({ modelRegistryDir: registry });
    const items = [
      ...['g1', 'g2', 'g3'].map((id, i) => ({ id, domain: 'video_games', title: `Game ${i} - Nintendo Switch`, attributes: { brand: i ? 'Nintendo' : 'Sega', tags: ['a', 'b'] } })),
      ...['s1', 's2'].map((id, i) => ({ id, domain: 'industrial_scientific', title: `Lab flask ${i}`, attributes: {} })),
    ];
    const loaded = await api.mutate('mutation($items: [ItemInput!]!) { upsertItems(items: $items) { count } }', { items });
    assert.deepEqual(loaded.data, { upsertItems: { count: 5 } }, JSON.stringify(loaded.errors));
    const events = [{ userId: 'u1', itemId: 'g1' }, { userId: 'u1', itemId: 'g2' }, { userId: 'u2', itemId: 's1' }];
    await api.mutate('mutation($e: [InteractionInput!]!) { recordInteractions(interactions: $e) { count } }', { e: events });
  });

  after(async () => {
    await api?.destroy();
    await rm(registry, { recursive: true, force: true });
  });

  it('answers random operations with random variables without 5xx, internal errors or changes from rejected requests', async () => {
    const operation = fc.nat(OPERATIONS.length - 1).chain((k) => fc.tuple(fc.constant(OPERATIONS[k].document), OPERATIONS[k].variables));
    await fc.assert(fc.asyncProperty(operation, ([document, variables]) => check(document, variables)),
      { numRuns: RUNS, seed: SEED, interruptAfterTimeLimit: TIME_LIMIT_MS, endOnFailure: true });
  });

  it('answers randomly mutated documents the same way', async () => {
    await fc.assert(fc.asyncProperty(mutatedDocument, fc.dictionary(fc.string({ maxLength: 8 }), anything, { maxKeys: 3 }), check),
      { numRuns: RUNS, seed: SEED, interruptAfterTimeLimit: TIME_LIMIT_MS, endOnFailure: true });
  });

  it(`answered /healthz within ${HEALTHZ_LIMIT_MS} ms throughout`, () => {
    assert.ok(probes > 0, 'the probes ran');
    assert.ok(slowest < HEALTHZ_LIMIT_MS, `slowest /healthz: ${slowest.toFixed(1)} ms, during ${slowestDuring}`);
  });
});
