/**
 * Does onnxruntime's intra-op thread pool pay for the small graphs (sequence model, adapter)?
 *
 *   npx tsx bench/experiments/onnx-threads.ts [--rounds 3] [--seconds 8]
 *
 * 1. In process: the sequence model (one history of 10) called in a loop, and in a server-like loop (each call
 *    followed by 2 ms of JavaScript work), with the default pool and with intraOpNumThreads 1: latency and CPU.
 * 2. Over HTTP: the platform's server on the prepared real catalogue (run `npm run bench` first), loaded with
 *    recommendations at concurrency 8, alternately as it is and with small-graphs-single-thread.mjs preloaded.
 */
import path from 'node:path';
import { Command } from 'commander';
import * as ort from 'onnxruntime-node';
import { manifestOf, snapshotBundle } from '../lib/bundle.js';
import { readCatalogue, sampleHistories } from '../lib/catalogue.js';
import { httpLoad, percentile } from '../lib/load.js';
import { busyProcesses, processCpuMs } from '../lib/machine.js';
import { BENCH_TMP, REPO, SHARED_DATA } from '../lib/paths.js';
import { startPlatformServer } from '../lib/server-process.js';

const o = new Command().option('--rounds <n>', 'A/B rounds over HTTP', '3').option('--seconds <s>', 'seconds per HTTP run', '8')
  .option('--bundle <dir>', 'bundle', path.join(REPO, 'bundles/quick')).parse().opts();
console.log(`busy at the start: ${JSON.stringify(await busyProcesses())}`);
const bundle = await snapshotBundle(path.resolve(o.bundle), path.join(BENCH_TMP, 'bundles'));
const manifest = await manifestOf(bundle.dir) as any;
const dim = manifest.dimensions.recommendation;
const length = manifest.sequence_model.max_history;
const feeds = {
  history: new ort.Tensor('float32', new Float32Array(length * dim).map(() => Math.random() - 0.5), [1, length, dim]),
  history_mask: new ort.Tensor('int64', new BigInt64Array(length).fill(1n), [1, length]),
};
const spin = (ms: number) => { const end = performance.now() + ms; while (performance.now() < end); };

for (const [label, options] of [['default pool', {}], ['intraOpNumThreads 1', { intraOpNumThreads: 1, interOpNumThreads: 1 }]] as const) {
  const session = await ort.InferenceSession.create(path.join(bundle.dir, manifest.graphs.sequence_model.file), { graphOptimizationLevel: 'all', ...options });
  for (let i = 0; i < 200; i++) await session.run(feeds);
  for (const work of [0, 2]) {
    const latencies: number[] = [];
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (let i = 0; i < 1000; i++) {
      const t = performance.now();
      await session.run(feeds);
      latencies.push(performance.now() - t);
      if (work) spin(work);
    }
    const used = process.cpuUsage(cpu);
    latencies.sort((a, b) => a - b);
    console.log(`sequence model, ${label}, ${work} ms of JS after each call: run p50 ${percentile(latencies, 50).toFixed(3)} ms, p99 ${percentile(latencies, 99).toFixed(3)} ms; ` +
      `process CPU per iteration ${((used.user + used.system) / 1000 / 1000).toFixed(3)} ms; wall per iteration ${((performance.now() - started) / 1000).toFixed(3)} ms`);
  }
  await session.release();
}

const dataDir = path.join(BENCH_TMP, 'data', `real-38131-${bundle.version}`);
const known = new Set((await readCatalogue([path.join(SHARED_DATA, 'amazon-games')])).map((item) => item.id));
const histories = await sampleHistories(path.join(SHARED_DATA, 'amazon-games'), { count: 500, length: 10, known });
const query = 'query Bench($h: [ID!], $first: Int!) { recommendations(history: $h, first: $first) { modelVersion domain items { score item { id title } } } }';
const bodies = histories.map((h) => JSON.stringify({ query, variables: { h, first: 10 } }));
for (let round = 1; round <= Number(o.rounds); round++) {
  for (const patched of [false, true]) {
    const server = await startPlatformServer({
      dataDir, bundleDir: bundle.dir, logFile: path.join(BENCH_TMP, 'logs', 'onnx-threads.log'),
      ...(patched && { nodeImports: [path.join(REPO, 'bench/experiments/small-graphs-single-thread.mjs')] }),
    });
    let before = 0;
    const stats = await httpLoad({
      url: `${server.origin}/graphql`, bodies, concurrency: 8, durationSeconds: Number(o.seconds), warmupSeconds: 2,
      onMeasure: () => { before = processCpuMs(server.pid); },
    }).done;
    const cpu = (processCpuMs(server.pid) - before) / stats.requests;
    await server.stop();
    console.log(`round ${round}, server ${patched ? 'with intraOpNumThreads 1 for the small graphs' : 'as it is'}: ${stats.rps} requests/s, p50 ${stats.p50_ms} ms, p99 ${stats.p99_ms} ms, server CPU ${cpu.toFixed(3)} ms per request, failed ${stats.failed}`);
  }
}
