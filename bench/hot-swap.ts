/**
 * The hot-swap load test (`npm run bench:hot-swap`): recommendation requests flow at a steady rate while the
 * server switches to another model version (activateModel: load and check the bundle, embed the whole catalogue
 * into the new version's collection in the background, switch). Reports the failed requests (the target is 0) and
 * latency before, during and after the switch.
 *
 * The second version is a copy of the bundle under test published in a private registry under another
 * model_version (as test/models/hot-swap.test.ts does), so the switch re-embeds the catalogue with the real encoder.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { RecommendationModel } from '../src/inference/recommendation-model.js';
import { snapshotBundle } from './lib/bundle.js';
import { readCatalogue, sampleHistories } from './lib/catalogue.js';
import { round, summarize } from './lib/load.js';
import { pacedLoad, type PacedRun, type PacedSample } from './lib/paced.js';
import { CpuMeter, gitState, loadNote, loadSnapshot, machineInfo, type CpuUse, type LoadSnapshot, type MachineInfo } from './lib/machine.js';
import { REPO, SHARED_DATA } from './lib/paths.js';
import { benchSettings, openCatalogue } from './lib/prepare.js';
import { startPlatformServer } from './lib/server-process.js';
import { VectorCache } from './lib/vector-cache.js';

export interface HotSwapOptions {
  bundleDir: string;
  /** Datasets (directories of ../shared/data) whose catalogues are loaded. */
  datasets: string[];
  limitPerDir?: number;
  /** Most requests in flight (keep-alive connections). */
  concurrency: number;
  /** Unmeasured load before the measurement starts. */
  warmupSeconds: number;
  /** Requests per second (open loop, steady). */
  rate: number;
  beforeSeconds: number;
  afterSeconds: number;
  /** The switch must finish within this; the run stops either way. */
  swapTimeoutSeconds: number;
  samples: number;
  historyLength: number;
  first: number;
  workDir: string;
  serverLogLevel: string;
  command: string;
  log: (message: string) => void;
}

interface PhaseStats {
  /** Requests due in the phase, and how many of them failed. */
  requests: number;
  failed: number;
  /** Latency from when a request was due (includes waiting for one of the connections). */
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  /** Latency from when a request was written to a connection: the server's share. */
  p50_ms_from_send: number;
  p99_ms_from_send: number;
  /** Offered load: requests due per second. */
  rps: number;
  /** Responses that arrived during the phase, per second: what the server kept up with. */
  answered_per_s: number;
}

export interface HotSwapReport {
  requests: number;
  failed: number;
  p99_ms_before: number;
  p99_ms_during: number;
  swap_seconds: number;
  p50_ms_before: number;
  p50_ms_during: number;
  p50_ms_after: number;
  p99_ms_after: number;
  phases: { before: PhaseStats; during: PhaseStats; after: PhaseStats };
  server_swap_seconds: number | null;
  from_version: string;
  to_version: string;
  active_version_after: string;
  responses_by_version: Record<string, number>;
  /** Requests due after the first answer of the new version had arrived, yet answered by the old one (should be 0). */
  old_version_answers_after_first_new: number;
  /** Failed requests by kind (HTTP status or error). */
  failures: Record<string, number>;
  first_failures: string[];
  catalogue: { datasets: string[]; items: number };
  load: { generator: string; max_in_flight: number; rate_per_s: number; request: string; histories: number };
  cpu_during: CpuUse;
  command: string;
  date: string;
  machine: MachineInfo;
  git: ReturnType<typeof gitState>;
  machine_load: { note: string; start: LoadSnapshot; end: LoadSnapshot };
}

const RECOMMEND = 'query HotSwap($h: [ID!], $first: Int!) { recommendations(history: $h, first: $first) { modelVersion items { score item { id title } } } }';
const ACTIVATE = 'mutation Activate($v: String!) { activateModel(version: $v) { version state } }';
const PROGRESS = '{ modelActivation { version state done total startedAt finishedAt error } activeModel { version } }';
const API_KEY = 'bench-hot-swap';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runHotSwap(options: HotSwapOptions): Promise<HotSwapReport> {
  const { log } = options;
  const startLoad = await loadSnapshot();
  if (startLoad.busy_processes.length > 0) {
    log(`warning: other processes use the CPU, numbers will be low:\n  ${startLoad.busy_processes.join('\n  ')}`);
  }
  const registry = path.join(options.workDir, 'registry-hot-swap');
  const from = await snapshotBundle(options.bundleDir, registry, { dirName: 'a' });
  const to = await snapshotBundle(options.bundleDir, registry, { dirName: 'b', version: `${from.version}-b` });
  log(`switching ${from.version} -> ${to.version} (registry ${registry})`);

  // The catalogue, written directly with the first version's vectors (cached per bundle).
  const items = await readCatalogue(options.datasets.map((name) => path.join(SHARED_DATA, name)), { limitPerDir: options.limitPerDir });
  const model = await RecommendationModel.load(from.dir);
  const cache = await VectorCache.open(model, path.join(options.workDir, 'vectors'));
  await cache.fill(items.map((item) => item.title), {
    onProgress: (done, total, rate) => log(`embedding catalogue titles for the vector cache: ${done}/${total} (${rate.toFixed(0)}/s)`),
  });
  await model.release();
  const dataDir = path.join(options.workDir, 'data', `hot-swap-${process.pid}`);
  await rm(dataDir, { recursive: true, force: true });
  const settings = benchSettings({ dataDir, bundleDir: from.dir, modelRegistryDir: registry });
  const opened = await openCatalogue({ settings, items, vectorsOf: (i) => cache.get(items[i].title), modelVersion: from.version, log });
  await opened.platform.close();
  const histories = await sampleHistories(path.join(SHARED_DATA, 'amazon-games'), {
    count: options.samples, length: options.historyLength, known: new Set(items.map((item) => item.id)),
  });
  if (histories.length === 0) throw new Error('no amazon-games history fits the catalogue');

  const server = await startPlatformServer({
    dataDir, bundleDir: from.dir, registryDir: registry, apiKey: API_KEY, logLevel: options.serverLogLevel,
    logFile: path.join(options.workDir, 'logs', 'serve-hot-swap.log'),
  });
  log(`server ready in ${server.startupSeconds.toFixed(1)} s on ${items.length} items`);
  const graphql = async (query: string, variables: Record<string, unknown> = {}) => {
    const response = await fetch(`${server.origin}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
      body: JSON.stringify({ query, variables }),
    });
    return response.json() as Promise<{ data?: any; errors?: { message: string }[] }>;
  };

  const inspect = (body: string): string | null => {
    try {
      const parsed = JSON.parse(body);
      const list = parsed.data?.recommendations;
      return parsed.errors || !list || list.items.length !== options.first ? null : String(list.modelVersion);
    } catch {
      return null;
    }
  };
  const bodies = histories.map((h) => JSON.stringify({ query: RECOMMEND, variables: { h, first: options.first } }));
  const load = (seconds: number) => pacedLoad({
    url: `${server.origin}/graphql`, bodies, rate: options.rate, maxInFlight: options.concurrency, maxSeconds: seconds, inspect,
  });
  let swapStarted = 0;
  let swapEnded = 0;
  let serverSwapSeconds: number | null = null;
  let activeAfter = '';
  let cpuDuring: CpuUse;
  let run: PacedRun | undefined;
  let samples: PacedSample[];
  try {
    await load(options.warmupSeconds).done;
    run = load(options.beforeSeconds + options.swapTimeoutSeconds + options.afterSeconds + 30);
    await sleep(options.beforeSeconds * 1000);

    const meter = new CpuMeter(() => [server.pid]);
    swapStarted = performance.now();
    const started = await graphql(ACTIVATE, { v: to.version });
    if (started.errors) throw new Error(`activateModel failed: ${JSON.stringify(started.errors)}`);
    log(`activateModel: ${JSON.stringify(started.data.activateModel)}`);
    let lastLogged = 0;
    for (;;) {
      const progress = await graphql(PROGRESS);
      const activation = progress.data?.modelActivation;
      if (activation?.state === 'failed') throw new Error(`activation failed: ${activation.error}`);
      if (activation?.state === 'active') {
        swapEnded = performance.now();
        serverSwapSeconds = activation.finishedAt ? (Date.parse(activation.finishedAt) - Date.parse(activation.startedAt)) / 1000 : null;
        break;
      }
      if (performance.now() - swapStarted > options.swapTimeoutSeconds * 1000) {
        throw new Error(`the switch did not finish in ${options.swapTimeoutSeconds} s (${activation?.done}/${activation?.total})`);
      }
      if (performance.now() - lastLogged > 10_000) {
        lastLogged = performance.now();
        log(`switching: ${activation?.state} ${activation?.done}/${activation?.total}, ${run.count()} responses so far`);
      }
      await sleep(250);
    }
    cpuDuring = meter.read();
    log(`switched in ${((swapEnded - swapStarted) / 1000).toFixed(1)} s`);
    await sleep(options.afterSeconds * 1000);
    run.stop();
    samples = await run.done;
    activeAfter = (await graphql(PROGRESS)).data?.activeModel?.version ?? '';
  } finally {
    run?.stop();
    await run?.done;
    await server.stop();
  }
  await rm(dataDir, { recursive: true, force: true });

  // A request belongs to the phase in which it was due.
  const firstDue = samples[0]?.due ?? swapStarted;
  const lastEnd = Math.max(...samples.map((sample) => sample.end));
  const windows = { before: [firstDue, swapStarted], during: [swapStarted, swapEnded], after: [swapEnded, lastEnd] } as const;
  const phase = (which: keyof typeof windows): PhaseStats => {
    const [from, to] = windows[which];
    const inPhase = samples.filter(({ due }) => (which === 'after' ? due > from : due >= from && due < to));
    const ok = inPhase.filter((sample) => sample.ok);
    const seconds = inPhase.length < 2 ? 1 : (inPhase.at(-1)!.due - inPhase[0].due) / 1000 + 1 / options.rate;
    const stats = summarize(ok.map((sample) => sample.end - sample.due), inPhase.length - ok.length, seconds);
    const server = summarize(ok.map((sample) => sample.end - sample.sent), 0, seconds);
    const answered = samples.filter(({ end }) => end >= from && end < to).length;
    return {
      requests: stats.requests, failed: stats.failed, p50_ms: stats.p50_ms, p99_ms: stats.p99_ms, max_ms: stats.max_ms,
      p50_ms_from_send: server.p50_ms, p99_ms_from_send: server.p99_ms, rps: stats.rps,
      answered_per_s: round(answered / Math.max(1e-3, (to - from) / 1000), 1),
    };
  };
  const before = phase('before');
  const during = phase('during');
  const after = phase('after');
  const responsesByVersion: Record<string, number> = {};
  for (const sample of samples) if (sample.label) responsesByVersion[sample.label] = (responsesByVersion[sample.label] ?? 0) + 1;
  const firstNew = Math.min(...samples.filter((s) => s.label === to.version).map((s) => s.end));
  const oldAfterNew = samples.filter((s) => s.label === from.version && s.due > firstNew).length;
  const failures = samples.filter((s) => !s.ok);
  const errorKinds: Record<string, number> = {};
  for (const failure of failures) {
    const kind = failure.status ? `HTTP ${failure.status}` : failure.error ?? 'unknown';
    errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
  }
  const endLoad = await loadSnapshot();
  return {
    requests: samples.length,
    failed: failures.length,
    p99_ms_before: before.p99_ms,
    p99_ms_during: during.p99_ms,
    swap_seconds: round((swapEnded - swapStarted) / 1000, 1),
    p50_ms_before: before.p50_ms,
    p50_ms_during: during.p50_ms,
    p50_ms_after: after.p50_ms,
    p99_ms_after: after.p99_ms,
    phases: { before, during, after },
    server_swap_seconds: serverSwapSeconds === null ? null : round(serverSwapSeconds, 1),
    from_version: from.version,
    to_version: to.version,
    active_version_after: activeAfter,
    responses_by_version: responsesByVersion,
    old_version_answers_after_first_new: oldAfterNew,
    failures: errorKinds,
    first_failures: failures.slice(0, 5).map((f) => f.error ?? `HTTP ${f.status}`),
    catalogue: { datasets: options.datasets, items: items.length },
    load: {
      generator: 'open loop at a steady rate (bench/lib/paced.ts); latency counted from when each request was due',
      max_in_flight: options.concurrency, rate_per_s: options.rate,
      request: `recommendations(history: last ${options.historyLength} items of an amazon-games user, first: ${options.first})`,
      histories: histories.length,
    },
    cpu_during: cpuDuring!,
    command: options.command,
    date: new Date().toISOString(),
    machine: machineInfo(),
    git: gitState(REPO),
    machine_load: { note: loadNote(startLoad, endLoad, cpuDuring!.other_cores), start: startLoad, end: endLoad },
  };
}
