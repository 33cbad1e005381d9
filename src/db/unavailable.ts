/**
 * Whether an error means that the database could not be reached or the connection to it broke, as opposed to a
 * query it refused: the API answers the former with DATABASE_UNAVAILABLE (http-server.ts), which a client may retry
 * elsewhere or later, instead of INTERNAL_SERVER_ERROR.
 */

/** Prisma's codes for an unreachable server, a closed connection, a timeout and an exhausted pool. */
const PRISMA_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);
/** What @prisma/adapter-pg reports (DriverAdapterError.cause.kind) for the same. */
const ADAPTER_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections', 'DatabaseDoesNotExist']);
/** node-postgres and the socket under it: refused, reset, timed out; PostgreSQL shutting down (SQLSTATE 57P0x, 08xxx). */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', '57P01', '57P02', '57P03']);

export function isDatabaseUnavailable(error: unknown, depth = 0): boolean {
  if (!error || typeof error !== 'object' || depth > 5) return false;
  const candidate = error as { code?: unknown; message?: unknown; cause?: unknown; meta?: { driverAdapterError?: { cause?: { kind?: unknown } } } };
  const code = typeof candidate.code === 'string' ? candidate.code : undefined;
  if (code && (PRISMA_CODES.has(code) || SOCKET_CODES.has(code) || code.startsWith('08'))) return true;
  const kind = candidate.meta?.driverAdapterError?.cause?.kind;
  if (typeof kind === 'string' && ADAPTER_KINDS.has(kind)) return true;
  if (typeof candidate.message === 'string' && /Connection terminated|connection is closed|Client was closed/i.test(candidate.message)) return true;
  return isDatabaseUnavailable(candidate.cause, depth + 1);
}
