/**
 * Recommendations: a history of item ids -> their recommendation vectors -> sequence model -> user vector ->
 * top-k of the vector index by dot product, per requested domain, the history itself excluded by default.
 * Similar items: an item's semantic vector -> top-k by cosine.
 */
import { PlatformError, listSome } from '../errors.js';
import type { KnownItems } from '../catalog/item-read-model.js';
import type { Interactions } from '../events/interactions.js';
import type { RecommendationModel } from '../inference/recommendation-model.js';
import type { SearchHit, StoredVector, VectorCollection, VectorName } from '../index/vector-index.js';
import type { AttributeFilter, AttributeFilters } from './attribute-filter.js';

/** How attribute-filtered searches choose their way (Recommender.search). */
export interface FilterTuning {
  /** An attribute filter that at most this many items of a domain can match has those items scored exactly. */
  fewMatches: number;
  /** Candidates per result asked of the vector index for a broader filter, before all its items are scored. */
  broadCandidates: number;
}

export const FILTER_TUNING: FilterTuning = { fewMatches: 4096, broadCandidates: 8 };

export interface RecommendationLimits {
  /** Largest number of results one request may ask for. */
  maxResults: number;
  /** Largest history a request may pass. */
  maxHistoryInput: number;
}

/** Which items a ranking may return. */
export interface CandidateFilter {
  /** Item ids never returned. */
  excludeIds?: readonly string[];
  /** Only items whose attributes match. */
  attributes?: AttributeFilter;
  /** Recommend items of the history too (off by default). */
  includeHistory?: boolean;
}

export interface RankRequest {
  first: number;
  filter?: CandidateFilter;
}

/** Who the recommendations are for: an explicit history (oldest first) or a user's recorded one. */
export type Subject = { history: readonly string[] } | { userId: string };

export type ScoredItem = SearchHit;

/** A history item and how much it raised a recommendation's score. */
export interface Contribution {
  id: string;
  weight: number;
}

export interface RankedList {
  domain: string;
  items: ScoredItem[];
  /**
   * Why each item was recommended: for every history item that reached the sequence model, how much the item's
   * score drops when that history item is left out (computed on demand: one batched sequence-model call).
   */
  contributions(itemId: string): Promise<Contribution[]>;
}

/** A resolved subject: its history and the user vector the sequence model makes of it. */
interface UserState {
  history: readonly string[];
  /** The history items that reached the sequence model (the most recent max_history), oldest first. */
  recent: { id: string; vector: Float32Array }[];
  userVector: Float32Array;
  defaultDomain: string;
}

export class Recommender {
  constructor(
    private readonly model: RecommendationModel,
    private readonly collection: VectorCollection,
    /** The catalogue, which says which items exist. */
    private readonly items: KnownItems,
    private readonly interactions: Interactions,
    private readonly limits: RecommendationLimits,
    private readonly attributes: AttributeFilters,
    private readonly tuning: FilterTuning = FILTER_TUNING,
  ) {}

  get modelVersion(): string {
    return this.model.version;
  }

  /** Items of one domain (by default the most recent history item's) for a history or a user. */
  async recommend(subject: Subject, request: RankRequest & { domain?: string }): Promise<RankedList> {
    this.checkFirst(request.first);
    const state = await this.userState(subject);
    const domain = request.domain ?? state.defaultDomain;
    await this.checkDomains([domain]);
    return this.rank(state, domain, request);
  }

  /** The same user vector ranked separately in each of several target domains. */
  async recommendAcrossDomains(subject: Subject, request: RankRequest & { domains: readonly string[] }): Promise<RankedList[]> {
    this.checkFirst(request.first);
    if (request.domains.length === 0) throw new PlatformError('BAD_USER_INPUT', 'give at least one target domain');
    const state = await this.userState(subject);
    await this.checkDomains(request.domains);
    return Promise.all([...new Set(request.domains)].map((domain) => this.rank(state, domain, request)));
  }

  /** Items whose semantic vectors are closest (cosine) to an item's, in its own domain or another. */
  async similarItems(itemId: string, request: RankRequest & { domain?: string }): Promise<{ domain: string; items: ScoredItem[] }> {
    this.checkFirst(request.first);
    const stored = await this.vectorsOf([itemId], 'semantic');
    const { domain: ownDomain, vector } = stored.get(itemId)!;
    const domain = request.domain ?? ownDomain;
    await this.checkDomains([domain]);
    const exclude = new Set([itemId, ...(request.filter?.excludeIds ?? [])]);
    const items = await this.search('semantic', vector, domain, request.first, exclude, request.filter?.attributes);
    return { domain, items };
  }

  private async rank(state: UserState, domain: string, request: RankRequest): Promise<RankedList> {
    const exclude = new Set(request.filter?.excludeIds ?? []);
    if (!request.filter?.includeHistory) state.history.forEach((id) => exclude.add(id));
    const items = await this.search('recommendation', state.userVector, domain, request.first, exclude, request.filter?.attributes);
    let leaveOneOut: Promise<Float32Array[]> | undefined;
    return {
      domain,
      items,
      contributions: async (itemId) => {
        if (state.recent.length < 2) return state.recent.map(({ id }) => ({ id, weight: 1 }));
        leaveOneOut ??= this.model.userVectors(state.recent.map((_, left) =>
          state.recent.filter((__, i) => i !== left).map((item) => item.vector)));
        const without = await leaveOneOut;
        const itemVector = (await this.collection.retrieve([itemId], 'recommendation')).get(itemId)?.vector;
        if (!itemVector) return [];
        const full = dot(state.userVector, itemVector);
        return state.recent
          .map(({ id }, i) => ({ id, weight: full - dot(without[i], itemVector) }))
          .sort((a, b) => b.weight - a.weight);
      },
    };
  }

  /**
   * The top `first` hits of a domain that pass the exclusions and the attribute filter. The vector index knows no
   * attributes: a filter few items can match (by the attribute index) has those items scored exactly; a broader one
   * keeps the matching items among the index's nearest candidates, and only when too few of those match are all its
   * items scored (a chunk per turn of the event loop). No step goes through a whole domain at once.
   */
  private async search(
    using: VectorName,
    query: Float32Array,
    domain: string,
    first: number,
    excludeIds: ReadonlySet<string>,
    attributes?: AttributeFilter,
  ): Promise<ScoredItem[]> {
    const hits = (request: { limit: number; ids?: readonly string[] }) =>
      this.collection.search({ using, query, domains: [domain], excludeIds, ...request });
    if (!attributes || Object.keys(attributes).length === 0) return hits({ limit: first });
    const few = this.attributes.fewMatching(domain, attributes, this.tuning.fewMatches);
    if (few) return few.length === 0 ? [] : hits({ limit: first, ids: few });
    const limit = first * this.tuning.broadCandidates;
    const candidates = await hits({ limit });
    const kept = candidates.filter((hit) => this.attributes.matches(hit.id, attributes));
    // Fewer candidates than asked for: the domain has no more, so every item was looked at.
    if (kept.length >= first || candidates.length < limit) return kept.slice(0, first);
    return hits({ limit: first, ids: await this.attributes.allMatching(domain, attributes) });
  }

  private async userState(subject: Subject): Promise<UserState> {
    let history: readonly string[];
    if ('userId' in subject) {
      const recorded = await this.interactions.history(subject.userId, this.limits.maxHistoryInput);
      if (recorded === null) {
        throw new PlatformError('UNKNOWN_USER', `unknown user id ${JSON.stringify(subject.userId)}`, { id: subject.userId });
      }
      if (recorded.length === 0) throw new PlatformError('EMPTY_HISTORY', `user ${JSON.stringify(subject.userId)} has no interactions yet`);
      history = recorded;
    } else {
      history = subject.history;
      if (history.length === 0) throw new PlatformError('EMPTY_HISTORY', 'the history is empty');
      if (history.length > this.limits.maxHistoryInput) {
        throw new PlatformError('HISTORY_TOO_LONG', `a history may hold at most ${this.limits.maxHistoryInput} items, got ${history.length}`);
      }
    }
    const stored = await this.vectorsOf(history, 'recommendation');
    // Only the most recent items reach the sequence model; every history item is kept out of the results.
    const recent = history.slice(-this.model.maxHistory).map((id) => ({ id, vector: stored.get(id)!.vector }));
    const userVector = await this.model.userVector(recent.map((item) => item.vector));
    return { history, recent, userVector, defaultDomain: stored.get(history[history.length - 1])!.domain };
  }

  /**
   * The stored vectors of items. An id the catalogue does not have rejects the request (UNKNOWN_ITEM); one it has
   * but whose vectors this version's collection lacks (its write has not reached the index yet) rejects it too,
   * saying so (ITEM_NOT_INDEXED), never as if the item did not exist.
   */
  private async vectorsOf(ids: readonly string[], using: VectorName): Promise<Map<string, StoredVector>> {
    this.items.requireItems(ids);
    const stored = await this.collection.retrieve(ids, using);
    const lacking = [...new Set(ids)].filter((id) => !stored.has(id));
    if (lacking.length > 0) {
      throw new PlatformError('ITEM_NOT_INDEXED', `items not in model version ${this.model.version}'s index yet: ${listSome(lacking)}`, { ids: lacking });
    }
    return stored;
  }

  private checkFirst(first: number): void {
    if (!Number.isInteger(first) || first < 1 || first > this.limits.maxResults) {
      throw new PlatformError('LIMIT_EXCEEDED', `first must be between 1 and ${this.limits.maxResults}, got ${first}`);
    }
  }

  private async checkDomains(domains: readonly string[]): Promise<void> {
    for (const domain of domains) {
      if ((await this.collection.count(domain)) === 0) {
        throw new PlatformError('UNKNOWN_DOMAIN', `no items in domain ${JSON.stringify(domain)}`, { domain });
      }
    }
  }
}

function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}
