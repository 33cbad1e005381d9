/** Resolvers of items, domains, users and their histories, and the catalogue and event mutations. */
import { PlatformError } from '../errors.js';
import type { ItemInput } from '../catalog/catalog.js';
import type { RequestContext } from './context.js';

interface InteractionArg {
  userId: string;
  itemId: string;
  timestamp?: string | null;
}

function parseTimestamp(value: string): bigint {
  if (!/^-?\d+$/.test(value)) throw new PlatformError('BAD_USER_INPUT', `timestamp ${JSON.stringify(value)} is not an integer`);
  return BigInt(value);
}

/** Opaque page cursors: the last item id of a page, base64url-encoded. */
const cursor = {
  encode: (id: string) => Buffer.from(id, 'utf8').toString('base64url'),
  decode(value: string): string {
    const id = Buffer.from(value, 'base64url').toString('utf8');
    if (value === '' || cursor.encode(id) !== value) throw new PlatformError('BAD_USER_INPUT', `invalid cursor ${JSON.stringify(value)}`);
    return id;
  },
};

export const catalogResolvers = {
  Query: {
    item: (_: unknown, { id }: { id: string }, { items }: RequestContext) => items.load(id),

    items(_: unknown, { ids }: { ids: string[] }, { items, platform }: RequestContext) {
      if (ids.length > platform.settings.maxItemsPerBatch) {
        throw new PlatformError('BATCH_TOO_LARGE', `at most ${platform.settings.maxItemsPerBatch} ids per call, got ${ids.length}`);
      }
      return items.loadMany(ids);
    },

    async itemsByDomain(
      _: unknown,
      args: { domain: string; first: number; after?: string | null },
      { platform }: RequestContext,
    ) {
      const afterId = args.after === undefined || args.after === null ? undefined : cursor.decode(args.after);
      const page = await platform.catalog.page(args.domain, args.first, afterId);
      const edges = page.items.map((item) => ({ cursor: cursor.encode(item.id), node: item }));
      return { edges, pageInfo: { hasNextPage: page.hasNextPage, endCursor: edges.at(-1)?.cursor ?? null } };
    },

    async user(_: unknown, { id }: { id: string }, { platform }: RequestContext) {
      const user = await platform.db.prisma.user.findUnique({ where: { id }, select: { id: true } });
      return user;
    },

    async domains(_: unknown, __: unknown, { platform }: RequestContext) {
      const groups = await platform.db.prisma.item.groupBy({ by: ['domain'], _count: { _all: true }, orderBy: { domain: 'asc' } });
      return groups.map((group) => ({ name: group.domain, items: group._count._all }));
    },
  },

  User: {
    async history(user: { id: string }, { first }: { first: number }, { platform, items }: RequestContext) {
      if (!Number.isInteger(first) || first < 1 || first > platform.settings.maxHistoryInput) {
        throw new PlatformError('LIMIT_EXCEEDED', `first must be between 1 and ${platform.settings.maxHistoryInput}, got ${first}`);
      }
      const entries = (await platform.interactions.recent(user.id, first)) ?? [];
      const rows = await items.loadMany(entries.map((entry) => entry.itemId));
      return entries.map((entry, i) => ({ item: rows[i], timestamp: String(entry.timestamp) }));
    },
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
