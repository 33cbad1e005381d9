/**
 * Errors the platform reports to its callers. Each carries a stable code, which the GraphQL API passes on as
 * `extensions.code`; the services throw them before they change anything, so a rejected request stores nothing.
 */
export type ErrorCode =
  | 'BAD_USER_INPUT'
  | 'UNKNOWN_ITEM'
  | 'ITEM_NOT_INDEXED'
  | 'UNKNOWN_USER'
  | 'UNKNOWN_DOMAIN'
  | 'EMPTY_HISTORY'
  | 'HISTORY_TOO_LONG'
  | 'LIMIT_EXCEEDED'
  | 'BATCH_TOO_LARGE'
  | 'UNAUTHENTICATED'
  | 'UNKNOWN_MODEL_VERSION'
  | 'INVALID_BUNDLE'
  | 'VECTOR_INDEX_UNAVAILABLE'
  | 'DATABASE_UNAVAILABLE'
  | 'ACTIVATION_IN_PROGRESS'
  | 'QUERY_TOO_DEEP'
  | 'QUERY_TOO_COMPLEX'
  | 'INVALID_CHARACTERS'
  | 'VALUE_TOO_LONG'
  | 'VALUE_OUT_OF_RANGE'
  | 'NESTING_TOO_DEEP'
  | 'TOO_MANY_ALIASES'
  | 'TOO_MANY_ROOT_FIELDS';

export class PlatformError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
    /** The failure of a store behind this error (VECTOR_INDEX_UNAVAILABLE, DATABASE_UNAVAILABLE): logged, not sent. */
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
    this.name = 'PlatformError';
  }
}

/** Lists the first few values of a list in a message. */
export function listSome(values: readonly string[], shown = 5): string {
  const head = values.slice(0, shown).map((value) => JSON.stringify(value)).join(', ');
  return values.length > shown ? `${head} and ${values.length - shown} more` : head;
}
