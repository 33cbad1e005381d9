/**
 * The retraining loop end to end on the tiny preset: the platform's own data exported in the shared layout,
 * `training` makes a bundle from it into the registry, and the platform activates it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { PYTHON, REPO, cutDataset, tinyBundle } from '../support/fixtures.js';
import { API_KEY, TestPlatform } from '../support/http-platform.js';

const run = promisify(execFile);

describe('retraining loop', () => {
  let api: TestPlatform;
  let registry: string;

  before(async () => {
    registry = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-loop-'));
    await cp(tinyBundle(), path.join(registry, 'first'), { recursive: true });
    api = await TestPlatform.start({ bundleDir: path.join(registry, 'first'), modelRegistryDir: registry });
    await api.load(await cutDataset('amazon-games', 80));
  });

  after(async () => { await api.destroy(); });

  it('exports, trains, publishes and activates the next version', async () => {
    const recorded = await api.mutate('mutation { recordInteractions(interactions: [{ userId: "amazon-games:0", itemId: "amazon-games:7" }]) { count } }');
    assert.equal(recorded.errors, undefined);

    const exported = path.join(await mkdtemp(path.join(os.tmpdir(), 'llm2rec-export-')), 'platform-export');
    await run(process.execPath, ['--import', 'tsx', 'src/cli/export-dataset.ts', '--out', exported, '--url', api.url, '--api-key', API_KEY], { cwd: REPO });
    const items = (await readFile(path.join(exported, 'items.jsonl'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line));
    const rows = (await readFile(path.join(exported, 'interactions.csv'), 'utf8')).trim().split('\n');
    assert.equal(items.length, await api.platform.db.prisma.item.count());
    assert.equal(rows.length - 1, await api.platform.db.prisma.interaction.count());
    const userRows = rows.filter((row) => row.startsWith('amazon-games:0,'));
    assert.equal(userRows.at(-1)!.split(',')[1], 'amazon-games:7', 'the live interaction ends its user\'s sequence');

    const next = path.join(registry, 'next');
    await run(PYTHON, ['-m', 'training.llm2rec.cli', 'bundle', '--preset', 'tiny', '--datasets', exported, '--out', next], { cwd: REPO });
    const version = JSON.parse(await readFile(path.join(next, 'manifest.json'), 'utf8')).model_version;
    assert.notEqual(version, api.platform.model.version);

    const activated = await api.mutate('mutation($v: String!) { activateModel(version: $v) { state } }', { v: version });
    assert.equal(activated.errors, undefined);
    await api.platform.switcher.settled();
    const result = await api.query('{ recommendations(userId: "amazon-games:0", first: 3) { modelVersion items { item { id } } } }');
    assert.equal(result.data.recommendations.modelVersion, version);
    assert.equal(result.data.recommendations.items.length, 3);
  });
});
