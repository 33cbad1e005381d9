/**
 * The sequence model runs in a worker thread, in batches: histories asked for in the same turn of the event loop
 * share one call, each gets the vector the graph gives it alone, a bad history fails alone, no sequence-model
 * session runs on the main thread, and a thread that cannot start says why.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rowViews } from '../../src/inference/encoder.js';
import { createSession } from '../../src/inference/onnx-runtime.js';
import { RecommendationModel } from '../../src/inference/recommendation-model.js';
import { padHistories, runSequenceModel } from '../../src/inference/sequence-model.js';
import { SequenceModelThread } from '../../src/inference/sequence-model-thread.js';
import { tinyBundle } from '../support/fixtures.js';
import { graphsRunOnThisThread } from '../support/session-runs.js';

const TITLES = ['Tetris', 'Super Mario Bros.', 'The Legend of Zelda', 'Metroid Prime', 'Pokemon Red', 'Halo 3',
  'Gran Turismo 4', 'Final Fantasy VII', 'Portal 2', 'Minecraft', 'Doom', 'Civilization IV'];

describe('the sequence-model thread', () => {
  let model: RecommendationModel;
  let thread: SequenceModelThread;
  let histories: Float32Array[][];
  let alone: Float32Array[];

  before(async () => {
    model = await RecommendationModel.load(tinyBundle());
    const vectors = (await model.embedItems(TITLES)).map((item) => item.recommendation);
    // Histories of 1 to 12 items (longer than the model's maxHistory, so some are cut).
    histories = vectors.map((_, end) => vectors.slice(0, end + 1).reverse());
    thread = SequenceModelThread.start(
      { file: path.join(tinyBundle(), model.manifest.graphs.sequence_model.file), provider: 'cpu' },
      { length: model.maxHistory, dim: model.dimensions.recommendation },
    );
    // Each history on its own, through a session on this thread.
    const session = await createSession(path.join(tinyBundle(), model.manifest.graphs.sequence_model.file), 'cpu', 'small');
    alone = [];
    for (const history of histories) {
      alone.push(rowViews(await runSequenceModel(session, padHistories([history], model.maxHistory, model.dimensions.recommendation)), 1)[0]);
    }
    await session.release();
  });
  after(async () => { await Promise.all([thread.close(), model.release()]); });

  it('runs histories asked for in the same turn in one call, each as if alone', async () => {
    const before = { ...thread.made };
    const vectors = await Promise.all(histories.map((history) => thread.userVector(history)));
    assert.deepEqual({ calls: thread.made.calls - before.calls, histories: thread.made.histories - before.histories }, { calls: 1, histories: histories.length });
    vectors.forEach((vector, i) => vector.forEach((value, j) => assert.ok(Math.abs(value - alone[i][j]) < 1e-5, `history ${i}, value ${j}: ${value} vs ${alone[i][j]}`)));
  });

  it('runs histories asked for in different turns in different calls', async () => {
    const before = thread.made.calls;
    await thread.userVector(histories[0]);
    await new Promise((resolve) => setImmediate(resolve));
    await thread.userVector(histories[1]);
    assert.equal(thread.made.calls - before, 2);
  });

  it('fails an empty history alone', async () => {
    const results = await Promise.allSettled([thread.userVector(histories[2]), thread.userVector([]), thread.userVector(histories[3])]);
    assert.deepEqual(results.map((result) => result.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.match(String((results[1] as PromiseRejectedResult).reason), /at least one item/);
  });

  it('serves RecommendationModel.userVector without a sequence-model session on the main thread', async () => {
    const { result: vectors, graphs: graphsRunHere } = await graphsRunOnThisThread(() =>
      Promise.all([model.userVector(histories[4]), model.userVectors([histories[5]])]));
    assert.deepEqual(graphsRunHere, []);
    vectors[0].forEach((value, j) => assert.ok(Math.abs(value - alone[4][j]) < 1e-5));
    vectors[1][0].forEach((value, j) => assert.ok(Math.abs(value - alone[5][j]) < 1e-5));
  });

  it('reports why it cannot start', async () => {
    const broken = SequenceModelThread.start({ file: path.join(tinyBundle(), 'no-such-model.onnx'), provider: 'cpu' }, { length: 4, dim: 8 });
    await assert.rejects(broken.userVector([new Float32Array(8)]), /no-such-model\.onnx/);
    await broken.close();
  });
});
