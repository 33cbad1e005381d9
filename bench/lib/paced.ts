/**
 * An open-loop load at a steady rate, for the hot-swap test: request i is due at start + i / rate whatever happened
 * to the ones before (no coordinated omission: its latency counts from when it was due, so time spent waiting for
 * a free connection is counted too). At most `maxInFlight` connections (keep-alive). autocannon's own rate limit
 * sends each connection's quota for a second back to back at the start of that second, which measures bursts
 * rather than a steady flow.
 */
import http from 'node:http';
import { postJson } from './post-json.js';

export interface PacedSample {
  /** When the request was due and when its response ended (performance.now()). */
  due: number;
  /** When the request got a connection and was written (later than `due` when all connections were busy). */
  sent: number;
  end: number;
  ok: boolean;
  status: number;
  /** Set by `inspect` for successful bodies (e.g. the model version that answered). */
  label?: string;
  error?: string;
}

export interface PacedRun {
  done: Promise<PacedSample[]>;
  stop(): void;
  /** Responses so far. */
  count(): number;
}

export function pacedLoad(options: {
  url: string;
  bodies: readonly string[];
  rate: number;
  maxInFlight: number;
  /** Hard limit: the run stops by itself after this. */
  maxSeconds: number;
  timeoutMs?: number;
  headers?: Record<string, string>;
  /** null: the body is a failure; otherwise a label kept with the sample. */
  inspect: (body: string) => string | null;
}): PacedRun {
  const url = new URL(options.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.maxInFlight });
  const samples: PacedSample[] = [];

  // Requests due while every connection is busy wait here, a callback each, not as requests in the agent's queue: a
  // request object and its buffers for each of the ~180,000 due while a switch at 1,600/s ran behind took the load
  // generator past V8's 4 GB heap limit (2026-12-03). Latency still counts from when a request was due.
  const waiting: (() => void)[] = [];
  let inFlight = 0;
  const connection = () => new Promise<void>((resolve) => {
    if (inFlight < options.maxInFlight) {
      inFlight += 1;
      resolve();
    } else {
      waiting.push(resolve);
    }
  });
  const release = () => {
    const next = waiting.shift();
    if (next) next(); // the freed connection passes to the request that has waited longest
    else inFlight -= 1;
  };
  const send = async (body: string, due: number) => {
    await connection();
    try {
      await sendNow(body, due);
    } finally {
      release();
    }
  };
  const sendNow = (body: string, due: number) => new Promise<void>((resolve) => {
    let sent = NaN;
    const finish = (sample: Omit<PacedSample, 'due' | 'sent' | 'end'>) => {
      const end = performance.now();
      samples.push({ due, sent: Number.isNaN(sent) ? end : sent, end, ...sample });
      resolve();
    };
    const request = postJson({
      agent, origin: url, path: url.pathname, body, headers: options.headers,
      answered: (status, text) => {
        const label = status >= 200 && status < 300 ? options.inspect(text) : null;
        finish(label === null ? { ok: false, status, error: text.slice(0, 300) } : { ok: true, status, label });
      },
      responseFailed: (error) => finish({ ok: false, status: 0, error: error.message }),
    });
    request.on('socket', () => { sent = performance.now(); });
    request.setTimeout(options.timeoutMs ?? 60_000, () => request.destroy(new Error('timed out')));
    request.on('error', (error) => finish({ ok: false, status: 0, error: error.message }));
    request.end(body);
  });

  const schedule = paceRequests(options, send);
  const done = schedule.done.then(() => {
    agent.destroy();
    return samples.sort((a, b) => a.due - b.due);
  });

  return { done, stop: schedule.stop, count: () => samples.length };
}

/**
 * The schedule of an open loop: request i (body i, cycling) is due at start + i / rate, and `send(body, due)` is
 * called then, whatever happened to the ones before, until stop() or `maxSeconds`. `done` resolves once every send
 * has.
 */
export function paceRequests(
  options: { bodies: readonly string[]; rate: number; maxSeconds: number },
  send: (body: string, due: number) => Promise<void>,
): { done: Promise<void>; stop(): void } {
  const pending = new Set<Promise<void>>();
  let stopped = false;
  let wake: (() => void) | undefined;
  const done = (async () => {
    const start = performance.now();
    const interval = 1000 / options.rate;
    for (let i = 0; !stopped; i++) {
      const due = start + i * interval;
      if (due - start > options.maxSeconds * 1000) break;
      // Timers may fire up to a millisecond early: wait again until the request is really due.
      while (!stopped && performance.now() < due) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(1, Math.ceil(due - performance.now())));
          wake = () => { clearTimeout(timer); resolve(); };
        });
        wake = undefined;
      }
      if (stopped) break;
      const sending = send(options.bodies[i % options.bodies.length], due);
      pending.add(sending);
      void sending.then(() => pending.delete(sending));
    }
    await Promise.all(pending);
  })();
  return { done, stop: () => { stopped = true; wake?.(); } };
}
