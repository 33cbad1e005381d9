/**
 * Tokenizer parity: the TypeScript tokenizer gives the Python tokenizer's ids on every title in ../shared/data.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { readManifest } from '../../src/inference/manifest.js';
import { TitleTokenizer } from '../../src/inference/tokenizer.js';
import { PYTHON, REPO, SHARED_DATA, tinyBundle } from '../support/fixtures.js';

describe('TitleTokenizer', () => {
  it('gives the Python tokenizer\'s ids on every title of every shared dataset', async () => {
    const bundle = tinyBundle();
    const manifest = await readManifest(bundle);
    const datasets = (await readdir(SHARED_DATA, { withFileTypes: true })).filter((entry) => entry.isDirectory());
    const out = path.join(await mkdtemp(path.join(os.tmpdir(), 'llm2rec-ids-')), 'ids.json');
    execFileSync(PYTHON, ['-m', 'training.llm2rec.tokenize_titles', '--tokenizer', path.join(bundle, manifest.tokenizer.file), '--out', out,
      '--datasets', ...datasets.map((entry) => path.join(SHARED_DATA, entry.name))], { cwd: REPO, stdio: 'inherit' });
    const expected = JSON.parse(await readFile(out, 'utf8')) as { titles: string[]; ids: number[][] };

    const tokenizer = await TitleTokenizer.fromFile(path.join(bundle, manifest.tokenizer.file), {
      maxLength: manifest.tokenizer.max_length,
      padTokenId: manifest.tokenizer.pad_token_id,
      addSpecialTokens: manifest.tokenizer.add_special_tokens,
    });
    const mismatches = expected.titles.filter((title, i) => tokenizer.ids(title).join(',') !== expected.ids[i].join(','));
    assert.ok(expected.titles.length > 30_000, `only ${expected.titles.length} titles`);
    assert.deepEqual(mismatches.slice(0, 5), [], `${mismatches.length} of ${expected.titles.length} titles differ`);
  });

  it('pads a batch to its longest title and masks the padding', async () => {
    const manifest = await readManifest(tinyBundle());
    const tokenizer = await TitleTokenizer.fromFile(path.join(tinyBundle(), manifest.tokenizer.file), {
      maxLength: manifest.tokenizer.max_length,
      padTokenId: manifest.tokenizer.pad_token_id,
      addSpecialTokens: manifest.tokenizer.add_special_tokens,
    });
    const short = tokenizer.ids('Halo');
    const long = tokenizer.ids('Halo 3 - Xbox 360 Legendary Edition');
    const batch = tokenizer.batch(['Halo', 'Halo 3 - Xbox 360 Legendary Edition']);
    assert.equal(batch.length, long.length);
    assert.deepEqual([...batch.inputIds.slice(0, short.length)].map(Number), short);
    assert.deepEqual([...batch.attentionMask.slice(0, batch.length)].map(Number),
      Array.from({ length: batch.length }, (_, i) => (i < short.length ? 1 : 0)));
    assert.equal(Number(batch.inputIds[batch.length - 1]), manifest.tokenizer.pad_token_id);
    assert.throws(() => tokenizer.batch(['']), /no tokens/);
  });
});
