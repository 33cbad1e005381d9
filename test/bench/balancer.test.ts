/**
 * The benchmark's load balancer (bench/lib/balancer.ts) against bare node:http servers: health checks put replicas
 * in and out of rotation, requests go to the least busy one, a request whose connection is refused is passed to
 * another replica, and one that was written to a connection and then failed is not.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { Balancer, balancedClosedLoop } from '../../bench/lib/balancer.js';

interface Backend {
  origin: string;
  requests: number;
  ready: boolean;
  close(): Promise<void>;
}

/** A replica stand-in: /readyz 200 while `ready`, POST answers its name after `delayMs`; `drop` destroys the socket instead. */
async function backend(name: string, options: { delayMs?: number; drop?: boolean } = {}): Promise<Backend> {
  const state = { requests: 0, ready: true };
  const server = http.createServer((request, response) => {
    if (request.url === '/readyz') {
      response.writeHead(state.ready ? 200 : 503).end();
      return;
    }
    state.requests++;
    request.resume();
    request.on('end', () => {
      if (options.drop) {
        request.socket.destroy();
        return;
      }
      setTimeout(() => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name })), options.delayMs ?? 0);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    get requests() { return state.requests; },
    get ready() { return state.ready; },
    set ready(value: boolean) { state.ready = value; },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<string> {
  const b = await backend('gone');
  await b.close();
  return b.origin;
}

describe('bench load balancer', () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('takes a replica in after two passed checks and out after two failed ones', async () => {
    const a = await backend('a');
    const balancer = new Balancer({ checkIntervalMs: 40 });
    cleanups.push(() => a.close(), () => balancer.stop());
    balancer.add('a', a.origin);
    assert.equal(balancer.isUp('a'), false, 'replicas start out of rotation');
    await balancer.waitFor('a', true, 2000);
    a.ready = false;
    await balancer.waitFor('a', false, 2000);
    assert.deepEqual(balancer.transitions.map((t) => t.up), [true, false]);
    const answer = await balancer.post('/graphql', '{}');
    assert.equal(answer.ok, false);
    assert.equal(answer.status, 503);
  });

  it('sends each request to the replica with the fewest in flight', async () => {
    const slow = await backend('slow', { delayMs: 60 });
    const fast = await backend('fast');
    const balancer = new Balancer();
    cleanups.push(() => slow.close(), () => fast.close(), () => balancer.stop());
    balancer.add('slow', slow.origin, { up: true });
    balancer.add('fast', fast.origin, { up: true });
    const { samples } = await balancedClosedLoop({ balancer, path: '/graphql', bodies: ['{}'], concurrency: 4, seconds: 0.4, inspect: (body) => JSON.parse(body).name });
    assert.ok(samples.every((s) => s.ok));
    const bySlow = samples.filter((s) => s.replica === 'slow').length;
    assert.ok(bySlow > 0 && bySlow * 4 < samples.length, `slow answered ${bySlow} of ${samples.length}`);
  });

  it('passes a request whose connection is refused to another replica', async () => {
    const b = await backend('b');
    const balancer = new Balancer({ checkIntervalMs: 60_000 });
    cleanups.push(() => b.close(), () => balancer.stop());
    balancer.add('gone', await closedPort(), { up: true });
    balancer.add('b', b.origin, { up: true });
    for (let i = 0; i < 4; i++) {
      const answer = await balancer.post('/graphql', '{}');
      assert.equal(answer.ok, true, answer.error);
      assert.equal(answer.replica, 'b');
    }
    const all = new Balancer({ checkIntervalMs: 60_000 });
    cleanups.push(() => all.stop());
    all.add('gone', await closedPort(), { up: true });
    const failed = await all.post('/graphql', '{}');
    assert.equal(failed.ok, false);
    assert.equal(failed.attempts, 4, 'the first try and 3 retries');
    assert.equal(failed.error, 'ECONNREFUSED');
  });

  it('does not retry a request that was written to a connection and then failed', async () => {
    const dropping = await backend('dropping', { drop: true });
    const b = await backend('b');
    const balancer = new Balancer({ checkIntervalMs: 60_000 });
    cleanups.push(() => dropping.close(), () => b.close(), () => balancer.stop());
    balancer.add('dropping', dropping.origin, { up: true });
    const answer = await balancer.post('/graphql', '{}');
    balancer.add('b', b.origin, { up: true });
    assert.equal(answer.ok, false);
    assert.equal(answer.attempts, 1);
    assert.equal(answer.replica, 'dropping');
    assert.ok(Number.isFinite(answer.sent));
    assert.equal(b.requests, 0);
  });
});
