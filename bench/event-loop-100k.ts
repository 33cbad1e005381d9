/**
 * `npm run bench:event-loop`: how long queries within the server's limits hold the event loop on a 100k-item
 * catalogue (issue #12: no query under the complexity limit may hold it for more than 50 ms). Writes
 * reports/event-loop-100k.json (or --out).
 *
 * The catalogue is made up and written directly (rows through the database, points into the serving version's
 * collection; bench/lib/prepare.ts), with random vectors instead of the encoder's, so 100k items take minutes, not
 * hours; it is kept under the work directory and reused. Its attributes give every way an attribute filter can take
 * (a value few items hold, a common one, one held by many items far from the query). Each scenario is an operation
 * at the default limits, made as expensive as they allow (as many aliases of its field as the complexity limit and the
 * root-field limit let through), sent over HTTP to a server in this process, one at a time; the longest delay of the
 * event loop while it runs is measured with perf_hooks.monitorEventLoopDelay (1 ms resolution).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Command } from 'commander';
import { buildSchema, parse } from 'graphql';
import type { ItemVectors } from '../src/inference/recommendation-model.js';
import { typeDefs } from '../src/schema/index.js';
import { estimateComplexity } from '../src/server/query-limits.js';
import { startHttpServer } from '../src/server/http-server.js';
import { manifestOf } from './lib/bundle.js';
import { random, type BenchItem } from './lib/catalogue.js';
import { gitState, loadNote, loadSnapshot, machineInfo } from './lib/machine.js';
import { BENCH_TMP, REPO } from './lib/paths.js';
import { benchSettings, openCatalogue } from './lib/prepare.js';
import { invokedAs } from './lib/invoked-as.js';

const TARGET_MS = 50;

const program = new Command('bench:event-loop')
  .description('Longest event-loop block of the most expensive operations within the limits, on a 100k-item catalogue')
  .option('--bundle <dir>', 'model bundle to serve (its dimensions decide the vectors)', path.join(REPO, 'bundles/quick'))
  .option('--items <n>', 'catalogue size', '100000')
  .option('--runs <n>', 'times each scenario is sent', '5')
  .option('--work-dir <dir>', 'where the catalogue is built and kept', path.join(BENCH_TMP, 'event-loop'))
  .option('--out <file>', 'JSON report', path.join(REPO, 'reports/event-loop-100k.json'))
  .option('--only <text>', 'run only the scenarios whose name contains this text')
  .parse();
const o = program.opts();
const total = Number.parseInt(o.items, 10);
const runs = Number.parseInt(o.runs, 10);
const bundleDir = path.resolve(o.bundle);
const log = (message: string) => console.log(`[event-loop ${new Date().toISOString().slice(11, 19)}] ${message}`);

// The catalogue: 90% in one large domain (the worst case for anything that goes through a domain), 10% in another.
const MAIN = 'bench_main';
const SIDE = 'bench_side';
const BRANDS = 2000;
const next = random(20261202);
const items: BenchItem[] = [];
for (let i = 0; i < total; i++) {
  const domain = i % 10 === 9 ? SIDE : MAIN;
  // Brands by a power law: brand 0 is held by about half the items, most brands by a handful.
  const brand = Math.min(BRANDS - 1, Math.floor(1 / (next() * 0.999 + 0.001) ** 0.9) - 1);
  items.push({
    id: `bench:${i}`,
    domain,
    title: `Item ${i}`,
    attributes: {
      brand: `brand-${brand}`,
      color: ['red', 'green', 'blue', 'black', 'white', 'grey', 'pink', 'brown', 'orange', 'purple'][i % 10],
      ...(i % 1000 === 1 && { rare: true }),
      // A twentieth of the main domain points away from the query item bench:0: a filter on it keeps none of the
      // query's nearest items, so all of them are scored.
      tier: domain === MAIN && i % 20 === 3 ? 'far' : 'near',
    },
  });
}

const manifest = await manifestOf(bundleDir) as { model_version: string; dimensions: { item_embedding: number; recommendation: number } };
const dims = { semantic: manifest.dimensions.item_embedding, recommendation: manifest.dimensions.recommendation };
/** Random vectors, the same for an item on every run (the catalogue is cached); far items mirror item 0's. */
function vectorsOf(index: number): ItemVectors {
  const make = (seed: number, n: number) => {
    const draw = random(seed);
    return Float32Array.from({ length: n }, () => draw() * 2 - 1);
  };
  const own = { semantic: make(index * 2 + 1, dims.semantic), recommendation: make(index * 2 + 2, dims.recommendation) };
  if (items[index].attributes.tier !== 'far') return own as ItemVectors;
  const query = { semantic: make(1, dims.semantic), recommendation: make(2, dims.recommendation) };
  return {
    semantic: query.semantic.map((x, k) => -x + 0.05 * own.semantic[k]),
    recommendation: query.recommendation.map((x, k) => -x + 0.05 * own.recommendation[k]),
  } as ItemVectors;
}

const settings = benchSettings({ dataDir: path.join(path.resolve(o.workDir), `data-${total}`), bundleDir });
log(`catalogue of ${total} items for ${manifest.model_version} in ${settings.dataDir}`);
const { platform, reused, seconds } = await openCatalogue({ settings, items, vectorsOf, modelVersion: manifest.model_version, log });
log(`${reused ? 'reused' : 'built'} in ${seconds.toFixed(1)} s`);
// A user with the longest history a query may read.
const USER = 'bench-user';
if (((await platform.interactions.recent(USER, 1)) ?? []).length === 0) {
  await platform.interactions.record(Array.from({ length: settings.maxHistoryInput }, (_, k) => ({ userId: USER, itemId: `bench:${k * 7}` })));
}
const server = await startHttpServer(platform, { host: '127.0.0.1', port: 0 });

const schema = buildSchema(typeDefs);
const history = ['bench:10', 'bench:20', 'bench:30', 'bench:40', 'bench:0'];
const middleCursor = Buffer.from(`bench:${Math.floor(total / 2)}`, 'utf8').toString('base64url');

/** An operation of `n` aliases of one root field. */
const aliased = (n: number, field: string) => `query Bench { ${Array.from({ length: n }, (_, k) => `a${k}: ${field}`).join(' ')} }`;

/** The most aliases of `field` the limits let through (root fields, aliases, complexity). */
function mostAliases(field: string): number {
  let n = Math.min(settings.maxRootFields, settings.maxAliases);
  while (n > 1 && estimateComplexity(schema, parse(aliased(n, field)), {}) > settings.maxQueryComplexity) n--;
  return n;
}

const far = '{ tier: "far" }';
const scenarios: { name: string; field: string }[] = [
  { name: 'domains', field: 'domains { name items }' },
  { name: 'similar items, attribute held by few items', field: `similarItems(id: "bench:0", first: 10, filter: { attributes: { rare: true } }) { items { score item { id } } }` },
  { name: 'similar items, common attribute', field: 'similarItems(id: "bench:0", first: 10, filter: { attributes: { color: "red" } }) { items { score item { id } } }' },
  { name: 'similar items, attribute held by many items far from the query', field: `similarItems(id: "bench:0", first: 10, filter: { attributes: ${far} }) { items { score item { id } } }` },
  { name: 'similar items, the most common brand and a color', field: 'similarItems(id: "bench:0", first: 10, filter: { attributes: { brand: "brand-0", color: "blue" } }) { items { score item { id } } }' },
  { name: 'similar items, first 100', field: 'similarItems(id: "bench:0", first: 100) { items { score } }' },
  { name: 'recommendations, attribute held by many items far from the query', field: `recommendations(history: ${JSON.stringify(history)}, first: 10, filter: { attributes: ${far} }) { items { score item { id } } }` },
  { name: 'recommendations for a user with the longest history', field: `recommendations(userId: "${USER}", first: 10) { items { score item { id } } }` },
  { name: 'recommendations excluding 1000 items', field: `recommendations(history: ${JSON.stringify(history)}, first: 100, filter: { excludeIds: ${JSON.stringify(Array.from({ length: settings.maxItemsPerBatch }, (_, k) => `bench:${k * 3}`))} }) { items { score } }` },
  { name: 'cross-domain recommendations, far attribute', field: `crossDomainRecommendations(history: ${JSON.stringify(history)}, domains: ["${MAIN}", "${SIDE}"], first: 10, filter: { attributes: ${far} }) { items { score } }` },
  { name: 'a page of 1000 items', field: `itemsByDomain(domain: "${MAIN}", first: 1000, after: "${middleCursor}") { edges { node { id } } }` },
  { name: '1000 items by id', field: `items(ids: ${JSON.stringify(Array.from({ length: settings.maxItemsPerBatch }, (_, k) => `bench:${k * 97}`))}) { id }` },
  { name: 'a user\'s history', field: `user(id: "${USER}") { history(first: ${settings.maxHistoryInput}) { item { id } } }` },
  { name: 'model versions', field: 'modelVersions { version activatedAt }' },
];

async function send(query: string): Promise<{ ms: number; errors: string[] }> {
  const started = performance.now();
  const response = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
  const body = await response.json() as { errors?: { extensions?: { code?: string } }[] };
  return { ms: performance.now() - started, errors: (body.errors ?? []).map((error) => error.extensions?.code ?? 'UNKNOWN') };
}

const start = await loadSnapshot();
const idle = monitorEventLoopDelay({ resolution: 1 });
idle.enable();
await new Promise((resolve) => setTimeout(resolve, 1000));
idle.disable();
const results = [];
for (const scenario of scenarios.filter((s) => !o.only || s.name.includes(o.only))) {
  const aliases = mostAliases(scenario.field);
  const query = aliased(aliases, scenario.field);
  const complexity = estimateComplexity(schema, parse(query), {});
  await send(query); // warm-up: caches, lazily loaded code
  const delay = monitorEventLoopDelay({ resolution: 1 });
  const latencies: number[] = [];
  const errors = new Set<string>();
  delay.enable();
  for (let run = 0; run < runs; run++) {
    const { ms, errors: codes } = await send(query);
    latencies.push(ms);
    codes.forEach((code) => errors.add(code));
  }
  delay.disable();
  const result = {
    name: scenario.name,
    aliases,
    complexity,
    runs,
    errors: [...errors],
    max_block_ms: Math.round(delay.max / 1e4) / 100,
    p99_delay_ms: Math.round(delay.percentile(99) / 1e4) / 100,
    mean_latency_ms: Math.round((latencies.reduce((sum, ms) => sum + ms, 0) / runs) * 100) / 100,
    max_latency_ms: Math.round(Math.max(...latencies) * 100) / 100,
  };
  log(`${result.name}: ${aliases} aliases, complexity ${complexity}, longest block ${result.max_block_ms} ms, `
    + `mean latency ${result.mean_latency_ms} ms${result.errors.length ? `, errors ${result.errors.join(',')}` : ''}`);
  results.push(result);
}
const end = await loadSnapshot();
await server.close();
await platform.close();

const worst = results.reduce((a, b) => (b.max_block_ms > a.max_block_ms ? b : a));
const report = {
  bench: 'event-loop-100k',
  command: invokedAs('bench:event-loop'),
  date: new Date().toISOString(),
  git: gitState(REPO),
  machine: machineInfo(),
  load: { start, end, note: loadNote(start, end) },
  bundle: { dir: path.relative(REPO, bundleDir), model_version: manifest.model_version, dimensions: dims },
  catalogue: { items: total, domains: { [MAIN]: items.filter((item) => item.domain === MAIN).length, [SIDE]: items.filter((item) => item.domain === SIDE).length }, reused },
  limits: { maxQueryComplexity: settings.maxQueryComplexity, maxAliases: settings.maxAliases, maxRootFields: settings.maxRootFields },
  idle_max_delay_ms: Math.round(idle.max / 1e4) / 100,
  scenarios: results,
  target: {
    target: `no operation within the limits holds the event loop more than ${TARGET_MS} ms`,
    worst: worst.name,
    worst_block_ms: worst.max_block_ms,
    met: worst.max_block_ms <= TARGET_MS && results.every((result) => result.errors.length === 0),
  },
};
const out = path.resolve(o.out);
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, JSON.stringify(report, null, 2) + '\n');
log(`wrote ${path.relative(process.cwd(), out)}: ${report.target.met ? 'met' : 'MISSED'}, worst ${worst.name} at ${worst.max_block_ms} ms`);
