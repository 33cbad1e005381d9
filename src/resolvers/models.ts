/** Resolvers of model versions, the model registry and hot-swap. */
import path from 'node:path';
import type { Activation } from '../models/model-switcher.js';
import type { Platform } from '../platform.js';
import { pathRedactor } from '../server/redact.js';
import type { MutationResolvers, QueryResolvers } from '../schema/resolvers-types.js';

/** An activation as the API shows it: its error message without server paths. */
function present(activation: Activation, settings: Platform['settings']) {
  return {
    ...activation,
    startedAt: activation.startedAt.toISOString(),
    loadedAt: activation.loadedAt?.toISOString() ?? null,
    finishedAt: activation.finishedAt?.toISOString() ?? null,
    mode: activation.mode === undefined ? null : activation.mode === 'reuse' ? 'REUSE' as const : 'EMBED' as const,
    reused: activation.reused ?? null,
    embedded: activation.embedded ?? null,
    error: activation.error === undefined || activation.error === null ? null : pathRedactor(settings)(activation.error),
    errorCode: activation.errorCode ?? null,
  };
}

export const modelResolvers: {
  Query: Pick<QueryResolvers, 'activeModel' | 'modelVersions' | 'registeredModels' | 'modelActivation' | 'trafficSplit'>;
  Mutation: Pick<MutationResolvers, 'activateModel' | 'rollbackModel' | 'splitTraffic' | 'clearTrafficSplit'>;
} = {
  Query: {
    activeModel: (_, __, { platform }) => platform.models.active(),
    modelVersions: (_, __, { platform }) => platform.models.list(),
    // The bundle's directory within the registry, never the server's path to it (issue #12, finding 5).
    registeredModels: async (_, __, { platform }) =>
      (await platform.registry.list()).map((bundle) => ({
        version: bundle.version, path: path.relative(platform.registry.dir, bundle.dir), encoder: bundle.encoder,
      })),
    modelActivation: (_, __, { platform }) => {
      const activation = platform.switcher.activation();
      return activation ? present(activation, platform.settings) : null;
    },
    trafficSplit: (_, __, { platform }) => platform.switcher.trafficSplit() ?? null,
  },
  Mutation: {
    activateModel: async (_, { version }, { platform }) => present(await platform.switcher.activate(version), platform.settings),
    rollbackModel: async (_, __, { platform }) => present(await platform.switcher.rollback(), platform.settings),
    splitTraffic: async (_, { version, share }, { platform }) => present(await platform.switcher.splitTraffic(version, share), platform.settings),
    clearTrafficSplit: async (_, __, { platform }) => {
      const had = platform.switcher.trafficSplit() !== undefined;
      await platform.switcher.clearTrafficSplit();
      return had;
    },
  },
};
