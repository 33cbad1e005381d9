/** Resolvers of items, domains, users and their histories, and the catalogue and event mutations. */
import { PlatformError } from '../errors.js';
import type { MutationResolvers, QueryResolvers, UserResolvers } from '../schema/resolvers-types.js';
import { loadItems } from './context.js';
import { checkText, parseTimestamp } from './input-checks.js';

/** What the User type's resolvers start from. */
export interface UserParent {
  id: string;
}


/** Opaque page cursors: the last item id of a page, base64url-encoded. */
const cursor = {
  encode: (id: string) => Buffer.from(id, 'utf8').toString('base64url'),
  decode(value: string): string {
    const id = Buffer.from(value, 'base64url').toString('utf8');
    if (value === '' || cursor.encode(id) !== value) throw new PlatformError('BAD_USER_INPUT', `invalid cursor ${JSON.stringify(value)}`);
    checkText(id, 'the id in the cursor', Infinity);
    return id;
  },
};

export const catalogResolvers: {
  Query: Pick<QueryResolvers, 'item' | 'items' | 'itemsByDomain' | 'user' | 'domains'>;
  User: UserResolvers;
  Mutation: MutationResolvers;
} = {
  Query: {
    item: (_, { id }, context) => loadItems(context, [id])[0],

    items(_, { ids }, context) {
      const { maxItemsPerBatch } = context.platform.settings;
      if (ids.length > maxItemsPerBatch) {
        throw new PlatformError('BATCH_TOO_LARGE', `at most ${maxItemsPerBatch} ids per call, got ${ids.length}`);
      }
      return loadItems(context, ids);
    },

    async itemsByDomain(_, args, { platform }) {
      const afterId = args.after === undefined || args.after === null ? undefined : cursor.decode(args.after);
      const page = await platform.catalog.page(args.domain, args.first, afterId);
      const edges = page.items.map((item) => ({ cursor: cursor.encode(item.id), node: item }));
      return { edges, pageInfo: { hasNextPage: page.hasNextPage, endCursor: edges.at(-1)?.cursor ?? null } };
    },

    async user(_, { id }, { platform }) {
      const user = await platform.db.prisma.user.findUnique({ where: { id }, select: { id: true } });
      return user;
    },

    // From the catalogue's rows in memory (counts kept with every write): a GROUP BY over the items table held the
    // event loop for milliseconds per call with PGlite, and aliases multiplied it (issue #12, finding 2).
    domains: (_, __, { platform }) => [...platform.catalog.items.domains()],
  },

  User: {
    async history(user, { first }, context) {
      const { platform } = context;
      if (!Number.isInteger(first) || first < 1 || first > platform.settings.maxHistoryInput) {
        throw new PlatformError('LIMIT_EXCEEDED', `first must be between 1 and ${platform.settings.maxHistoryInput}, got ${first}`);
      }
      const entries = (await platform.interactions.recent(user.id, first)) ?? [];
      const rows = loadItems(context, entries.map((entry) => entry.itemId));
      return entries.flatMap((entry, i) => (rows[i] ? [{ item: rows[i], timestamp: String(entry.timestamp) }] : []));
    },
  },

  Mutation: {
    async upsertItems(_, { items }, { platform }) {
      return { count: await platform.catalog.upsertItems(items.map((item) => ({ ...item, attributes: item.attributes ?? undefined }))) };
    },

    async deleteItems(_, { ids }, { platform }) {
      return { count: await platform.catalog.deleteItems(ids) };
    },

    async recordInteractions(_, { interactions }, { platform }) {
      const events = interactions.map((event) => ({
        userId: event.userId,
        itemId: event.itemId,
        timestamp: event.timestamp === undefined || event.timestamp === null ? undefined : parseTimestamp(event.timestamp, 'timestamp'),
      }));
      return { count: await platform.interactions.record(events) };
    },
  },
};
