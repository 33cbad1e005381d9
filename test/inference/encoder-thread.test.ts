/**
 * The item encoder runs in a worker thread: no encoder session runs on the main thread, the event loop keeps
 * turning through long encoder calls, the vectors are those of the graph run directly, and a thread that cannot
 * start says why.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { runEncoder, rowViews } from '../../src/inference/encoder.js';
import { EncoderThread } from '../../src/inference/encoder-thread.js';
import { createSession } from '../../src/inference/onnx-runtime.js';
import { RecommendationModel } from '../../src/inference/recommendation-model.js';
import { tinyBundle } from '../support/fixtures.js';
import { graphsRunOnThisThread } from '../support/session-runs.js';

/** Long titles, so that one call of the tiny encoder takes a while. */
const TITLES = Array.from({ length: 1024 }, (_, i) =>
  `The Legend of Zelda ${i}: Breath of the Wild - Nintendo Switch, deluxe edition number ${i} with a map and a soundtrack`);

describe('the encoder thread', () => {
  let model: RecommendationModel;

  before(async () => { model = await RecommendationModel.load(tinyBundle()); });
  after(async () => { await model.release(); });

  it('runs no encoder session on the main thread, and gives the vectors of the graph run directly', async () => {
    const { result: items, graphs: graphsRunHere } = await graphsRunOnThisThread(() => model.embedItems(TITLES.slice(0, 100)));
    // The adapter ran here; the encoder (input_ids, attention_mask) did not.
    assert.ok(graphsRunHere.length > 0 && graphsRunHere.every((inputs) => inputs === 'item_embedding'), graphsRunHere.join('; '));

    const session = await createSession(path.join(tinyBundle(), 'encoder.onnx'), 'cpu');
    const direct = rowViews(await runEncoder(session, await model.tokenizer(), TITLES.slice(0, 100)), 100);
    await session.release();
    items.forEach((item, i) => item.semantic.forEach((value, j) => assert.ok(Math.abs(value - direct[i][j]) < 1e-5)));
  });

  it('keeps the event loop turning through encoder calls', async () => {
    await model.encode(TITLES);
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    const started = performance.now();
    const calls = 3;
    for (let i = 0; i < calls; i++) await model.encode(TITLES);
    const perCall = (performance.now() - started) / calls;
    delay.disable();
    // On the main thread each call would stop the loop for about its whole duration.
    const longestStop = delay.max / 1e6;
    assert.ok(longestStop < perCall / 2, `the event loop stood still for ${longestStop.toFixed(1)} ms; one encoder call takes ${perCall.toFixed(1)} ms`);
  });

  it('reports why it cannot start', async () => {
    const thread = EncoderThread.start({
      encoderFile: path.join(tinyBundle(), 'no-such-encoder.onnx'),
      tokenizerFile: path.join(tinyBundle(), 'tokenizer.json'),
      tokenizer: (await model.tokenizer()).settings,
      provider: 'cpu',
    });
    await assert.rejects(thread.encode(['Tetris']), /no-such-encoder\.onnx/);
    await thread.close();
  });
});
