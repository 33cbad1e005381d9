/** Resolvers of schema.graphql: argument checks and shaping; the work happens in the platform's services. */
import { JSONObjectResolver } from 'graphql-scalars';
import type { Resolvers } from '../schema/resolvers-types.js';
import { catalogResolvers } from './catalog.js';
import { modelResolvers } from './models.js';
import { recommendationResolvers } from './recommendations.js';

export const resolvers: Resolvers = {
  JSONObject: JSONObjectResolver,
  Query: { ...recommendationResolvers.Query, ...catalogResolvers.Query, ...modelResolvers.Query },
  Mutation: { ...catalogResolvers.Mutation, ...modelResolvers.Mutation },
  Recommendation: recommendationResolvers.Recommendation,
  User: catalogResolvers.User,
};
