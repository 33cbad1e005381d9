/**
 * What the server tells its operators: Prometheus metrics (prom-client, one Registry per server so that several
 * servers can run in one process) and one structured log line per GraphQL operation.
 */
import type { ApolloServerPlugin, GraphQLRequestContextWillSendResponse } from '@apollo/server';
import { getOperationAST } from 'graphql';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Platform } from '../platform.js';

/** Distinct operation names that get their own label; later names (and unnamed operations) count as 'anonymous'. */
export const MAX_OPERATION_LABELS = 100;
const ANONYMOUS = 'anonymous';

export interface ServerMetrics {
  registry: Registry;
  graphqlDuration: Histogram<'operation' | 'outcome'>;
  graphqlErrors: Counter<'code'>;
  /** The operation label of a name: bounded to MAX_OPERATION_LABELS distinct values plus 'anonymous'. */
  operationLabel(name: string | null | undefined): string;
}

export function createMetrics(platform: Platform): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const graphqlDuration = new Histogram({
    name: 'llm2rec_graphql_request_duration_seconds',
    help: 'Time from receiving a GraphQL request to sending its response, by operation name and outcome',
    labelNames: ['operation', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const graphqlErrors = new Counter({
    name: 'llm2rec_graphql_errors_total',
    help: 'Errors in GraphQL responses (and refused request bodies), by extensions.code',
    labelNames: ['code'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'llm2rec_model_info',
    help: 'The model version this server serves (always 1), read at scrape time',
    labelNames: ['version'] as const,
    registers: [registry],
    collect() {
      this.reset();
      this.set({ version: platform.model.version }, 1);
    },
  });
  new Gauge({
    name: 'llm2rec_index_points',
    help: "Points in the model version's vector collection, counted at scrape time",
    registers: [registry],
    async collect() {
      try {
        this.set(await platform.collection.count());
      } catch (error) {
        platform.logger.warn({ err: error }, 'metrics: counting the vector collection failed');
      }
    },
  });
  if (platform.replica) {
    const replica = platform.replica;
    new Gauge({
      name: 'llm2rec_replica_titles_encoded',
      help: 'Titles this replica ran through the encoder since it started, by version collection (the rest came from the vectors other replicas stored)',
      labelNames: ['collection'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const [collection, titles] of Object.entries(replica.encoded())) this.set({ collection }, titles);
      },
    });
    new Gauge({
      name: 'llm2rec_replica_events_applied',
      help: "Sequence number of the last platform event this replica applied (compare with other replicas')",
      registers: [registry],
      collect() {
        this.set(Number(replica.position));
      },
    });
  }

  const names = new Set<string>();
  return {
    registry,
    graphqlDuration,
    graphqlErrors,
    operationLabel(name) {
      if (!name) return ANONYMOUS;
      if (names.has(name)) return name;
      if (names.size >= MAX_OPERATION_LABELS) return ANONYMOUS;
      names.add(name);
      return name;
    },
  };
}

/** The codes of a response's errors, as sent (after formatError). */
function errorCodes(requestContext: GraphQLRequestContextWillSendResponse<object>): string[] {
  const { body } = requestContext.response;
  const errors = body.kind === 'single' ? body.singleResult.errors : body.initialResult.errors;
  return (errors ?? []).map((error) => {
    const code = error.extensions?.code;
    // Codes come from the server, but keep the label set bounded whatever a plugin or scalar puts there.
    return typeof code === 'string' && /^[A-Z][A-Z0-9_]{0,63}$/.test(code) ? code : 'UNKNOWN';
  });
}

/** The operation's name, also when the request failed validation before Apollo resolved it. */
function operationName(requestContext: GraphQLRequestContextWillSendResponse<object>): string | null {
  if (requestContext.operationName !== undefined) return requestContext.operationName;
  const { document, request } = requestContext;
  if (!document) return null;
  return getOperationAST(document, request.operationName)?.name?.value ?? null;
}

/**
 * Times every GraphQL request from its start to its response: a histogram observation and an error count per code
 * in `metrics`, and an info line through the platform's logger with the operation's name and type, the duration, the
 * HTTP status and the error codes. Neither the query text nor its variables are logged.
 */
export function observeOperations<TContext extends object>(metrics: ServerMetrics, platform: Platform): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      const start = performance.now();
      return {
        async willSendResponse(requestContext) {
          const seconds = (performance.now() - start) / 1000;
          const name = operationName(requestContext);
          const codes = errorCodes(requestContext);
          metrics.graphqlDuration.observe(
            { operation: metrics.operationLabel(name), outcome: codes.length > 0 ? 'error' : 'ok' }, seconds);
          for (const code of codes) metrics.graphqlErrors.inc({ code });
          platform.logger.info({
            requestId: (requestContext.contextValue as { requestId?: string }).requestId,
            operation: name,
            type: requestContext.operation?.operation ?? null,
            durationMs: Math.round(seconds * 1e6) / 1e3,
            status: requestContext.response.http.status ?? 200,
            ...(codes.length > 0 && { errors: [...new Set(codes)] }),
          }, 'graphql operation');
        },
      };
    },
  };
}
