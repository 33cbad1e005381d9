/**
 * Issue #15: three server processes' worth of platform (each its own HTTP server on its own port, data directory and
 * embedded vector index) over one PostgreSQL serve as one catalogue: a write through any of them counts on every
 * one within a second, each title is embedded once per model version by one replica, and a replica that joins or
 * comes back fills its index from the vectors the others computed. Runs when TEST_DATABASE_URL is set.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { publishWithOtherEncoder } from '../../bench/lib/bundle.js';
import { after, before, describe, it } from 'node:test';
import { cutDataset, publishTinyBundle, tinyBundle } from '../support/fixtures.js';
import { TestPlatform } from '../support/http-platform.js';
import { TEST_DATABASES } from '../support/databases.js';

const postgres = TEST_DATABASES.find((database) => database.name === 'postgres');

const ITEM = 'query($id: ID!) { item(id: $id) { id title } }';
const SIMILAR = 'query($id: ID!) { similarItems(id: $id, first: 5) { items { score item { id } } } }';
const RECOMMEND = 'query($h: [ID!], $u: ID) { recommendations(history: $h, userId: $u, first: 5) { items { score item { id } } } }';
const UPSERT = 'mutation($items: [ItemInput!]!) { upsertItems(items: $items) { count } }';
const DELETE = 'mutation($ids: [ID!]!) { deleteItems(ids: $ids) { count } }';
const RECORD = 'mutation($events: [InteractionInput!]!) { recordInteractions(interactions: $events) { count } }';
const ACTIVATE = 'mutation($v: String!) { activateModel(version: $v) { version state } }';
const ROLLBACK = 'mutation { rollbackModel { version state } }';
const SPLIT = 'mutation($v: String!, $share: Float!) { splitTraffic(version: $v, share: $share) { version state } }';
const CLEAR_SPLIT = 'mutation { clearTrafficSplit }';
const ACTIVATION = 'query { modelActivation { version state error errorCode } }';
const VERSION = 'query($h: [ID!], $u: ID) { recommendations(history: $h, userId: $u, first: 1) { modelVersion } }';

/** Waits for the activation a replica started to finish; returns it. */
async function finished(replica: TestPlatform): Promise<{ version: string; state: string; error: string | null; errorCode: string | null }> {
  for (;;) {
    const activation = (await replica.query(ACTIVATION)).data.modelActivation;
    if (activation.state === 'active' || activation.state === 'failed') return activation;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Polls `check` on every replica until it holds on all of them; returns the milliseconds that took. */
async function untilEverywhere(replicas: TestPlatform[], check: (replica: TestPlatform) => Promise<boolean>, limitMs = 5000): Promise<number> {
  const started = performance.now();
  const pending = new Set(replicas);
  while (pending.size > 0) {
    for (const replica of [...pending]) if (await check(replica)) pending.delete(replica);
    if (pending.size === 0) break;
    assert.ok(performance.now() - started < limitMs, `not on every replica within ${limitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return performance.now() - started;
}

function encoded(replica: TestPlatform): number {
  return Object.values(replica.platform.replica!.encoded()).reduce((sum, n) => sum + n, 0);
}

describe('replicas over one PostgreSQL', { skip: !postgres && 'TEST_DATABASE_URL is not set' }, () => {
  let replicas: TestPlatform[] = [];
  let databaseUrl: string;
  let registry: string;
  let partialRegistry: string;
  let itemIds: string[];
  let history: string[];

  before(async () => {
    databaseUrl = (await postgres!.createUrl())!;
    // Every replica has tiny-a (served first), tiny-b (same encoder) and tiny-c (another encoder), but the third
    // replica's registry lacks tiny-d: a version one replica cannot load.
    registry = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-registry-'));
    partialRegistry = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-registry-'));
    for (const dir of [registry, partialRegistry]) {
      await publishTinyBundle(dir, 'tiny-a');
      await publishTinyBundle(dir, 'tiny-b');
      await publishWithOtherEncoder(tinyBundle(), dir, { version: 'tiny-c', dirName: 'tiny-c', mark: 'replicas' });
    }
    await publishTinyBundle(registry, 'tiny-d');
    const settings = (dir: string) => ({ databaseUrl, modelRegistryDir: dir, bundleDir: path.join(dir, 'tiny-a') });
    replicas.push(await TestPlatform.start(settings(registry)));
    const dataset = await cutDataset('amazon-games', 40);
    await replicas[0].load(dataset);
    itemIds = [...replicas[0].platform.catalog.items.values()].map((row) => row.id).sort();
    const firstUser = (await readFile(path.join(dataset, 'interactions.csv'), 'utf8')).trim().split('\n')[1].split(',')[0];
    history = (await replicas[0].platform.interactions.history(`amazon-games:${firstUser}`, 5))!;
    // Two more replicas join the loaded database.
    replicas.push(await TestPlatform.start(settings(registry)), await TestPlatform.start(settings(partialRegistry)));
  });

  after(async () => {
    for (const replica of replicas) await replica.destroy();
    for (const dir of [registry, partialRegistry]) await rm(dir, { recursive: true, force: true });
  });

  it('fills a joining replica\'s index from the vectors another replica computed, without running the encoder', async () => {
    const titles = new Set([...replicas[0].platform.catalog.items.values()].map((row) => row.title));
    assert.equal(encoded(replicas[0]), titles.size);
    for (const replica of replicas.slice(1)) {
      assert.equal(encoded(replica), 0);
      assert.equal(replica.platform.catalog.items.size, itemIds.length);
      assert.equal(await replica.platform.collection.count(), itemIds.length);
    }
    // The same vectors: every replica ranks alike.
    const answers = await Promise.all(replicas.map((replica) => replica.query(RECOMMEND, { h: history })));
    for (const answer of answers) assert.deepEqual(answer, answers[0]);
    assert.equal(answers[0].data.recommendations.items.length, 5);
  });

  it('counts a new item written through one replica on every replica within a second, embedded by that replica only', async () => {
    const before = replicas.map(encoded);
    const id = 'amazon-games:replica-new';
    const title = 'Galactic Harvest Moon Racing Deluxe Edition';
    assert.equal((await replicas[1].mutate(UPSERT, { items: [{ id, domain: 'video_games', title }] })).data?.upsertItems.count, 1);
    // At once on the replica that took it; on the others within a second, vector included (similarItems needs it).
    assert.equal((await replicas[1].query(ITEM, { id })).data.item.title, title);
    const took = await untilEverywhere(replicas, async (replica) => {
      const similar = await replica.query(SIMILAR, { id });
      return similar.data?.similarItems.items.length === 5;
    });
    assert.ok(took < 1000, `took ${took.toFixed(0)} ms`);
    const after = replicas.map(encoded);
    assert.deepEqual(after.map((n, i) => n - before[i]), [0, 1, 0]);
    // A history with the new item ranks the same on every replica.
    const answers = await Promise.all(replicas.map((replica) => replica.query(RECOMMEND, { h: [...history, id] })));
    for (const answer of answers) assert.deepEqual(answer.data, answers[1].data);
  });

  it('replaces a title\'s vectors everywhere and removes a deleted item everywhere', async () => {
    const [renamed, deleted] = [itemIds[3], itemIds[4]];
    const title = 'Completely Different Knitting Pattern Book';
    await replicas[2].mutate(UPSERT, { items: [{ id: renamed, domain: 'video_games', title }] });
    const reference = (await replicas[2].query(SIMILAR, { id: renamed })).data;
    await untilEverywhere(replicas, async (replica) => {
      const answer = await replica.query(SIMILAR, { id: renamed });
      return JSON.stringify(answer.data) === JSON.stringify(reference);
    });
    assert.equal((await replicas[0].mutate(DELETE, { ids: [deleted] })).data?.deleteItems.count, 1);
    await untilEverywhere(replicas, async (replica) => (await replica.query(ITEM, { id: deleted })).data?.item === null);
    for (const replica of replicas) {
      const answer = await replica.query(RECOMMEND, { h: [deleted] });
      assert.equal(answer.errors?.[0]?.extensions?.code, 'UNKNOWN_ITEM');
      assert.ok(!(await replica.platform.collection.listIds()).includes(deleted));
    }
  });

  it('counts an interaction recorded through one replica in the next recommendation from every replica', async () => {
    const userId = 'replica-user';
    await replicas[0].mutate(RECORD, { events: history.map((itemId) => ({ userId, itemId })) });
    const expected = (await replicas[0].query(RECOMMEND, { h: history })).data;
    for (const replica of replicas) assert.deepEqual((await replica.query(RECOMMEND, { u: userId })).data, expected);
  });

  it('brings a replica that was away up to date with the writes it missed, without running the encoder', async () => {
    const away = replicas[2];
    await away.close();
    const id = 'amazon-games:while-away';
    await replicas[0].mutate(UPSERT, { items: [{ id, domain: 'video_games', title: 'Written While One Replica Was Down' }] });
    const renamed = itemIds[5];
    await replicas[1].mutate(UPSERT, { items: [{ id: renamed, domain: 'video_games', title: 'Renamed While One Replica Was Down' }] });
    await away.open();
    assert.equal(encoded(away), 0);
    assert.equal((await away.query(ITEM, { id })).data.item.id, id);
    for (const item of [id, renamed]) {
      assert.deepEqual((await away.query(SIMILAR, { id: item })).data, (await replicas[0].query(SIMILAR, { id: item })).data);
    }
  });

  it('switches every replica when one is asked, after each has prepared the version, without a failed request', async () => {
    const titles = new Set([...replicas[0].platform.catalog.items.values()].map((row) => row.title)).size;
    const before = replicas.map(encoded);
    // Requests through every replica during the switch.
    let running = true;
    const seen: { replica: number; version: string; at: number }[] = [];
    let failures = 0;
    const load = replicas.map(async (replica, index) => {
      while (running) {
        const answer = await replica.query(VERSION, { h: history }).catch(() => undefined);
        if (!answer?.data) failures += 1;
        else seen.push({ replica: index, version: answer.data.recommendations.modelVersion, at: performance.now() });
      }
    });
    assert.equal((await replicas[1].mutate(ACTIVATE, { v: 'tiny-c' })).data?.activateModel.state, 'embedding');
    const activation = await finished(replicas[1]);
    const switchedAt = performance.now();
    assert.equal(activation.state, 'active', activation.error ?? '');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    running = false;
    await Promise.all(load);
    assert.equal(failures, 0);
    // Within a second of the switch completing, no replica answers with the old version.
    const late = seen.filter((answer) => answer.version === 'tiny-a' && answer.at > switchedAt + 1000);
    assert.deepEqual(late, []);
    for (const index of [0, 1, 2]) assert.ok(seen.some((answer) => answer.replica === index && answer.version === 'tiny-c'));
    for (const replica of replicas) assert.equal(replica.platform.switcher.active.version, 'tiny-c');
    // The new encoder ran over each title once in all: the replicas prepare together and take turns per batch,
    // each using what the others stored.
    const ran = replicas.map((replica, i) => encoded(replica) - before[i]);
    assert.equal(ran.reduce((sum, n) => sum + n, 0), titles, `titles encoded per replica: ${ran.join(', ')}`);
    const answers = await Promise.all(replicas.map((replica) => replica.query(RECOMMEND, { h: history })));
    for (const answer of answers) assert.deepEqual(answer.data, answers[0].data);
  });

  it('refuses everywhere a version one replica cannot load: nothing switches', async () => {
    assert.equal((await replicas[0].mutate(ACTIVATE, { v: 'tiny-d' })).data?.activateModel.state, 'embedding');
    const activation = await finished(replicas[0]);
    assert.equal(activation.state, 'failed');
    assert.equal(activation.errorCode, 'UNKNOWN_MODEL_VERSION');
    assert.match(activation.error!, /replica .* could not prepare/);
    for (const replica of replicas) assert.equal(replica.platform.switcher.active.version, 'tiny-c');
    assert.equal((await replicas[0].query('query { activeModel { version } }')).data.activeModel.version, 'tiny-c');
  });

  it('rolls every replica back when one is asked', async () => {
    assert.equal((await replicas[2].mutate(ROLLBACK)).errors, undefined);
    const rolledBack = await finished(replicas[2]);
    assert.equal(rolledBack.state, 'active', rolledBack.error ?? '');
    await untilEverywhere(replicas, async (replica) => (await replica.query(VERSION, { h: history })).data.recommendations.modelVersion === 'tiny-a', 1000);
  });

  it('gives a user in a traffic split the same version from every replica, and ends the split everywhere', async () => {
    assert.equal((await replicas[0].mutate(SPLIT, { v: 'tiny-b', share: 0.5 })).errors, undefined);
    assert.equal((await finished(replicas[0])).state, 'active');
    const users = Array.from({ length: 20 }, (_, i) => `split-user-${i}`);
    await replicas[0].mutate(RECORD, { events: users.map((userId) => ({ userId, itemId: history[0] })) });
    await untilEverywhere(replicas, async (replica) => replica.platform.switcher.trafficSplit()?.version === 'tiny-b', 1000);
    const versions = await Promise.all(replicas.map(async (replica) => {
      const answers = await Promise.all(users.map((u) => replica.query(VERSION, { u })));
      return answers.map((answer) => answer.data.recommendations.modelVersion);
    }));
    assert.deepEqual(versions[1], versions[0]);
    assert.deepEqual(versions[2], versions[0]);
    assert.ok(versions[0].includes('tiny-a') && versions[0].includes('tiny-b'), versions[0].join(' '));
    // A replica that restarts serves the same split (it is recorded with the version).
    await replicas[2].close();
    await replicas[2].open();
    assert.deepEqual(replicas[2].platform.switcher.trafficSplit(), { version: 'tiny-b', share: 0.5 });
    const again = await Promise.all(users.map((u) => replicas[2].query(VERSION, { u })));
    assert.deepEqual(again.map((answer) => answer.data.recommendations.modelVersion), versions[0]);
    assert.equal((await replicas[1].mutate(CLEAR_SPLIT)).data?.clearTrafficSplit, true);
    await untilEverywhere(replicas, async (replica) => replica.platform.switcher.trafficSplit() === undefined, 1000);
  });

  it('keeps the vectors a same-encoder switch computed, so a replica joining later runs no encoder', async () => {
    // tiny-b has tiny-a's encoder: the switch reuses the semantic vectors and runs only tiny-b's adapter.
    assert.equal((await replicas[1].mutate(ACTIVATE, { v: 'tiny-b' })).errors, undefined);
    assert.equal((await finished(replicas[1])).state, 'active');
    const joining = await TestPlatform.start({ databaseUrl, modelRegistryDir: registry, bundleDir: path.join(registry, 'tiny-a') });
    try {
      assert.equal(joining.platform.switcher.active.version, 'tiny-b');
      assert.equal(encoded(joining), 0);
      assert.equal(await joining.platform.collection.count(), replicas[0].platform.catalog.items.size);
      const answers = await Promise.all([joining, ...replicas].map((replica) => replica.query(RECOMMEND, { h: history })));
      for (const answer of answers) assert.deepEqual(answer.data, answers[0].data);
    } finally {
      await joining.destroy();
    }
  });
});
