/**
 * The HTTP face of the platform: Apollo Server 5 at /graphql on node:http (graphql-route.ts); Express 5 for
 * /healthz (liveness), /readyz (readiness), /metrics (Prometheus) and /export.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import express from 'express';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { PlatformError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Platform } from '../platform.js';
import { createContext, type RequestContext } from '../resolvers/context.js';
import { resolvers } from '../resolvers/index.js';
import { typeDefs } from '../schema/index.js';
import { assignRequestId, jsonErrorHandler, notFound, requestIdOf } from './http-errors.js';
import { createMetrics, observeOperations } from './observability.js';
import { aliasLimitRule, complexityLimit, depthLimitRule, requestError, rootFieldLimitRule } from './query-limits.js';
import { exportRoutes } from './export-routes.js';
import { graphqlRoute, isGraphQLRequest } from './graphql-route.js';
import { checkReadiness } from './readiness.js';
import { pathRedactor } from './redact.js';
import { isDatabaseUnavailable } from '../db/unavailable.js';

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

type ServerContext = RequestContext & { apiKey?: string; requestId?: string };

/**
 * How long an idle keep-alive connection stays open. Node's default (5 s) lost requests under load (issue #16):
 * a client reused an idle connection just as the server's idle timer closed it, and the server then reset the
 * connection with the request unread (ECONNRESET, "socket hang up" at the client). Any pause of the event loop
 * makes that likely: timers run before pending reads, so a connection whose request arrived during a pause is
 * closed as idle. bench/experiments/keep-alive-race.ts reproduces it (100 requests/s over 16 connections, 1 s pauses:
 * 22 of 6,001 requests reset with 5 s, none with 65 s). The server must close idle connections later than clients
 * and proxies do (they commonly give up after 4-60 s), so that the client side closes first.
 */
export const KEEP_ALIVE_TIMEOUT_MS = 65_000;

/** The PlatformError behind an error, however many GraphQLErrors wrap it. */
function platformErrorOf(error: unknown): PlatformError | undefined {
  for (let current = error, hops = 0; current && hops < 5; hops++) {
    if (current instanceof PlatformError) return current;
    current = current instanceof GraphQLError ? current.originalError : undefined;
  }
  return undefined;
}

/** The error a resolver threw, under the GraphQLErrors that wrap it. */
function originalOf(error: unknown): unknown {
  let current = error;
  for (let hops = 0; current instanceof GraphQLError && current.originalError && hops < 5; hops++) current = current.originalError;
  return current;
}

/**
 * Passes a PlatformError's code on as extensions.code. Unexpected errors (INTERNAL_SERVER_ERROR) are logged with
 * their stack and answered with a generic message, so no internals (SQL, hosts, paths) reach the client.
 */
function createFormatError(redact: (text: string) => string) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = platformErrorOf(error);
    if (original) {
      const details = Object.fromEntries(Object.entries(original.details).map(([key, value]) => [key, typeof value === 'string' ? redact(value) : value]));
      return { ...formatted, message: redact(original.message), extensions: { ...formatted.extensions, code: original.code, ...details } };
    }
    if (formatted.extensions?.code === 'INTERNAL_SERVER_ERROR' && isDatabaseUnavailable(originalOf(error))) {
      // Logged with its cause by requestIds() below; the client learns only that the database did not answer.
      return { message: 'The database does not answer; try again later', locations: formatted.locations, path: formatted.path, extensions: { code: 'DATABASE_UNAVAILABLE' } };
    }
    if (formatted.extensions?.code === 'INTERNAL_SERVER_ERROR') {
      // Logged with its stack and the request id by requestIds() below.
      return { message: 'Internal server error', locations: formatted.locations, path: formatted.path, extensions: { code: 'INTERNAL_SERVER_ERROR' } };
    }
    return { ...formatted, message: redact(formatted.message) };
  };
}

/**
 * Request ids in GraphQL answers and logs: every error of a response carries extensions.requestId (the x-request-id
 * the route assigned), and unexpected errors are logged with their stack and that id (the client sees neither).
 */
function requestIds(logger: Logger): ApolloServerPlugin<ServerContext> {
  return {
    async requestDidStart() {
      return {
        async didEncounterErrors({ errors, contextValue }) {
          for (const error of errors) {
            // A store's failure behind a PlatformError (VECTOR_INDEX_UNAVAILABLE) is logged as unexpected ones are.
            const platformError = platformErrorOf(error);
            if (platformError?.cause) {
              logger.error({ requestId: contextValue.requestId, code: platformError.code, err: platformError.cause, path: error.path }, platformError.message);
              continue;
            }
            if (platformError || (error.extensions?.code !== undefined && error.extensions.code !== 'INTERNAL_SERVER_ERROR')) continue;
            logger.error({ requestId: contextValue.requestId, err: error.originalError ?? error, path: error.path }, 'unexpected error in a GraphQL request');
          }
        },
        async willSendResponse({ response, contextValue }) {
          const { body } = response;
          const errors = body.kind === 'single' ? body.singleResult.errors : body.initialResult.errors;
          if (!errors || !contextValue.requestId) return;
          for (const error of errors) {
            (error as { extensions?: Record<string, unknown> }).extensions = { ...error.extensions, requestId: contextValue.requestId };
          }
        },
      };
    },
  };
}

/** Compares a presented key with the configured one in time that does not depend on where they differ. */
export function sameKey(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  // Digests first: timingSafeEqual needs equal lengths, and the digest hides the expected key's length.
  const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();
  return timingSafeEqual(digest(presented), digest(expected));
}

/** With an API key configured, mutations need it in the `x-api-key` header (else 401 UNAUTHENTICATED). */
function mutationsNeedApiKey(apiKey: string | undefined): ApolloServerPlugin<ServerContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation, contextValue }) {
          if (apiKey && operation?.operation === 'mutation' && !sameKey(contextValue.apiKey, apiKey)) {
            throw requestError(new PlatformError('UNAUTHENTICATED', 'mutations need a valid x-api-key header'), 401);
          }
        },
      };
    },
  };
}

export async function startHttpServer(platform: Platform, options: { host: string; port: number }): Promise<RunningServer> {
  const { settings, logger } = platform;
  const app = express();
  app.disable('x-powered-by');
  const httpServer = http.createServer();
  httpServer.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  // Longer than the idle timeout, so a slow request's headers are never cut by it.
  httpServer.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1000;
  const metrics = createMetrics(platform);
  const apollo = new ApolloServer<ServerContext>({
    typeDefs,
    resolvers,
    formatError: createFormatError(pathRedactor(settings)),
    // Set per environment (LLM2REC_INTROSPECTION, else off when NODE_ENV=production): with introspection off, the
    // validation errors do not suggest field names either ("Did you mean ...").
    introspection: settings.introspection,
    hideSchemaDetailsFromClientErrors: !settings.introspection,
    // Stacks go to the log (unexpected errors), never to clients, whatever NODE_ENV says.
    includeStacktraceInErrorResponses: false,
    // The serve command handles SIGINT and SIGTERM: it closes this server, then the platform (the index's last flush,
    // the database). Apollo's own handlers would stop it and send the signal again, killing the process before the
    // platform is closed (and before the log file is written).
    stopOnTerminationSignals: false,
    logger,
    validationRules: [depthLimitRule(settings.maxQueryDepth), aliasLimitRule(settings.maxAliases), rootFieldLimitRule(settings.maxRootFields)],
    plugins: [
      // No @cacheControl hints in the schema: the route marks every answer no-store instead of a hook on each field.
      ApolloServerPluginCacheControlDisabled(),
      ApolloServerPluginDrainHttpServer({ httpServer }),
      observeOperations(metrics, platform),
      mutationsNeedApiKey(settings.apiKey),
      requestIds(logger),
      complexityLimit(settings.maxQueryComplexity),
    ],
  });
  await apollo.start();
  let open = true;

  app.use((req, res, next) => {
    assignRequestId(req, res);
    next();
  });
  app.get('/healthz', (_req, res) => { res.json({ status: 'ok', modelVersion: platform.model.version }); });
  app.get('/readyz', async (_req, res) => {
    const readiness = await checkReadiness(platform, open);
    res.status(readiness.status === 'ready' ? 200 : 503).set('cache-control', 'no-store').json(readiness);
  });
  app.get('/metrics', async (_req, res) => {
    res.set('content-type', metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.use('/export', exportRoutes(platform));
  app.use(notFound);
  app.use(jsonErrorHandler(logger, { bodyLimit: settings.maxBodySize }));
  const graphql = graphqlRoute(apollo, {
    context: (req) => {
      const apiKey = req.headers['x-api-key'];
      return { ...createContext(platform), apiKey: Array.isArray(apiKey) ? apiKey[0] : apiKey, requestId: requestIdOf(req) };
    },
    bodyLimit: settings.maxBodySize,
    maxDocumentNesting: settings.maxDocumentNesting,
    logger,
    onRefused: (code) => metrics.graphqlErrors.inc({ code }),
  });
  httpServer.on('request', (req, res) => (isGraphQLRequest(req) ? graphql(req, res) : app(req, res)));

  httpServer.listen(options.port, options.host);
  await once(httpServer, 'listening');
  const { port } = httpServer.address() as AddressInfo;
  const url = `http://${options.host}:${port}/graphql`;
  logger.info({ url }, 'GraphQL API listening');
  return {
    url,
    async close() {
      open = false;
      await apollo.stop();
    },
  };
}
