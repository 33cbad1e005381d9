/** Resolvers of schema.graphql: argument checks and shaping; the work happens in the platform's services. */
import { JSONObjectResolver } from 'graphql-scalars';
import { PlatformError } from '../errors.js';
import type { ItemInput } from '../catalog/catalog.js';
import type { RequestContext } from './context.js';

interface RecommendationsArgs {
  history?: string[] | null;
  userId?: string | null;
  domain?: string | null;
  first: number;
}

interface InteractionArg {
  userId: string;
  itemId: string;
  timestamp?: string | null;
}

function parseTimestamp(value: string): bigint {
  if (!/^-?\d+$/.test(value)) throw new PlatformError('BAD_USER_INPUT', `timestamp ${JSON.stringify(value)} is not an integer`);
  return BigInt(value);
}

export const resolvers = {
  JSONObject: JSONObjectResolver,

  Query: {
    async recommendations(_: unknown, args: RecommendationsArgs, { platform, items }: RequestContext) {
      const hasHistory = args.history !== undefined && args.history !== null;
      const hasUser = args.userId !== undefined && args.userId !== null;
      if (hasHistory === hasUser) throw new PlatformError('BAD_USER_INPUT', 'give exactly one of history and userId');
      const request = { domain: args.domain ?? undefined, first: args.first };
      const { recommender } = platform;
      const hits = hasHistory
        ? await recommender.forHistory({ ...request, history: args.history! })
        : await recommender.forUser(args.userId!, request);
      const rows = await items.loadMany(hits.map((hit) => hit.id));
      return {
        modelVersion: recommender.modelVersion,
        domain: hits[0]?.domain ?? args.domain ?? '',
        // An item deleted between the search and the lookup is left out rather than failing the request.
        items: hits.flatMap((hit, i) => (rows[i] && !(rows[i] instanceof Error) ? [{ item: rows[i], score: hit.score }] : [])),
      };
    },

    item: (_: unknown, { id }: { id: string }, { items }: RequestContext) => items.load(id),

    items: (_: unknown, { ids }: { ids: string[] }, { items }: RequestContext) => items.loadMany(ids),

    async domains(_: unknown, __: unknown, { platform }: RequestContext) {
      const groups = await platform.db.prisma.item.groupBy({ by: ['domain'], _count: { _all: true }, orderBy: { domain: 'asc' } });
      return groups.map((group) => ({ name: group.domain, items: group._count._all }));
    },

    activeModel: (_: unknown, __: unknown, { platform }: RequestContext) => platform.models.active(),

    modelVersions: (_: unknown, __: unknown, { platform }: RequestContext) => platform.models.list(),
  },

  Mutation: {
    async upsertItems(_: unknown, { items }: { items: ItemInput[] }, { platform }: RequestContext) {
      return { count: await platform.catalog.upsertItems(items) };
    },

    async deleteItems(_: unknown, { ids }: { ids: string[] }, { platform }: RequestContext) {
      return { count: await platform.catalog.deleteItems(ids) };
    },

    async recordInteractions(_: unknown, { interactions }: { interactions: InteractionArg[] }, { platform }: RequestContext) {
      const events = interactions.map((event) => ({
        userId: event.userId,
        itemId: event.itemId,
        timestamp: event.timestamp === undefined || event.timestamp === null ? undefined : parseTimestamp(event.timestamp),
      }));
      return { count: await platform.interactions.record(events) };
    },
  },
};
