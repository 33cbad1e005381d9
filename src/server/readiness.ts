/**
 * Readiness (`/readyz`): may this server take traffic now? Unlike liveness (`/healthz`), it asks the platform's
 * dependencies: the database answers `SELECT 1` and the vector collection answers a count, each within a time limit,
 * and catalogue writes are not suspended by a failed write that could not be read back yet (catalog.ts).
 */
import type { Platform } from '../platform.js';

/** How long each dependency may take to answer before the server counts as not ready. */
export const READINESS_TIMEOUT_MS = 2000;

export type Readiness =
  | { status: 'ready'; modelVersion: string; items: number }
  | { status: 'unavailable'; reason: string };

async function within<T>(ms: number, what: string, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Checks the platform. `open` is false once the server has begun shutting down. Failures are logged with their
 * details; the answer only names the dependency, since /readyz needs no credentials.
 */
export async function checkReadiness(platform: Platform, open: boolean, timeoutMs = READINESS_TIMEOUT_MS): Promise<Readiness> {
  if (!open) return { status: 'unavailable', reason: 'shutting down' };
  // Writes: a failed catalogue write whose rows could not be read back yet suspends catalogue writes.
  const suspended = platform.catalog.unavailable;
  if (suspended) {
    platform.logger.warn({ err: platform.catalog.settleError }, 'readiness: catalogue writes are suspended');
    return { status: 'unavailable', reason: suspended };
  }
  try {
    await within(timeoutMs, 'the database', () => platform.db.prisma.$queryRaw`SELECT 1`);
  } catch (error) {
    platform.logger.warn({ err: error }, 'readiness: the database does not answer');
    return { status: 'unavailable', reason: 'the database does not answer' };
  }
  let items: number;
  try {
    items = await within(timeoutMs, 'the vector index', () => platform.collection.count());
  } catch (error) {
    platform.logger.warn({ err: error }, 'readiness: the vector index does not answer');
    return { status: 'unavailable', reason: 'the vector index does not answer' };
  }
  return { status: 'ready', modelVersion: platform.model.version, items };
}
