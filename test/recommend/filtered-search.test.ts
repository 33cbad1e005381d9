/**
 * Attribute-filtered searches (issue #12: no query under the complexity limit may hold the event loop long on a
 * large catalogue). Each of their three ways gives the exact top results among the matching items, computed here
 * independently; the work of a selective filter does not grow with the domain; and a scan is spread over turns of
 * the event loop by the turn budget. Real components: the tiny bundle's model (for user vectors), the embedded
 * vector index, the catalogue's read model and attribute index on PGlite; the catalogue is written directly through
 * the read model and the collection with made-up vectors (no encoder), as the benchmark does at 100k items.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { random } from '../../bench/lib/catalogue.js';
import { ItemReadModel } from '../../src/catalog/item-read-model.js';
import type { CatalogItem } from '../../src/catalog/item.js';
import { openDatabase, type Database } from '../../src/db/index.js';
import { Interactions } from '../../src/events/interactions.js';
import { EmbeddedVectorStore } from '../../src/index/embedded-vector-store.js';
import { TurnBudget, VISIT_WORK } from '../../src/turn-budget.js';
import type { VectorCollection, VectorPoint } from '../../src/index/vector-index.js';
import { RecommendationModel } from '../../src/inference/recommendation-model.js';
import { AttributeMatcher, type AttributeFilter } from '../../src/recommend/attribute-filter.js';
import { Recommender } from '../../src/recommend/recommender.js';
import { tinyBundle } from '../support/fixtures.js';
import { turnsDuring } from '../support/turns.js';
import { cosine, dot } from '../support/vectors.js';

/** The real budget, with the work it was asked for added up. */
class CountingBudget extends TurnBudget {
  taken = 0;
  override take(work: number): Promise<void> {
    this.taken += work;
    return super.take(work);
  }
}



const PER_TURN = 8192; // vector components per turn: 128 semantic vectors of the tiny bundle (64 dimensions)
const RARE = 20;
const FAR = 300;

describe('attribute-filtered searches', () => {
  let dir: string;
  let db: Database;
  let model: RecommendationModel;
  let collection: VectorCollection;
  let budget: CountingBudget;
  let recommender: Recommender;
  const items = new Map<string, CatalogItem>();
  const vectors = new Map<string, { semantic: Float32Array; recommendation: Float32Array }>();

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-filtered-'));
    db = await openDatabase({ dataDir: dir });
    model = await RecommendationModel.load(tinyBundle());
    const { semantic, recommendation } = model.dimensions;
    const next = random(12);
    const vector = (n: number) => Float32Array.from({ length: n }, () => next() * 2 - 1);
    const points: VectorPoint[] = [];
    // Two domains of 600 and 1800 items, each with the same query item `<domain>:q`, 20 items of a rare brand, and
    // (in the large one) 300 items tier "far" pointing away from the query; the others are tier "near".
    for (const [domain, size] of [['small', 600], ['large', 1800]] as const) {
      const query = { semantic: vector(semantic), recommendation: vector(recommendation) };
      for (let i = 0; i < size; i++) {
        const id = i === 0 ? `${domain}:q` : `${domain}:${i}`;
        const far = domain === 'large' && i > RARE && i <= RARE + FAR;
        const item: CatalogItem = {
          id, domain, title: id,
          attributes: { brand: i > 0 && i <= RARE ? 'rare' : 'common', tier: far ? 'far' : 'near', rank: i },
        };
        const own = i === 0 ? query : {
          semantic: far ? query.semantic.map((x) => -x + (next() - 0.5) * 0.1) : vector(semantic),
          recommendation: far ? query.recommendation.map((x) => -x + (next() - 0.5) * 0.1) : vector(recommendation),
        };
        items.set(id, item);
        vectors.set(id, own);
        points.push({ id, domain, vectors: own });
      }
    }
    const readModel = await ItemReadModel.load(db);
    readModel.put([...items.values()]);
    budget = new CountingBudget(PER_TURN);
    collection = await new EmbeddedVectorStore(path.join(dir, 'vectors'), budget).collection('items_test', model.dimensions);
    await collection.upsert(points);
    recommender = new Recommender(model, collection, readModel, new Interactions(db, readModel, { maxInteractionsPerBatch: 100 }),
      { maxResults: 100, maxHistoryInput: 50 }, new AttributeMatcher(readModel, budget), { fewMatches: 50, broadCandidates: 2 });
  });

  after(async () => {
    await model?.release();
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The top `first` ids of a domain matching `filter` (all of its entries) by `score`, `skip` left out. */
  function expected(domain: string, filter: AttributeFilter, score: (id: string) => number, first: number, skip: string[]): string[] {
    return [...items.values()]
      .filter((item) => item.domain === domain && !skip.includes(item.id)
        && Object.entries(filter).every(([key, value]) => item.attributes[key] === value))
      .map((item) => ({ id: item.id, score: score(item.id) }))
      .sort((a, b) => b.score - a.score)
      .slice(0, first)
      .map((hit) => hit.id);
  }

  it('gives the exact top matching items whichever way it takes', async () => {
    const cases: [string, AttributeFilter][] = [
      ['few items match: those are scored', { brand: 'rare' }],
      ['few match through the rarer of two values', { brand: 'rare', tier: 'near' }],
      ['many match, enough among the nearest', { tier: 'near' }],
      ['many match, none among the nearest: all of them are scored', { tier: 'far' }],
      ['no item holds the value', { brand: 'none' }],
    ];
    for (const [what, filter] of cases) {
      const query = vectors.get('large:q')!.semantic;
      const similar = await recommender.similarItems('large:q', { first: 10, filter: { attributes: filter } });
      assert.deepEqual(similar.items.map((hit) => hit.id),
        expected('large', filter, (id) => cosine(vectors.get(id)!.semantic, query), 10, ['large:q']), `similarItems: ${what}`);
    }
    const history = ['large:1', 'large:400', 'large:q'];
    const user = await model.userVector(history.map((id) => vectors.get(id)!.recommendation));
    for (const filter of [{ tier: 'far' }, { brand: 'rare' }, { tier: 'near' }] as AttributeFilter[]) {
      const list = await recommender.recommend({ history }, { first: 5, filter: { attributes: filter } });
      assert.deepEqual(list.items.map((hit) => hit.id),
        expected('large', filter, (id) => dot(vectors.get(id)!.recommendation, user), 5, history), JSON.stringify(filter));
    }
  });

  it('does work for a selective filter that does not grow with the domain', async () => {
    const work = async (domain: string) => {
      const before = budget.taken;
      const result = await recommender.similarItems(`${domain}:q`, { first: 10, filter: { attributes: { brand: 'rare' } } });
      assert.equal(result.items.length, 10);
      return budget.taken - before;
    };
    const small = await work('small');
    const large = await work('large');
    assert.equal(small, large);
    // The rare items are looked up and scored, nothing else: 20 lookups and 20 vectors of 64 dimensions.
    assert.equal(large, RARE * VISIT_WORK + RARE * model.dimensions.semantic);
  });

  it('spreads a scan over turns of the event loop, a budget per turn', async () => {
    const ids = [...items.values()].filter((item) => item.domain === 'large').map((item) => item.id);
    const query = vectors.get('large:q')!.semantic;
    const before = budget.taken;
    const { result, turns } = await turnsDuring(() => collection.search({ using: 'semantic', query, limit: 5, ids }));
    const work = budget.taken - before;
    assert.equal(work, ids.length * (VISIT_WORK + model.dimensions.semantic));
    // At most one budget per turn: the event loop turned (and could answer anything else) between them.
    assert.ok(turns >= Math.ceil(work / PER_TURN) - 1, `${turns} turns for ${work} components`);
    assert.deepEqual(result.map((hit) => hit.id), expected('large', {}, (id) => cosine(vectors.get(id)!.semantic, query), 5, []));
  });
});
