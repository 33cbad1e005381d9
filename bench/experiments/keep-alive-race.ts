/**
 * Why the hot-swap load test lost requests at 100 requests/s (issue #16): keep-alive connections closed by the
 * server's idle timer while the client reuses them, made likely by a blocked event loop.
 *
 * A bare node:http server in a child process (so the client's loop is not the one blocked) answers every POST at
 * once, and every `--period` ms blocks its event loop for `--stall` ms (what a switch did when it created and ran
 * the new encoder's onnxruntime session on the main thread). The client is the hot-swap benchmark's own load
 * generator (bench/lib/paced.ts: open loop, keep-alive agent, at most `--connections` sockets).
 *
 *   npx tsx bench/experiments/keep-alive-race.ts [--seconds 30] [--rate 100] [--connections 16]
 *
 * Runs four servers in turn: keepAliveTimeout 5 s (Node's default) and 65 s, each with and without stalls, and
 * prints the failed requests of each and their errors.
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pacedLoad } from '../lib/paced.js';

const argument = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
};

if (process.env.KEEP_ALIVE_RACE_SERVER) {
  const { keepAlive, stall, period } = JSON.parse(process.env.KEEP_ALIVE_RACE_SERVER) as { keepAlive: number; stall: number; period: number };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => { res.setHeader('content-type', 'application/json'); res.end('{"ok":true}'); });
  });
  server.keepAliveTimeout = keepAlive;
  server.headersTimeout = keepAlive + 1000;
  if (stall > 0) {
    // In a setImmediate callback, as onnxruntime-node runs session creation and inference; spaced at random
    // (uniform in [period / 2, period * 3 / 2]) so that stalls meet sockets at every idle age.
    const next = () => setTimeout(() => setImmediate(() => {
      const until = performance.now() + stall;
      while (performance.now() < until);
      next();
    }), period / 2 + Math.random() * period);
    next();
  }
  server.listen(0, '127.0.0.1', () => process.send!((server.address() as AddressInfo).port));
} else {
  const seconds = argument('seconds', 30);
  const rate = argument('rate', 100);
  const connections = argument('connections', 16);
  const stall = argument('stall', 1000);
  const period = argument('period', 3000);
  console.log(`${rate} requests/s, at most ${connections} connections, ${seconds} s per case; stalls of ${stall} ms every ${period} ms`);
  for (const keepAlive of [5000, 65_000]) {
    for (const stalls of [false, true]) {
      const child = fork(new URL(import.meta.url).pathname, [], {
        env: { ...process.env, KEEP_ALIVE_RACE_SERVER: JSON.stringify({ keepAlive, stall: stalls ? stall : 0, period }) },
      });
      const [port] = await once(child, 'message') as [number];
      const run = pacedLoad({
        url: `http://127.0.0.1:${port}/`, bodies: ['{}'], rate, maxInFlight: connections, maxSeconds: seconds,
        inspect: (body) => (body.includes('ok') ? 'ok' : null),
      });
      const samples = await run.done;
      child.kill();
      const failed = samples.filter((sample) => !sample.ok);
      const kinds: Record<string, number> = {};
      for (const sample of failed) kinds[sample.error ?? `HTTP ${sample.status}`] = (kinds[sample.error ?? `HTTP ${sample.status}`] ?? 0) + 1;
      const latencies = samples.filter((s) => s.ok).map((s) => s.end - s.due).sort((a, b) => a - b);
      console.log(`keepAliveTimeout ${keepAlive / 1000} s, ${stalls ? 'stalls' : 'no stalls'}: ${samples.length} requests, `
        + `${failed.length} failed ${JSON.stringify(kinds)}, max ${latencies.at(-1)?.toFixed(0)} ms`);
    }
  }
}
