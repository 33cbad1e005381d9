/**
 * Readiness, Prometheus metrics and per-operation logs over real HTTP: a real tiny bundle, PGlite in a temp dir, the
 * embedded index, and a pino logger whose lines the test reads.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { loadSettings } from '../../src/config.js';
import { openPlatform, type Platform } from '../../src/platform.js';
import { startHttpServer, type RunningServer } from '../../src/server/http-server.js';
import { checkReadiness } from '../../src/server/readiness.js';
import { tinyBundle } from '../support/fixtures.js';

const ITEMS = [
  { id: 'g1', domain: 'video_games', title: 'Fire Emblem: The Sacred Stones' },
  { id: 'g2', domain: 'video_games', title: 'GBA 6-Pak Care Case - Game Boy Advance' },
  { id: 'g3', domain: 'video_games', title: 'Shin Megami Tensei: Devil Summoner 2' },
  { id: 'g4', domain: 'video_games', title: 'Gameboy Advance Plastic Game Cases - 10 count' },
  { id: 'g5', domain: 'video_games', title: 'Nightshade - PlayStation 2' },
];

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A pino logger at info whose JSON lines are kept in `lines`. */
function capturingLogger() {
  const lines: LogLine[] = [];
  let pending = '';
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      pending += chunk.toString();
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        lines.push(JSON.parse(pending.slice(0, newline)));
        pending = pending.slice(newline + 1);
      }
      callback();
    },
  });
  return { logger: pino({ level: 'info', base: { service: 'llm2rec' } }, stream), lines };
}

async function post(url: string, body: unknown) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, body: await response.json() as any };
}

/** The value of one sample in Prometheus text format, or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('observability over HTTP', () => {
  let dataDir: string;
  let platform: Platform;
  let server: RunningServer;
  let base: string;
  let logs: LogLine[];
  let platformClosed = false;

  const scrape = async () => {
    const response = await fetch(`${base}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
    return response.text();
  };

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-observability-'));
    const captured = capturingLogger();
    logs = captured.lines;
    platform = await openPlatform(loadSettings({}, { dataDir, bundleDir: tinyBundle() }), captured.logger);
    server = await startHttpServer(platform, { host: '127.0.0.1', port: 0 });
    base = new URL(server.url).origin;
    const loaded = await post(server.url, {
      query: 'mutation Load($items: [ItemInput!]!) { upsertItems(items: $items) { count } }',
      variables: { items: ITEMS },
    });
    assert.deepEqual(loaded.body, { data: { upsertItems: { count: ITEMS.length } } });
  });

  after(async () => {
    await server?.close();
    if (!platformClosed) await platform?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('is ready with the model version and the indexed item count', async () => {
    const response = await fetch(`${base}/readyz`);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { status: 'ready', modelVersion: platform.model.version, items: ITEMS.length });
    const live = await fetch(`${base}/healthz`);
    assert.equal(live.status, 200);
    assert.equal((await live.json() as any).status, 'ok');
  });

  it('exposes process, model, index and GraphQL metrics', async () => {
    const text = await scrape();
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds',
      'llm2rec_graphql_request_duration_seconds', 'llm2rec_graphql_errors_total', 'llm2rec_model_info', 'llm2rec_index_points']) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
    }
    assert.equal(sample(text, `llm2rec_model_info{version="${platform.model.version}"}`), 1);
    assert.equal(sample(text, 'llm2rec_index_points'), ITEMS.length);
    assert.equal(sample(text, 'llm2rec_graphql_request_duration_seconds_count{operation="Load",outcome="ok"}'), 1);
  });

  it('counts each operation in the duration histogram by name and outcome', async () => {
    const series = 'llm2rec_graphql_request_duration_seconds_count{operation="Domains",outcome="ok"}';
    const before = sample(await scrape(), series) ?? 0;
    for (let i = 0; i < 2; i++) {
      const result = await post(server.url, { query: 'query Domains { domains { name items } }' });
      assert.deepEqual(result.body.data.domains, [{ name: 'video_games', items: ITEMS.length }]);
    }
    const text = await scrape();
    assert.equal(sample(text, series), before + 2);
    assert.ok((sample(text, 'llm2rec_graphql_request_duration_seconds_sum{operation="Domains",outcome="ok"}') ?? 0) > 0);
    assert.equal(sample(text, 'llm2rec_graphql_request_duration_seconds_bucket{le="+Inf",operation="Domains",outcome="ok"}'), before + 2);

    await post(server.url, { query: '{ activeModel { version } }' });
    assert.ok((sample(await scrape(), 'llm2rec_graphql_request_duration_seconds_count{operation="anonymous",outcome="ok"}') ?? 0) >= 1);
  });

  it('counts errors by code and as the error outcome', async () => {
    const query = 'query Broken($history: [ID!]) { recommendations(history: $history, first: 3) { domain } }';
    const result = await post(server.url, { query, variables: { history: ['no-such-item'] } });
    assert.equal(result.body.errors[0].extensions.code, 'UNKNOWN_ITEM');
    const text = await scrape();
    assert.equal(sample(text, 'llm2rec_graphql_errors_total{code="UNKNOWN_ITEM"}'), 1);
    assert.equal(sample(text, 'llm2rec_graphql_request_duration_seconds_count{operation="Broken",outcome="error"}'), 1);
  });

  it('logs one line per operation with its name, type and duration, without the query or its variables', async () => {
    const marker = 'secret-history-marker';
    const from = logs.length;
    const ok = await post(server.url, { query: 'query LogProbe { activeModel { version } }' });
    assert.equal(ok.body.errors, undefined);
    const failed = await post(server.url, {
      query: 'query LogProbeFails($history: [ID!]) { recommendations(history: $history) { domain } }',
      variables: { history: [marker] },
    });
    assert.equal(failed.body.errors[0].extensions.code, 'UNKNOWN_ITEM');

    const lines = logs.slice(from).filter((line) => line.msg === 'graphql operation');
    assert.equal(lines.length, 2, JSON.stringify(lines));
    const [probe, fails] = lines;
    assert.equal(probe.level, 30);
    assert.equal(probe.operation, 'LogProbe');
    assert.equal(probe.type, 'query');
    assert.equal(probe.status, 200);
    assert.equal(typeof probe.durationMs, 'number');
    assert.ok((probe.durationMs as number) >= 0);
    assert.equal(probe.errors, undefined);
    assert.equal(fails.operation, 'LogProbeFails');
    assert.deepEqual(fails.errors, ['UNKNOWN_ITEM']);
    for (const line of logs.slice(from)) {
      const text = JSON.stringify(line);
      assert.ok(!text.includes(marker), `variables logged: ${text}`);
      assert.ok(!text.includes('recommendations('), `query text logged: ${text}`);
    }
  });

  it('gives every request an id: a plain x-request-id as sent, else a new one, in errors and log lines', async () => {
    const from = logs.length;
    const send = (headers: Record<string, string>, body: string) =>
      fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    const given = await send({ 'x-request-id': 'edge-42.a' }, JSON.stringify({ query: 'query Typo { nope }' }));
    assert.equal(given.headers.get('x-request-id'), 'edge-42.a');
    assert.equal(((await given.json()) as any).errors[0].extensions.requestId, 'edge-42.a');
    assert.ok(logs.slice(from).some((line) => line.msg === 'graphql operation' && line.requestId === 'edge-42.a'));
    const hostile = await send({ 'x-request-id': 'bad id\twith spaces' }, JSON.stringify({ query: '{ domains { name } }' }));
    assert.match(hostile.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    const malformed = await send({}, '{"query": ');
    const id = malformed.headers.get('x-request-id');
    assert.equal(((await malformed.json()) as any).errors[0].extensions.requestId, id);
    assert.ok(logs.slice(from).some((line) => line.msg === 'request refused' && line.requestId === id));
    const healthz = await fetch(new URL('/healthz', server.url));
    assert.match(healthz.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });

  it('logs refused operations under their name too', async () => {
    const from = logs.length;
    await post(server.url, { query: 'query NoSuchField { nope }' });
    const lines = logs.slice(from).filter((line) => line.msg === 'graphql operation');
    assert.equal(lines.length, 1);
    assert.equal(lines[0].operation, 'NoSuchField');
    assert.equal(lines[0].status, 400);
    assert.deepEqual(lines[0].errors, ['GRAPHQL_VALIDATION_FAILED']);
  });

  it('is not ready while shutting down', async () => {
    assert.deepEqual(await checkReadiness(platform, false), { status: 'unavailable', reason: 'shutting down' });
  });

  it('is not ready once the database is gone, and hides unexpected errors from clients', async () => {
    await platform.close();
    platformClosed = true;
    const response = await fetch(`${base}/readyz`);
    assert.equal(response.status, 503);
    assert.deepEqual(await response.json(), { status: 'unavailable', reason: 'the database does not answer' });

    const from = logs.length;
    // Item rows and domain counts come from memory; users still ask the database.
    const response2 = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: 'query Lookup { user(id: "u1") { id } }' }) });
    const result = { body: await response2.json() as any };
    assert.equal(result.body.errors[0].extensions.code, 'INTERNAL_SERVER_ERROR');
    assert.equal(result.body.errors[0].message, 'Internal server error');
    // The request id is in the answer (header and error) and in every log line about the request.
    const requestId = response2.headers.get('x-request-id');
    assert.match(requestId ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(result.body.errors[0].extensions.requestId, requestId);
    const logged = logs.slice(from).filter((line) => line.requestId === requestId);
    assert.ok(logged.some((line) => line.level === 50 && line.msg === 'unexpected error in a GraphQL request'), JSON.stringify(logs.slice(from)));
    assert.ok(logged.some((line) => line.msg === 'graphql operation'));
  });
});
