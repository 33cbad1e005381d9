/**
 * Requests refused before they reach Apollo (a body that is not JSON, or too large) and unknown paths: answered
 * GraphQL-style, `{ errors: [{ message, extensions: { code } }] }` as JSON, never Express's HTML page with a stack.
 */
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

export function errorBody(message: string, code: string) {
  return { errors: [{ message, extensions: { code } }] };
}

/**
 * The last middleware: client errors (4xx, mostly from express.json) keep their status with a fixed message (the
 * parser's own message may quote the body); anything else is a 500 whose details go to the log only.
 */
export function jsonErrorHandler(logger: Logger, options: { bodyLimit: string; onRefused?: (code: string) => void }): ErrorRequestHandler {
  return (error, req, res, next) => {
    if (res.headersSent) return next(error);
    const status = typeof error?.status === 'number' ? error.status : typeof error?.statusCode === 'number' ? error.statusCode : 500;
    let code: string;
    let message: string;
    if (status >= 400 && status < 500) {
      const known = BODY_ERRORS[String(error?.type)];
      code = known?.code ?? 'BAD_REQUEST';
      message = known?.message(options.bodyLimit) ?? 'bad request';
      logger.info({ method: req.method, path: req.baseUrl + req.path, status, reason: error?.type ?? error?.message }, 'request refused');
    } else {
      code = 'INTERNAL_SERVER_ERROR';
      message = 'Internal server error';
      logger.error({ err: error, method: req.method, path: req.baseUrl + req.path }, 'unexpected error handling a request');
    }
    options.onRefused?.(code);
    res.status(status >= 400 && status < 600 ? status : 500).json(errorBody(message, code));
  };
}

/** Unknown paths. */
export const notFound: RequestHandler = (req, res) => {
  res.status(404).json(errorBody(`no such path: ${req.method} ${req.path}`, 'NOT_FOUND'));
};
