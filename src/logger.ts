/** Structured JSON logs (pino) to stderr, so stdout stays free for command output. */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { service: 'llm2rec' } }, pino.destination(2));
}
