/**
 * Item vectors computed once per bundle and kept under .tmp/bench/vectors/<model version>-<graph hashes>/, so that
 * re-runs of the benchmarks do not embed the same titles again. Titles are the key: the encoder sees nothing else.
 */
import { createHash } from 'node:crypto';
import { appendFile, mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ItemVectors, RecommendationModel } from '../../src/inference/recommendation-model.js';
import { BENCH_TMP } from './paths.js';

/** Rows written to disk at a time while embedding, so an interrupted fill keeps most of its work. */
const PERSIST_EVERY = 1024;

export class VectorCache {
  private readonly vectors = new Map<string, ItemVectors>();

  private constructor(readonly dir: string, private readonly model: RecommendationModel) {}

  /** The cache directory of a bundle: its version plus the sha256 of its encoder and adapter graphs. */
  static dirOf(model: RecommendationModel, root = path.join(BENCH_TMP, 'vectors')): string {
    const files = model.manifest.files as Record<string, { sha256: string }>;
    const hash = createHash('sha256')
      .update(files[model.manifest.graphs.encoder.file]?.sha256 ?? '')
      .update(files[model.manifest.graphs.adapter.file]?.sha256 ?? '')
      .digest('hex').slice(0, 12);
    return path.join(root, `${model.version.replace(/[^A-Za-z0-9_.-]/g, '_')}-${hash}`);
  }

  static async open(model: RecommendationModel, root?: string): Promise<VectorCache> {
    const cache = new VectorCache(VectorCache.dirOf(model, root), model);
    await cache.load();
    return cache;
  }

  get size(): number {
    return this.vectors.size;
  }

  has(title: string): boolean {
    return this.vectors.has(title);
  }

  get(title: string): ItemVectors {
    const vectors = this.vectors.get(title);
    if (!vectors) throw new Error(`no cached vectors for ${JSON.stringify(title)}`);
    return vectors;
  }

  /** Embeds (with the real encoder and adapter, `batchSize` titles per call) the titles the cache lacks. */
  async fill(
    titles: readonly string[],
    options: { batchSize?: number; onProgress?: (done: number, total: number, perSecond: number) => void } = {},
  ): Promise<{ embedded: number; seconds: number }> {
    const batchSize = options.batchSize ?? 64;
    const missing = [...new Set(titles)].filter((title) => !this.vectors.has(title));
    const started = performance.now();
    let pending: string[] = [];
    for (let start = 0; start < missing.length; start += batchSize) {
      const chunk = missing.slice(start, start + batchSize);
      const vectors = await this.model.embedItems(chunk);
      chunk.forEach((title, i) => this.vectors.set(title, vectors[i]));
      pending.push(...chunk);
      if (pending.length >= PERSIST_EVERY || start + batchSize >= missing.length) {
        await this.append(pending);
        pending = [];
        const done = Math.min(start + batchSize, missing.length);
        options.onProgress?.(done, missing.length, done / ((performance.now() - started) / 1000));
      }
    }
    return { embedded: missing.length, seconds: (performance.now() - started) / 1000 };
  }

  private files() {
    return {
      titles: path.join(this.dir, 'titles.jsonl'),
      semantic: path.join(this.dir, 'semantic.f32'),
      recommendation: path.join(this.dir, 'recommendation.f32'),
    };
  }

  private async load(): Promise<void> {
    const files = this.files();
    const text = await readFile(files.titles, 'utf8').catch(() => '');
    const titles = text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as string);
    const { semantic: semanticDim, recommendation: recommendationDim } = this.model.dimensions;
    const semantic = await readRows(files.semantic);
    const recommendation = await readRows(files.recommendation);
    // A fill interrupted between the three appends leaves them uneven: keep the rows all three have.
    const rows = Math.min(titles.length, Math.floor(semantic.length / semanticDim), Math.floor(recommendation.length / recommendationDim));
    for (let i = 0; i < rows; i++) {
      this.vectors.set(titles[i], {
        semantic: semantic.slice(i * semanticDim, (i + 1) * semanticDim),
        recommendation: recommendation.slice(i * recommendationDim, (i + 1) * recommendationDim),
      });
    }
    if (rows !== titles.length || rows * semanticDim !== semantic.length || rows * recommendationDim !== recommendation.length) {
      await mkdir(this.dir, { recursive: true });
      await writeFile(files.titles, titles.slice(0, rows).map((title) => JSON.stringify(title) + '\n').join(''));
      await truncate(files.semantic, rows * semanticDim * 4).catch(() => undefined);
      await truncate(files.recommendation, rows * recommendationDim * 4).catch(() => undefined);
    }
  }

  private async append(titles: readonly string[]): Promise<void> {
    if (titles.length === 0) return;
    await mkdir(this.dir, { recursive: true });
    const files = this.files();
    const rows = (name: 'semantic' | 'recommendation') => {
      const dim = this.model.dimensions[name];
      const matrix = new Float32Array(titles.length * dim);
      titles.forEach((title, i) => matrix.set(this.vectors.get(title)![name], i * dim));
      return Buffer.from(matrix.buffer);
    };
    await appendFile(files.semantic, rows('semantic'));
    await appendFile(files.recommendation, rows('recommendation'));
    // The titles go last: a title line promises that its rows are there.
    await appendFile(files.titles, titles.map((title) => JSON.stringify(title) + '\n').join(''));
  }
}

async function readRows(file: string): Promise<Float32Array> {
  const bytes = await readFile(file).catch(() => Buffer.alloc(0));
  return new Float32Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.byteLength / 4)).slice();
}

/**
 * Vectors of a made-up item from its two real parents: the semantic vector is the mean of theirs rescaled to their
 * mean length, and the recommendation vector is what the bundle's own adapter makes of it. Used for the grown
 * catalogue, where embedding 60k made-up titles would take longer than the benchmark itself.
 */
export async function deriveVectors(
  model: RecommendationModel,
  parents: readonly [ItemVectors, ItemVectors][],
  batchSize = 4096,
): Promise<ItemVectors[]> {
  const out: ItemVectors[] = [];
  for (let start = 0; start < parents.length; start += batchSize) {
    const semantic = parents.slice(start, start + batchSize).map(([a, b]) => {
      const mixed = new Float32Array(a.semantic.length);
      for (let i = 0; i < mixed.length; i++) mixed[i] = (a.semantic[i] + b.semantic[i]) / 2;
      const scale = (norm(a.semantic) + norm(b.semantic)) / 2 / (norm(mixed) || 1);
      for (let i = 0; i < mixed.length; i++) mixed[i] *= scale;
      return mixed;
    });
    const recommendation = await model.adapt(semantic);
    semantic.forEach((vector, i) => out.push({ semantic: vector, recommendation: recommendation[i] }));
  }
  return out;
}

function norm(vector: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < vector.length; i++) sum += vector[i] * vector[i];
  return Math.sqrt(sum);
}
