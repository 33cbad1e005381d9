/** Resolvers of schema.graphql: argument checks and shaping; the work happens in the platform's services. */
import { JSONObjectResolver } from 'graphql-scalars';
import { catalogResolvers } from './catalog.js';
import type { RequestContext } from './context.js';
import { recommendationResolvers } from './recommendations.js';

export const resolvers = {
  JSONObject: JSONObjectResolver,
  Query: {
    ...recommendationResolvers.Query,
    ...catalogResolvers.Query,
    activeModel: (_: unknown, __: unknown, { platform }: RequestContext) => platform.models.active(),
    modelVersions: (_: unknown, __: unknown, { platform }: RequestContext) => platform.models.list(),
  },
  Mutation: catalogResolvers.Mutation,
  Recommendation: recommendationResolvers.Recommendation,
  User: catalogResolvers.User,
};
