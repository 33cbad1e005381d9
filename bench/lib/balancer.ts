/**
 * A load balancer in the benchmark's process, doing what deploy/haproxy.cfg has HAProxy do in front of the
 * replicas, so that requests reach replicas the way they would behind it:
 *
 *   - active health checks: GET /readyz on every replica every second (`inter 1s`, `timeout check 2s`), only 200
 *     passes; two failed checks in a row take a replica out of rotation, two passed ones put it back (`fall 2
 *     rise 2`); a replica starts out of rotation (`init-state down`);
 *   - `balance leastconn`: each request goes to the replica in rotation with the fewest requests in flight (ties in
 *     turn);
 *   - retries: a request whose connection could not be opened (refused, or not open within 2 s: `timeout connect
 *     2s`) was never sent, and is passed to another replica, up to 3 more times (`retries 3`, `option redispatch 1`,
 *     `retry-on conn-failure`); a POST that was written to a connection and then failed (reset, closed without an
 *     answer, timed out) is not retried and fails, as `http-request disable-l7-retry unless METH_GET` has it;
 *   - no replica in rotation: the request fails at once (HAProxy answers 503).
 *
 * Keep-alive connections to each replica are kept and reused (`http-reuse safe`), one node:http Agent per replica.
 */
import http from 'node:http';
import { paceRequests } from './paced.js';
import { postJson } from './post-json.js';

export interface BalancerOptions {
  /** Between two health checks of a replica (HAProxy `inter`). */
  checkIntervalMs?: number;
  /** A check not answered within this fails (`timeout check`). */
  checkTimeoutMs?: number;
  /** Failed checks in a row that take a replica out (`fall`). */
  fall?: number;
  /** Passed checks in a row that put it back (`rise`). */
  rise?: number;
  /** More attempts on other replicas for a request that could not be sent (`retries`). */
  retries?: number;
  /** A connection not open within this counts as refused (`timeout connect`). */
  connectTimeoutMs?: number;
  /** A request with no complete answer within this fails (`timeout server`; the benchmarks use 60 s). */
  responseTimeoutMs?: number;
}

/** A change of a replica's state as the health checks saw it. */
export interface Transition {
  /** performance.now() */
  at: number;
  replica: string;
  up: boolean;
}

/** One request as the balancer handled it. */
export interface BalancedResult {
  ok: boolean;
  status: number;
  /** The response body (2xx), or why it failed. */
  body?: string;
  error?: string;
  /** The replica that answered or failed it (undefined when none was in rotation). */
  replica?: string;
  /** Replicas tried: 1 when the first one took it. */
  attempts: number;
  /** When it was written to a connection (performance.now()); NaN when it never was. */
  sent: number;
  /** The failed attempt reused an idle keep-alive connection. */
  reused?: boolean;
}

interface Member {
  name: string;
  origin: URL;
  agent: http.Agent;
  up: boolean;
  /** Consecutive passed (> 0) or failed (< 0) checks. */
  streak: number;
  inFlight: number;
  checking: boolean;
  timer?: NodeJS.Timeout;
}

type Attempt = BalancedResult & { sentAtAll: boolean };

export class Balancer {
  private readonly members = new Map<string, Member>();
  readonly transitions: Transition[] = [];
  private readonly options: Required<BalancerOptions>;
  private turn = 0;
  private stopped = false;

  constructor(options: BalancerOptions = {}) {
    this.options = {
      checkIntervalMs: 1000, checkTimeoutMs: 2000, fall: 2, rise: 2, retries: 3, connectTimeoutMs: 2000,
      responseTimeoutMs: 60_000, ...options,
    };
  }

  /** Adds a replica, out of rotation until it passes `rise` checks (or in at once with `up`). */
  add(name: string, origin: string, options: { up?: boolean } = {}): void {
    if (this.members.has(name)) throw new Error(`replica ${name} is already balanced`);
    const member: Member = {
      name, origin: new URL(origin), agent: new http.Agent({ keepAlive: true }), up: options.up ?? false,
      streak: 0, inFlight: 0, checking: false,
    };
    this.members.set(name, member);
    if (member.up) this.transitions.push({ at: performance.now(), replica: name, up: true });
    const check = () => {
      if (this.stopped || this.members.get(name) !== member) return;
      void this.check(member).finally(() => {
        if (!this.stopped && this.members.get(name) === member) member.timer = setTimeout(check, this.options.checkIntervalMs);
      });
    };
    check();
  }

  /** Removes a replica from the balancer (requests in flight to it finish). */
  remove(name: string): void {
    const member = this.members.get(name);
    if (!member) return;
    clearTimeout(member.timer);
    this.members.delete(name);
    member.agent.destroy();
  }

  isUp(name: string): boolean {
    return this.members.get(name)?.up ?? false;
  }

  /** Replicas in rotation now. */
  upReplicas(): string[] {
    return [...this.members.values()].filter((member) => member.up).map((member) => member.name);
  }

  /** Resolves when the replica's state is `up` (checked every 50 ms), or rejects after `timeoutMs`. */
  async waitFor(name: string, up: boolean, timeoutMs = 60_000): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    while (this.isUp(name) !== up) {
      if (performance.now() > deadline) throw new Error(`replica ${name} not ${up ? 'in' : 'out of'} rotation after ${timeoutMs / 1000} s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return performance.now();
  }

  stop(): void {
    this.stopped = true;
    for (const member of this.members.values()) {
      clearTimeout(member.timer);
      member.agent.destroy();
    }
  }

  /** A health check: GET /readyz on a connection of its own, 200 within the timeout passes. */
  private async check(member: Member): Promise<void> {
    if (member.checking) return;
    member.checking = true;
    const passed = await new Promise<boolean>((resolve) => {
      const request = http.get({ host: member.origin.hostname, port: member.origin.port, path: '/readyz', agent: false }, (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode === 200));
        response.on('error', () => resolve(false));
      });
      request.setTimeout(this.options.checkTimeoutMs, () => request.destroy(new Error('check timed out')));
      request.on('error', () => resolve(false));
    });
    member.checking = false;
    if (this.members.get(member.name) !== member) return;
    member.streak = passed ? Math.max(1, member.streak + 1) : Math.min(-1, member.streak - 1);
    if (!member.up && member.streak >= this.options.rise) this.setUp(member, true);
    else if (member.up && member.streak <= -this.options.fall) this.setUp(member, false);
  }

  private setUp(member: Member, up: boolean): void {
    member.up = up;
    this.transitions.push({ at: performance.now(), replica: member.name, up });
  }

  /** The replica in rotation with the fewest requests in flight, not among `tried` when another is left. */
  private pick(tried: ReadonlySet<string>): Member | undefined {
    const up = [...this.members.values()].filter((member) => member.up);
    const fresh = up.filter((member) => !tried.has(member.name));
    const candidates = fresh.length > 0 ? fresh : up;
    if (candidates.length === 0) return undefined;
    const least = Math.min(...candidates.map((member) => member.inFlight));
    const tied = candidates.filter((member) => member.inFlight === least);
    return tied[this.turn++ % tied.length];
  }

  /** POSTs `body` to `path` on a replica in rotation, retried on another when its connection could not be opened. */
  async post(path: string, body: string, headers: Record<string, string> = {}): Promise<BalancedResult> {
    const tried = new Set<string>();
    for (let attempt = 1; ; attempt++) {
      const member = this.pick(tried);
      if (!member) return { ok: false, status: 503, error: 'no replica in rotation', attempts: attempt - 1, sent: NaN };
      tried.add(member.name);
      member.inFlight++;
      let result: Attempt;
      try {
        result = await this.once(member, path, body, headers);
      } finally {
        member.inFlight--;
      }
      result.attempts = attempt;
      if (result.ok || result.sentAtAll || attempt > this.options.retries) {
        const { sentAtAll: _, ...rest } = result;
        return rest;
      }
    }
  }

  private once(member: Member, path: string, body: string, headers: Record<string, string>): Promise<Attempt> {
    return new Promise<Attempt>((resolve) => {
      let sent = NaN;
      let connected = false;
      let reused = false;
      let settled = false;
      const finish = (result: Omit<Attempt, 'replica' | 'attempts' | 'sent' | 'sentAtAll' | 'reused'>) => {
        if (settled) return;
        settled = true;
        clearTimeout(connectTimer);
        resolve({ ...result, replica: member.name, attempts: 1, sent, sentAtAll: connected, reused });
      };
      const request = postJson({
        agent: member.agent, origin: member.origin, path, body, headers,
        answered: (status, text) => finish(status >= 200 && status < 300 ? { ok: true, status, body: text } : { ok: false, status, error: `HTTP ${status}: ${text.slice(0, 200)}` }),
        responseFailed: (error) => finish({ ok: false, status: 0, error: error.message }),
      });
      // Open within connectTimeoutMs, or the request was never sent.
      const connectTimer = setTimeout(() => {
        if (!connected) request.destroy(new Error('connect timed out'));
      }, this.options.connectTimeoutMs);
      request.on('socket', (socket) => {
        reused = request.reusedSocket;
        const opened = () => {
          connected = true;
          sent = performance.now();
        };
        if (socket.connecting) socket.once('connect', opened);
        else opened();
      });
      request.setTimeout(this.options.responseTimeoutMs, () => request.destroy(new Error('timed out')));
      request.on('error', (error) => finish({ ok: false, status: 0, error: (error as NodeJS.ErrnoException).code ?? error.message }));
      request.end(body);
    });
  }
}

/** One request of a load run through the balancer. */
export interface BalancedSample {
  /** When it was due (open loop) or started (closed loop), written, and answered or failed (performance.now()). */
  due: number;
  sent: number;
  end: number;
  ok: boolean;
  status: number;
  replica?: string;
  attempts: number;
  /** Set by `inspect` for a good body (e.g. the model version that answered). */
  label?: string;
  error?: string;
  reused?: boolean;
}

export interface BalancedRun {
  done: Promise<BalancedSample[]>;
  stop(): void;
  count(): number;
}

function sample(due: number, result: BalancedResult, inspect: (body: string) => string | null): BalancedSample {
  const end = performance.now();
  const label = result.ok ? inspect(result.body ?? '') : null;
  const failed = !result.ok || label === null;
  return {
    due, sent: Number.isNaN(result.sent) ? end : result.sent, end, ok: !failed, status: result.status, replica: result.replica,
    attempts: result.attempts, ...(label !== null && { label }),
    ...(failed && { error: result.error ?? `bad answer: ${(result.body ?? '').slice(0, 200)}` }),
    ...(result.reused !== undefined && failed && { reused: result.reused }),
  };
}

/**
 * Open loop at a steady rate through the balancer (as bench/lib/paced.ts against one server): request i is due at
 * start + i / rate, at most `maxInFlight` at once (the clients' connections to the load balancer; a request waits
 * for a free one), latency counted from when it was due.
 */
export function balancedPacedLoad(options: {
  balancer: Balancer;
  path: string;
  bodies: readonly string[];
  rate: number;
  maxInFlight: number;
  maxSeconds: number;
  headers?: Record<string, string>;
  inspect: (body: string) => string | null;
}): BalancedRun {
  const samples: BalancedSample[] = [];
  let inFlight = 0;
  const waiting: (() => void)[] = [];
  const send = async (body: string, due: number) => {
    if (inFlight >= options.maxInFlight) await new Promise<void>((resolve) => waiting.push(resolve));
    inFlight++;
    try {
      samples.push(sample(due, await options.balancer.post(options.path, body, options.headers), options.inspect));
    } finally {
      inFlight--;
      waiting.shift()?.();
    }
  };
  const schedule = paceRequests(options, send);
  const done = schedule.done.then(() => samples.sort((a, b) => a.due - b.due));
  return { done, stop: schedule.stop, count: () => samples.length };
}

/** Closed loop through the balancer: `concurrency` clients, each sending its next request when the last is answered. */
export async function balancedClosedLoop(options: {
  balancer: Balancer;
  path: string;
  bodies: readonly string[];
  concurrency: number;
  seconds: number;
  headers?: Record<string, string>;
  inspect: (body: string) => string | null;
}): Promise<{ samples: BalancedSample[]; seconds: number }> {
  const samples: BalancedSample[] = [];
  let n = 0;
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  const client = async () => {
    while (performance.now() < deadline) {
      const body = options.bodies[n++ % options.bodies.length];
      const due = performance.now();
      samples.push(sample(due, await options.balancer.post(options.path, body, options.headers), options.inspect));
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, client));
  return { samples: samples.sort((a, b) => a.due - b.due), seconds: (performance.now() - started) / 1000 };
}
