/**
 * The parity pipeline end to end on the tiny bundle (scripts/parity-report.sh in small): an int8 encoder is added to a
 * copy of the bundle, Python writes real titles and histories with their PyTorch and onnxruntime outputs, the server's
 * RecommendationModel (onnxruntime-node) runs the same inputs, and the report must show every graph within 1e-4.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runNodeParity } from '../../src/cli/parity.js';
import { RecommendationModel } from '../../src/inference/recommendation-model.js';
import { PYTHON, REPO, SHARED_DATA, tinyBundle } from '../support/fixtures.js';

const TOLERANCE = 1e-4;
let root: string;
let bundle: string;
let report: any;
let manifest: any;

function python(...args: string[]): void {
  execFileSync(PYTHON, args, { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0, na = 0, nb = 0;
  a.forEach((value, i) => { dot += value * b[i]; na += value * value; nb += b[i] * b[i]; });
  return dot / Math.sqrt(na * nb);
}

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-parity-'));
  bundle = path.join(root, 'bundle');
  await cp(tinyBundle(), bundle, { recursive: true });
  const scientific = path.join(SHARED_DATA, 'amazon-scientific');
  python('-m', 'training.llm2rec.quantize', '--bundle', bundle, '--datasets', scientific,
    '--overlap-dataset', scientific, '--users', '300');
  manifest = JSON.parse(await readFile(path.join(bundle, 'manifest.json'), 'utf8'));
  const work = path.join(root, 'work');
  python('-m', 'training.llm2rec.parity', 'prepare', '--bundle', bundle, '--work', work,
    '--users', '15', '--titles', '25', '--sample-tokenizer');
  await runNodeParity(bundle, work);
  const out = path.join(root, 'parity.json');
  python('-m', 'training.llm2rec.parity', 'report', '--work', work, '--out', out);
  report = JSON.parse(await readFile(out, 'utf8'));
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('parity on the tiny bundle', () => {
  it('PyTorch, onnxruntime in Python and onnxruntime-node agree within 1e-4 on every graph', () => {
    for (const graph of ['encoder_fp32', 'adapter', 'sequence_model']) {
      const measured = report[graph];
      for (const key of ['pytorch_vs_onnxruntime_python', 'pytorch_vs_onnxruntime_node', 'onnxruntime_python_vs_node']) {
        assert.ok(measured[key] <= TOLERANCE, `${graph} ${key}: ${measured[key]}`);
      }
      assert.ok(measured.max_abs_diff <= TOLERANCE);
    }
    assert.ok(report.encoder_fp32.titles > 100, `${report.encoder_fp32.titles} titles`);
    assert.ok(report.sequence_model.histories > 30);
    assert.ok(report.sequence_model.history_lengths.includes(1), 'one-item histories are measured');
    assert.ok(report.dynamic_axes.max_abs_diff <= TOLERANCE);
    assert.equal(report.passed, true, report.failures.join('; '));
  });

  it('tokenizes the titles in TypeScript exactly as in Python', () => {
    assert.equal(report.tokenizer.mismatches, 0);
    assert.equal(report.tokenizer.titles, report.encoder_fp32.titles);
  });

  it('adds an int8 encoder that stays within cosine 0.99 of fp32 and is listed with its sha256', () => {
    assert.deepEqual(manifest.graphs.encoder_int8,
      { file: 'encoder.int8.onnx', inputs: ['input_ids', 'attention_mask'], outputs: ['item_embedding'] });
    assert.match(manifest.files['encoder.int8.onnx'].sha256, /^[0-9a-f]{64}$/);
    const variant = manifest.variants.encoder_int8;
    assert.ok(variant.bytes < manifest.files['encoder.onnx'].bytes / 2, `${variant.bytes} bytes`);
    assert.ok(variant.min_cosine >= 0.99 && variant.top10_overlap >= 0.9, JSON.stringify(variant));
    assert.equal(variant.item_embedding_heads.length, manifest.samples.length);
    assert.ok(report.encoder_int8.min_cosine >= 0.99);
    assert.ok(report.encoder_int8.parity_titles.onnxruntime_python_vs_node_max_abs_diff <= TOLERANCE);
  });

  it('serves the int8 encoder when asked, close to fp32 on real titles', async () => {
    const fp32 = await RecommendationModel.load(bundle);
    const int8 = await RecommendationModel.load(bundle, { provider: 'cpu', encoder: 'int8' });
    assert.equal(int8.encoderVariant, 'int8');
    const lines = (await readFile(path.join(SHARED_DATA, 'amazon-games', 'items.jsonl'), 'utf8')).split('\n');
    const titles = lines.slice(0, 64).filter(Boolean).map((line) => JSON.parse(line).title as string);
    const [a, b] = [await fp32.encode(titles), await int8.encode(titles)];
    a.forEach((row, i) => assert.ok(cosine(row, b[i]) >= 0.99, `${titles[i]}: ${cosine(row, b[i])}`));
    await Promise.all([fp32.release(), int8.release()]);
  });
});
