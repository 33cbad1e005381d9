/** Loading a model bundle: a good one serves, a corrupt or mismatched one is refused with a clear reason. */
import assert from 'node:assert/strict';
import { readFile, writeFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { InvalidBundleError } from '../../src/inference/manifest.js';
import { RecommendationModel } from '../../src/inference/recommendation-model.js';
import { copyOfTinyBundle as copyOfBundle, editManifest, tinyBundle } from '../support/fixtures.js';

describe('RecommendationModel.load', () => {
  it('loads the tiny bundle and computes vectors of the manifest dimensions', async () => {
    const model = await RecommendationModel.load(tinyBundle());
    const [a, b] = await model.embedItems(['Super Mario Odyssey', 'Halo 3 - Xbox 360']);
    assert.equal(a.semantic.length, model.dimensions.semantic);
    assert.equal(a.recommendation.length, model.dimensions.recommendation);
    assert.notDeepEqual(a.semantic, b.semantic);
    const user = await model.userVector([a.recommendation, b.recommendation]);
    assert.equal(user.length, model.dimensions.recommendation);
    assert.ok(user.every(Number.isFinite));
    await model.release();
  });

  it('gives each title the same embedding alone and inside a padded batch', async () => {
    const model = await RecommendationModel.load(tinyBundle());
    const [alone] = await model.encode(['Tetris']);
    const [inBatch] = await model.encode(['Tetris', 'The Legend of Zelda: Breath of the Wild - Nintendo Switch']);
    alone.forEach((value, i) => assert.ok(Math.abs(value - inBatch[i]) < 1e-5));
    await model.release();
  });

  it('reads a history in order: the sequence model is order-aware', async () => {
    const model = await RecommendationModel.load(tinyBundle());
    const [a, b, c] = (await model.embedItems(['Tetris', 'Halo 3', 'FIFA 19'])).map((v) => v.recommendation);
    assert.notDeepEqual(await model.userVector([a, b, c]), await model.userVector([c, b, a]));
    await model.release();
  });

  it('refuses a bundle whose graph file was changed', async () => {
    const dir = await copyOfBundle();
    const file = path.join(dir, 'adapter.onnx');
    const bytes = await readFile(file);
    bytes[bytes.length - 1] ^= 0xff;
    await writeFile(file, bytes);
    await assert.rejects(RecommendationModel.load(dir), (error: Error) =>
      error instanceof InvalidBundleError && /adapter\.onnx has sha256/.test(error.message));
    await rm(dir, { recursive: true });
  });

  it('refuses a bundle with a missing file, a broken manifest or wrong graph names', async () => {
    const missing = await copyOfBundle();
    await rm(path.join(missing, 'encoder.onnx'));
    await assert.rejects(RecommendationModel.load(missing), /encoder\.onnx is missing/);

    const broken = await copyOfBundle();
    await editManifest(broken, (manifest) => { delete manifest.dimensions; });
    await assert.rejects(RecommendationModel.load(broken), /does not match format 1[\s\S]*dimensions/);

    const renamed = await copyOfBundle();
    await editManifest(renamed, (manifest) => { manifest.graphs.adapter.outputs = ['vector']; });
    await assert.rejects(RecommendationModel.load(renamed), /adapter\.onnx: outputs are \[recommendation_vector\]/);
  });

  it('refuses a bundle whose encoder disagrees with the embeddings training recorded', async () => {
    const dir = await copyOfBundle();
    await editManifest(dir, (manifest) => { manifest.samples[0].item_embedding_head[0] += 0.5; });
    await assert.rejects(RecommendationModel.load(dir), /encoder gives .* training gave/);
  });
});
