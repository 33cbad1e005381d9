/**
 * Requests refused before they reach Apollo (a body that is not JSON, or too large) and unknown paths: answered
 * GraphQL-style, `{ errors: [{ message, extensions: { code } }] }` as JSON, never Express's HTML page with a stack.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from '../logger.js';

/** body-parser's error types (https://github.com/expressjs/body-parser#errors) and what the client is told. */
const BODY_ERRORS: Record<string, { code: string; message: (limit: string) => string }> = {
  'entity.parse.failed': { code: 'BAD_REQUEST', message: () => 'the request body is not valid JSON' },
  'entity.too.large': { code: 'PAYLOAD_TOO_LARGE', message: (limit) => `the request body is larger than ${limit}` },
  'entity.verify.failed': { code: 'BAD_REQUEST', message: () => 'the request body was refused' },
  'encoding.unsupported': { code: 'BAD_REQUEST', message: () => 'unsupported content encoding' },
  'charset.unsupported': { code: 'BAD_REQUEST', message: () => 'unsupported charset' },
  'request.aborted': { code: 'BAD_REQUEST', message: () => 'the request was aborted' },
  'request.size.invalid': { code: 'BAD_REQUEST', message: () => 'the request body does not match its content-length' },
};

export function errorBody(message: string, code: string, requestId?: string) {
  return { errors: [{ message, extensions: { code, ...(requestId && { requestId }) } }] };
}

/** A caller's request id (x-request-id) when it is a plain token, else a new one. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Gives a request its id: kept on the request (`requestIdOf`), sent back in the x-request-id header, logged with
 * every line about the request and put in its error responses (extensions.requestId).
 */
export function assignRequestId(req: IncomingMessage, res: ServerResponse): string {
  const given = req.headers['x-request-id'];
  const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
  (req as IncomingMessage & { requestId?: string }).requestId = id;
  res.setHeader('x-request-id', id);
  return id;
}

export function requestIdOf(req: IncomingMessage): string | undefined {
  return (req as IncomingMessage & { requestId?: string }).requestId;
}

/** How a failed request is answered: a client error (4xx) with a fixed message, or a 500 whose details are only logged. */
export interface Refusal {
  status: number;
  code: string;
  message: string;
}

/**
 * Client errors (4xx, mostly from the JSON body parser) keep their status with a fixed message (the parser's own
 * message may quote the body); anything else is a 500. Logs the refusal (the error itself for a 500).
 */
export function refuse(error: any, request: { method?: string; path: string; requestId?: string }, logger: Logger, bodyLimit: string): Refusal {
  const status = typeof error?.status === 'number' ? error.status : typeof error?.statusCode === 'number' ? error.statusCode : 500;
  if (status >= 400 && status < 500) {
    const known = BODY_ERRORS[String(error?.type)];
    logger.info({ requestId: request.requestId, method: request.method, path: request.path, status, reason: error?.type ?? error?.message }, 'request refused');
    return { status, code: known?.code ?? 'BAD_REQUEST', message: known?.message(bodyLimit) ?? 'bad request' };
  }
  logger.error({ requestId: request.requestId, err: error, method: request.method, path: request.path }, 'unexpected error handling a request');
  return { status: status >= 500 && status < 600 ? status : 500, code: 'INTERNAL_SERVER_ERROR', message: 'Internal server error' };
}

/** The last Express middleware: answers errors as `refuse` says, GraphQL-style. */
export function jsonErrorHandler(logger: Logger, options: { bodyLimit: string }): ErrorRequestHandler {
  return (error, req, res, next) => {
    if (res.headersSent) return next(error);
    const requestId = requestIdOf(req);
    const { status, code, message } = refuse(error, { method: req.method, path: req.baseUrl + req.path, requestId }, logger, options.bodyLimit);
    res.status(status).json(errorBody(message, code, requestId));
  };
}

/** Unknown paths. */
export const notFound: RequestHandler = (req, res) => {
  res.status(404).json(errorBody(`no such path: ${req.method} ${req.path}`, 'NOT_FOUND', requestIdOf(req)));
};
