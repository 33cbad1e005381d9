/** Resolvers of schema.graphql: argument checks and shaping; the work happens in the platform's services. */
import { JSONObjectResolver } from 'graphql-scalars';
import { catalogResolvers } from './catalog.js';
import type { Resolvers } from '../schema/resolvers-types.js';
import { recommendationResolvers } from './recommendations.js';

export const resolvers: Resolvers = {
  JSONObject: JSONObjectResolver,
  Query: {
    ...recommendationResolvers.Query,
    ...catalogResolvers.Query,
    activeModel: (_, __, { platform }) => platform.models.active(),
    modelVersions: (_, __, { platform }) => platform.models.list(),
  },
  Mutation: catalogResolvers.Mutation,
  Recommendation: recommendationResolvers.Recommendation,
  User: catalogResolvers.User,
};
