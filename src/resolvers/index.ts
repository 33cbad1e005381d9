/** Resolvers of schema.graphql: argument checks and shaping; the work happens in the platform's services. */
import { JSONObjectResolver } from 'graphql-scalars';
import type { Resolvers } from '../schema/resolvers-types.js';
import { catalogResolvers } from './catalog.js';
import type { RequestContext } from './context.js';
import { checkArguments } from './input-checks.js';
import { modelResolvers } from './models.js';
import { recommendationResolvers } from './recommendations.js';

type AnyResolver = (parent: unknown, args: Record<string, unknown>, context: RequestContext, info: unknown) => unknown;

/** Every root field checks its arguments (input-checks.ts) before its resolver sees them. */
function checked<T extends object>(fields: T): T {
  return Object.fromEntries(Object.entries(fields).map(([name, resolve]) => [name,
    ((parent, args, context, info) => {
      checkArguments(args, context.platform.settings);
      return (resolve as AnyResolver)(parent, args, context, info);
    }) as AnyResolver,
  ])) as T;
}

export const resolvers: Resolvers = {
  JSONObject: JSONObjectResolver,
  Query: checked({ ...recommendationResolvers.Query, ...catalogResolvers.Query, ...modelResolvers.Query }),
  Mutation: checked({ ...catalogResolvers.Mutation, ...modelResolvers.Mutation }),
  Recommendation: recommendationResolvers.Recommendation,
  User: catalogResolvers.User,
};
