/**
 * Structured JSON logs (pino) to stderr, so stdout stays free for command output, or to a file (LLM2REC_LOG_FILE).
 *
 * Written asynchronously: a line goes out with the next write to stderr instead of blocking the request that logged
 * it (synchronous writes were 3-4% of the server's main thread under load, docs/BENCHMARKS.md). pino flushes what is
 * pending when the process exits; only a hard kill can lose the last lines.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

/** A logger writing to stderr, or appending to `file` (its directory created) when one is given. */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info', file?: string): Logger {
  const destination = file === undefined
    ? pino.destination({ dest: 2, sync: false })
    : pino.destination({ dest: file, sync: false, mkdir: true, append: true });
  return pino({ level, base: { service: 'llm2rec' } }, destination);
}
