/**
 * Checks of every argument a GraphQL operation passes, before any resolver uses it: whatever reaches the database,
 * the vector index or the logs has been checked here. Each kind of bad value has its own code:
 *
 * - INVALID_CHARACTERS: control characters (NUL above all, which PostgreSQL cannot store in text or jsonb) or an
 *   unpaired UTF-16 surrogate (not valid UTF-8, so not storable as given). Ids and domains allow no control character
 *   at all; titles and attribute texts allow tab, line feed and carriage return.
 * - VALUE_TOO_LONG: an id, domain, title, cursor or attributes object longer than its limit (settings).
 * - VALUE_OUT_OF_RANGE: a timestamp that is negative or does not fit a 64-bit integer.
 * - NESTING_TOO_DEEP: attributes nested deeper than the limit (objects and arrays).
 *
 * Which limit applies is decided by the argument's name (`title`, `domain`, `attributes`, `timestamp`, ...), the same
 * for every field; any other text argument is checked like an id.
 */
import { PlatformError } from '../errors.js';

export interface InputLimits {
  maxIdLength: number;
  maxDomainLength: number;
  maxTitleLength: number;
  maxAttributesSize: number;
  maxAttributesDepth: number;
}

/** No control character at all: for ids, domains, versions, cursors. */
const STRICT_CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** Control characters other than tab, line feed and carriage return: for titles and attribute texts. */
const TEXT_CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** The largest value of a PostgreSQL bigint (the interactions' timestamp column). */
const MAX_BIGINT = 9223372036854775807n;

type Kind = 'id' | 'domain' | 'title' | 'attributes' | 'timestamp' | 'cursor' | 'other';

const KIND_OF_ARGUMENT: Record<string, Kind> = {
  title: 'title',
  domain: 'domain',
  domains: 'domain',
  attributes: 'attributes',
  timestamp: 'timestamp',
  after: 'cursor',
};

function describe(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
}

/** Checks one text value: characters, then length. */
export function checkText(value: string, where: string, maxLength: number, strict = true): void {
  const control = (strict ? STRICT_CONTROL : TEXT_CONTROL).exec(value);
  if (control) {
    const char = `U+${control[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
    throw new PlatformError('INVALID_CHARACTERS', `${where} contains the control character ${char}`, { argument: where });
  }
  if (LONE_SURROGATE.test(value)) {
    throw new PlatformError('INVALID_CHARACTERS', `${where} contains an unpaired UTF-16 surrogate`, { argument: where });
  }
  if (value.length > maxLength) {
    throw new PlatformError('VALUE_TOO_LONG', `${where} is ${value.length} characters long, the limit is ${maxLength}`,
      { argument: where, maxLength });
  }
}

/** Parses an interaction timestamp: an integer from 0 to 2^63 - 1. */
export function parseTimestamp(value: string, where = 'timestamp'): bigint {
  if (!/^-?\d+$/.test(value)) throw new PlatformError('BAD_USER_INPUT', `${where} ${describe(value)} is not an integer`, { argument: where });
  const parsed = BigInt(value);
  if (parsed < 0n || parsed > MAX_BIGINT) {
    throw new PlatformError('VALUE_OUT_OF_RANGE', `${where} ${describe(value)} is outside 0 to ${MAX_BIGINT}`, { argument: where });
  }
  return parsed;
}

/** Checks an attributes object: nesting first (without recursion, so any depth is safe), then texts and size. */
export function checkAttributes(value: unknown, where: string, limits: InputLimits): void {
  const stack: { value: unknown; depth: number; path: string }[] = [{ value, depth: 1, path: where }];
  while (stack.length > 0) {
    const current = stack.pop()!;
    if (typeof current.value === 'string') {
      checkText(current.value, current.path, limits.maxAttributesSize, false);
      continue;
    }
    if (current.value === null || typeof current.value !== 'object') continue;
    if (current.depth > limits.maxAttributesDepth) {
      throw new PlatformError('NESTING_TOO_DEEP', `${where} is nested deeper than ${limits.maxAttributesDepth} levels`,
        { argument: where, maxDepth: limits.maxAttributesDepth });
    }
    if (Array.isArray(current.value)) {
      current.value.forEach((element, i) => stack.push({ value: element, depth: current.depth + 1, path: `${current.path}[${i}]` }));
    } else {
      for (const [key, element] of Object.entries(current.value)) {
        checkText(key, `${current.path} key ${describe(key)}`, limits.maxAttributesSize, false);
        stack.push({ value: element, depth: current.depth + 1, path: `${current.path}.${key}` });
      }
    }
  }
  const size = JSON.stringify(value)?.length ?? 0;
  if (size > limits.maxAttributesSize) {
    throw new PlatformError('VALUE_TOO_LONG', `${where} is ${size} characters of JSON, the limit is ${limits.maxAttributesSize}`,
      { argument: where, maxLength: limits.maxAttributesSize });
  }
}

function checkValue(value: unknown, kind: Kind, where: string, limits: InputLimits): void {
  if (value === null || value === undefined) return;
  if (Array.isArray(value)) {
    value.forEach((element, i) => checkValue(element, kind, `${where}[${i}]`, limits));
    return;
  }
  switch (kind) {
    case 'attributes':
      checkAttributes(value, where, limits);
      return;
    case 'timestamp':
      if (typeof value === 'string') parseTimestamp(value, where);
      return;
    default:
      break;
  }
  if (typeof value === 'string') {
    const max = kind === 'title' ? limits.maxTitleLength
      : kind === 'domain' ? limits.maxDomainLength
        : kind === 'cursor' ? Math.ceil((limits.maxIdLength * 4 * 4) / 3) + 4 // base64url of the id's UTF-8
          : limits.maxIdLength;
    checkText(value, where, max, kind !== 'title');
    return;
  }
  if (typeof value === 'object') checkArguments(value as Record<string, unknown>, limits, where);
}

/** Checks every argument of a field (input objects and lists included); throws the first problem found. */
export function checkArguments(args: Record<string, unknown>, limits: InputLimits, prefix = ''): void {
  for (const [name, value] of Object.entries(args)) {
    checkValue(value, KIND_OF_ARGUMENT[name] ?? 'other', prefix === '' ? name : `${prefix}.${name}`, limits);
  }
}
