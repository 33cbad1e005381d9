/**
 * Where the server's main thread spends a recommendation request: a V8 CPU profile of the platform's server under
 * load, summed by package over the load window only (start-up excluded).
 *
 *   npx tsx bench/experiments/profile-server.ts [--catalogue grown-100000] [--seconds 10] [--concurrency 8]
 *
 * Needs the catalogue prepared by `npm run bench` (`real-38131` or `grown-100000`). Profiles go to .tmp/bench/profiles/.
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { Command } from 'commander';
import { snapshotBundle } from '../lib/bundle.js';
import { readCatalogue, sampleHistories } from '../lib/catalogue.js';
import { httpLoad } from '../lib/load.js';
import { busyProcesses } from '../lib/machine.js';
import { BENCH_TMP, REPO, SHARED_DATA } from '../lib/paths.js';
import { startPlatformServer } from '../lib/server-process.js';

const o = new Command()
  .option('--bundle <dir>', 'bundle', path.join(REPO, 'bundles/quick'))
  .option('--seconds <s>', 'seconds of load', '10')
  .option('--concurrency <n>', 'connections', '8')
  .option('--catalogue <name>', 'a data directory prepared by npm run bench: real-38131 or grown-100000', 'real-38131')
  .option('--single-thread-small-graphs', 'preload small-graphs-single-thread.mjs')
  .parse().opts();
console.log(`busy at the start: ${JSON.stringify(await busyProcesses())}`);
const bundle = await snapshotBundle(path.resolve(o.bundle), path.join(BENCH_TMP, 'bundles'));
const profiles = path.join(BENCH_TMP, 'profiles');
await rm(profiles, { recursive: true, force: true });
await mkdir(profiles, { recursive: true });
const server = await startPlatformServer({
  dataDir: path.join(BENCH_TMP, 'data', `${o.catalogue}-${bundle.version}`), bundleDir: bundle.dir,
  logFile: path.join(BENCH_TMP, 'logs', 'profile-server.log'), nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profiles],
  ...(o.singleThreadSmallGraphs && { nodeImports: [path.join(REPO, 'bench/experiments/small-graphs-single-thread.mjs')] }),
});
const known = new Set((await readCatalogue([path.join(SHARED_DATA, 'amazon-games')])).map((item) => item.id));
const histories = await sampleHistories(path.join(SHARED_DATA, 'amazon-games'), { count: 500, length: 10, known });
const query = 'query Bench($h: [ID!], $first: Int!) { recommendations(history: $h, first: $first) { modelVersion domain items { score item { id title } } } }';
let loadStarted = 0;
const stats = await httpLoad({
  url: `${server.origin}/graphql`, bodies: histories.map((h) => JSON.stringify({ query, variables: { h, first: 10 } })),
  concurrency: Number(o.concurrency), durationSeconds: Number(o.seconds), warmupSeconds: 2,
  onMeasure: () => { loadStarted = Date.now(); },
}).done;
const loadSeconds = (Date.now() - loadStarted) / 1000;
await server.stop();
console.log(`${stats.rps} requests/s, p50 ${stats.p50_ms} ms, failed ${stats.failed}`);

interface Profile { nodes: { id: number; callFrame: { url: string; functionName: string } }[]; samples: number[]; timeDeltas: number[]; endTime: number; startTime: number }
const file = (await readdir(profiles)).find((name) => name.endsWith('.cpuprofile'))!;
const profile = JSON.parse(await readFile(path.join(profiles, file), 'utf8')) as Profile;
const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
// The load window: the profile's last `loadSeconds` (the server stops right after the load).
const cutoff = profile.endTime - (loadSeconds + 0.5) * 1e6;
const byPackage = new Map<string, number>();
const byFunction = new Map<string, number>();
let total = 0;
let at = profile.startTime;
profile.samples.forEach((id, i) => {
  at += profile.timeDeltas[i];
  if (at < cutoff) return;
  const { url, functionName } = nodes.get(id)!.callFrame;
  const where = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1]
    ?? (url.includes('/src/') ? 'src/' + url.split('/src/')[1] : url.startsWith('node:') ? 'node:*' : url === '' ? `(${functionName || 'native'})` : url.startsWith('wasm://') ? 'wasm (PGlite)' : path.basename(url));
  byPackage.set(where, (byPackage.get(where) ?? 0) + profile.timeDeltas[i]);
  const fn = `${functionName || '(anonymous)'} ${where}`;
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + profile.timeDeltas[i]);
  total += profile.timeDeltas[i];
});
for (const [where, micros] of [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, 20)) {
  console.log(`${((100 * micros) / total).toFixed(1).padStart(5)}%  ${where}`);
}
console.log('\nfunctions (self time):');
for (const [fn, micros] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
  console.log(`${((100 * micros) / total).toFixed(1).padStart(5)}%  ${fn}`);
}
