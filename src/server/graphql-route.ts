/**
 * POST and GET /graphql on plain node:http: the request body parsed as JSON (body-parser, with the size limit),
 * handed to Apollo Server, its answer written back. Express stays for the other paths; on the path every request
 * takes it cost about a twentieth of the server's time per recommendation (router, response helpers, an ETag hash
 * of every body), measured with bench/experiments/profile-server.ts (docs/BENCHMARKS.md).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeaderMap, type ApolloServer } from '@apollo/server';
import bodyParser from 'body-parser';
import type { Logger } from '../logger.js';
import { assignRequestId, errorBody, refuse, requestIdOf } from './http-errors.js';

export const GRAPHQL_PATH = '/graphql';

/** Whether a request is for the GraphQL endpoint (with or without a query string). */
export function isGraphQLRequest(req: IncomingMessage): boolean {
  const url = req.url ?? '';
  return url === GRAPHQL_PATH || url.startsWith(`${GRAPHQL_PATH}?`);
}

/**
 * How deeply the brackets ({, [, () of a GraphQL document nest, strings and comments skipped. graphql-js parses
 * recursively, so a document nested some thousands deep overflows the stack; it is measured before parsing.
 */
export function documentNesting(source: string): number {
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < source.length; i++) {
    const char = source[i];
    if (char === '#') {
      while (i < source.length && source[i] !== '\n' && source[i] !== '\r') i++;
    } else if (char === '"') {
      if (source.startsWith('"""', i)) {
        const end = source.indexOf('"""', i + 3);
        i = end < 0 ? source.length : end + 2;
      } else {
        for (i++; i < source.length && source[i] !== '"' && source[i] !== '\n'; i++) if (source[i] === '\\') i++;
      }
    } else if (char === '{' || char === '[' || char === '(') {
      deepest = Math.max(deepest, ++depth);
    } else if (char === '}' || char === ']' || char === ')') {
      depth--;
    }
  }
  return deepest;
}

export interface GraphQLRouteOptions<TContext> {
  context: (req: IncomingMessage) => TContext;
  bodyLimit: string;
  /** Deepest bracket nesting a document may have (documentNesting); deeper is refused before parsing. */
  maxDocumentNesting: number;
  logger: Logger;
  /** Called with the code of a request refused before it reached Apollo. */
  onRefused?: (code: string) => void;
}

function send(res: ServerResponse, status: number, headers: Iterable<[string, string]>, body: string): void {
  res.statusCode = status;
  for (const [name, value] of headers) res.setHeader(name, value);
  // Answers are per user and per model version: no cache may keep them.
  res.setHeader('cache-control', 'no-store');
  res.end(body);
}

export function graphqlRoute<TContext extends object>(apollo: ApolloServer<TContext>, options: GraphQLRouteOptions<TContext>) {
  const parseJson = bodyParser.json({ limit: options.bodyLimit });

  const refused = (req: IncomingMessage, res: ServerResponse, error: unknown) => {
    const requestId = requestIdOf(req);
    const { status, code, message } = refuse(error, { method: req.method, path: GRAPHQL_PATH, requestId }, options.logger, options.bodyLimit);
    options.onRefused?.(code);
    send(res, status, [['content-type', 'application/json; charset=utf-8']], JSON.stringify(errorBody(message, code, requestId)));
  };

  const execute = async (req: IncomingMessage & { body?: unknown }, res: ServerResponse) => {
    const url = req.url ?? '';
    const queryAt = url.indexOf('?');
    const source = (req.body as { query?: unknown } | undefined)?.query
      ?? (queryAt < 0 ? undefined : new URLSearchParams(url.slice(queryAt)).get('query'));
    if (typeof source === 'string' && documentNesting(source) > options.maxDocumentNesting) {
      options.onRefused?.('NESTING_TOO_DEEP');
      const message = `the document's brackets nest deeper than the limit of ${options.maxDocumentNesting}`;
      options.logger.info({ requestId: requestIdOf(req), path: GRAPHQL_PATH, status: 400, reason: 'NESTING_TOO_DEEP' }, 'request refused');
      send(res, 400, [['content-type', 'application/json; charset=utf-8']], JSON.stringify(errorBody(message, 'NESTING_TOO_DEEP', requestIdOf(req))));
      return;
    }
    const headers = new HeaderMap();
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
    }
    const response = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: req.method?.toUpperCase() ?? 'GET', headers, search: queryAt < 0 ? '' : url.slice(queryAt), body: req.body },
      context: async () => options.context(req),
    });
    if (response.body.kind === 'complete') {
      send(res, response.status ?? 200, response.headers, response.body.string);
      return;
    }
    // Incremental delivery (@defer): written as it comes.
    res.statusCode = response.status ?? 200;
    for (const [name, value] of response.headers) res.setHeader(name, value);
    for await (const chunk of response.body.asyncIterator) res.write(chunk);
    res.end();
  };

  return (req: IncomingMessage, res: ServerResponse): void => {
    assignRequestId(req, res);
    parseJson(req as Parameters<typeof parseJson>[0], res as Parameters<typeof parseJson>[1], (error?: unknown) => {
      if (error) return refused(req, res, error);
      execute(req, res).catch((failure: unknown) => {
        if (res.headersSent) res.destroy(failure as Error);
        else refused(req, res, failure);
      });
    });
  };
}
