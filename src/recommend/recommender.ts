/**
 * Recommendations: a history of item ids -> their recommendation vectors -> sequence model -> user vector ->
 * top-k of the vector index by dot product, in the requested domain, the history itself excluded.
 */
import { PlatformError, listSome } from '../errors.js';
import type { Interactions } from '../events/interactions.js';
import type { RecommendationModel } from '../inference/recommendation-model.js';
import type { VectorCollection } from '../index/vector-index.js';

export interface RecommendationLimits {
  /** Largest number of results one request may ask for. */
  maxResults: number;
  /** Largest history a request may pass. */
  maxHistoryInput: number;
}

export interface HistoryRequest {
  /** Item ids, oldest first. */
  history: readonly string[];
  /** Domain to recommend from; the most recent history item's domain when absent. */
  domain?: string;
  first: number;
}

export interface ScoredItem {
  id: string;
  domain: string;
  score: number;
}

export class Recommender {
  constructor(
    private readonly model: RecommendationModel,
    private readonly collection: VectorCollection,
    private readonly interactions: Interactions,
    private readonly limits: RecommendationLimits,
  ) {}

  get modelVersion(): string {
    return this.model.version;
  }

  async forHistory(request: HistoryRequest): Promise<ScoredItem[]> {
    const { history, first } = request;
    if (history.length === 0) throw new PlatformError('EMPTY_HISTORY', 'the history is empty');
    if (history.length > this.limits.maxHistoryInput) {
      throw new PlatformError('HISTORY_TOO_LONG', `a history may hold at most ${this.limits.maxHistoryInput} items, got ${history.length}`);
    }
    if (!Number.isInteger(first) || first < 1 || first > this.limits.maxResults) {
      throw new PlatformError('LIMIT_EXCEEDED', `first must be between 1 and ${this.limits.maxResults}, got ${first}`);
    }
    const stored = await this.collection.retrieve(history, 'recommendation');
    const unknown = [...new Set(history)].filter((id) => !stored.has(id));
    if (unknown.length > 0) throw new PlatformError('UNKNOWN_ITEM', `unknown item ids: ${listSome(unknown)}`, { ids: unknown });
    // Only the most recent items reach the sequence model; every history item is kept out of the results.
    const recent = history.slice(-this.model.maxHistory).map((id) => stored.get(id)!);
    const domain = request.domain ?? recent[recent.length - 1].domain;
    if ((await this.collection.count(domain)) === 0) {
      throw new PlatformError('UNKNOWN_DOMAIN', `no items in domain ${JSON.stringify(domain)}`, { domain });
    }
    const userVector = await this.model.userVector(recent.map((item) => item.vector));
    return this.collection.search({
      using: 'recommendation',
      query: userVector,
      limit: first,
      domains: [domain],
      excludeIds: new Set(history),
    });
  }

  async forUser(userId: string, request: Omit<HistoryRequest, 'history'>): Promise<ScoredItem[]> {
    const history = await this.interactions.history(userId, this.limits.maxHistoryInput);
    if (history === null) throw new PlatformError('UNKNOWN_USER', `unknown user id ${JSON.stringify(userId)}`, { id: userId });
    if (history.length === 0) throw new PlatformError('EMPTY_HISTORY', `user ${JSON.stringify(userId)} has no interactions yet`);
    return this.forHistory({ ...request, history });
  }

}
