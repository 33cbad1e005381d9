/** `npm run validate`: accepts the tiny bundle, refuses corrupt or mismatched ones with a message naming the problem. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { validateCommand } from '../../src/cli/validate.js';
import { REPO, copyOfTinyBundle, editManifest, tinyBundle } from '../support/fixtures.js';

const copies: string[] = [];

async function copyOfBundle(): Promise<string> {
  const dir = await copyOfTinyBundle();
  copies.push(path.dirname(dir));
  return dir;
}

/** Runs validate in-process; returns its exit status and printed lines. */
async function validate(dir: string, options: Parameters<typeof validateCommand>[1] = {}): Promise<{ status: number; output: string }> {
  const lines: string[] = [];
  const status = await validateCommand(dir, options, (line) => lines.push(line));
  return { status, output: lines.join('\n') };
}

async function assertRefused(dir: string, reason: RegExp, options: Parameters<typeof validateCommand>[1] = {}): Promise<void> {
  const { status, output } = await validate(dir, options);
  assert.equal(status, 1, output);
  assert.match(output, /^FAIL  model bundle .* is invalid: /m);
  assert.match(output, reason);
  assert.match(output, /refused: .* cannot be served/);
}

after(async () => {
  await Promise.all(copies.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('validate', () => {
  it('accepts the tiny bundle and prints every check', async () => {
    const { status, output } = await validate(tinyBundle());
    assert.equal(status, 0, output);
    for (const check of ['manifest', 'files', 'tokenizer', 'graph encoder', 'graph adapter', 'graph sequence_model', 'execution provider', 'dynamic axes', 'samples']) {
      assert.match(output, new RegExp(`^ok    ${check} `, 'm'));
    }
    assert.match(output, /graph encoder +encoder\.onnx: input_ids int64 \[batch, tokens\], attention_mask int64 \[batch, tokens\] -> item_embedding float32 \[batch, 64\]/);
    assert.match(output, /^ok    execution provider +cpu$/m);
    assert.match(output, /^valid: .* 9 checks passed\)$/m);
  });

  it('refuses a changed byte', async () => {
    const dir = await copyOfBundle();
    const file = path.join(dir, 'sequence_model.onnx');
    const bytes = await readFile(file);
    bytes[bytes.length >> 1] ^= 0x01;
    await writeFile(file, bytes);
    await assertRefused(dir, /sequence_model\.onnx has sha256 [0-9a-f]{64}, the manifest says [0-9a-f]{64}/);
  });

  it('refuses a missing file', async () => {
    const dir = await copyOfBundle();
    await rm(path.join(dir, 'tokenizer.json'));
    await assertRefused(dir, /tokenizer\.json is missing/);
  });

  it('refuses a manifest whose input names are not the graph\'s', async () => {
    const dir = await copyOfBundle();
    await editManifest(dir, (manifest) => { manifest.graphs.encoder.inputs = ['ids', 'attention_mask']; });
    await assertRefused(dir, /encoder\.onnx: inputs are \[input_ids,attention_mask\], the manifest says \[ids,attention_mask\]/);
  });

  it('refuses a manifest whose dimensions are not the graphs\'', async () => {
    const dir = await copyOfBundle();
    await editManifest(dir, (manifest) => { manifest.dimensions.item_embedding = 65; });
    await assertRefused(dir, /encoder\.onnx: output item_embedding has shape \[batch, 64\], the manifest's dimensions make it \[batch, 65\]/);
  });

  it('refuses a swapped tokenizer even when its sha256 is listed', async () => {
    const dir = await copyOfBundle();
    const file = path.join(dir, 'tokenizer.json');
    const tokenizer = JSON.parse(await readFile(file, 'utf8'));
    const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8'));
    // Another vocabulary: the first sample title's first token and some other token trade ids.
    const vocab = tokenizer.model.vocab as Record<string, number>;
    const first = manifest.samples[0].input_ids[0] as number;
    const a = Object.keys(vocab).find((token) => vocab[token] === first)!;
    const b = Object.keys(vocab).find((token) => vocab[token] === first + 1)!;
    [vocab[a], vocab[b]] = [vocab[b], vocab[a]];
    const text = JSON.stringify(tokenizer);
    await writeFile(file, text);
    await editManifest(dir, (m) => {
      m.files['tokenizer.json'] = { sha256: createHash('sha256').update(text).digest('hex'), bytes: Buffer.byteLength(text) };
    });
    await assertRefused(dir, /tokenizer gives \[.*\] for ".*", training gave \[.*\]/);
  });

  it('refuses to serve an int8 encoder the bundle does not have', async () => {
    await assertRefused(tinyBundle(), /the int8 encoder was asked for .* but the bundle has none/, { encoder: 'int8' });
  });

  it('runs on the CPU when CUDA is asked for but onnxruntime-node cannot load it', async () => {
    const { status, output } = await validate(tinyBundle(), { provider: 'cuda' });
    assert.equal(status, 0, output);
    assert.match(output, /^ok    execution provider +(cuda|cpu: cuda was asked for but onnxruntime-node cannot use it here \(.+\))$/m);
  });

  it('exits 1 from the command line with the reason', async () => {
    const dir = await copyOfBundle();
    await editManifest(dir, (manifest) => { delete manifest.graphs; });
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/validate.ts', dir], { cwd: REPO, encoding: 'utf8' });
    assert.equal(result.status, 1, result.stderr);
    assert.match(result.stdout, /FAIL  model bundle .* is invalid: manifest\.json does not match format 1[\s\S]*graphs/);
  });
});
