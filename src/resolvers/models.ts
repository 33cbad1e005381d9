/** Resolvers of model versions, the model registry and hot-swap. */
import type { Activation } from '../models/model-switcher.js';
import type { MutationResolvers, QueryResolvers } from '../schema/resolvers-types.js';

function present(activation: Activation) {
  return {
    ...activation,
    startedAt: activation.startedAt.toISOString(),
    finishedAt: activation.finishedAt?.toISOString() ?? null,
    error: activation.error ?? null,
  };
}

export const modelResolvers: {
  Query: Pick<QueryResolvers, 'activeModel' | 'modelVersions' | 'registeredModels' | 'modelActivation' | 'trafficSplit'>;
  Mutation: Pick<MutationResolvers, 'activateModel' | 'rollbackModel' | 'splitTraffic' | 'clearTrafficSplit'>;
} = {
  Query: {
    activeModel: (_, __, { platform }) => platform.models.active(),
    modelVersions: (_, __, { platform }) => platform.models.list(),
    registeredModels: async (_, __, { platform }) =>
      (await platform.registry.list()).map((bundle) => ({ version: bundle.version, path: bundle.dir })),
    modelActivation: (_, __, { platform }) => {
      const activation = platform.switcher.activation();
      return activation ? present(activation) : null;
    },
    trafficSplit: (_, __, { platform }) => platform.switcher.trafficSplit() ?? null,
  },
  Mutation: {
    activateModel: async (_, { version }, { platform }) => present(await platform.switcher.activate(version)),
    rollbackModel: async (_, __, { platform }) => present(await platform.switcher.rollback()),
    splitTraffic: async (_, { version, share }, { platform }) => present(await platform.switcher.splitTraffic(version, share)),
    clearTrafficSplit: (_, __, { platform }) => {
      const had = platform.switcher.trafficSplit() !== undefined;
      platform.switcher.clearTrafficSplit();
      return had;
    },
  },
};
