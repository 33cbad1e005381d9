/**
 * The serving benchmark (`npm run bench`): latency and throughput of recommendations, cross-domain
 * recommendations and similar items over HTTP at several concurrencies, on the real catalogues of the shared
 * datasets loaded together and on a grown catalogue, side by side with
 *   - the floor: a bare node:http server answering a precomputed response of the same bytes, and
 *   - the raw cost: the same Recommender calls in process (sequence model forward + index search; no GraphQL, no
 *     HTTP, no item-row lookup),
 * and ingestion: items per second through upsertItems over HTTP against the encoder's own throughput on the same
 * batches.
 *
 * The server under test and the floor run in processes of their own; the load generator (autocannon) runs here.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Settings } from '../src/config.js';
import { RecommendationModel } from '../src/inference/recommendation-model.js';
import type { ItemVectors } from '../src/inference/recommendation-model.js';
import type { Recommender } from '../src/recommend/recommender.js';
import { snapshotBundle } from './lib/bundle.js';
import { growCatalogue, readCatalogue, sampleHistories, type BenchItem, type Catalogue } from './lib/catalogue.js';
import { httpLoad, closedLoop, round, type LoadStats } from './lib/load.js';
import { CpuMeter, gitState, loadNote, loadSnapshot, machineInfo, processCpuMs, type CpuUse, type LoadSnapshot, type MachineInfo } from './lib/machine.js';
import { DATASET_DIRS, REPO, SHARED_DATA } from './lib/paths.js';
import { benchSettings, openCatalogue } from './lib/prepare.js';
import { startFloorServer, startPlatformServer, type ServerProcess } from './lib/server-process.js';
import { deriveVectors, VectorCache } from './lib/vector-cache.js';

export const SCENARIOS = ['recommendations', 'cross_domain_recommendations', 'similar_items'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface ServingBenchOptions {
  /** Bundle to serve (a private copy is taken). */
  bundleDir: string;
  /** Catalogues: 'real' (the shared datasets together) and/or a total number of items grown from them. */
  catalogues: ('real' | number)[];
  /** Only the first n items of each dataset (smoke tests). */
  limitPerDir?: number;
  concurrency: number[];
  durationSeconds: number;
  warmupSeconds: number;
  /** Upper bound of measured requests per run. */
  maxRequests: number;
  /** Histories sampled from amazon-games, and items for similarItems. */
  samples: number;
  historyLength: number;
  /** Results per list. */
  first: number;
  /** Titles ingested through upsertItems (0: skip ingestion). */
  ingestItems: number;
  /** Items per upsertItems call. */
  ingestBatch: number;
  /** Derived (default) or really encoded vectors for the made-up items of a grown catalogue. */
  syntheticVectors: 'derived' | 'encoded';
  /** Where data directories, caches and logs go. */
  workDir: string;
  /** Server log level (the production default is info: one JSON line per GraphQL operation). */
  serverLogLevel: string;
  /** The command line, for the report. */
  command: string;
  log: (message: string) => void;
}

export interface ScenarioResult extends LoadStats {
  name: ScenarioName;
  catalogue: number;
  concurrency: number;
  cpu?: CpuUse;
  /**
   * CPU time per request of the process doing the work (the server; for raw, the benchmark's own process), all its
   * threads: unlike latency and throughput, it hardly changes when other work takes part of the cores.
   */
  cpu_ms_per_request?: number;
  /** Mean body size of the answers to the scenario's requests, each asked once (not weighted by the load's mix). */
  response_bytes?: number;
}

export interface ServingReport {
  command: string;
  date: string;
  duration_seconds: number;
  machine: MachineInfo;
  git: ReturnType<typeof gitState>;
  machine_load: { note: string; start: LoadSnapshot; end: LoadSnapshot; other_cores_mean: number };
  bundle: { version: string; dir: string };
  settings: Record<string, unknown>;
  catalogues: Record<string, unknown>[];
  scenarios: ScenarioResult[];
  floor: ScenarioResult[];
  raw: ScenarioResult[];
  ingestion: Record<string, unknown> & { items_per_s: number; encoder_items_per_s: number };
  targets: { target: string; value: string; met: boolean }[];
}

const QUERIES: Record<ScenarioName, string> = {
  recommendations:
    'query Bench($h: [ID!], $first: Int!) { recommendations(history: $h, first: $first) { modelVersion domain items { score item { id title } } } }',
  cross_domain_recommendations:
    'query Bench($h: [ID!], $domains: [String!]!, $first: Int!) { crossDomainRecommendations(history: $h, domains: $domains, first: $first) { modelVersion domain items { score item { id title } } } }',
  similar_items:
    'query Bench($id: ID!, $first: Int!) { similarItems(id: $id, first: $first) { modelVersion domain items { score item { id title } } } }',
};

/** A response counts as a success when it has data and no errors. */
export function graphqlOk(body: string): boolean {
  try {
    const parsed = JSON.parse(body);
    return parsed.data != null && !parsed.errors;
  } catch {
    return false;
  }
}

interface Workload {
  histories: string[][];
  similarIds: string[];
  domains: string[];
}

function requestBodies(scenario: ScenarioName, workload: Workload, first: number): string[] {
  switch (scenario) {
    case 'recommendations':
      return workload.histories.map((h) => JSON.stringify({ query: QUERIES[scenario], variables: { h, first } }));
    case 'cross_domain_recommendations':
      return workload.histories.map((h) => JSON.stringify({ query: QUERIES[scenario], variables: { h, domains: workload.domains, first } }));
    case 'similar_items':
      return workload.similarIds.map((id) => JSON.stringify({ query: QUERIES[scenario], variables: { id, first } }));
  }
}

function rawOperation(scenario: ScenarioName, recommender: Recommender, workload: Workload, first: number): (n: number) => Promise<unknown> {
  const { histories, similarIds, domains } = workload;
  switch (scenario) {
    case 'recommendations':
      return (n) => recommender.recommend({ history: histories[n % histories.length] }, { first });
    case 'cross_domain_recommendations':
      return (n) => recommender.recommendAcrossDomains({ history: histories[n % histories.length] }, { domains, first });
    case 'similar_items':
      return (n) => recommender.similarItems(similarIds[n % similarIds.length], { first });
  }
}

function catalogueName(spec: 'real' | number, items: number): string {
  return spec === 'real' ? `real-${items}` : `grown-${items}`;
}

export async function runServingBench(options: ServingBenchOptions): Promise<ServingReport> {
  const { log } = options;
  const began = performance.now();
  const startLoad = await loadSnapshot();
  const machine = machineInfo();
  if (startLoad.busy_processes.length > 0) {
    log(`warning: other processes use the CPU, numbers will be low:\n  ${startLoad.busy_processes.join('\n  ')}`);
  }
  const bundle = await snapshotBundle(options.bundleDir, path.join(options.workDir, 'bundles'));
  log(`bundle ${bundle.version} (copied to ${bundle.dir})`);
  const model = await RecommendationModel.load(bundle.dir);
  const otherCores: number[] = [];

  // The real catalogue and the vectors of its titles (embedded once per bundle, then cached).
  const real = await readCatalogue(DATASET_DIRS.map((dir) => path.join(SHARED_DATA, dir)), { limitPerDir: options.limitPerDir });
  const cache = await VectorCache.open(model, path.join(options.workDir, 'vectors'));
  const fill = await cache.fill(real.map((item) => item.title), {
    onProgress: (done, total, rate) => log(`embedding catalogue titles for the vector cache: ${done}/${total} (${rate.toFixed(0)}/s)`),
  });
  if (fill.embedded > 0) log(`embedded ${fill.embedded} titles in ${fill.seconds.toFixed(0)} s (${cache.dir})`);

  const scenarios: ScenarioResult[] = [];
  const raw: ScenarioResult[] = [];
  const floor: ScenarioResult[] = [];
  const catalogues: Record<string, unknown>[] = [];
  // The floor answers the last catalogue's responses to the same request bodies (so it reads and writes as many bytes).
  let floorBodies: Record<string, Record<string, string>> = {};
  let floorRequests = new Map<ScenarioName, string[]>();
  let floorCatalogue = 0;

  for (const spec of options.catalogues) {
    const catalogue: Catalogue = spec === 'real'
      ? { name: 'real', items: real, real: real.length, parents: [] }
      : growCatalogue('grown', real, spec);
    const name = catalogueName(spec, catalogue.items.length);
    const size = catalogue.items.length;
    let derived: ItemVectors[] = [];
    if (catalogue.parents.length > 0) {
      const started = performance.now();
      if (options.syntheticVectors === 'encoded') {
        await cache.fill(catalogue.items.slice(catalogue.real).map((item) => item.title), {
          onProgress: (done, total, rate) => log(`embedding made-up titles: ${done}/${total} (${rate.toFixed(0)}/s)`),
        });
      } else {
        derived = await deriveVectors(model, catalogue.parents.map(([a, b]) => [cache.get(real[a].title), cache.get(real[b].title)]));
        log(`${derived.length} made-up items: vectors derived from their parents in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      }
    }
    const vectorsOf = (i: number) => (i < catalogue.real || options.syntheticVectors === 'encoded'
      ? cache.get(catalogue.items[i].title)
      : derived[i - catalogue.real]);

    const dataDir = path.join(options.workDir, 'data', `${name}-${bundle.version}`);
    const settings: Settings = benchSettings({ dataDir, bundleDir: bundle.dir, modelRegistryDir: path.dirname(bundle.dir) });
    log(`catalogue ${name}: opening ${dataDir}`);
    const opened = await openCatalogue({ settings, items: catalogue.items, vectorsOf, modelVersion: bundle.version, log });
    log(`catalogue ${name}: ${opened.reused ? 'reused' : 'built'} in ${opened.seconds.toFixed(1)} s`);
    const { platform } = opened;
    const ids = new Set(catalogue.items.map((item) => item.id));
    const workload: Workload = {
      histories: await sampleHistories(path.join(SHARED_DATA, 'amazon-games'), { count: options.samples, length: options.historyLength, known: ids }),
      similarIds: spread(catalogue.items, options.samples).map((item) => item.id),
      domains: await platform.collection.listDomains(),
    };
    if (workload.histories.length === 0) throw new Error(`no amazon-games user has ${options.historyLength} items in catalogue ${name}`);
    const byDomain: Record<string, number> = {};
    for (const item of catalogue.items) byDomain[item.domain] = (byDomain[item.domain] ?? 0) + 1;

    // Raw: the platform's Recommender in this process.
    for (const scenario of SCENARIOS) {
      const operation = rawOperation(scenario, platform.recommender, workload, options.first);
      await operation(0); // fails loudly here rather than counting failures
      for (const concurrency of options.concurrency) {
        let meter!: CpuMeter;
        let cpuBefore = 0;
        const stats = await closedLoop({
          concurrency, durationSeconds: options.durationSeconds, warmupSeconds: options.warmupSeconds,
          maxRequests: options.maxRequests, operation,
          onMeasure: () => { meter = new CpuMeter(() => []); cpuBefore = processCpuMs(process.pid); },
        });
        const cpuMs = processCpuMs(process.pid) - cpuBefore;
        const cpu = meter.read();
        otherCores.push(cpu.other_cores);
        raw.push({ name: scenario, catalogue: size, concurrency, ...stats, cpu, cpu_ms_per_request: round(cpuMs / Math.max(1, stats.requests), 3) });
        log(`raw   ${name} ${scenario} c=${concurrency}: p50 ${stats.p50_ms} ms, p99 ${stats.p99_ms} ms, ${stats.rps}/s (other load ${cpu.other_cores} cores)`);
      }
    }
    await platform.close();

    // Over HTTP: the platform's own server in another process.
    const server = await startPlatformServer({
      dataDir, bundleDir: bundle.dir, registryDir: path.dirname(bundle.dir), logLevel: options.serverLogLevel,
      logFile: path.join(options.workDir, 'logs', `serve-${name}.log`),
    });
    log(`server on ${name} ready in ${server.startupSeconds.toFixed(1)} s`);
    const bodies: Record<string, Record<string, string>> = {};
    const requestsOf = new Map<ScenarioName, string[]>();
    try {
      for (const scenario of SCENARIOS) {
        const requests = requestBodies(scenario, workload, options.first);
        requestsOf.set(scenario, requests);
        const answers: Record<string, string> = {};
        for (const request of requests) {
          const answer = await fetch(`${server.origin}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: request });
          const text = await answer.text();
          if (!answer.ok || !graphqlOk(text)) throw new Error(`${scenario}: the server answered ${answer.status} ${text.slice(0, 500)}`);
          answers[request] = text;
        }
        bodies[`/${scenario}`] = answers;
        for (const concurrency of options.concurrency) {
          const result = await measureHttp(server, `${server.origin}/graphql`, requests, concurrency, options);
          otherCores.push(result.cpu!.other_cores);
          scenarios.push({ name: scenario, catalogue: size, concurrency, ...result, response_bytes: meanBodyBytes(answers) });
          log(`http  ${name} ${scenario} c=${concurrency}: p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms, ${result.rps}/s, failed ${result.failed} (other load ${result.cpu!.other_cores} cores)`);
        }
      }
    } finally {
      await server.stop();
    }
    floorBodies = bodies;
    floorRequests = requestsOf;
    floorCatalogue = size;
    catalogues.push({
      name, items: size, real_items: catalogue.real, made_up_items: size - catalogue.real, by_domain: byDomain,
      made_up_vectors: catalogue.parents.length === 0 ? null : options.syntheticVectors,
      data_dir: path.relative(process.cwd(), dataDir), prepared: opened.reused ? 'reused' : 'built',
      prepare_seconds: round(opened.seconds, 1), server_startup_seconds: round(server.startupSeconds, 1),
      histories: workload.histories.length, history_length: options.historyLength, cross_domains: workload.domains,
    });
  }

  // The floor: the same bytes from a bare node:http server.
  const bodiesFile = path.join(options.workDir, 'floor-bodies.json');
  await mkdir(options.workDir, { recursive: true });
  await writeFile(bodiesFile, JSON.stringify(floorBodies));
  const floorServer = await startFloorServer({ bodiesFile, logFile: path.join(options.workDir, 'logs', 'floor.log') });
  try {
    for (const scenario of SCENARIOS) {
      const requests = floorRequests.get(scenario)!;
      for (const concurrency of options.concurrency) {
        const result = await measureHttp(floorServer, `${floorServer.origin}/${scenario}`, requests, concurrency, options);
        otherCores.push(result.cpu!.other_cores);
        floor.push({ name: scenario, catalogue: floorCatalogue, concurrency, ...result, response_bytes: meanBodyBytes(floorBodies[`/${scenario}`]) });
        log(`floor ${scenario} c=${concurrency}: p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms, ${result.rps}/s`);
      }
    }
  } finally {
    await floorServer.stop();
  }

  const ingestion = options.ingestItems > 0
    ? await measureIngestion(model, bundle.dir, real, options, otherCores)
    : { items_per_s: NaN, encoder_items_per_s: NaN, skipped: true };
  await model.release();

  const endLoad = await loadSnapshot();
  const otherCoresMean = round(otherCores.reduce((a, b) => a + b, 0) / Math.max(1, otherCores.length), 2);
  const report: ServingReport = {
    command: options.command,
    date: new Date().toISOString(),
    duration_seconds: round((performance.now() - began) / 1000, 0),
    machine,
    git: gitState(REPO),
    machine_load: { note: loadNote(startLoad, endLoad, otherCoresMean), start: startLoad, end: endLoad, other_cores_mean: otherCoresMean },
    bundle: { version: bundle.version, dir: path.relative(process.cwd(), bundle.dir) },
    settings: {
      concurrency: options.concurrency, duration_seconds: options.durationSeconds, warmup_seconds: options.warmupSeconds,
      max_requests: options.maxRequests, first: options.first, samples: options.samples, history_length: options.historyLength,
      server_log_level: options.serverLogLevel, limit_per_dir: options.limitPerDir ?? null,
    },
    catalogues,
    scenarios,
    floor,
    raw,
    ingestion,
    targets: [],
  };
  report.targets = evaluateTargets(report);
  return report;
}

async function measureHttp(
  server: ServerProcess,
  url: string,
  requests: string[],
  concurrency: number,
  options: ServingBenchOptions,
): Promise<LoadStats & { cpu: CpuUse; cpu_ms_per_request: number }> {
  let meter!: CpuMeter;
  let cpuBefore = 0;
  const result = await httpLoad({
    url, bodies: requests, concurrency, durationSeconds: options.durationSeconds, warmupSeconds: options.warmupSeconds,
    maxRequests: options.maxRequests, check: graphqlOk,
    onMeasure: () => { meter = new CpuMeter(() => [server.pid]); cpuBefore = processCpuMs(server.pid); },
  }).done;
  const cpuMs = processCpuMs(server.pid) - cpuBefore;
  const cpu = meter.read();
  const { non2xx: _n, errors: _e, timeouts: _t, mismatches: _m, bytes_per_response: _b, ...stats } = result;
  return { ...stats, cpu, cpu_ms_per_request: round(cpuMs / Math.max(1, stats.requests), 3) };
}

/**
 * The mean body size of the answers to a scenario's requests, each counted once. (The load's own byte count weighs
 * each request by how often it happened to be sent in the run, which differs between runs, and between the platform
 * and the floor, when answers differ in size.)
 */
function meanBodyBytes(answers: Record<string, string>): number {
  const sizes = Object.values(answers).map((body) => Buffer.byteLength(body));
  return Math.round(sizes.reduce((sum, size) => sum + size, 0) / Math.max(1, sizes.length));
}

/** `count` items spread evenly over a list. */
function spread<T>(list: readonly T[], count: number): T[] {
  const step = Math.max(1, Math.floor(list.length / count));
  const out: T[] = [];
  for (let i = 0; i < list.length && out.length < count; i += step) out.push(list[i]);
  return out;
}

const UPSERT = 'mutation Ingest($items: [ItemInput!]!) { upsertItems(items: $items) { count } }';

/**
 * Items per second through upsertItems over HTTP (one client, `ingestBatch` items per call, into an empty
 * catalogue) against model.embedItems on the same batches in `encodeBatchSize` chunks, as the catalogue embeds
 * them. The encoder is measured before and after the HTTP pass, so that drifting load from other work hits both.
 */
async function measureIngestion(
  model: RecommendationModel,
  bundleDir: string,
  real: readonly BenchItem[],
  options: ServingBenchOptions,
  otherCores: number[],
): Promise<ServingReport['ingestion']> {
  const { log } = options;
  const picked = spread(real, options.ingestItems);
  const warmup = spread(real.slice(1), 64);
  const batches: BenchItem[][] = [];
  for (let start = 0; start < picked.length; start += options.ingestBatch) batches.push(picked.slice(start, start + options.ingestBatch));
  const encodeBatchSize = benchSettings({ dataDir: '.', bundleDir }).encodeBatchSize;

  const encoderPass = async () => {
    const meter = new CpuMeter(() => []);
    const started = performance.now();
    for (const batch of batches) {
      for (let start = 0; start < batch.length; start += encodeBatchSize) {
        await model.embedItems(batch.slice(start, start + encodeBatchSize).map((item) => item.title));
      }
    }
    const seconds = (performance.now() - started) / 1000;
    const cpu = meter.read();
    otherCores.push(cpu.other_cores);
    return { seconds, cpu };
  };
  await model.embedItems(warmup.map((item) => item.title));
  const before = await encoderPass();
  log(`encoder: ${(picked.length / before.seconds).toFixed(1)} items/s (other load ${before.cpu.other_cores} cores)`);

  const dataDir = path.join(options.workDir, 'data', `ingest-${process.pid}`);
  await rm(dataDir, { recursive: true, force: true });
  const server = await startPlatformServer({
    dataDir, bundleDir, registryDir: path.dirname(bundleDir), logLevel: options.serverLogLevel,
    logFile: path.join(options.workDir, 'logs', 'serve-ingest.log'),
  });
  let http: { seconds: number; cpu: CpuUse };
  try {
    const upsert = async (items: readonly BenchItem[], prefix: string) => {
      const response = await fetch(`${server.origin}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          query: UPSERT,
          variables: { items: items.map((item, i) => ({ id: `${prefix}:${i}:${item.id}`, domain: item.domain, title: item.title, attributes: item.attributes })) },
        }),
      });
      const body = await response.json() as { data?: { upsertItems: { count: number } }; errors?: unknown };
      if (body.errors || body.data?.upsertItems.count !== items.length) throw new Error(`upsertItems failed: ${JSON.stringify(body).slice(0, 500)}`);
    };
    await upsert(warmup, 'warmup');
    const meter = new CpuMeter(() => [server.pid]);
    const started = performance.now();
    for (const [n, batch] of batches.entries()) await upsert(batch, `ingest-${n}`);
    http = { seconds: (performance.now() - started) / 1000, cpu: meter.read() };
    otherCores.push(http.cpu.other_cores);
  } finally {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
  log(`upsertItems over HTTP: ${(picked.length / http.seconds).toFixed(1)} items/s (other load ${http.cpu.other_cores} cores)`);
  const after = await encoderPass();
  log(`encoder again: ${(picked.length / after.seconds).toFixed(1)} items/s`);

  const itemsPerSecond = picked.length / http.seconds;
  const encoderPerSecond = (2 * picked.length) / (before.seconds + after.seconds);
  return {
    items_per_s: round(itemsPerSecond, 1),
    encoder_items_per_s: round(encoderPerSecond, 1),
    ratio: round(itemsPerSecond / encoderPerSecond, 3),
    items: picked.length,
    upsert_batch: options.ingestBatch,
    encode_batch: encodeBatchSize,
    encoder_passes_items_per_s: [round(picked.length / before.seconds, 1), round(picked.length / after.seconds, 1)],
    cpu: { encoder_before: before.cpu, http: http.cpu, encoder_after: after.cpu },
    method: 'one client sends upsertItems calls one after another into an empty catalogue; the encoder baseline is model.embedItems in this process on the same batches (encode-batch chunks), before and after the HTTP pass',
  };
}

/** The targets, judged on this run's numbers. */
export function evaluateTargets(report: ServingReport): ServingReport['targets'] {
  const targets: ServingReport['targets'] = [];
  const largest = Math.max(...report.scenarios.map((s) => s.catalogue));
  const at8 = report.scenarios.find((s) => s.name === 'recommendations' && s.catalogue === largest && s.concurrency === 8);
  if (at8) {
    targets.push({ target: `recommendations p50 <= 3 ms at concurrency 8, ${largest} items`, value: `${at8.p50_ms} ms`, met: at8.p50_ms <= 3 });
    targets.push({ target: `recommendations >= 800 requests/s at concurrency 8, ${largest} items`, value: `${at8.rps}/s`, met: at8.rps >= 800 });
  }
  for (const served of report.scenarios.filter((s) => s.catalogue === largest)) {
    const floor = report.floor.find((f) => f.name === served.name && f.concurrency === served.concurrency);
    const raw = report.raw.find((r) => r.name === served.name && r.catalogue === served.catalogue && r.concurrency === served.concurrency);
    if (!floor || !raw) continue;
    // Latency: what the GraphQL + HTTP path adds to the raw call, against the floor's whole round trip. CPU per
    // request (server process, all threads) says the same with less noise from other work on the machine.
    const overhead = served.p50_ms - raw.p50_ms;
    const cpu = served.cpu_ms_per_request !== undefined && raw.cpu_ms_per_request !== undefined && floor.cpu_ms_per_request
      ? `; CPU per request ${round(served.cpu_ms_per_request - raw.cpu_ms_per_request, 3)} ms vs floor ${floor.cpu_ms_per_request} ms (${round((served.cpu_ms_per_request - raw.cpu_ms_per_request) / floor.cpu_ms_per_request, 0)}x)`
      : '';
    targets.push({
      target: `GraphQL + HTTP (HTTP minus raw) <= 2 x floor: ${served.name}, c=${served.concurrency}, ${largest} items`,
      value: `p50 ${round(overhead, 3)} ms vs floor ${floor.p50_ms} ms (${round(overhead / floor.p50_ms, 0)}x)${cpu}`,
      met: overhead <= 2 * floor.p50_ms,
    });
  }
  const { items_per_s: itemsPerSecond, encoder_items_per_s: encoderPerSecond } = report.ingestion;
  if (Number.isFinite(itemsPerSecond)) {
    targets.push({
      target: 'ingestion through upsertItems >= 90% of the encoder\'s own throughput',
      value: `${itemsPerSecond} vs ${encoderPerSecond} items/s (${round((100 * itemsPerSecond) / encoderPerSecond, 1)}%)`,
      met: itemsPerSecond >= 0.9 * encoderPerSecond,
    });
  }
  return targets;
}
