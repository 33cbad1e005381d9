/**
 * Load generation: autocannon for HTTP (its own event loop in this process, the server in another), and a
 * closed loop of async workers for in-process calls. Every latency is kept, so p50/p99 are exact, not bucketed.
 */
import autocannon from 'autocannon';

export interface LoadStats {
  requests: number;
  failed: number;
  p50_ms: number;
  p99_ms: number;
  mean_ms: number;
  max_ms: number;
  rps: number;
  seconds: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

export function round(value: number, digits = 3): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

export function summarize(latencies: readonly number[], failed: number, seconds: number): LoadStats {
  const sorted = [...latencies].sort((a, b) => a - b);
  const sum = sorted.reduce((total, value) => total + value, 0);
  return {
    requests: sorted.length + failed,
    failed,
    p50_ms: round(percentile(sorted, 50)),
    p99_ms: round(percentile(sorted, 99)),
    mean_ms: round(sorted.length ? sum / sorted.length : NaN),
    max_ms: round(sorted.at(-1) ?? NaN),
    rps: round(sorted.length / seconds, 1),
    seconds: round(seconds, 2),
  };
}

/** One response as the load generator saw it. */
export interface Sample {
  /** When the response arrived (performance.now()). */
  at: number;
  latencyMs: number;
  ok: boolean;
}

export interface HttpLoadOptions {
  url: string;
  /** Request bodies (JSON), sent in turn on every connection. */
  bodies: readonly string[];
  concurrency: number;
  /** Measured duration; the run stops by itself then (or earlier through `stop`). */
  durationSeconds: number;
  /** Unmeasured load before the measurement, same settings. */
  warmupSeconds?: number;
  /** Largest number of measured requests; the run stops when it is reached. */
  maxRequests?: number;
  /** Requests per second over all connections (0 or absent: as fast as responses come back). */
  rate?: number;
  headers?: Record<string, string>;
  /** Whether a 2xx response body is a success (e.g. no GraphQL errors); all non-2xx are failures. */
  check?: (body: string) => boolean;
  /** Called with each response. */
  onSample?: (sample: Sample) => void;
  timeoutSeconds?: number;
  /** Called when the measured run starts (after the warm-up). */
  onMeasure?: () => void;
}

export interface HttpLoadRun {
  /** Resolves with the statistics when the run ends. */
  done: Promise<LoadStats & { non2xx: number; errors: number; timeouts: number; mismatches: number; bytes_per_response: number }>;
  /** Ends the run early. */
  stop(): void;
}

function runOnce(options: HttpLoadOptions, seconds: number, measure: boolean): HttpLoadRun {
  const latencies: number[] = [];
  let non2xx = 0;
  let errors = 0;
  let timeouts = 0;
  let mismatches = 0;
  let bytes = 0;
  let responses = 0;
  const check = options.check;
  const headers = { 'content-type': 'application/json', ...options.headers };
  // autocannon calls a request's onResponse, then (synchronously, same client) emits 'response': the flag carries
  // the verdict on the body from one to the other.
  let bodyFailed = false;
  const requests = options.bodies.map((body) => ({
    method: 'POST' as const,
    body,
    headers,
    ...(check && {
      onResponse: (status: number, responseBody: string) => {
        bodyFailed = status >= 200 && status < 300 && !check(responseBody);
      },
    }),
  }));
  const started = performance.now();
  let stopped = false;
  let finish!: (error: Error | null, result: autocannon.Result) => void;
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    finish = (error, result) => (error ? reject(error) : resolve(result));
  });
  const instance = autocannon({
    url: options.url,
    connections: options.concurrency,
    pipelining: 1,
    duration: seconds,
    timeout: options.timeoutSeconds ?? 30,
    ...(options.rate && { overallRate: options.rate }),
    requests,
  }, (error, result) => finish(error, result));
  let ended = performance.now();
  instance.on('response', (_client: unknown, statusCode: number, resBytes: number, responseTime: number) => {
    if (stopped) return;
    const ok = statusCode >= 200 && statusCode < 300 && !bodyFailed;
    if (ok) latencies.push(responseTime);
    else if (bodyFailed) mismatches++;
    else non2xx++;
    bodyFailed = false;
    bytes += resBytes;
    responses++;
    ended = performance.now();
    options.onSample?.({ at: ended, latencyMs: responseTime, ok });
    if (measure && options.maxRequests && responses >= options.maxRequests) stop();
  });
  instance.on('reqError', () => { if (!stopped) errors++; });
  // autocannon counts a timeout as a reqError too; keep the count for the report.
  const stop = () => {
    if (stopped) return;
    stopped = true;
    ended = performance.now();
    instance.stop();
  };
  const done = finished.then((result) => {
    if (!stopped) ended = performance.now();
    timeouts = result.timeouts;
    const failed = non2xx + errors + mismatches;
    const stats = summarize(latencies, failed, (ended - started) / 1000);
    return { ...stats, non2xx, errors, timeouts, mismatches, bytes_per_response: responses ? Math.round(bytes / responses) : 0 };
  });
  return { done, stop };
}

/** Runs a warm-up (if asked) then the measured load. */
export function httpLoad(options: HttpLoadOptions): HttpLoadRun {
  let current: HttpLoadRun | undefined;
  let cancelled = false;
  const done = (async () => {
    if (options.warmupSeconds) {
      current = runOnce({ ...options, onSample: undefined }, options.warmupSeconds, false);
      await current.done;
    }
    if (cancelled) throw new Error('load run stopped during warm-up');
    options.onMeasure?.();
    current = runOnce(options, options.durationSeconds, true);
    return current.done;
  })();
  return { done, stop: () => { cancelled = true; current?.stop(); } };
}

/**
 * A closed loop of `concurrency` async workers calling `operation` (with a running request number) for
 * `durationSeconds` after `warmupSeconds`, or until `maxRequests`.
 */
export async function closedLoop(options: {
  concurrency: number;
  durationSeconds: number;
  warmupSeconds?: number;
  maxRequests?: number;
  operation: (n: number) => Promise<unknown>;
  /** Called when the measured run starts (after the warm-up). */
  onMeasure?: () => void;
}): Promise<LoadStats> {
  let n = 0;
  const phase = async (seconds: number, latencies: number[] | null, limit: number) => {
    const deadline = performance.now() + seconds * 1000;
    let failed = 0;
    let count = 0;
    const worker = async () => {
      while (performance.now() < deadline && count < limit) {
        count++;
        const started = performance.now();
        try {
          await options.operation(n++);
          latencies?.push(performance.now() - started);
        } catch {
          failed++;
        }
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: options.concurrency }, worker));
    return { failed, seconds: (performance.now() - started) / 1000 };
  };
  if (options.warmupSeconds) await phase(options.warmupSeconds, null, Infinity);
  options.onMeasure?.();
  const latencies: number[] = [];
  const { failed, seconds } = await phase(options.durationSeconds, latencies, options.maxRequests ?? Infinity);
  return summarize(latencies, failed, seconds);
}
