import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { pacedLoad } from '../../bench/lib/paced.js';

describe('paced load (open loop)', () => {
  it('sends every due request, never more at once than its connections, and counts the wait from when each was due', async () => {
    let open = 0;
    let most = 0;
    const server = http.createServer((request, response) => {
      open += 1;
      most = Math.max(most, open);
      request.resume();
      request.on('end', () => setTimeout(() => {
        open -= 1;
        response.end(JSON.stringify({ ok: true }));
      }, 20));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      // 200/s for 0.5 s against 2 connections of 20 ms each (100/s at most): a queue builds up.
      const run = pacedLoad({ url: `http://127.0.0.1:${port}/`, bodies: ['{}'], rate: 200, maxInFlight: 2, maxSeconds: 0.5, inspect: () => 'ok' });
      const samples = await run.done;
      assert.ok(samples.length >= 100 && samples.length <= 101, `${samples.length} requests`);
      assert.ok(samples.every((sample) => sample.ok && sample.label === 'ok'));
      assert.equal(most, 2);
      assert.ok(samples.every((sample) => sample.sent >= sample.due - 1 && sample.end >= sample.sent));
      const last = samples.at(-1)!;
      assert.ok(last.sent - last.due > 200, `the last request waited ${last.sent - last.due} ms for a connection`);
    } finally {
      server.close();
    }
  });
});
