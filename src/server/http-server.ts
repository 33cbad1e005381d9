/**
 * The HTTP face of the platform: Apollo Server 5 on Express 5 at /graphql, and /healthz.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import express from 'express';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { PlatformError } from '../errors.js';
import type { Platform } from '../platform.js';
import { createContext, type RequestContext } from '../resolvers/context.js';
import { resolvers } from '../resolvers/index.js';
import { typeDefs } from '../schema/index.js';

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

/** Passes a PlatformError's code on as extensions.code; hides the internals of unexpected errors. */
function formatError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
  const original = error instanceof GraphQLError ? error.originalError : error;
  if (original instanceof PlatformError) {
    return { ...formatted, message: original.message, extensions: { ...formatted.extensions, code: original.code, ...original.details } };
  }
  return formatted;
}

/** With an API key configured, mutations need it in the `x-api-key` header. */
function mutationsNeedApiKey(apiKey: string | undefined): ApolloServerPlugin<RequestContext & { apiKey?: string }> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation, contextValue }) {
          if (apiKey && operation?.operation === 'mutation' && contextValue.apiKey !== apiKey) {
            throw new PlatformError('UNAUTHENTICATED', 'mutations need a valid x-api-key header');
          }
        },
      };
    },
  };
}

export async function startHttpServer(platform: Platform, options: { host: string; port: number }): Promise<RunningServer> {
  const app = express();
  const httpServer = http.createServer(app);
  const apollo = new ApolloServer<RequestContext & { apiKey?: string }>({
    typeDefs,
    resolvers,
    formatError,
    plugins: [ApolloServerPluginDrainHttpServer({ httpServer }), mutationsNeedApiKey(platform.settings.apiKey)],
  });
  await apollo.start();

  app.get('/healthz', (_req, res) => { res.json({ status: 'ok', modelVersion: platform.model.version }); });
  app.use('/graphql', express.json({ limit: '8mb' }), expressMiddleware(apollo, {
    context: async ({ req }) => ({ ...createContext(platform), apiKey: req.header('x-api-key') }),
  }));

  httpServer.listen(options.port, options.host);
  await once(httpServer, 'listening');
  const { port } = httpServer.address() as AddressInfo;
  const url = `http://${options.host}:${port}/graphql`;
  platform.logger.info({ url }, 'GraphQL API listening');
  return {
    url,
    async close() {
      await apollo.stop();
    },
  };
}
