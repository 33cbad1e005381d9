/**
 * A switch between versions whose item encoders are the same (issue #16): the daily retraining of the sequence
 * model on new interactions keeps the encoder byte for byte, so every item's semantic vector (the encoder's output)
 * is already in the serving version's collection. Only what differs is computed: the recommendation vectors, by
 * the new version's adapter from those semantic vectors. Items the source lacks are left for the catalogue's
 * index sync (index-sync.ts), which embeds them with the encoder as usual.
 */
import type { ItemReadModel } from '../catalog/item-read-model.js';
import type { EmbeddingTarget } from '../catalog/catalog.js';
import { SAMPLE_TOLERANCE } from '../inference/bundle-loader.js';
import type { RecommendationModel } from '../inference/recommendation-model.js';
import type { VectorPoint } from '../index/vector-index.js';
import { BackgroundPace } from '../turn-budget.js';

/** Whether two models give every title the same semantic vector (RecommendationModel.encoderIdentity). */
export function sameEncoder(a: RecommendationModel, b: RecommendationModel): boolean {
  return a.encoderIdentity === b.encoderIdentity;
}

export interface ReuseResult {
  /** Items whose semantic vector came from the source and whose recommendation vector the target's adapter made. */
  reused: number;
  /** Items the target's collection already held with the source's semantic vector (a version served before). */
  unchanged: number;
  /** Items of the catalogue the source collection lacks (left for the index sync). */
  missing: number;
}

/** Points written per step: a step (two reads, one adapter run, one write) holds the event loop about a millisecond. */
const REUSE_BATCH = 16;
/** Share of the event loop's time the reuse takes (BackgroundPace); requests have the rest. */
const REUSE_SHARE = 0.25;

/**
 * Fills `target`'s collection from `source`'s semantic vectors. Returns null, having written nothing, when a probe
 * of the stored vectors shows they are not what the target's encoder gives (a vector store that changes vectors on
 * the way in, say): then the caller re-embeds.
 */
export async function reuseSemanticVectors(
  source: EmbeddingTarget,
  target: EmbeddingTarget,
  items: ItemReadModel,
  progress?: (done: number, total: number) => void,
  /** keep: store the computed vectors for other replicas (target.embedder.keep), as the replica that started the switch does. */
  options: { keep?: boolean } = {},
): Promise<ReuseResult | null> {
  const rows = [...items.values()];
  if (!(await storedVectorsMatch(source, target.model, rows.slice(0, 8)))) return null;
  const result: ReuseResult = { reused: 0, unchanged: 0, missing: 0 };
  const pace = new BackgroundPace(REUSE_SHARE);
  // Each step's vectors are read into the same two buffers (see asMatrix for why): a step's writes are done before
  // the next step reads.
  const scratch = (of: EmbeddingTarget) => new Float32Array(REUSE_BATCH * of.collection.dimensions.semantic);
  const [sourceRows, targetRows] = [scratch(source), scratch(target)];
  progress?.(0, rows.length);
  for (let start = 0; start < rows.length; start += REUSE_BATCH) {
    const chunk = rows.slice(start, start + REUSE_BATCH);
    const ids = chunk.map((row) => row.id);
    const [stored, held] = await Promise.all([
      source.collection.retrieve(ids, 'semantic', sourceRows), target.collection.retrieve(ids, 'semantic', targetRows),
    ]);
    const todo = chunk.filter((row) => {
      const vector = stored.get(row.id);
      if (!vector) {
        result.missing += 1;
        return false;
      }
      const mine = held.get(row.id);
      if (mine && mine.domain === row.domain && equal(mine.vector, vector.vector)) {
        result.unchanged += 1;
        return false;
      }
      return true;
    });
    if (todo.length > 0) {
      const semantic = todo.map((row) => stored.get(row.id)!.vector);
      const recommendation = await target.model.adaptMatrix(...asMatrix(semantic));
      const vectors = todo.map((_, i) => ({ semantic: semantic[i], recommendation: recommendation[i] }));
      // An item replaced or deleted meanwhile keeps out: the write put its own vectors into this collection too.
      const points: VectorPoint[] = [];
      todo.forEach((row, i) => {
        if (items.get(row.id) === row) points.push({ id: row.id, domain: row.domain, vectors: vectors[i] });
      });
      await target.collection.upsert(points);
      // Replicas over one PostgreSQL: the others (joining or restarting later) read them instead of encoding.
      if (options.keep) await target.embedder.keep?.(todo.map((row) => row.title), vectors);
      result.reused += points.length;
    }
    progress?.(start + chunk.length, rows.length);
    await pace.next();
  }
  return result;
}

/** Whether the source's stored semantic vectors of a few items are what the target's encoder gives their titles. */
async function storedVectorsMatch(source: EmbeddingTarget, model: RecommendationModel, probe: readonly { id: string; title: string }[]): Promise<boolean> {
  const stored = await source.collection.retrieve(probe.map((row) => row.id), 'semantic');
  const present = probe.filter((row) => stored.has(row.id));
  if (present.length === 0) return true;
  const fresh = await model.encode(present.map((row) => row.title));
  return present.every((row, i) => {
    const kept = stored.get(row.id)!.vector;
    return kept.length === fresh[i].length && kept.every((value, j) => Math.abs(value - fresh[i][j]) <= SAMPLE_TOLERANCE);
  });
}

/**
 * The rows as one [rows, dim] matrix for the adapter: the buffer they are views of where they lie one after another
 * in it (what `retrieve` of the embedded store gives), else a copy. Every buffer allocated here is memory outside
 * V8's heap that counts towards its next collection: one copy per reused item brought full collections every few
 * hundred milliseconds into a same-encoder switch under load.
 */
function asMatrix(rows: readonly Float32Array[]): [Float32Array, number] {
  const [first] = rows;
  const dim = first.length;
  const consecutive = rows.every((row, i) => row.buffer === first.buffer && row.length === dim && row.byteOffset === first.byteOffset + i * dim * 4);
  if (consecutive) return [new Float32Array(first.buffer, first.byteOffset, rows.length * dim), rows.length];
  const matrix = new Float32Array(rows.length * dim);
  rows.forEach((row, i) => matrix.set(row, i * dim));
  return [matrix, rows.length];
}

function equal(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
