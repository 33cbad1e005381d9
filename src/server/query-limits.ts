/**
 * Limits on what one GraphQL operation may ask for, so a single request cannot tie up the server:
 *
 * - depth: a validation rule (@escape.tech/graphql-armor-max-depth) on the selection nesting, fragments not adding
 *   a level. It runs with graphql's own rules, before anything executes; Apollo answers HTTP 400.
 * - complexity: graphql-query-complexity's estimate of the work. It depends on the request's variables (`first:
 *   $first`), which validation rules do not see (and Apollo validates a document once, then caches it), so it is
 *   computed when the operation is resolved, before execution, as the library documents for servers that take
 *   variables; it too answers HTTP 400.
 *
 * Both answer with a PlatformError code (QUERY_TOO_DEEP, QUERY_TOO_COMPLEX) in extensions.code.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import {
  GraphQLError, isListType, isNonNullType, TypeInfo, ValidationContext, visit, visitWithTypeInfo,
  type DocumentNode, type GraphQLOutputType, type GraphQLSchema, type ValidationRule,
} from 'graphql';
import { createComplexityRule, type ComplexityEstimator } from 'graphql-query-complexity';
import { PlatformError } from '../errors.js';

/** A GraphQL error carrying a PlatformError (so formatError passes its code on) and an HTTP status for Apollo. */
export function requestError(error: PlatformError, status: number): GraphQLError {
  return new GraphQLError(error.message, { originalError: error, extensions: { http: { status } } });
}

/** Refuses operations nested deeper than `maxDepth` fields (introspection's __schema excepted). */
export function depthLimitRule(maxDepth: number): ValidationRule {
  return maxDepthRule({
    n: maxDepth,
    flattenFragments: true,
    ignoreIntrospection: true,
    // Report through the validation context rather than throwing out of graphql's validate().
    propagateOnRejection: false,
    onReject: [
      (context, _error) => {
        if (!context) return;
        context.reportError(new GraphQLError(`the query is nested deeper than the limit of ${maxDepth} levels`, {
          originalError: new PlatformError('QUERY_TOO_DEEP', `the query is nested deeper than the limit of ${maxDepth} levels`, { maxDepth }),
        }));
      },
    ],
  }) as ValidationRule;
}

/** List arguments whose length is the length of the list a field returns (`items(ids:)`, `crossDomainRecommendations(domains:)`). */
const LENGTH_ARGUMENTS = ['ids', 'domains'] as const;

function returnsList(type: GraphQLOutputType): boolean {
  return isListType(isNonNullType(type) ? type.ofType : type);
}

/**
 * 1 per field plus its subtree; the subtree counts once per element where the size of the result is known from the
 * arguments: times `first` (pages and ranked lists), and for fields returning a list, times the length of `ids` or
 * `domains`. Sizes are at least 1, so a zero or negative `first` cannot lower the estimate.
 */
export const fieldCountEstimator: ComplexityEstimator = ({ field, args, childComplexity }) => {
  let multiplier = 1;
  if (typeof args.first === 'number') multiplier *= Math.max(1, args.first);
  if (returnsList(field.type)) {
    for (const name of LENGTH_ARGUMENTS) {
      const value = args[name];
      if (Array.isArray(value)) multiplier *= Math.max(1, value.length);
    }
  }
  return (1 + childComplexity) * multiplier;
};

/**
 * The estimated cost of the operation `operationName` of a validated document. Like graphql-query-complexity's
 * getComplexity, except that a field whose arguments do not coerce (a null variable for a non-null argument) is left
 * out rather than voiding the whole estimate: execution fails that field alone and still runs its siblings. Variables
 * that do not fit their types give 0: execution refuses the whole operation then.
 */
export function estimateComplexity(schema: GraphQLSchema, document: DocumentNode, variables: Record<string, unknown>, operationName?: string): number {
  const typeInfo = new TypeInfo(schema);
  const context = new ValidationContext(schema, document, typeInfo, () => {});
  const visitor = createComplexityRule({
    maximumComplexity: Number.MAX_SAFE_INTEGER,
    estimators: [fieldCountEstimator],
    variables,
    operationName,
  })(context);
  try {
    visit(document, visitWithTypeInfo(typeInfo, visitor));
  } catch (error) {
    // The library stops walking a document of more than 10,000 selections.
    if (error instanceof GraphQLError && /maximum allowed number of nodes/.test(error.message)) return Infinity;
    throw error;
  }
  return visitor.complexity;
}

/** Refuses operations whose estimated cost exceeds `maxComplexity`. */
export function complexityLimit<TContext extends object>(maxComplexity: number): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, request, operationName }) {
          const complexity = estimateComplexity(schema, document, request.variables ?? {}, operationName ?? undefined);
          if (complexity > maxComplexity) {
            const known = Number.isFinite(complexity);
            throw requestError(new PlatformError('QUERY_TOO_COMPLEX',
              `the query's estimated complexity (${known ? complexity : 'more than 10000 selections'}) exceeds the limit of ${maxComplexity}`,
              { complexity: known ? complexity : null, maxComplexity }), 400);
          }
        },
      };
    },
  };
}
