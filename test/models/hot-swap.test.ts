/**
 * Hot-swap over HTTP: requests keep flowing while the catalogue is re-embedded for a new version, the switch is
 * atomic, invalid bundles are refused while the current version serves on, rollback and restarts keep the choice.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cutDataset, publishTinyBundle } from '../support/fixtures.js';
import { TestPlatform, errorCode } from '../support/http-platform.js';
import { userBucket } from '../../src/models/model-switcher.js';

/** A copy of the tiny bundle published in the registry under another model version (`corrupt`: one graph damaged). */
async function publish(registry: string, version: string, corrupt = false): Promise<string> {
  const dir = await publishTinyBundle(registry, version);
  if (corrupt) {
    const graph = path.join(dir, 'sequence_model.onnx');
    const bytes = await readFile(graph);
    bytes[100] ^= 0xff;
    await writeFile(graph, bytes);
  }
  return dir;
}

const RECOMMEND = 'query($h: [ID!]) { recommendations(history: $h, first: 5) { modelVersion items { item { id } } } }';
const ACTIVATE = 'mutation($v: String!) { activateModel(version: $v) { version state } }';
const PROGRESS = '{ modelActivation { version state done total error startedAt loadedAt finishedAt mode reused embedded } activeModel { version } }';

describe('model hot-swap', () => {
  let api: TestPlatform;
  let registry: string;
  let history: string[];

  before(async () => {
    registry = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-registry-'));
    const first = await publish(registry, 'tiny-a');
    await publish(registry, 'tiny-b');
    await publish(registry, 'tiny-broken', true);
    api = await TestPlatform.start({ bundleDir: first, modelRegistryDir: registry });
    const dataset = await cutDataset('amazon-games', 80);
    await api.load(dataset);
    const lines = (await readFile(path.join(dataset, 'interactions.csv'), 'utf8')).trim().split('\n').slice(1, 6);
    history = lines.map((line) => `amazon-games:${line.split(',')[1]}`);
  });

  after(async () => { await api.destroy(); });

  it('lists the registry', async () => {
    const result = await api.query('{ registeredModels { version } }');
    assert.deepEqual(result.data.registeredModels.map((m: any) => m.version), ['tiny-a', 'tiny-b', 'tiny-broken']);
  });

  it('switches versions while requests flow, without a failed request', async () => {
    let running = true;
    let failed = 0;
    const versions: string[] = [];
    const client = async () => {
      while (running) {
        const result = await api.query(RECOMMEND, { h: history });
        if (result.errors || result.data.recommendations.items.length !== 5) failed++;
        else versions.push(result.data.recommendations.modelVersion);
      }
    };
    const clients = [client(), client(), client()];

    const started = await api.mutate(ACTIVATE, { v: 'tiny-b' });
    assert.deepEqual(started.data.activateModel, { version: 'tiny-b', state: 'embedding' });
    const during = await api.mutate('mutation { upsertItems(items: [{ id: "late", domain: "video_games", title: "Added during the switch" }]) { count } }');
    assert.equal(during.errors, undefined);
    let progress: any;
    do {
      progress = (await api.query(PROGRESS)).data;
      assert.notEqual(progress.modelActivation.state, 'failed', progress.modelActivation.error);
    } while (progress.modelActivation.state !== 'active');
    await new Promise((resolve) => setTimeout(resolve, 200));
    running = false;
    await Promise.all(clients);

    assert.equal(failed, 0);
    assert.equal(progress.activeModel.version, 'tiny-b');
    assert.ok(progress.modelActivation.total > 0 && progress.modelActivation.done === progress.modelActivation.total);
    // tiny-b is a copy of tiny-a: same encoder, so the serving version's semantic vectors were reused.
    const { mode, reused, embedded, startedAt, loadedAt, finishedAt } = progress.modelActivation;
    assert.equal(mode, 'REUSE');
    assert.ok(reused > 0 && reused + embedded >= api.platform.catalog.items.size - 1, `reused ${reused}, embedded ${embedded}`);
    assert.ok(Date.parse(startedAt) <= Date.parse(loadedAt) && Date.parse(loadedAt) <= Date.parse(finishedAt));
    assert.equal(versions[0], 'tiny-a');
    assert.equal(versions.at(-1), 'tiny-b');
    // Once a response names the new version, no later one names the old.
    assert.ok(versions.indexOf('tiny-b') > versions.lastIndexOf('tiny-a'));
    // The item written during the switch is in the new version's collection.
    assert.ok((await api.platform.collection.retrieve(['late'], 'semantic')).has('late'));
    assert.equal(await api.platform.collection.count(), await api.platform.db.prisma.item.count());
    assert.equal(api.platform.catalog.items.size, await api.platform.db.prisma.item.count());
    const models = await api.query('{ modelVersions { version status } }');
    assert.deepEqual(models.data.modelVersions.map((m: any) => [m.version, m.status]).sort(),
      [['tiny-a', 'retired'], ['tiny-b', 'active']]);
  });

  it('says when the vector index, not the bundle, keeps a version from loading', async () => {
    await publish(registry, 'tiny-unstorable');
    // A file where the version's collection directory would go: the embedded index cannot open the collection.
    await writeFile(path.join(api.settings.dataDir, 'vectors', 'items_tiny-unstorable'), 'not a directory');
    const serving = api.platform.model.version;
    const refused = await api.mutate(ACTIVATE, { v: 'tiny-unstorable' });
    assert.equal(errorCode(refused), 'VECTOR_INDEX_UNAVAILABLE');
    assert.match(refused.errors![0].message, /opening vector collection items_tiny-unstorable failed/);
    assert.equal(api.platform.model.version, serving);
    assert.equal((await api.query(RECOMMEND, { h: history })).data.recommendations.modelVersion, serving);
  });

  it('refuses an invalid bundle and an unknown version; the current version serves on', async () => {
    const broken = await api.mutate(ACTIVATE, { v: 'tiny-broken' });
    assert.equal(errorCode(broken), 'INVALID_BUNDLE');
    assert.match(broken.errors![0].message, /sequence_model\.onnx has sha256/);
    assert.equal(errorCode(await api.mutate(ACTIVATE, { v: 'nope' })), 'UNKNOWN_MODEL_VERSION');
    assert.equal(errorCode(await api.mutate(ACTIVATE, { v: 'tiny-b' })), 'BAD_USER_INPUT');
    assert.equal(errorCode(await api.query(ACTIVATE, { v: 'tiny-a' })), 'UNAUTHENTICATED');
    // Two activations at once: the second is refused while the first runs. (Called on the switcher directly: an
    // activation of the previous version starts synchronously, so the second call always finds it running; over
    // HTTP the first may already be done when the second arrives, now that re-embedding reads items from memory.)
    const first = api.platform.switcher.activate('tiny-a');
    await assert.rejects(api.platform.switcher.activate('tiny-a'), { code: 'ACTIVATION_IN_PROGRESS' });
    assert.equal((await first).version, 'tiny-a');
    await api.platform.switcher.settled();
    await api.mutate('mutation { rollbackModel { state } }');
    await api.platform.switcher.settled();
    const result = await api.query(RECOMMEND, { h: history });
    assert.equal(result.data.recommendations.modelVersion, 'tiny-b');
  });

  it('keeps the activated version across a restart, and rolls back', async () => {
    await api.close();
    await api.open();
    assert.equal((await api.query(RECOMMEND, { h: history })).data.recommendations.modelVersion, 'tiny-b');

    await api.mutate(ACTIVATE, { v: 'tiny-a' });
    await api.platform.switcher.settled();
    assert.equal((await api.query(RECOMMEND, { h: history })).data.recommendations.modelVersion, 'tiny-a');
    const rolledBack = await api.mutate('mutation { rollbackModel { version state } }');
    assert.equal(rolledBack.data.rollbackModel.version, 'tiny-b');
    await api.platform.switcher.settled();
    assert.equal((await api.query(RECOMMEND, { h: history })).data.recommendations.modelVersion, 'tiny-b');
  });

  it('splits traffic between two versions by user id, deterministically', async () => {
    const USER = 'query($u: ID) { recommendations(userId: $u, first: 3) { modelVersion } }';
    const split = await api.mutate('mutation { splitTraffic(version: "tiny-a", share: 0.5) { version state } }');
    assert.equal(split.errors, undefined);
    await api.platform.switcher.settled();
    assert.deepEqual((await api.query('{ trafficSplit { version share } }')).data.trafficSplit, { version: 'tiny-a', share: 0.5 });

    const users = (await api.platform.db.prisma.user.findMany({ select: { id: true } })).map((user) => user.id);
    const seen = new Map<string, string>();
    for (const userId of users) {
      const version = (await api.query(USER, { u: userId })).data.recommendations.modelVersion;
      assert.equal(version, userBucket(userId) < 0.5 ? 'tiny-a' : 'tiny-b', userId);
      seen.set(userId, version);
    }
    assert.ok(new Set(seen.values()).size === 2, 'both versions answer some users');
    const SIMILAR = `query($u: ID) { similarItems(id: "${history[0]}", first: 3, userId: $u) { modelVersion } }`;
    for (const userId of users.slice(0, 10)) {
      assert.equal((await api.query(SIMILAR, { u: userId })).data.similarItems.modelVersion, seen.get(userId), `similarItems for ${userId}`);
    }
    assert.equal((await api.query(SIMILAR, {})).data.similarItems.modelVersion, 'tiny-b');
    for (const userId of users.slice(0, 10)) {
      assert.equal((await api.query(USER, { u: userId })).data.recommendations.modelVersion, seen.get(userId));
    }
    assert.equal((await api.query(RECOMMEND, { h: history })).data.recommendations.modelVersion, 'tiny-b');
    assert.equal(errorCode(await api.mutate('mutation { splitTraffic(version: "tiny-a", share: 1.5) { state } }')), 'BAD_USER_INPUT');

    assert.deepEqual((await api.mutate('mutation { clearTrafficSplit }')).data, { clearTrafficSplit: true });
    for (const userId of users.slice(0, 10)) {
      assert.equal((await api.query(USER, { u: userId })).data.recommendations.modelVersion, 'tiny-b');
    }
  });

  const FAILURE = '{ modelActivation { version state error errorCode } activeModel { version } }';

  it('says when the vector index fails while a version\'s collection is filled; the current version serves on', async () => {
    await publish(registry, 'tiny-unflushable');
    // A directory where the collection's record file goes: the collection opens (as empty), its first flush fails.
    await mkdir(path.join(api.settings.dataDir, 'vectors', 'items_tiny-unflushable', 'collection.json', 'occupied'), { recursive: true });
    const serving = api.platform.model.version;
    const accepted = await api.mutate(ACTIVATE, { v: 'tiny-unflushable' });
    assert.equal(accepted.errors, undefined);
    await api.platform.switcher.settled();
    const { modelActivation, activeModel } = (await api.query(FAILURE)).data;
    assert.equal(modelActivation.state, 'failed');
    assert.equal(modelActivation.errorCode, 'VECTOR_INDEX_UNAVAILABLE');
    assert.match(modelActivation.error, /the vector index failed: \w+ in collection items_tiny-unflushable/);
    assert.equal(activeModel.version, serving);
    assert.equal((await api.query(RECOMMEND, { h: history })).data.recommendations.modelVersion, serving);
  });

  it('says when the database fails to record a switch; the current version serves on and is still the recorded one', async () => {
    await publish(registry, 'tiny-unrecorded');
    const { prisma } = api.platform.db;
    const serving = api.platform.model.version;
    const recorded = async () => (await prisma.modelVersion.findMany({ select: { version: true, status: true }, orderBy: { version: 'asc' } }));
    const before = await recorded();
    await prisma.$executeRawUnsafe(`CREATE FUNCTION refuse_write() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql`);
    await prisma.$executeRawUnsafe('CREATE TRIGGER refuse_write BEFORE INSERT OR UPDATE ON model_versions FOR EACH ROW EXECUTE FUNCTION refuse_write()');
    try {
      assert.equal((await api.mutate(ACTIVATE, { v: 'tiny-unrecorded' })).errors, undefined);
      await api.platform.switcher.settled();
    } finally {
      await prisma.$executeRawUnsafe('DROP TRIGGER refuse_write ON model_versions');
      await prisma.$executeRawUnsafe('DROP FUNCTION refuse_write');
    }
    const { modelActivation, activeModel } = (await api.query(FAILURE)).data;
    assert.deepEqual([modelActivation.state, modelActivation.errorCode], ['failed', 'DATABASE_UNAVAILABLE']);
    assert.match(modelActivation.error, /recording version tiny-unrecorded as active in the database failed: .*disk full/s);
    assert.equal(activeModel.version, serving);
    assert.equal((await api.query(RECOMMEND, { h: history })).data.recommendations.modelVersion, serving);
    assert.deepEqual(await recorded(), before);
    // Nothing is left half-done: the next activation of that version goes through.
    await api.mutate(ACTIVATE, { v: 'tiny-unrecorded' });
    await api.platform.switcher.settled();
    assert.equal((await api.query(RECOMMEND, { h: history })).data.recommendations.modelVersion, 'tiny-unrecorded');
    assert.equal((await api.query(FAILURE)).data.modelActivation.errorCode, null);
  });
});
