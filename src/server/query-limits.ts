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
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import {
  GraphQLError, isListType, isNonNullType, Kind, TypeInfo, ValidationContext, visit, visitWithTypeInfo,
  type DocumentNode, type SelectionSetNode, type GraphQLOutputType, type GraphQLSchema, type ValidationRule,
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

/** Refuses operations with more than `maxAliases` aliased fields (fragments counted where spread). */
export function aliasLimitRule(maxAliases: number): ValidationRule {
  return maxAliasesRule({
    n: maxAliases,
    propagateOnRejection: false,
    onReject: [
      (context, _error) => {
        const message = `the operation has more aliases than the limit of ${maxAliases}`;
        context?.reportError(new GraphQLError(message, { originalError: new PlatformError('TOO_MANY_ALIASES', message, { maxAliases }) }));
      },
    ],
  }) as ValidationRule;
}

/** The root fields an operation selects, fragments (spread or inline) expanded; cycles count once. */
function countRootFields(selectionSet: SelectionSetNode, context: ValidationContext, seen = new Set<string>()): number {
  let count = 0;
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) count++;
    else if (selection.kind === Kind.INLINE_FRAGMENT) count += countRootFields(selection.selectionSet, context, seen);
    else if (!seen.has(selection.name.value)) {
      seen.add(selection.name.value);
      const fragment = context.getFragment(selection.name.value);
      if (fragment) count += countRootFields(fragment.selectionSet, context, seen);
    }
  }
  return count;
}

/** Refuses operations selecting more than `maxRootFields` root fields (each is a separate piece of work). */
export function rootFieldLimitRule(maxRootFields: number): ValidationRule {
  return (context) => ({
    OperationDefinition(operation) {
      const count = countRootFields(operation.selectionSet, context);
      if (count > maxRootFields) {
        const message = `the operation selects ${count} root fields, more than the limit of ${maxRootFields}`;
        context.reportError(new GraphQLError(message, { nodes: [operation], originalError: new PlatformError('TOO_MANY_ROOT_FIELDS', message, { maxRootFields }) }));
      }
    },
  });
}

/**
 * What a field costs beside 1, for fields doing more than reading memory: a model call and a vector search per
 * ranked list, a database query per page or user, the registry's files. The rest (items, domains, model info) is
 * read from memory.
 */
export const FIELD_COSTS: Readonly<Record<string, number>> = {
  'Query.recommendations': 20,
  'Query.crossDomainRecommendations': 20,
  'Query.similarItems': 10,
  'Recommendation.because': 20,
  'Query.itemsByDomain': 5,
  'Query.user': 2,
  'User.history': 2,
  'Query.modelVersions': 2,
  'Query.registeredModels': 5,
  'Mutation.upsertItems': 20,
  'Mutation.deleteItems': 5,
  'Mutation.recordInteractions': 5,
};

/** List arguments whose length is the length of the list a field returns (`items(ids:)`, `crossDomainRecommendations(domains:)`). */
const LENGTH_ARGUMENTS = ['ids', 'domains'] as const;

function returnsList(type: GraphQLOutputType): boolean {
  return isListType(isNonNullType(type) ? type.ofType : type);
}

/**
 * 1 per field plus its subtree; the subtree counts once per element where the size of the result is known from the
 * arguments: times `first` (pages and ranked lists), and for fields returning a list, times the length of `ids` or
 * `domains`. Sizes are at least 1, so a zero or negative `first` cannot lower the estimate. A field's own work
 * (FIELD_COSTS: one model call, one query) is added once per list it makes (times `ids`/`domains`), not per result.
 */
export const fieldCountEstimator: ComplexityEstimator = ({ type, field, args, childComplexity }) => {
  const own = FIELD_COSTS[`${type.name}.${field.name}`] ?? 0;
  let lists = 1;
  if (returnsList(field.type)) {
    for (const name of LENGTH_ARGUMENTS) {
      const value = args[name];
      if (Array.isArray(value)) lists *= Math.max(1, value.length);
    }
  }
  const results = typeof args.first === 'number' ? Math.max(1, args.first) : 1;
  return own * lists + (1 + childComplexity) * results * lists;
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
