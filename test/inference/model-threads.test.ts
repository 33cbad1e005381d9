/**
 * Loading a bundle keeps the calling thread (the server's event loop) free of the encoder: its session is created,
 * checked and run only in its worker thread (issue #16: on the main thread it held the loop for up to seconds during
 * a model switch), that thread runs nicer than the caller, and each graph is opened once, where it serves.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { publishWithOtherEncoder, snapshotBundle } from '../../bench/lib/bundle.js';
import { ort } from '../../src/inference/onnx-runtime.js';
import { RecommendationModel } from '../../src/inference/recommendation-model.js';
import { tinyBundle } from '../support/fixtures.js';
import { graphsRunOnThisThread } from '../support/session-runs.js';

/** Nice value of each thread of this process, by thread id. */
function threadNiceValues(): Map<string, number> {
  const values = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      // Fields after "(comm)": state is field 3, nice field 19.
      values.set(tid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
    } catch { /* the thread ended meanwhile */ }
  }
  return values;
}

describe('bundle checks off the calling thread', () => {
  it('creates and runs no encoder session on the calling thread', async () => {
    const created: string[] = [];
    const create = ort.InferenceSession.create;
    (ort.InferenceSession as any).create = function (file: string, ...rest: unknown[]) {
      created.push(path.basename(file));
      return (create as any).call(this, file, ...rest);
    };
    let model: RecommendationModel | undefined;
    try {
      const { result, graphs } = await graphsRunOnThisThread(() => RecommendationModel.load(tinyBundle()));
      model = result;
      // Only the adapter (a small graph, called when items are stored) lives on the calling thread.
      assert.deepEqual(created, ['adapter.onnx']);
      assert.deepEqual([...new Set(graphs)], ['item_embedding']);
      assert.equal((await model.embedItems(['Tetris'])).length, 1);
    } finally {
      (ort.InferenceSession as any).create = create;
      await model?.release();
    }
  });

  it('runs the encoder thread nicer than the calling thread', async (t) => {
    const mine = os.getPriority();
    if (mine >= 19) return t.skip('this process already runs at the lowest priority');
    const before = threadNiceValues();
    const model = await RecommendationModel.load(tinyBundle());
    try {
      const started = [...threadNiceValues()].filter(([tid]) => !before.has(tid));
      const nicer = started.filter(([, nice]) => nice === Math.min(19, mine + 10));
      // The encoder's worker thread and onnxruntime's intra-op threads it started (none on a one-core machine).
      assert.ok(nicer.length >= 1, `threads started: ${JSON.stringify(started)}`);
      // The sequence model serves requests: its thread keeps the caller's priority.
      assert.ok(started.some(([, nice]) => nice === mine), `threads started: ${JSON.stringify(started)}`);
      assert.equal(os.getPriority(), mine);
    } finally {
      await model.release();
    }
  });

  it('shares the encoder thread of a loaded model whose encoder graph is the same, and only then', async () => {
    const registry = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-share-'));
    try {
      const copy = await snapshotBundle(tinyBundle(), registry, { dirName: 'copy', version: 'tiny-copy' });
      const other = await publishWithOtherEncoder(tinyBundle(), registry, { dirName: 'other', version: 'tiny-other', mark: 'share test' });
      const first = await RecommendationModel.load(tinyBundle());
      const sharing = await RecommendationModel.load(copy.dir, { encoderFrom: [first] });
      const notSharing = await RecommendationModel.load(other.dir, { encoderFrom: [first, sharing] });
      const threadOf = (model: RecommendationModel) => (model as unknown as { encoder: object }).encoder;
      assert.equal(threadOf(sharing), threadOf(first));
      assert.notEqual(threadOf(notSharing), threadOf(first));
      assert.equal(sharing.encoderIdentity, first.encoderIdentity);
      assert.notEqual(notSharing.encoderIdentity, first.encoderIdentity);
      const [expected] = await first.embedItems(['Tetris']);
      // The thread outlives the model that started it while another one uses it.
      await first.release();
      const [shared] = await sharing.embedItems(['Tetris']);
      const [own] = await notSharing.embedItems(['Tetris']);
      assert.deepEqual(shared.semantic, expected.semantic);
      assert.ok(Math.max(...Array.from(own.semantic, (value, i) => Math.abs(value - expected.semantic[i]))) < 1e-4);
      await Promise.all([sharing.release(), notSharing.release()]);
      await assert.rejects(sharing.embedItems(['Tetris']));
    } finally {
      await rm(registry, { recursive: true, force: true });
    }
  });

  it('reports an invalid bundle with the checks’ own message', async () => {
    await assert.rejects(RecommendationModel.load(path.join(os.tmpdir(), 'no-such-bundle')),
      (error: Error) => error.name === 'InvalidBundleError' && /no-such-bundle is invalid/.test(error.message));
  });
});
