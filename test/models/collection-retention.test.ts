/**
 * Retired versions' vector collections (issue #14): after each switch and at start-up, the collections of versions
 * retired longer ago than the last `retainedVersions` are dropped; never the serving version's, its rollback
 * target's, or a displaced version's while requests that started on it may still run.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Settings } from '../../src/config.js';
import { cutDataset, publishTinyBundle } from '../support/fixtures.js';
import { TestPlatform } from '../support/http-platform.js';

const VERSIONS = ['tiny-a', 'tiny-b', 'tiny-c', 'tiny-d'];
const RECOMMEND = 'query($h: [ID!]) { recommendations(history: $h, first: 5) { modelVersion items { item { id } } } }';

async function registryOfCopies(): Promise<string> {
  const registry = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-retention-'));
  for (const version of VERSIONS) await publishTinyBundle(registry, version);
  return registry;
}

describe('retired versions\' collections', () => {
  let registry: string;
  let dataset: string;
  let history: string[];
  const platforms: TestPlatform[] = [];

  before(async () => {
    registry = await registryOfCopies();
    dataset = await cutDataset('amazon-games', 30);
    const lines = (await readFile(path.join(dataset, 'interactions.csv'), 'utf8')).trim().split('\n').slice(1, 4);
    history = lines.map((line) => `amazon-games:${line.split(',')[1]}`);
  });

  after(async () => { for (const api of platforms) await api.destroy(); });

  async function start(overrides: Partial<Settings>): Promise<TestPlatform> {
    const api = await TestPlatform.start({ bundleDir: path.join(registry, 'tiny-a'), modelRegistryDir: registry, ...overrides });
    platforms.push(api);
    await api.load(dataset);
    return api;
  }

  /** The versions that have a collection, in order. */
  async function withCollections(api: TestPlatform): Promise<string[]> {
    const names = await api.platform.vectors.listCollections();
    return VERSIONS.filter((version) => names.includes(`items_${version}`));
  }

  async function activate(api: TestPlatform, version: string): Promise<void> {
    const answer = await api.mutate('mutation($v: String!) { activateModel(version: $v) { state } }', { v: version });
    assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
    await api.platform.switcher.settled();
    assert.equal(api.platform.switcher.activation()?.state, 'active');
  }

  it('keeps the serving version, its rollback target and the last retired ones; drops the rest', async () => {
    const api = await start({ retainedVersions: 1, releaseGraceMs: 0 });
    const items = await api.platform.collection.count();
    assert.deepEqual(await withCollections(api), ['tiny-a']);
    await activate(api, 'tiny-b');
    assert.deepEqual(await withCollections(api), ['tiny-a', 'tiny-b']);
    await activate(api, 'tiny-c'); // retired, newest first: b (the rollback target), a (the 1 retained besides it)
    assert.deepEqual(await withCollections(api), ['tiny-a', 'tiny-b', 'tiny-c']);
    await activate(api, 'tiny-d'); // retired: c (rollback target), b (retained), a (dropped)
    assert.deepEqual(await withCollections(api), ['tiny-b', 'tiny-c', 'tiny-d']);

    const rolledBack = await api.mutate('mutation { rollbackModel { version } }');
    assert.equal(rolledBack.data.rollbackModel.version, 'tiny-c');
    await api.platform.switcher.settled();
    // Serving c; retired: d (rollback target), b (retained).
    assert.deepEqual(await withCollections(api), ['tiny-b', 'tiny-c', 'tiny-d']);
    const served = await api.query(RECOMMEND, { h: history });
    assert.equal(served.data.recommendations.modelVersion, 'tiny-c');
    assert.equal(served.data.recommendations.items.length, 5);
    assert.equal(await api.platform.collection.count(), items);

    // A dropped version can be activated again: its collection is filled anew. Retired: c (rollback target),
    // d (retained), b (dropped).
    await activate(api, 'tiny-a');
    assert.equal(await api.platform.collection.count(), items);
    assert.equal((await api.query(RECOMMEND, { h: history })).data.recommendations.modelVersion, 'tiny-a');
    assert.deepEqual(await withCollections(api), ['tiny-a', 'tiny-c', 'tiny-d']);

    // At start-up only the active version is loaded: c is the one retained, d goes.
    await api.close();
    await api.open();
    assert.equal(api.platform.model.version, 'tiny-a');
    assert.deepEqual(await withCollections(api), ['tiny-a', 'tiny-c']);
  });

  it('keeps a displaced version\'s collection while requests that started on it may still run', async () => {
    const api = await start({ retainedVersions: 0, releaseGraceMs: 600_000 });
    await activate(api, 'tiny-b');
    await activate(api, 'tiny-c'); // a: displaced, still loaded for the grace period
    assert.deepEqual(await withCollections(api), ['tiny-a', 'tiny-b', 'tiny-c']);
  });
});
