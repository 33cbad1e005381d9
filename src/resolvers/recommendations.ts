/** Resolvers of recommendations, cross-domain recommendations and similar items. */
import { PlatformError } from '../errors.js';
import { parseAttributeFilter } from '../recommend/attribute-filter.js';
import type { CandidateFilter, RankedList, Subject } from '../recommend/recommender.js';
import type { ItemRecord, RequestContext } from './context.js';

interface FilterArg {
  excludeIds?: string[] | null;
  attributes?: Record<string, unknown> | null;
  includeHistory?: boolean | null;
}

interface SubjectArgs {
  history?: string[] | null;
  userId?: string | null;
  first: number;
  filter?: FilterArg | null;
}

/** A recommendation on its way out: the ranked hit plus what `because` needs. */
interface RecommendationParent {
  item: ItemRecord;
  score: number;
  list: RankedList;
}

function subjectOf(args: SubjectArgs): Subject {
  const hasHistory = args.history !== undefined && args.history !== null;
  const hasUser = args.userId !== undefined && args.userId !== null;
  if (hasHistory === hasUser) throw new PlatformError('BAD_USER_INPUT', 'give exactly one of history and userId');
  return hasHistory ? { history: args.history! } : { userId: args.userId! };
}

function filterOf(arg: FilterArg | null | undefined): CandidateFilter {
  return {
    excludeIds: arg?.excludeIds ?? undefined,
    attributes: parseAttributeFilter(arg?.attributes),
    includeHistory: arg?.includeHistory ?? false,
  };
}

/** Looks the ranked ids up; an item deleted between the search and the lookup is left out. */
async function withItems<T extends { id: string }>(hits: T[], context: RequestContext): Promise<(T & { item: ItemRecord })[]> {
  const rows = await context.items.loadMany(hits.map((hit) => hit.id));
  return hits.flatMap((hit, i) => {
    const row = rows[i];
    return row && !(row instanceof Error) ? [{ ...hit, item: row }] : [];
  });
}

async function present(list: RankedList, context: RequestContext) {
  const items = await withItems(list.items, context);
  return {
    modelVersion: context.platform.recommender.modelVersion,
    domain: list.domain,
    items: items.map(({ item, score }): RecommendationParent => ({ item, score, list })),
  };
}

export const recommendationResolvers = {
  Query: {
    async recommendations(_: unknown, args: SubjectArgs & { domain?: string | null }, context: RequestContext) {
      const list = await context.platform.recommender.recommend(subjectOf(args), {
        domain: args.domain ?? undefined, first: args.first, filter: filterOf(args.filter),
      });
      return present(list, context);
    },

    async crossDomainRecommendations(_: unknown, args: SubjectArgs & { domains: string[] }, context: RequestContext) {
      const lists = await context.platform.recommender.recommendAcrossDomains(subjectOf(args), {
        domains: args.domains, first: args.first, filter: filterOf(args.filter),
      });
      return Promise.all(lists.map((list) => present(list, context)));
    },

    async similarItems(
      _: unknown,
      args: { id: string; domain?: string | null; first: number; filter?: FilterArg | null },
      context: RequestContext,
    ) {
      const { domain, items } = await context.platform.recommender.similarItems(args.id, {
        domain: args.domain ?? undefined, first: args.first, filter: filterOf(args.filter),
      });
      return { modelVersion: context.platform.recommender.modelVersion, domain, items: await withItems(items, context) };
    },
  },

  Recommendation: {
    async because(parent: RecommendationParent, { first }: { first: number }, context: RequestContext) {
      if (!Number.isInteger(first) || first < 1) throw new PlatformError('LIMIT_EXCEEDED', `first must be at least 1, got ${first}`);
      const contributions = (await parent.list.contributions(parent.item.id)).slice(0, first);
      const found = await withItems(contributions, context);
      return found.map(({ item, weight }) => ({ item, weight }));
    },
  },
};
