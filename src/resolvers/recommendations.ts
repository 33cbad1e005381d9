/** Resolvers of recommendations, cross-domain recommendations and similar items. */
import { PlatformError } from '../errors.js';
import { parseAttributeFilter } from '../recommend/attribute-filter.js';
import type { CandidateFilter, RankedList, Subject } from '../recommend/recommender.js';
import type { ItemFilter, QueryResolvers, RecommendationFilter, RecommendationResolvers } from '../schema/resolvers-types.js';
import type { CatalogItem } from '../catalog/item.js';
import { loadItems, type RequestContext } from './context.js';

type FilterArg = RecommendationFilter | ItemFilter;

interface SubjectArgs {
  history?: readonly string[] | null;
  userId?: string | null;
}

/** A recommendation on its way out: the ranked hit plus what `because` needs. */
export interface RecommendationParent {
  item: CatalogItem;
  score: number;
  list: RankedList;
}

function subjectOf(args: SubjectArgs): Subject {
  const hasHistory = args.history !== undefined && args.history !== null;
  const hasUser = args.userId !== undefined && args.userId !== null;
  if (hasHistory === hasUser) throw new PlatformError('BAD_USER_INPUT', 'give exactly one of history and userId');
  return hasHistory ? { history: args.history! } : { userId: args.userId! };
}

/** The filter of a request; `excludeIds` holds at most maxItemsPerBatch ids (each is looked up per search). */
function filterOf(arg: FilterArg | null | undefined, context: RequestContext): CandidateFilter {
  const { maxItemsPerBatch } = context.platform.settings;
  if (arg?.excludeIds && arg.excludeIds.length > maxItemsPerBatch) {
    throw new PlatformError('BATCH_TOO_LARGE', `excludeIds may hold at most ${maxItemsPerBatch} ids, got ${arg.excludeIds.length}`);
  }
  return {
    excludeIds: arg?.excludeIds ?? undefined,
    attributes: parseAttributeFilter(arg?.attributes),
    includeHistory: (arg && 'includeHistory' in arg && arg.includeHistory) || false,
  };
}

/** Looks the ranked ids up; an item deleted between the search and the lookup is left out. */
function withItems<T extends { id: string }>(hits: T[], context: RequestContext): (T & { item: CatalogItem })[] {
  const rows = loadItems(context, hits.map((hit) => hit.id));
  return hits.flatMap((hit, i) => (rows[i] ? [{ ...hit, item: rows[i] }] : []));
}

async function present(list: RankedList, modelVersion: string, context: RequestContext) {
  const items = withItems(list.items, context);
  return {
    modelVersion,
    domain: list.domain,
    items: items.map(({ item, score }): RecommendationParent => ({ item, score, list })),
  };
}

export const recommendationResolvers: {
  Query: Pick<QueryResolvers, 'recommendations' | 'crossDomainRecommendations' | 'similarItems'>;
  Recommendation: RecommendationResolvers;
} = {
  Query: {
    async recommendations(_, args, context) {
      // One request, one model version: a switch while it runs does not mix versions.
      const { recommender } = context.platform.switcher.forUser(args.userId ?? undefined);
      const list = await recommender.recommend(subjectOf(args), {
        domain: args.domain ?? undefined, first: args.first, filter: filterOf(args.filter, context),
      });
      return present(list, recommender.modelVersion, context);
    },

    async crossDomainRecommendations(_, args, context) {
      const { recommender } = context.platform.switcher.forUser(args.userId ?? undefined);
      const lists = await recommender.recommendAcrossDomains(subjectOf(args), {
        domains: args.domains, first: args.first, filter: filterOf(args.filter, context),
      });
      return Promise.all(lists.map((list) => present(list, recommender.modelVersion, context)));
    },

    async similarItems(_, args, context) {
      const { recommender } = context.platform.switcher.forUser(args.userId ?? undefined);
      const { domain, items } = await recommender.similarItems(args.id, {
        domain: args.domain ?? undefined, first: args.first, filter: filterOf(args.filter, context),
      });
      return { modelVersion: recommender.modelVersion, domain, items: withItems(items, context) };
    },
  },

  Recommendation: {
    async because(parent, { first }, context) {
      if (!Number.isInteger(first) || first < 1) throw new PlatformError('LIMIT_EXCEEDED', `first must be at least 1, got ${first}`);
      const contributions = (await parent.list.contributions(parent.item.id)).slice(0, first);
      const found = withItems(contributions, context);
      return found.map(({ item, weight }) => ({ item, weight }));
    },
  },
};
