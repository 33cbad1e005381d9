/**
 * The storefront API over HTTP, query by query: cross-domain recommendations, similar items, contributions,
 * filters, pagination, user histories, deletes, and the error code of every bad input.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cutDataset } from '../support/fixtures.js';
import { TestPlatform, errorCode } from '../support/http-platform.js';

const LIST = 'modelVersion domain items { score item { id domain title attributes } }';

describe('storefront API', () => {
  let api: TestPlatform;
  let games: string[];
  let science: string[];
  let scienceBrands: Map<string, string>;

  before(async () => {
    api = await TestPlatform.start({ maxResults: 50, maxHistoryInput: 20 });
    const gamesDir = await cutDataset('amazon-games', 60);
    const scienceDir = await cutDataset('amazon-scientific', 60);
    await api.load(gamesDir);
    await api.load(scienceDir);
    const ids = async (dir: string, prefix: string) => (await readFile(path.join(dir, 'items.jsonl'), 'utf8'))
      .trim().split('\n').map((line) => JSON.parse(line)).map((item) => ({ ...item, id: `${prefix}:${item.id}` }));
    games = (await ids(gamesDir, 'amazon-games')).map((item) => item.id);
    const scienceItems = await ids(scienceDir, 'amazon-scientific');
    science = scienceItems.map((item) => item.id);
    scienceBrands = new Map(scienceItems.filter((item) => item.brand).map((item) => [item.id, item.brand]));
  });

  after(async () => { await api.destroy(); });

  it('ranks one history separately in each target domain', async () => {
    const result = await api.query(`query($h: [ID!]) {
      crossDomainRecommendations(history: $h, domains: ["industrial_scientific", "video_games"], first: 5) { ${LIST} }
    }`, { h: games.slice(0, 4) });
    assert.equal(result.errors, undefined);
    const [scienceList, gamesList] = result.data.crossDomainRecommendations;
    assert.equal(scienceList.domain, 'industrial_scientific');
    assert.equal(gamesList.domain, 'video_games');
    assert.ok(scienceList.items.every((entry: any) => entry.item.domain === 'industrial_scientific'));
    assert.ok(gamesList.items.every((entry: any) => !games.slice(0, 4).includes(entry.item.id)));
    assert.equal(scienceList.items.length, 5);
    // The same user vector: the games list equals the single-domain query.
    const single = await api.query(`query($h: [ID!]) { recommendations(history: $h, first: 5) { ${LIST} } }`, { h: games.slice(0, 4) });
    assert.deepEqual(single.data.recommendations, gamesList);
  });

  it('finds similar items by title embedding, never the item itself', async () => {
    const result = await api.query(`query($id: ID!) { similarItems(id: $id, first: 5) { ${LIST} } }`, { id: games[0] });
    assert.equal(result.errors, undefined);
    const { items, domain } = result.data.similarItems;
    assert.equal(domain, 'video_games');
    assert.equal(items.length, 5);
    assert.ok(items.every((entry: any) => entry.item.id !== games[0]));
    const scores = items.map((entry: any) => entry.score);
    assert.deepEqual(scores, [...scores].sort((a, b) => b - a));
    assert.ok(scores.every((score: number) => score <= 1.0001 && score >= -1.0001), 'cosine similarities');
    const elsewhere = await api.query(`query($id: ID!) { similarItems(id: $id, domain: "industrial_scientific", first: 3) { ${LIST} } }`, { id: games[0] });
    assert.ok(elsewhere.data.similarItems.items.every((entry: any) => entry.item.domain === 'industrial_scientific'));
  });

  it('says which history items contributed most, by leaving each out', async () => {
    const history = games.slice(0, 4);
    const result = await api.query(`query($h: [ID!]) {
      recommendations(history: $h, first: 3) { items { score item { id } because(first: 4) { weight item { id } } } }
    }`, { h: history });
    assert.equal(result.errors, undefined);
    for (const entry of result.data.recommendations.items) {
      assert.equal(entry.because.length, 4);
      assert.deepEqual(new Set(entry.because.map((c: any) => c.item.id)), new Set(history));
      const weights = entry.because.map((c: any) => c.weight);
      assert.deepEqual(weights, [...weights].sort((a, b) => b - a));
      // The weight of the top contributor is the score drop without it: check against a query without it.
      const top = entry.because[0].item.id;
      const without = await api.query(`query($h: [ID!], $x: [ID!]) {
        recommendations(history: $h, first: 50, filter: { excludeIds: $x, includeHistory: true }) { items { score item { id } } }
      }`, { h: history.filter((id) => id !== top), x: [] });
      const again = without.data.recommendations.items.find((e: any) => e.item.id === entry.item.id);
      if (again) assert.ok(Math.abs(entry.score - again.score - entry.because[0].weight) < 1e-4);
    }
  });

  it('applies exclusions, attribute filters and includeHistory', async () => {
    const history = science.slice(0, 3);
    const base = await api.query(`query($h: [ID!]) { recommendations(history: $h, first: 5) { ${LIST} } }`, { h: history });
    const firstId = base.data.recommendations.items[0].item.id;
    const excluded = await api.query(`query($h: [ID!], $x: [ID!]) {
      recommendations(history: $h, first: 5, filter: { excludeIds: $x }) { ${LIST} } }`, { h: history, x: [firstId] });
    assert.ok(excluded.data.recommendations.items.every((entry: any) => entry.item.id !== firstId));

    const [brandItem, brand] = [...scienceBrands.entries()].find(([id]) => !history.includes(id))!;
    const filtered = await api.query(`query($h: [ID!], $a: JSONObject) {
      recommendations(history: $h, first: 50, filter: { attributes: $a }) { ${LIST} } }`, { h: history, a: { brand } });
    assert.equal(filtered.errors, undefined);
    const items = filtered.data.recommendations.items;
    assert.ok(items.length >= 1);
    assert.ok(items.every((entry: any) => entry.item.attributes.brand === brand));
    const expected = [...scienceBrands].filter(([id, b]) => b === brand && !history.includes(id)).map(([id]) => id);
    assert.deepEqual(new Set(items.map((entry: any) => entry.item.id)), new Set(expected.slice(0, 50)));
    assert.ok(expected.includes(brandItem));

    const withHistory = await api.query(`query($h: [ID!]) {
      recommendations(history: $h, first: 50, filter: { includeHistory: true }) { ${LIST} } }`, { h: history });
    const ids = withHistory.data.recommendations.items.map((entry: any) => entry.item.id);
    assert.ok(history.some((id) => ids.includes(id)), 'some history item ranks in the top 50 of its own domain');
  });

  it('pages through a domain with cursors, every item exactly once', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page: any = await api.query(`query($after: String) {
        itemsByDomain(domain: "video_games", first: 7, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } }
      }`, { after });
      assert.equal(page.errors, undefined);
      seen.push(...page.data.itemsByDomain.edges.map((edge: any) => edge.node.id));
      if (!page.data.itemsByDomain.pageInfo.hasNextPage) break;
      after = page.data.itemsByDomain.pageInfo.endCursor;
    }
    assert.deepEqual(seen, [...games].sort());
  });

  it('returns a user history in order, and items in batch with nulls for unknown ids', async () => {
    const user = await api.query('{ user(id: "amazon-games:0") { id history(first: 3) { timestamp item { id } } } }');
    assert.equal(user.errors, undefined);
    assert.equal(user.data.user.history.length, 3);
    const stamps = user.data.user.history.map((entry: any) => Number(entry.timestamp));
    assert.deepEqual(stamps, [...stamps].sort((a, b) => a - b));
    assert.equal((await api.query('{ user(id: "nobody") { id } }')).data.user, null);
    const batch = await api.query('query($ids: [ID!]!) { items(ids: $ids) { id } }', { ids: [games[1], 'nope', games[0]] });
    assert.deepEqual(batch.data.items, [{ id: games[1] }, null, { id: games[0] }]);
  });

  it('deletes items from the catalogue, the index and histories', async () => {
    const victim = games[games.length - 1];
    const deleted = await api.mutate('mutation($ids: [ID!]!) { deleteItems(ids: $ids) { count } }', { ids: [victim] });
    assert.deepEqual(deleted.data, { deleteItems: { count: 1 } });
    assert.equal((await api.query('query($id: ID!) { item(id: $id) { id } }', { id: victim })).data.item, null);
    const again = await api.query(`query($h: [ID!]) { recommendations(history: $h, first: 3) { ${LIST} } }`, { h: [victim] });
    assert.equal(errorCode(again), 'UNKNOWN_ITEM');
    const unknown = await api.mutate('mutation($ids: [ID!]!) { deleteItems(ids: $ids) { count } }', { ids: [games[0], 'ghost'] });
    assert.equal(errorCode(unknown), 'UNKNOWN_ITEM');
    assert.notEqual((await api.query('query($id: ID!) { item(id: $id) { id } }', { id: games[0] })).data.item, null);
    games.pop();
  });

  it('answers every bad input with its code', async () => {
    const cases: [string, Record<string, unknown>, string, string?][] = [
      [`query($h: [ID!]) { crossDomainRecommendations(history: $h, domains: [], first: 3) { domain } }`, { h: [games[0]] }, 'BAD_USER_INPUT'],
      [`query($h: [ID!]) { crossDomainRecommendations(history: $h, domains: ["books"], first: 3) { domain } }`, { h: [games[0]] }, 'UNKNOWN_DOMAIN'],
      [`query($h: [ID!]) { crossDomainRecommendations(history: $h, domains: ["video_games"], first: 500) { domain } }`, { h: [games[0]] }, 'LIMIT_EXCEEDED'],
      ['query { similarItems(id: "nope", first: 3) { domain } }', {}, 'UNKNOWN_ITEM'],
      [`query($id: ID!) { similarItems(id: $id, domain: "books") { domain } }`, { id: games[0] }, 'UNKNOWN_DOMAIN'],
      [`query($h: [ID!]) { recommendations(history: $h, filter: { attributes: { brand: ["x"] } }) { domain } }`, { h: [games[0]] }, 'BAD_USER_INPUT'],
      ['query { itemsByDomain(domain: "books") { pageInfo { hasNextPage } } }', {}, 'UNKNOWN_DOMAIN'],
      ['query { itemsByDomain(domain: "video_games", after: "%%%") { pageInfo { hasNextPage } } }', {}, 'BAD_USER_INPUT'],
      ['query { itemsByDomain(domain: "video_games", first: 1001) { pageInfo { hasNextPage } } }', {}, 'LIMIT_EXCEEDED'],
      ['query { user(id: "amazon-games:0") { history(first: 0) { timestamp } } }', {}, 'LIMIT_EXCEEDED'],
      ['mutation { recordInteractions(interactions: [{ userId: "u", itemId: "x", timestamp: "soon" }]) { count } }', {}, 'BAD_USER_INPUT', 'key'],
      ['mutation { upsertItems(items: []) { count } }', {}, 'BAD_USER_INPUT', 'key'],
      ['mutation { recordInteractions(interactions: []) { count } }', {}, 'BAD_USER_INPUT', 'key'],
    ];
    for (const [text, variables, code, key] of cases) {
      const result = key ? await api.mutate(text, variables) : await api.query(text, variables);
      assert.equal(errorCode(result), code, text);
    }
  });

  it('bounds batch sizes', async () => {
    const small = await TestPlatform.start({ maxItemsPerBatch: 2, maxInteractionsPerBatch: 2 });
    try {
      const items = [1, 2, 3].map((i) => ({ id: `i${i}`, domain: 'd', title: `Item ${i}` }));
      const upsert = await small.mutate('mutation($items: [ItemInput!]!) { upsertItems(items: $items) { count } }', { items });
      assert.equal(errorCode(upsert), 'BATCH_TOO_LARGE');
      await small.mutate('mutation($items: [ItemInput!]!) { upsertItems(items: $items) { count } }', { items: items.slice(0, 2) });
      const events = [1, 2, 3].map(() => ({ userId: 'u', itemId: 'i1' }));
      const record = await small.mutate('mutation($e: [InteractionInput!]!) { recordInteractions(interactions: $e) { count } }', { e: events });
      assert.equal(errorCode(record), 'BATCH_TOO_LARGE');
      const lookup = await small.query('query($ids: [ID!]!) { items(ids: $ids) { id } }', { ids: ['a', 'b', 'c'] });
      assert.equal(errorCode(lookup), 'BATCH_TOO_LARGE');
      // Exclusions are looked up per search: as many ids as a batch at most.
      const excluded = { excludeIds: ['a', 'b', 'c'] };
      const recommended = await small.query('query($f: RecommendationFilter) { recommendations(history: ["i1"], first: 1, filter: $f) { domain } }', { f: excluded });
      assert.equal(errorCode(recommended), 'BATCH_TOO_LARGE');
      const similar = await small.query('query($f: ItemFilter) { similarItems(id: "i1", first: 1, filter: $f) { domain } }', { f: excluded });
      assert.equal(errorCode(similar), 'BATCH_TOO_LARGE');
      const within = await small.query('query($f: ItemFilter) { similarItems(id: "i1", first: 1, filter: $f) { items { item { id } } } }', { f: { excludeIds: ['a', 'b'] } });
      assert.deepEqual(within.data.similarItems.items.map((entry: any) => entry.item.id), ['i2']);
      assert.equal(await small.platform.db.prisma.interaction.count(), 0);
    } finally {
      await small.destroy();
    }
  });
});
