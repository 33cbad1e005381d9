/**
 * The benchmarks run end to end: the serving benchmark (raw, HTTP, floor, ingestion) and the hot-swap load test
 * on a few hundred items with the tiny bundle and runs of a fraction of a second. The numbers mean nothing here;
 * the shape of the reports and the absence of failed requests do.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runHotSwap } from '../../bench/hot-swap.js';
import { hotSwapMarkdown, replaceSection, servingMarkdown } from '../../bench/lib/markdown.js';
import { runServingBench, SCENARIOS } from '../../bench/serving.js';
import { tinyBundle } from '../support/fixtures.js';

describe('benchmarks (smoke)', () => {
  let workDir: string;
  const log = () => undefined;

  before(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-bench-'));
  });
  after(async () => {
    await rm(workDir, { recursive: true, force: true });
  });

  it('serving benchmark: HTTP, floor and raw for every scenario, and ingestion', async () => {
    const report = await runServingBench({
      bundleDir: tinyBundle(), catalogues: [400], limitPerDir: 60, concurrency: [2],
      durationSeconds: 0.4, warmupSeconds: 0.1, maxRequests: 2000, samples: 20, historyLength: 3, first: 5,
      ingestItems: 48, ingestBatch: 16, syntheticVectors: 'derived', workDir, serverLogLevel: 'warn',
      command: 'test', log,
    });
    // 300 real items (60 of each dataset) grown to 400.
    assert.deepEqual(report.catalogues.map((c) => [c.items, c.real_items, c.made_up_items]), [[400, 300, 100]]);
    for (const list of [report.scenarios, report.raw]) {
      assert.equal(list.length, SCENARIOS.length);
    }
    assert.equal(report.floor.length, SCENARIOS.length);
    for (const result of [...report.scenarios, ...report.raw, ...report.floor]) {
      assert.equal(result.failed, 0, `${result.name} c=${result.concurrency} failed`);
      assert.ok(result.requests > 0 && result.rps > 0 && result.p50_ms > 0 && result.p99_ms >= result.p50_ms, JSON.stringify(result));
      assert.ok(['catalogue', 'concurrency', 'name', 'p50_ms', 'p99_ms', 'rps'].every((key) => key in result));
    }
    // The floor answers with the platform's own response bytes.
    for (const floor of report.floor) {
      const served = report.scenarios.find((s) => s.name === floor.name && s.catalogue === floor.catalogue)!;
      assert.equal(floor.response_bytes, served.response_bytes, floor.name);
    }
    assert.ok(report.ingestion.items_per_s > 0 && report.ingestion.encoder_items_per_s > 0);
    assert.ok(report.targets.length > 0);

    const docs = path.join(workDir, 'BENCHMARKS.md');
    await writeFile(docs, 'intro\n<!-- serving-bench:begin -->\nold\n<!-- serving-bench:end -->\noutro\n');
    await replaceSection(docs, 'serving-bench', servingMarkdown(report));
    const text = await readFile(docs, 'utf8');
    assert.match(text, /\| recommendations \| 2 \|/);
    assert.match(text, /^intro\n[\s\S]*\noutro\n$/);
  });

  it('hot-swap load test: no failed request across both switches', async () => {
    const report = await runHotSwap({
      bundleDir: tinyBundle(), datasets: ['amazon-games'], limitPerDir: 300, concurrency: 4, rates: [40],
      findMax: false, steadySeconds: 1, warmupSeconds: 0.3, beforeSeconds: 1, sameEncoderSwitches: 2, newEncoder: true,
      betweenSeconds: 0.5, afterSeconds: 0.5,
      swapTimeoutSeconds: 120, samples: 20, historyLength: 3, first: 5, workDir, serverLogLevel: 'info', command: 'test', log,
    });
    assert.equal(report.failed, 0, JSON.stringify(report.runs.map((run) => run.first_failures)));
    assert.equal(report.runs.length, 1);
    const [run] = report.runs;
    assert.ok(run.phases.before!.requests > 0 && run.phases.after!.requests > 0);
    assert.deepEqual(run.switches.map((s) => [s.kind, s.mode]), [['same_encoder', 'reuse'], ['same_encoder', 'reuse'], ['new_encoder', 'embed']]);
    assert.equal(run.switches[0].reused, report.catalogue.items);
    assert.equal(run.switches[1].reused, report.catalogue.items);  // each same-encoder switch to a version of its own
    assert.equal(run.switches[2].embedded, report.catalogue.items);
    // the two same-encoder switches are one phase: its requests are those due during either
    const slowest = run.phases.during_same_encoder!.slowest;
    assert.ok(slowest.every((s) => s.part === 1 || s.part === 2), JSON.stringify(slowest));
    for (const s of run.switches) {
      assert.equal(typeof s.seconds, 'number');
      assert.equal(s.old_version_answers_after_first_new, 0);
      assert.ok(run.responses_by_version[s.to_version] > 0);
    }
    assert.match(hotSwapMarkdown(report), /during the new-encoder switch/);
  });
});
