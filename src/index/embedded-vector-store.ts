/**
 * The embedded vector index: in-process HNSW graphs (usearch) over vectors kept in memory and persisted under
 * the data directory, one sub-directory per collection.
 *
 * A collection keeps every point in a slot; the vectors of slot s sit at row s of one matrix per named vector.
 * Each domain has its own HNSW graph per named vector (the domain filter is a choice of graphs), keyed by slot.
 * Slots are never reused while the collection is open: replacing a point gives it a new slot and retires the old
 * one, and saving writes the live points only, so a re-opened collection is compact.
 *
 * Like Qdrant, which scans small segments instead of using their HNSW graph, a domain with few points is searched
 * exactly: there the scan costs about as much as the graph walk, and it never misses a neighbour.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';
import type * as Usearch from 'usearch';

// usearch's ESM entry cannot find its native build (it walks up from a file: URL); its CommonJS entry can.
const { Index, MetricKind, ScalarKind } = createRequire(import.meta.url)('usearch') as typeof Usearch;
type Index = Usearch.Index;
type MetricKind = Usearch.MetricKind;
import type {
  CollectionDimensions,
  SearchHit,
  SearchRequest,
  StoredVector,
  VectorCollection,
  VectorName,
  VectorPoint,
  VectorStore,
} from './vector-index.js';
import { VECTOR_NAMES, checkDimensions } from './vector-index.js';

/** Domains with at most this many points are searched exactly (a full scan) instead of through their graph. */
export const EXACT_SEARCH_MAX_POINTS = 2048;

/** Cosine for item-to-item similarity, inner product for user-to-item scores. */
const METRIC: Record<VectorName, MetricKind> = { semantic: MetricKind.Cos, recommendation: MetricKind.IP };

interface CollectionFile {
  dimensions: CollectionDimensions;
  /** [id, domain] of each saved point, in the row order of the vector files. */
  points: [string, string][];
}

/** A float32 matrix that grows by doubling. */
class GrowableMatrix {
  private data: Float32Array;
  constructor(readonly dim: number, capacity = 1024) {
    this.data = new Float32Array(dim * capacity);
  }
  set(row: number, vector: Float32Array): void {
    if ((row + 1) * this.dim > this.data.length) {
      const bigger = new Float32Array(Math.max(this.data.length * 2, (row + 1) * this.dim));
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data.set(vector, row * this.dim);
  }
  row(row: number): Float32Array {
    return this.data.slice(row * this.dim, (row + 1) * this.dim);
  }
}

class EmbeddedCollection implements VectorCollection {
  private readonly ids: (string | null)[] = [];
  private readonly domains: string[] = [];
  private readonly slotOf = new Map<string, number>();
  /** The live slots of each domain. */
  private readonly domainSlots = new Map<string, Set<number>>();
  private readonly matrices: Record<VectorName, GrowableMatrix>;
  private readonly graphs = new Map<string, Record<VectorName, Index>>();
  private dirty = false;
  private flushing: Promise<void> = Promise.resolve();

  constructor(readonly name: string, readonly dimensions: CollectionDimensions, private readonly dir: string) {
    this.matrices = {
      semantic: new GrowableMatrix(dimensions.semantic),
      recommendation: new GrowableMatrix(dimensions.recommendation),
    };
  }

  static async open(dir: string, name: string, dimensions: CollectionDimensions): Promise<EmbeddedCollection> {
    const collection = new EmbeddedCollection(name, dimensions, dir);
    const saved = await readFile(path.join(dir, 'collection.json'), 'utf8').then(JSON.parse, () => null) as CollectionFile | null;
    if (saved) {
      for (const vectorName of VECTOR_NAMES) {
        if (saved.dimensions[vectorName] !== dimensions[vectorName]) {
          throw new Error(`collection ${name} stores ${vectorName} vectors of ${saved.dimensions[vectorName]} dimensions, not ${dimensions[vectorName]}`);
        }
      }
      const rows: Record<VectorName, Float32Array> = {
        semantic: await readVectors(path.join(dir, 'semantic.f32')),
        recommendation: await readVectors(path.join(dir, 'recommendation.f32')),
      };
      const points = saved.points.map(([id, domain], row) => ({
        id,
        domain,
        vectors: {
          semantic: rows.semantic.subarray(row * dimensions.semantic, (row + 1) * dimensions.semantic),
          recommendation: rows.recommendation.subarray(row * dimensions.recommendation, (row + 1) * dimensions.recommendation),
        },
      }));
      collection.insert(points);
      collection.dirty = false;
    }
    return collection;
  }

  async upsert(points: readonly VectorPoint[]): Promise<void> {
    checkDimensions(points, this.dimensions);
    await this.delete(points.map((point) => point.id));
    this.insert(points);
  }

  private insert(points: readonly VectorPoint[]): void {
    const byDomain = new Map<string, number[]>();
    for (const point of points) {
      const slot = this.ids.length;
      this.ids.push(point.id);
      this.domains.push(point.domain);
      this.slotOf.set(point.id, slot);
      this.slotsOf(point.domain).add(slot);
      for (const vectorName of VECTOR_NAMES) this.matrices[vectorName].set(slot, point.vectors[vectorName]);
      const slots = byDomain.get(point.domain) ?? [];
      slots.push(slot);
      byDomain.set(point.domain, slots);
    }
    for (const [domain, slots] of byDomain) {
      const graphs = this.graphsOf(domain);
      const keys = BigUint64Array.from(slots, (slot) => BigInt(slot));
      for (const vectorName of VECTOR_NAMES) {
        const dim = this.dimensions[vectorName];
        const matrix = new Float32Array(slots.length * dim);
        slots.forEach((slot, i) => matrix.set(this.matrices[vectorName].row(slot), i * dim));
        graphs[vectorName].add(keys, matrix, 0);
      }
    }
    if (points.length > 0) this.dirty = true;
  }

  private slotsOf(domain: string): Set<number> {
    let slots = this.domainSlots.get(domain);
    if (!slots) {
      slots = new Set();
      this.domainSlots.set(domain, slots);
    }
    return slots;
  }

  private graphsOf(domain: string): Record<VectorName, Index> {
    let graphs = this.graphs.get(domain);
    if (!graphs) {
      const make = (vectorName: VectorName) =>
        new Index({
          metric: METRIC[vectorName],
          dimensions: this.dimensions[vectorName],
          quantization: ScalarKind.F32,
          connectivity: 16,
          expansion_add: 128,
          expansion_search: 64,
          multi: false,
        });
      graphs = { semantic: make('semantic'), recommendation: make('recommendation') };
      this.graphs.set(domain, graphs);
    }
    return graphs;
  }

  async delete(ids: readonly string[]): Promise<void> {
    for (const id of ids) {
      const slot = this.slotOf.get(id);
      if (slot === undefined) continue;
      const graphs = this.graphsOf(this.domains[slot]);
      for (const vectorName of VECTOR_NAMES) graphs[vectorName].remove(BigInt(slot));
      this.ids[slot] = null;
      this.slotOf.delete(id);
      this.domainSlots.get(this.domains[slot])?.delete(slot);
      this.dirty = true;
    }
  }

  async retrieve(ids: readonly string[], using: VectorName): Promise<Map<string, StoredVector>> {
    const found = new Map<string, StoredVector>();
    for (const id of ids) {
      const slot = this.slotOf.get(id);
      if (slot !== undefined) found.set(id, { domain: this.domains[slot], vector: this.matrices[using].row(slot) });
    }
    return found;
  }

  async search(request: SearchRequest): Promise<SearchHit[]> {
    const domains = request.domains ?? [...this.graphs.keys()];
    const excluded = request.excludeIds ?? new Set<string>();
    const hits: SearchHit[] = [];
    for (const domain of domains) {
      const graph = this.graphs.get(domain)?.[request.using];
      const size = this.domainSlots.get(domain)?.size ?? 0;
      if (!graph || size === 0) continue;
      const accept = (slot: number) => {
        const id = this.ids[slot];
        return id === null || excluded.has(id) ? null : { id, domain, score: 0 };
      };
      const approximate = size > EXACT_SEARCH_MAX_POINTS ? searchGraph(graph, request.query, request.limit, accept) : null;
      hits.push(...(approximate ?? this.scan(domain, request.using, request.query, request.limit, accept)));
    }
    return hits.sort((a, b) => b.score - a.score).slice(0, request.limit);
  }

  /** Exact search over every point of a domain: for small domains, and when the approximate graph returns too few. */
  private scan(
    domain: string,
    using: VectorName,
    query: Float32Array,
    limit: number,
    accept: (slot: number) => SearchHit | null,
  ): SearchHit[] {
    const cosine = METRIC[using] === MetricKind.Cos;
    const queryNorm = Math.sqrt(dotProduct(query, query));
    const hits: SearchHit[] = [];
    for (const slot of this.domainSlots.get(domain) ?? []) {
      const hit = accept(slot);
      if (!hit) continue;
      const vector = this.matrices[using].row(slot);
      const dot = dotProduct(vector, query);
      hits.push({ ...hit, score: cosine ? dot / (Math.sqrt(dotProduct(vector, vector)) * queryNorm) : dot });
    }
    return hits.sort((a, b) => b.score - a.score).slice(0, limit);
  }

  async count(domain?: string): Promise<number> {
    if (domain !== undefined) return this.domainSlots.get(domain)?.size ?? 0;
    return this.slotOf.size;
  }

  async listIds(): Promise<string[]> {
    return [...this.slotOf.keys()];
  }

  async listDomains(): Promise<string[]> {
    return [...this.domainSlots].filter(([, slots]) => slots.size > 0).map(([domain]) => domain).sort();
  }

  /** Flushes run one after another, each writing the snapshot taken when it starts. */
  flush(): Promise<void> {
    this.flushing = this.flushing.catch(() => undefined).then(() => this.writeSnapshot());
    return this.flushing;
  }

  private async writeSnapshot(): Promise<void> {
    if (!this.dirty) return;
    // Everything written is copied before the first await, so writes arriving meanwhile wait for the next flush.
    const live = [...this.slotOf.values()].sort((a, b) => a - b);
    const rows = VECTOR_NAMES.map((vectorName) => {
      const dim = this.dimensions[vectorName];
      const matrix = new Float32Array(live.length * dim);
      live.forEach((slot, i) => matrix.set(this.matrices[vectorName].row(slot), i * dim));
      return [vectorName, matrix] as const;
    });
    const file: CollectionFile = { dimensions: this.dimensions, points: live.map((slot) => [this.ids[slot]!, this.domains[slot]]) };
    this.dirty = false;
    try {
      await mkdir(this.dir, { recursive: true });
      for (const [vectorName, matrix] of rows) {
        await writeAtomically(path.join(this.dir, `${vectorName}.f32`), Buffer.from(matrix.buffer));
      }
      // collection.json goes last: it names the rows of the vector files written before it.
      await writeAtomically(path.join(this.dir, 'collection.json'), JSON.stringify(file));
    } catch (error) {
      this.dirty = true;
      throw error;
    }
  }
}

/**
 * The best `limit` hits of one graph, skipping the slots `accept` turns down. Asks the graph for more candidates
 * until enough are accepted; null when even the whole graph's answer falls short (HNSW is approximate, and
 * removed points can leave parts of a graph unreachable), so the caller can scan exactly.
 */
function searchGraph(
  graph: Index,
  query: Float32Array,
  limit: number,
  accept: (slot: number) => SearchHit | null,
): SearchHit[] | null {
  const size = graph.size();
  // usearch reads the query from the start of its buffer, ignoring byteOffset: pass a copy.
  const ownQuery = query.slice();
  for (let wanted = Math.min(size, limit * 2 + 16); ; wanted = Math.min(size, wanted * 4)) {
    const matches = graph.search(ownQuery, wanted, 0);
    const hits: SearchHit[] = [];
    for (let i = 0; i < matches.keys.length; i++) {
      const hit = accept(Number(matches.keys[i]));
      if (hit) hits.push({ ...hit, score: 1 - matches.distances[i] });
    }
    if (hits.length >= limit) return hits.slice(0, limit);
    if (wanted >= size) return null;
  }
}

function dotProduct(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

async function readVectors(file: string): Promise<Float32Array> {
  const bytes = await readFile(file);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4).slice();
}

async function writeAtomically(file: string, content: string | Buffer): Promise<void> {
  const temporary = `${file}.tmp`;
  await writeFile(temporary, content);
  await rename(temporary, file);
}

/** The file under the store's root naming the active collection. */
const ACTIVE_FILE = 'ACTIVE';

/** Collections as directories under `root`. */
export class EmbeddedVectorStore implements VectorStore {
  private readonly open = new Map<string, EmbeddedCollection>();

  constructor(private readonly root: string) {}

  async collection(name: string, dimensions: CollectionDimensions): Promise<VectorCollection> {
    let collection = this.open.get(name);
    if (!collection) {
      collection = await EmbeddedCollection.open(path.join(this.root, name), name, dimensions);
      this.open.set(name, collection);
    }
    return collection;
  }

  async listCollections(): Promise<string[]> {
    const entries = await readdir(this.root, { withFileTypes: true }).catch(() => []);
    const names = new Set(entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name));
    for (const name of this.open.keys()) names.add(name);
    return [...names].sort();
  }

  async dropCollection(name: string): Promise<void> {
    this.open.delete(name);
    await rm(path.join(this.root, name), { recursive: true, force: true });
  }

  async setActiveCollection(name: string): Promise<void> {
    await mkdir(this.root, { recursive: true });
    await writeAtomically(path.join(this.root, ACTIVE_FILE), name);
  }

  async activeCollection(): Promise<string | undefined> {
    return readFile(path.join(this.root, ACTIVE_FILE), 'utf8').then((name) => name.trim(), () => undefined);
  }

  async close(): Promise<void> {
    for (const collection of this.open.values()) await collection.flush();
    this.open.clear();
  }
}
