/**
 * Replicas over one PostgreSQL (`npm run bench:replicas`, issue #15): throughput and latency through 1, 2 and 3
 * `serve` processes on this machine behind a load balancer in the benchmark's process (bench/lib/balancer.ts, what
 * deploy/haproxy.cfg has HAProxy do), then, at a steady rate through N replicas, a model switch (activateModel sent
 * to one replica, prepared and switched on all) followed by a replica killed with SIGKILL and restarted on its data
 * directory. Reports failed requests per phase, latency per phase and per second, the switch time, the time until
 * the killed replica is back in rotation, and whether any answer came from the old version after the switch.
 *
 * The catalogue is written to PostgreSQL directly (rows with src/db's upsertItems, vectors into `item_vectors`
 * through src/cluster/shared-embeddings.ts with the benchmark's vector cache as the encoder), so replicas fill their
 * embedded index from the database without running the encoder; their metric llm2rec_replica_titles_encoded says
 * whether they did.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { SharedEmbeddings } from '../src/cluster/shared-embeddings.js';
import { openDatabase, upsertItems } from '../src/db/index.js';
import { RecommendationModel } from '../src/inference/recommendation-model.js';
import { versionCollection } from '../src/models/serving-model.js';
import { Balancer, balancedClosedLoop, balancedPacedLoad, type BalancedSample, type Transition } from './lib/balancer.js';
import { snapshotBundle } from './lib/bundle.js';
import { readCatalogue, sampleHistories } from './lib/catalogue.js';
import { percentile, round, summarize } from './lib/load.js';
import { CpuMeter, gitState, loadNote, loadSnapshot, machineInfo, pausedThroughout, type CpuUse, type LoadSnapshot, type MachineInfo } from './lib/machine.js';
import { metricSeries } from './lib/metrics.js';
import { REPO, SHARED_DATA } from './lib/paths.js';
import { startPlatformServer, type ServerProcess } from './lib/server-process.js';
import { VectorCache } from './lib/vector-cache.js';

export interface ReplicasOptions {
  bundleDir: string;
  datasets: string[];
  limitPerDir?: number;
  /** A PostgreSQL server (any database on it): the benchmark creates a database of its own there. */
  databaseUrl: string;
  /** Keep the benchmark's database (and the replicas' data directories) instead of dropping them at the end. */
  keep: boolean;
  /** Replica counts of the closed-loop runs, ascending (replicas are added one by one). */
  replicaCounts: number[];
  closedSeconds: number;
  closedConcurrency: number;
  /** Unmeasured load before each measured run. */
  warmupSeconds: number;
  /** Replica counts of the switch-and-kill runs, run in descending order after the closed-loop runs. */
  eventReplicaCounts: number[];
  /** Requests per second of those runs; absent: half the closed-loop rate through one replica. */
  rate?: number;
  /** Most requests in flight in those runs (the clients' connections to the load balancer). */
  eventConcurrency: number;
  /** Measured seconds before the switch, and after the killed replica is back. */
  beforeSeconds: number;
  afterRestartSeconds: number;
  /**
   * Seconds between the switch and the kill, per switch-and-kill run in the order they run (the last value for the
   * rest). Under the replicas' index flush interval (10 s), the killed replica may not have saved the new version's
   * collection yet.
   */
  afterSwitchSeconds: number[];
  switchTimeoutSeconds: number;
  restartTimeoutSeconds: number;
  samples: number;
  historyLength: number;
  first: number;
  workDir: string;
  serverLogLevel: string;
  /**
   * After the switch-and-kill runs: start one more replica on an empty data directory (no load) and report its
   * start-up and the titles it ran through the encoder for the version the switches made.
   */
  join: boolean;
  /** Said in the report as it is (e.g. what else was paused on the machine while it ran). */
  note?: string;
  command: string;
  log: (message: string) => void;
}

export interface Stats {
  requests: number;
  failed: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  mean_ms: number;
}

export interface ClosedRun extends Stats {
  replicas: number;
  concurrency: number;
  seconds: number;
  /** Answered requests per second. */
  rps: number;
  failures: Record<string, number>;
  /** Requests answered by each replica. */
  by_replica: Record<string, number>;
  /** Machine, measured (replicas and the benchmark's own process) and other (PostgreSQL and the rest) cores. */
  cpu: CpuUse;
  /** Cores the benchmark's process (load generator and load balancer) used. */
  generator_cores: number;
  /** Resident memory of each replica at the end of the run, MiB. */
  replica_rss_mib: Record<string, number>;
}

export type PhaseName = 'before' | 'switch' | 'after_switch' | 'kill' | 'restart' | 'after_restart';
export const PHASES: PhaseName[] = ['before', 'switch', 'after_switch', 'kill', 'restart', 'after_restart'];

export interface PhaseReport extends Stats {
  /** Seconds from the start of the measured run. */
  start_s: number;
  end_s: number;
  p99_ms_from_send: number;
  /** Failed requests on the killed replica, written to it before the load balancer took it out (expected: reported, not hidden). */
  failed_on_killed: number;
  /** Of those, written after the SIGKILL (on an idle keep-alive connection the client had not yet seen closed). */
  failed_on_killed_sent_after_kill: number;
  /** Requests passed to another replica because their connection could not be opened. */
  retried: number;
  by_replica: Record<string, number>;
}

export interface EventRun {
  replicas: number;
  rate: number;
  /** Seconds between the end of the switch and the SIGKILL. */
  after_switch_seconds: number;
  concurrency: number;
  requests: number;
  failed: number;
  /** Failed requests other than those in flight on the killed replica (exit code 1 when > 0). */
  failed_unexpected: number;
  failures: Record<string, number>;
  first_failures: string[];
  phases: Record<PhaseName, PhaseReport>;
  switch: {
    from_version: string;
    to_version: string;
    /** The replica activateModel was sent to. */
    asked: string;
    /** activateModel's answer (the asked replica loaded and checked the bundle), from the call. */
    accepted_s: number | null;
    /** From the call until each replica's /readyz named the new version. */
    replica_s: Record<string, number>;
    /** Until every replica did: the switch time. */
    seconds: number | null;
    /** How the asked replica filled the collection (modelActivation). */
    mode: string | null;
    reused: number | null;
    embedded: number | null;
    error: string | null;
    /** Answers naming the old version among requests sent after every replica named the new one (must be 0). */
    old_version_after: number;
    /** Rows of item_vectors per collection after the switch. */
    item_vectors_rows: Record<string, number>;
  };
  kill: {
    replica: string;
    /** From SIGKILL: the process gone, the load balancer taking it out, its /readyz 200 again, back in rotation. */
    exited_s: number;
    out_of_rotation_s: number | null;
    ready_s: number | null;
    back_in_rotation_s: number | null;
    /** The restarted process's own start-up (spawn to /readyz 200). */
    startup_s: number | null;
    /** What the restarted replica's metrics say it ran through the encoder, per collection. */
    titles_encoded: Record<string, number>;
    /** Version its /readyz named once back. */
    version: string | null;
    error: string | null;
  };
  /** Answers per model version; answers without one count as failed. */
  responses_by_version: Record<string, number>;
  /** Per second of the run (by when requests were due). */
  timeline: { s: number; requests: number; failed: number; retried: number; p50_ms: number; p99_ms: number; max_ms: number }[];
  /** Load balancer state changes, seconds from the start of the run. */
  rotation: { s: number; replica: string; up: boolean }[];
  /** Seconds from the start of the run: switch asked, every replica switched, SIGKILL, out of rotation, /readyz 200, back in rotation, end. */
  marks_s: Record<string, number>;
  /** Cores the whole machine used during the run (the killed replica's process changes, so no per-process split). */
  machine_cores: number;
  load: { start: LoadSnapshot; end: LoadSnapshot };
}

export interface ReplicaStart {
  replica: string;
  /** Spawn to /readyz 200. */
  startup_s: number;
  /** llm2rec_replica_titles_encoded once ready, per collection. */
  titles_encoded: Record<string, number>;
}

export interface ReplicasReport {
  closed: ClosedRun[];
  events: EventRun[];
  /** Requests over the switch-and-kill runs, and those that failed other than on the killed replica. */
  failed_unexpected: number;
  old_version_after_switch: number;
  starts: ReplicaStart[];
  /** A replica started on an empty data directory after the switches (no load), if asked. */
  join: (ReplicaStart & { version: string | null; item_vectors_rows_before: Record<string, number>; item_vectors_rows_after: Record<string, number>; error: string | null }) | null;
  seeding: { items: number; titles: number; collection: string; seconds: number };
  catalogue: { datasets: string[]; items: number };
  bundle_version: string;
  database: { server: string; name: string; kept: boolean; postgres_version: string };
  balancer: string;
  load: { request: string; histories: number };
  note: string | null;
  command: string;
  date: string;
  duration_seconds: number;
  machine: MachineInfo;
  git: ReturnType<typeof gitState>;
  machine_load: { note: string; start: LoadSnapshot; end: LoadSnapshot; stopped_processes: string[] };
}

const RECOMMEND = 'query Replicas($h: [ID!], $first: Int!) { recommendations(history: $h, first: $first) { modelVersion items { score item { id title } } } }';
const ACTIVATE = 'mutation Activate($v: String!) { activateModel(version: $v) { version state } }';
const PROGRESS = '{ modelActivation { version state done total error mode reused embedded } }';
const API_KEY = 'bench-replicas';

export const BALANCER_DESCRIPTION = 'client-side, as deploy/haproxy.cfg: GET /readyz every 1 s (2 s timeout), out after 2 failed checks, in after 2 passed (starting out), leastconn, '
  + 'a request whose connection could not be opened (refused, 2 s) passed to another replica up to 3 times, a POST written to a connection and then failed not retried';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The URL of the PostgreSQL that scripts/postgres-test-server.sh starts (its `url` command), else its default. */
export function defaultDatabaseUrl(): string {
  try {
    return execFileSync('bash', [path.join(REPO, 'scripts/postgres-test-server.sh'), 'url'], { encoding: 'utf8' }).trim();
  } catch {
    return 'postgresql://postgres@127.0.0.1:55432/llm2rec_test';
  }
}

function withDatabase(url: string, name: string): string {
  const next = new URL(url);
  next.pathname = `/${name}`;
  return next.toString();
}

function stats(latencies: readonly number[], failed: number): Stats {
  const s = summarize(latencies, failed, 1);
  return { requests: s.requests, failed: s.failed, p50_ms: s.p50_ms, p99_ms: s.p99_ms, max_ms: s.max_ms, mean_ms: s.mean_ms };
}

function count<T>(items: readonly T[], key: (item: T) => string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) {
    const k = key(item);
    if (k !== undefined) out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

function failureKind(sample: BalancedSample): string {
  const error = sample.error ?? 'unknown';
  if (error.startsWith('HTTP ')) return error.slice(0, 8);
  if (error.startsWith('bad answer')) return 'bad answer';
  return sample.reused ? `${error} (reused connection)` : error;
}

/** A metric's series from a replica's /metrics (metricSeries). */
async function replicaMetric(origin: string, name: string): Promise<Record<string, number>> {
  return metricSeries(await fetch(`${origin}/metrics`).then((response) => response.text()), name);
}

function rssMib(pid: number): number {
  try {
    const kb = Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    return Math.round(kb / 1024);
  } catch {
    return NaN;
  }
}

interface Replica {
  name: string;
  dataDir: string;
  logFile: string;
  server: ServerProcess;
  port: number;
}

export async function runReplicas(options: ReplicasOptions): Promise<ReplicasReport> {
  const { log } = options;
  const began = performance.now();
  const startLoad = await loadSnapshot();
  if (startLoad.busy_processes.length > 0) log(`warning: other processes use the CPU, numbers will be low:\n  ${startLoad.busy_processes.join('\n  ')}`);

  // The database, fresh.
  const stamp = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const dbName = `bench_replicas_${stamp}_${process.pid}`;
  const admin = new pg.Client({ connectionString: options.databaseUrl });
  await admin.connect();
  const postgresVersion = (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0].server_version;
  await admin.query(`CREATE DATABASE "${dbName}"`);
  await admin.end();
  const databaseUrl = withDatabase(options.databaseUrl, dbName);
  log(`database ${dbName} created (PostgreSQL ${postgresVersion})`);

  const registry = path.join(options.workDir, 'registry-replicas');
  await rm(registry, { recursive: true, force: true });
  const from = await snapshotBundle(options.bundleDir, registry, { dirName: 'a' });
  const collection = versionCollection(from.version, 'fp32');
  const dataRoot = path.join(options.workDir, 'data', `replicas-${process.pid}`);
  const replicas: Replica[] = [];
  const balancer = new Balancer();
  const closed: ClosedRun[] = [];
  const events: EventRun[] = [];
  const starts: ReplicaStart[] = [];
  let join: ReplicasReport['join'] = null;
  let seeding: ReplicasReport['seeding'];
  let items: Awaited<ReturnType<typeof readCatalogue>>;
  let histories: string[][];
  try {
    // The catalogue: rows and the first version's vectors, straight into PostgreSQL.
    items = await readCatalogue(options.datasets.map((name) => path.join(SHARED_DATA, name)), { limitPerDir: options.limitPerDir });
    const model = await RecommendationModel.load(from.dir, { nice: null });
    const cache = await VectorCache.open(model, path.join(options.workDir, 'vectors'));
    await cache.fill(items.map((item) => item.title), {
      onProgress: (done, total, rate) => log(`embedding catalogue titles for the vector cache: ${done}/${total} (${rate.toFixed(0)}/s)`),
    });
    await model.release();
    const seedStarted = performance.now();
    await mkdir(dataRoot, { recursive: true });
    const db = await openDatabase({ databaseUrl, dataDir: dataRoot }); // runs the migrations
    const titles = [...new Set(items.map((item) => item.title))];
    try {
      for (let start = 0; start < items.length; start += 2000) await upsertItems(db.prisma, items.slice(start, start + 2000));
      // What a replica stores after encoding titles, with the cached vectors standing in for the encoder.
      const shared = new SharedEmbeddings({ embedItems: async (batch) => batch.map((title) => cache.get(title)) }, db.pool!, collection);
      for (let start = 0; start < titles.length; start += 2000) await shared.embedItems(titles.slice(start, start + 2000));
    } finally {
      await db.close();
    }
    seeding = { items: items.length, titles: titles.length, collection, seconds: round((performance.now() - seedStarted) / 1000, 2) };
    log(`seeded ${items.length} items and ${titles.length} titles' vectors (${collection}) in ${seeding.seconds} s`);
    histories = await sampleHistories(path.join(SHARED_DATA, 'amazon-games'), {
      count: options.samples, length: options.historyLength, known: new Set(items.map((item) => item.id)),
    });
    if (histories.length === 0) throw new Error('no amazon-games history fits the catalogue');
  } catch (error) {
    await dropDatabase(options, dbName, log);
    throw error;
  }

  const bodies = histories.map((h) => JSON.stringify({ query: RECOMMEND, variables: { h, first: options.first } }));
  const inspect = (body: string): string | null => {
    try {
      const parsed = JSON.parse(body);
      const list = parsed.data?.recommendations;
      if (parsed.errors || !list || list.items.length !== options.first || typeof list.modelVersion !== 'string' || list.modelVersion === '') return null;
      return list.modelVersion;
    } catch {
      return null;
    }
  };
  const graphql = async (origin: string, query: string, variables: Record<string, unknown> = {}) => {
    const response = await fetch(`${origin}/graphql`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': API_KEY }, body: JSON.stringify({ query, variables }),
    });
    return response.json() as Promise<{ data?: any; errors?: { message: string }[] }>;
  };
  const readyVersion = (origin: string) => fetch(`${origin}/readyz`)
    .then(async (response) => (response.ok ? ((await response.json()) as { modelVersion?: string }).modelVersion ?? null : null), () => null);

  const startReplica = async (name: string, dataDir: string, restart?: { port?: number }): Promise<ServerProcess> => startPlatformServer({
    dataDir, bundleDir: from.dir, registryDir: registry, apiKey: API_KEY, logLevel: options.serverLogLevel,
    logFile: path.join(options.workDir, 'logs', `serve-${name}.log`), env: { DATABASE_URL: databaseUrl }, port: restart?.port,
    ...(restart && { readyTimeoutMs: options.restartTimeoutSeconds * 1000 }),
  });
  const addReplica = async () => {
    const name = `replica-${replicas.length + 1}`;
    const dataDir = path.join(dataRoot, name);
    await rm(dataDir, { recursive: true, force: true });
    const server = await startReplica(name, dataDir);
    const encoded = await replicaMetric(server.origin, 'llm2rec_replica_titles_encoded');
    starts.push({ replica: name, startup_s: round(server.startupSeconds, 2), titles_encoded: encoded });
    log(`${name} ready in ${server.startupSeconds.toFixed(1)} s on ${server.origin}; titles encoded: ${JSON.stringify(encoded)}`);
    replicas.push({ name, dataDir, logFile: path.join(options.workDir, 'logs', `serve-${name}.log`), server, port: Number(new URL(server.origin).port) });
    balancer.add(name, server.origin);
    await balancer.waitFor(name, true, 30_000);
  };

  let serving = from.version;
  let versions = 0;
  try {
    // Closed loop through 1, 2, 3 ... replicas.
    for (const n of options.replicaCounts) {
      while (replicas.length < n) await addReplica();
      if (options.warmupSeconds > 0) {
        await balancedClosedLoop({ balancer, path: '/graphql', bodies, concurrency: options.closedConcurrency, seconds: options.warmupSeconds, inspect });
      }
      const meter = new CpuMeter(() => replicas.map((r) => r.server.pid));
      const own = new CpuMeter(() => []);
      const { samples, seconds } = await balancedClosedLoop({ balancer, path: '/graphql', bodies, concurrency: options.closedConcurrency, seconds: options.closedSeconds, inspect });
      const cpu = meter.read();
      const ok = samples.filter((s) => s.ok);
      const s = stats(ok.map((x) => x.end - x.due), samples.length - ok.length);
      const run: ClosedRun = {
        replicas: n, concurrency: options.closedConcurrency, seconds: round(seconds, 2), rps: round(ok.length / seconds, 1), ...s,
        failures: count(samples.filter((x) => !x.ok), failureKind), by_replica: count(ok, (x) => x.replica), cpu,
        generator_cores: own.read().measured_cores,
        replica_rss_mib: Object.fromEntries(replicas.map((r) => [r.name, rssMib(r.server.pid)])),
      };
      closed.push(run);
      log(`closed loop, ${n} replica(s), ${options.closedConcurrency} clients: ${run.rps} req/s, p50 ${run.p50_ms} ms, p99 ${run.p99_ms} ms, max ${run.max_ms} ms, failed ${run.failed}; `
        + `by replica ${JSON.stringify(run.by_replica)}; CPU machine ${cpu.machine_cores}, replicas+generator ${cpu.measured_cores}, generator ${run.generator_cores}`);
    }

    // A switch and a kill at a steady rate, through N replicas (descending: a replica added after a switch would
    // have to embed what the switch reused on the others; see the report's item_vectors_rows).
    const counts = [...options.eventReplicaCounts].sort((a, b) => b - a);
    const rate = options.rate ?? Math.max(10, Math.floor((closed.find((run) => run.replicas === 1)?.rps ?? 200) / 2 / 10) * 10);
    for (const n of counts) {
      if (n < 2) throw new Error('a switch-and-kill run needs at least 2 replicas (one is killed)');
      while (replicas.length < n) await addReplica();
      while (replicas.length > n) {
        const last = replicas.pop()!;
        balancer.remove(last.name);
        await last.server.stop();
        log(`${last.name} stopped (SIGTERM) for the ${n}-replica run`);
      }
      versions++;
      const target = await snapshotBundle(from.dir, registry, { dirName: `v${versions}`, version: `${from.version}-replicas-v${versions}` });
      const afterSwitch = options.afterSwitchSeconds[events.length] ?? options.afterSwitchSeconds.at(-1) ?? 15;
      events.push(await eventRun(n, rate, target.version, afterSwitch));
      serving = target.version;
    }

    if (options.join) {
      const name = 'replica-join';
      const dataDir = path.join(dataRoot, name);
      const before = await itemVectorRows(databaseUrl);
      log(`${name}: starting on an empty data directory while the others serve ${serving} (no load)`);
      const started = performance.now();
      try {
        const server = await startReplica(name, dataDir, {});
        join = {
          replica: name, startup_s: round(server.startupSeconds, 2),
          titles_encoded: await replicaMetric(server.origin, 'llm2rec_replica_titles_encoded'),
          version: await readyVersion(server.origin), item_vectors_rows_before: before, item_vectors_rows_after: await itemVectorRows(databaseUrl), error: null,
        };
        await server.stop();
      } catch (error) {
        join = {
          replica: name, startup_s: round((performance.now() - started) / 1000, 2), titles_encoded: {}, version: null,
          item_vectors_rows_before: before, item_vectors_rows_after: await itemVectorRows(databaseUrl), error: (error as Error).message,
        };
      }
      log(`${name}: ready in ${join.startup_s} s serving ${join.version}; titles encoded ${JSON.stringify(join.titles_encoded)}${join.error ? `; ${join.error}` : ''}`);
    }
  } finally {
    balancer.stop();
    for (const replica of replicas) await replica.server.stop().catch(() => undefined);
    if (!options.keep) {
      await dropDatabase(options, dbName, log);
      await rm(dataRoot, { recursive: true, force: true });
    } else {
      log(`kept database ${dbName} (${databaseUrl}) and data directories under ${dataRoot}`);
    }
  }

  async function eventRun(n: number, rate: number, version: string, afterSwitchSeconds: number): Promise<EventRun> {
    const active = replicas.slice(0, n);
    const asked = active[0];
    const victim = active[n - 1];
    log(`switch and kill through ${n} replicas at ${rate} req/s: ${serving} -> ${version} asked of ${asked.name}, then SIGKILL of ${victim.name} ${afterSwitchSeconds} s after`);
    const loadStart = await loadSnapshot();
    const meter = new CpuMeter(() => []);
    const run = balancedPacedLoad({
      balancer, path: '/graphql', bodies, rate, maxInFlight: options.eventConcurrency, inspect,
      maxSeconds: options.warmupSeconds + options.beforeSeconds + options.switchTimeoutSeconds + afterSwitchSeconds
        + options.restartTimeoutSeconds + options.afterRestartSeconds + 60,
    });
    await sleep(options.warmupSeconds * 1000);
    const t0 = performance.now();
    const marks: Partial<Record<'switch' | 'switched' | 'kill' | 'exited' | 'out' | 'ready' | 'back' | 'end', number>> = {};
    const sw: EventRun['switch'] = {
      from_version: serving, to_version: version, asked: asked.name, accepted_s: null, replica_s: {}, seconds: null,
      mode: null, reused: null, embedded: null, error: null, old_version_after: 0, item_vectors_rows: {},
    };
    const kill: EventRun['kill'] = {
      replica: victim.name, exited_s: NaN, out_of_rotation_s: null, ready_s: null, back_in_rotation_s: null, startup_s: null,
      titles_encoded: {}, version: null, error: null,
    };
    let samples: BalancedSample[];
    try {
      await sleep(options.beforeSeconds * 1000);

      // The switch: activateModel to one replica, then every replica's /readyz until it names the new version.
      marks.switch = performance.now();
      const since = (at: number) => round((at - marks.switch!) / 1000, 2);
      const answer = await graphql(asked.server.origin, ACTIVATE, { v: version }).catch((error) => ({ errors: [{ message: String(error) }] }) as { data?: any; errors?: { message: string }[] });
      sw.accepted_s = since(performance.now());
      if (answer.errors) sw.error = `activateModel: ${answer.errors.map((e) => e.message).join('; ')}`;
      else {
        const deadline = marks.switch + options.switchTimeoutSeconds * 1000;
        let lastLogged = performance.now();
        while (Object.keys(sw.replica_s).length < n && performance.now() < deadline) {
          await Promise.all(active.filter((r) => sw.replica_s[r.name] === undefined).map(async (r) => {
            if ((await readyVersion(r.server.origin)) === version) sw.replica_s[r.name] = since(performance.now());
          }));
          const activation = (await graphql(asked.server.origin, PROGRESS).catch(() => ({ data: undefined })))?.data?.modelActivation;
          if (activation?.state === 'failed') {
            sw.error = `activation failed: ${activation.error}`;
            break;
          }
          if (performance.now() - lastLogged > 10_000) {
            lastLogged = performance.now();
            log(`  switching: ${activation?.state} ${activation?.done}/${activation?.total}; switched: ${JSON.stringify(sw.replica_s)}`);
          }
          await sleep(100);
        }
        if (Object.keys(sw.replica_s).length === n) {
          marks.switched = performance.now();
          sw.seconds = since(marks.switched);
        } else sw.error ??= `not every replica named ${version} within ${options.switchTimeoutSeconds} s: ${JSON.stringify(sw.replica_s)}`;
        const activation = (await graphql(asked.server.origin, PROGRESS).catch(() => ({ data: undefined })))?.data?.modelActivation;
        sw.mode = activation?.mode?.toLowerCase() ?? null;
        sw.reused = activation?.reused ?? null;
        sw.embedded = activation?.embedded ?? null;
      }
      marks.switched ??= performance.now();
      log(`  switch: accepted in ${sw.accepted_s} s, every replica on ${version} in ${sw.seconds ?? 'n/a'} s (${JSON.stringify(sw.replica_s)}; ${sw.mode}, ${sw.reused} reused, ${sw.embedded} embedded)${sw.error ? `; ${sw.error}` : ''}`);
      sw.item_vectors_rows = await itemVectorRows(databaseUrl);
      if (!sw.error) serving = version;
      await sleep(afterSwitchSeconds * 1000);

      // The kill: SIGKILL, restart on the same data directory and port at once (as a process manager would).
      marks.kill = performance.now();
      const fromKill = (at: number | undefined) => (at === undefined ? null : round((at - marks.kill!) / 1000, 2));
      process.kill(victim.server.pid, 'SIGKILL');
      await victim.server.stop();
      marks.exited = performance.now();
      kill.exited_s = fromKill(marks.exited)!;
      try {
        let restarted: ServerProcess;
        try {
          restarted = await startReplica(victim.name, victim.dataDir, { port: victim.port });
        } catch (error) {
          // The port was taken meanwhile: elsewhere, and the balancer told.
          log(`  restart on port ${victim.port} failed (${(error as Error).message}); starting on another port`);
          restarted = await startReplica(victim.name, victim.dataDir, {});
          balancer.remove(victim.name);
          balancer.add(victim.name, restarted.origin);
          victim.port = Number(new URL(restarted.origin).port);
        }
        victim.server = restarted;
        marks.ready = performance.now();
        kill.startup_s = round(restarted.startupSeconds, 2);
        kill.ready_s = fromKill(marks.ready);
        kill.titles_encoded = await replicaMetric(restarted.origin, 'llm2rec_replica_titles_encoded');
        kill.version = await readyVersion(restarted.origin);
        marks.back = await balancer.waitFor(victim.name, true, 30_000);
        kill.back_in_rotation_s = fromKill(marks.back);
      } catch (error) {
        kill.error = (error as Error).message;
      }
      // When the health checks took it out, if they saw it down at all before it was back.
      marks.out = balancer.transitions.find((t) => t.replica === victim.name && !t.up && t.at >= marks.kill!)?.at;
      kill.out_of_rotation_s = fromKill(marks.out);
      log(`  kill of ${victim.name}: gone in ${kill.exited_s} s, out of rotation ${kill.out_of_rotation_s ?? 'never'} s, /readyz 200 at ${kill.ready_s} s `
        + `(start-up ${kill.startup_s} s), back in rotation ${kill.back_in_rotation_s} s; serves ${kill.version}; titles encoded ${JSON.stringify(kill.titles_encoded)}${kill.error ? `; ${kill.error}` : ''}`);
      await sleep(options.afterRestartSeconds * 1000);
    } finally {
      marks.end = performance.now();
      run.stop();
      samples = (await run.done).filter((s) => s.due >= t0);
    }
    const cpu = meter.read();

    // Phases by when requests were due.
    const killEnd = marks.out ?? marks.back ?? marks.end!;
    const windows: Record<PhaseName, [number, number]> = {
      before: [t0, marks.switch ?? marks.end!],
      switch: [marks.switch ?? marks.end!, marks.switched ?? marks.end!],
      after_switch: [marks.switched ?? marks.end!, marks.kill ?? marks.end!],
      kill: [marks.kill ?? marks.end!, killEnd],
      restart: [killEnd, marks.back ?? marks.end!],
      after_restart: [marks.back ?? marks.end!, Infinity],
    };
    // A failure expected from the kill: a request on the killed replica, written to it before the load balancer took
    // it out, that ended (failed) after the kill.
    const expected = (s: BalancedSample) => !s.ok && s.replica === victim.name && marks.kill !== undefined && s.end >= marks.kill
      && s.sent <= (marks.out ?? marks.back ?? Infinity);
    const phases = Object.fromEntries(PHASES.map((name) => {
      const [start, end] = windows[name];
      const inPhase = samples.filter((s) => s.due >= start && s.due < end);
      const ok = inPhase.filter((s) => s.ok);
      const report: PhaseReport = {
        start_s: round((start - t0) / 1000, 2), end_s: round((Math.min(end, marks.end!) - t0) / 1000, 2),
        ...stats(ok.map((s) => s.end - s.due), inPhase.length - ok.length),
        p99_ms_from_send: round(percentile(ok.map((s) => s.end - s.sent).sort((a, b) => a - b), 99)),
        failed_on_killed: inPhase.filter(expected).length,
        failed_on_killed_sent_after_kill: inPhase.filter((s) => expected(s) && s.sent >= marks.kill!).length,
        retried: inPhase.filter((s) => s.attempts > 1).length,
        by_replica: count(ok, (s) => s.replica),
      };
      return [name, report];
    })) as Record<PhaseName, PhaseReport>;
    const failures = samples.filter((s) => !s.ok);
    const oldAfter = marks.switched !== undefined && !sw.error
      ? samples.filter((s) => s.ok && s.sent >= marks.switched! && s.label === sw.from_version).length : 0;
    sw.old_version_after = oldAfter;
    const seconds = Math.ceil(((samples.at(-1)?.due ?? t0) - t0) / 1000);
    const timeline = Array.from({ length: seconds + 1 }, (_, i) => {
      const inSecond = samples.filter((s) => s.due >= t0 + i * 1000 && s.due < t0 + (i + 1) * 1000);
      const latencies = inSecond.filter((s) => s.ok).map((s) => s.end - s.due).sort((a, b) => a - b);
      return {
        s: i, requests: inSecond.length, failed: inSecond.length - latencies.length, retried: inSecond.filter((s) => s.attempts > 1).length,
        p50_ms: round(percentile(latencies, 50)), p99_ms: round(percentile(latencies, 99)), max_ms: round(latencies.at(-1) ?? NaN),
      };
    });
    const result: EventRun = {
      replicas: n, rate, after_switch_seconds: afterSwitchSeconds, concurrency: options.eventConcurrency, requests: samples.length, failed: failures.length,
      failed_unexpected: failures.filter((s) => !expected(s)).length, failures: count(failures, failureKind),
      first_failures: failures.slice(0, 8).map((s) => `${round((s.due - t0) / 1000, 2)} s ${s.replica ?? '-'}: ${s.error}`),
      phases, switch: sw, kill, responses_by_version: count(samples.filter((s) => s.ok), (s) => s.label), timeline,
      rotation: balancer.transitions.filter((t: Transition) => t.at >= t0).map((t) => ({ s: round((t.at - t0) / 1000, 2), replica: t.replica, up: t.up })),
      marks_s: Object.fromEntries(Object.entries(marks).map(([name, at]) => [name, round((at - t0) / 1000, 2)])),
      machine_cores: cpu.machine_cores, load: { start: loadStart, end: await loadSnapshot() },
    };
    log(`${n} replicas at ${rate} req/s: ${result.requests} requests, ${result.failed} failed (${result.failed_unexpected} other than on the killed replica); `
      + PHASES.map((name) => `${name} ${phases[name].failed}/${phases[name].requests} p99 ${phases[name].p99_ms}`).join(', ')
      + `; old version after the switch: ${oldAfter}`);
    return result;
  }

  const endLoad = await loadSnapshot();
  const stopped = pausedThroughout(startLoad, endLoad);
  return {
    closed, events,
    failed_unexpected: events.reduce((sum, run) => sum + run.failed_unexpected, 0),
    old_version_after_switch: events.reduce((sum, run) => sum + run.switch.old_version_after, 0),
    starts, join, seeding: seeding!,
    catalogue: { datasets: options.datasets, items: items!.length },
    bundle_version: from.version,
    database: { server: redact(options.databaseUrl), name: dbName, kept: options.keep, postgres_version: postgresVersion },
    balancer: BALANCER_DESCRIPTION,
    load: { request: `recommendations(history: last ${options.historyLength} items of an amazon-games user, first: ${options.first})`, histories: histories!.length },
    note: options.note ?? null,
    command: options.command,
    date: new Date().toISOString(),
    duration_seconds: round((performance.now() - began) / 1000, 1),
    machine: machineInfo(),
    git: gitState(REPO),
    machine_load: { note: loadNote(startLoad, endLoad), start: startLoad, end: endLoad, stopped_processes: stopped },
  };
}

/** The URL without a password. */
function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

async function itemVectorRows(databaseUrl: string): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ collection: string; n: string }>('SELECT "collection", count(*) AS n FROM "item_vectors" GROUP BY "collection" ORDER BY 1');
    return Object.fromEntries(rows.map((row) => [row.collection, Number(row.n)]));
  } finally {
    await client.end();
  }
}

async function dropDatabase(options: ReplicasOptions, name: string, log: (message: string) => void): Promise<void> {
  if (options.keep) return;
  const admin = new pg.Client({ connectionString: options.databaseUrl });
  try {
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    log(`database ${name} dropped`);
  } catch (error) {
    log(`dropping database ${name} failed: ${(error as Error).message}`);
  } finally {
    await admin.end().catch(() => undefined);
  }
}
