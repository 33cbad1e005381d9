/**
 * The embedded vector index: in-process HNSW graphs (usearch) over vectors kept in memory and persisted under
 * the data directory, one sub-directory per collection.
 *
 * A collection keeps every point in a slot; the vectors of slot s sit at row s of one matrix per named vector.
 * Each domain has its own HNSW graph per named vector (the domain filter is a choice of graphs), keyed by slot.
 * Slots are never reused: replacing a point gives it a new slot and retires the old one. Slot numbers are saved
 * with the collection, so that saved graphs keep meaning the same points; a re-opened collection whose live points
 * fill less than half of its slot numbers is renumbered compactly instead, and its graphs are rebuilt.
 *
 * A snapshot (flush) writes the vectors of the live points and the graphs that changed enough since they were last
 * saved, then collection.json, which names those files; collection.json is replaced last and atomically, so it only
 * ever names complete files of one snapshot. Opening a collection loads each domain's saved graphs, adds the points
 * stored after they were saved and removes those deleted since; a graph file that is missing or not the one
 * collection.json names is rebuilt from the vectors instead.
 *
 * A collection filled before it serves (a model switch fills the new version's collection) keeps its graphs out of
 * the event loop: during fillInBulk, writes only place points, the domains they touch are searched exactly, and at
 * the end each such domain's graphs are built anew in a worker thread (about a millisecond of one core per point of a
 * large graph, which on the event loop made every request of a 9-18 s switch wait behind inserts), and served as
 * read-only memory-mapped views of the files the worker saved until a write reaches the domain.
 *
 * Like Qdrant, which scans small segments instead of using their HNSW graph, a domain with few points is searched
 * exactly: there the scan costs about as much as the graph walk, and it never misses a neighbour. In a larger domain
 * the graph (float16) proposes candidates and every score returned is computed exactly on the float32 rows.
 * Searches run on the event loop, so what grows with the catalogue (exact scans, graph searches for many candidates)
 * takes its share of a budget per turn of the event loop (turn-budget.ts) and waits for the next turn when it is spent.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sha256OfFile } from '../file-hash.js';
import { BlockMatrix } from './block-matrix.js';
import {
  addToGraph,
  buildGraphOffThread,
  createGraph,
  GRAPH_SCALAR,
  GRAPH_WORK_PER_CANDIDATE,
  GRAPH_WORK_PER_INSERTED_DIMENSION,
  loadGraph,
  loadGraphFile,
  viewGraphFile,
  ranksByCosine,
  saveGraph,
  searchGraph,
  type Graph,
  type GraphFile,
} from './hnsw-graph.js';
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
import { VECTOR_NAMES, checkDimensions, checkRoom } from './vector-index.js';
import { sharedTurnBudget, sharedWriteBudget, VISIT_WORK, type TurnBudget } from '../turn-budget.js';

/** Domains with at most this many points are searched exactly (a full scan) instead of through their graph. */
export const EXACT_SEARCH_MAX_POINTS = 2048;

/**
 * A flush saves a domain's graphs again once the points added to or removed from it since they were last saved
 * reach this share of its points. Until then the saved graphs stay, and opening the collection brings them up to
 * date (cheap for a small share); closing the store saves every changed graph.
 */
export const GRAPH_RESAVE_SHARE = 0.1;

/** collection.json: what a snapshot holds. */
interface CollectionFile {
  dimensions: CollectionDimensions;
  /** [id, domain] of each saved point, in the row order of the vector files. */
  points: [string, string][];
  /** The vector files, one row per point; absent in snapshots written before graphs were saved (`<name>.f32`). */
  vectors?: Record<VectorName, string>;
  /** The slot of each point, row by row; absent in snapshots written before graphs were saved. */
  slots?: number[];
  /** The first slot number never used: slots are not reused, so a saved graph's keys keep their meaning. */
  nextSlot?: number;
  /** The saved graphs of each domain. */
  graphs?: SavedGraphs[];
}

/** A domain's graphs as saved by some snapshot (the same one or an earlier one). */
interface SavedGraphs {
  domain: string;
  /** nextSlot when the graphs were saved: a key below it that is not a live slot now was removed since. */
  nextSlot: number;
  files: Record<VectorName, GraphFile>;
}

/** How each domain's graphs came back when the collection was opened. */
export interface GraphsOnOpen {
  /** Domains whose saved graphs were loaded as they were. */
  loaded: string[];
  /** Domains whose saved graphs were loaded and brought up to date with the points stored or deleted since. */
  updated: string[];
  /** Domains whose graphs were built anew from the vectors (no saved graphs, or unusable ones). */
  rebuilt: string[];
}

/** usearch's thread count for "one per core": graphs built while opening a collection, before it serves. */
const ALL_CORES = 0;
/** usearch's thread count for inserts while serving (hnsw-graph.ts addToGraph says why one). */
const SERVING_THREADS = 1;

/** Where graphs built in a worker thread are written before they are loaded: a sub-directory of the collection's. */
const BUILDING_PREFIX = 'building-';

/** Most items a scan goes through between two looks at the turn budget (turn-budget.ts). */
export const SCAN_CHUNK = 1024;

/** The best `limit` hits seen so far, by score, the first seen first among equal scores. */
class BestHits {
  private list: SearchHit[] = [];
  constructor(private readonly limit: number) {}
  add(hit: SearchHit): void {
    this.list.push(hit);
  }
  /** Drops all but the best `limit`. */
  prune(): void {
    if (this.list.length <= this.limit) return;
    this.list.sort((a, b) => b.score - a.score);
    this.list.length = this.limit;
  }
  hits(): SearchHit[] {
    return this.list.sort((a, b) => b.score - a.score).slice(0, this.limit);
  }
}

type DomainGraphs = Record<VectorName, Graph>;

export class EmbeddedCollection implements VectorCollection {
  /** The id in each slot; null for a retired slot. Its length is the next slot number. */
  private readonly ids: (string | null)[] = [];
  private readonly domains: string[] = [];
  private readonly slotOf = new Map<string, number>();
  /** The live slots of each domain. */
  private readonly domainSlots = new Map<string, Set<number>>();
  private readonly matrices: Record<VectorName, BlockMatrix>;
  private readonly graphs = new Map<string, DomainGraphs>();
  /** Points added to or removed from each domain's graphs since they were last saved. */
  private readonly graphChanges = new Map<string, number>();
  /** Each domain's graph files as collection.json names them now. */
  private savedGraphs = new Map<string, SavedGraphs>();
  /** Whether the collection is being filled in bulk (fillInBulk): writes leave the graphs alone. */
  private bulk = false;
  /** Domains whose graphs lack writes made in bulk: searched exactly until their graphs are built anew. */
  private readonly staleDomains = new Set<string>();
  /**
   * Domains whose graphs, built by buildStaleGraphs, are served as read-only views of their files (memory-mapped,
   * usearch `view`), with those files' paths. Loading a graph is synchronous and held the event loop 17-37 ms for the
   * 576-dimension graph of 16,859 items at the end of every model switch; a view takes about 2 ms. The first write to
   * the domain loads them (graphsOf), so a switch of a catalogue that nobody writes to meanwhile loads none.
   */
  private readonly viewedGraphs = new Map<string, Record<VectorName, string>>();
  /** What inserting one point into its domain's two graphs costs, in the units of the write budget. */
  private readonly insertWork: number;
  private dirty = false;
  private flushing: Promise<void> = Promise.resolve();
  /** The domains whose graphs are read-only views now (viewedGraphs), for tests and logs. */
  get graphsViewed(): string[] {
    return [...this.viewedGraphs.keys()];
  }

  /** How the graphs came back when the collection was opened (all empty for a new collection). */
  graphsOnOpen: GraphsOnOpen = { loaded: [], updated: [], rebuilt: [] };

  constructor(
    readonly name: string,
    readonly dimensions: CollectionDimensions,
    private readonly dir: string,
    private readonly budget: TurnBudget = sharedTurnBudget,
    /** Writes (graph inserts, snapshot copies) take from this one: see sharedWriteBudget. */
    private readonly writeBudget: TurnBudget = sharedWriteBudget,
  ) {
    this.insertWork = (dimensions.semantic + dimensions.recommendation) * GRAPH_WORK_PER_INSERTED_DIMENSION;
    this.matrices = {
      semantic: new BlockMatrix(dimensions.semantic),
      recommendation: new BlockMatrix(dimensions.recommendation),
    };
  }

  static async open(
    dir: string, name: string, dimensions: CollectionDimensions, budget?: TurnBudget, writeBudget?: TurnBudget,
  ): Promise<EmbeddedCollection> {
    const collection = new EmbeddedCollection(name, dimensions, dir, budget, writeBudget);
    // The directory now, not at the first flush: a collection that cannot be stored fails when it is opened.
    await mkdir(dir, { recursive: true });
    // Graphs a worker was building when the process stopped are of no use: nothing is building before open.
    for (const entry of await readdir(dir)) if (entry.startsWith(BUILDING_PREFIX)) await rm(path.join(dir, entry), { recursive: true, force: true });
    const saved = await readFile(path.join(dir, 'collection.json'), 'utf8').then(JSON.parse, () => null) as CollectionFile | null;
    if (saved) await collection.restore(saved);
    return collection;
  }

  /** Fills a new collection from a snapshot: points in their saved slots, graphs loaded where possible. */
  private async restore(saved: CollectionFile): Promise<void> {
    for (const vectorName of VECTOR_NAMES) {
      if (saved.dimensions[vectorName] !== this.dimensions[vectorName]) {
        throw new Error(`collection ${this.name} stores ${vectorName} vectors of ${saved.dimensions[vectorName]} dimensions, not ${this.dimensions[vectorName]}`);
      }
    }
    const count = saved.points.length;
    const rows = {} as Record<VectorName, Float32Array>;
    for (const vectorName of VECTOR_NAMES) {
      const file = saved.vectors?.[vectorName] ?? `${vectorName}.f32`;
      rows[vectorName] = await readVectors(path.join(this.dir, file));
      if (rows[vectorName].length !== count * this.dimensions[vectorName]) {
        throw new Error(`collection ${this.name}: ${file} holds ${rows[vectorName].length / this.dimensions[vectorName]} rows, `
          + `collection.json names ${count} points (remove ${this.dir} to rebuild it from the database)`);
      }
    }
    const { slots, nextSlot } = saved;
    const keepSlots = slots !== undefined && nextSlot !== undefined && slots.length === count && count * 2 >= nextSlot;
    this.ids.length = keepSlots ? nextSlot : count;
    this.ids.fill(null);
    saved.points.forEach(([id, domain], row) => {
      const slot = keepSlots ? slots[row] : row;
      this.place(slot, id, domain, {
        semantic: rows.semantic.subarray(row * this.dimensions.semantic, (row + 1) * this.dimensions.semantic),
        recommendation: rows.recommendation.subarray(row * this.dimensions.recommendation, (row + 1) * this.dimensions.recommendation),
      });
    });

    // Saved graphs are keyed by the saved slot numbers: renumbered slots make them useless.
    const savedGraphs = new Map(keepSlots ? (saved.graphs ?? []).map((entry) => [entry.domain, entry]) : []);
    const retired = this.retiredSlots();
    for (const [domain, domainSlots] of this.domainSlots) {
      const entry = savedGraphs.get(domain);
      const restored = entry && await this.loadGraphs(entry, [...domainSlots], retired);
      if (restored) {
        this.graphs.set(domain, restored.graphs);
        this.savedGraphs.set(domain, entry);
        this.graphChanges.set(domain, restored.changes);
        (restored.changes === 0 ? this.graphsOnOpen.loaded : this.graphsOnOpen.updated).push(domain);
      } else {
        this.addToGraphs(domain, [...domainSlots], ALL_CORES);
        this.graphsOnOpen.rebuilt.push(domain);
      }
    }
    // Rebuilt graphs and renumbered slots are saved with the next flush.
    this.dirty = this.graphsOnOpen.rebuilt.length > 0 || !keepSlots;
  }

  /** The retired slot numbers, ascending. */
  private retiredSlots(): number[] {
    const retired: number[] = [];
    this.ids.forEach((id, slot) => { if (id === null) retired.push(slot); });
    return retired;
  }

  /**
   * A domain's saved graphs, brought up to date with its live slots; null if a file is missing or damaged, or the
   * graphs cannot be brought to hold exactly the live slots.
   */
  private async loadGraphs(
    entry: SavedGraphs,
    live: readonly number[],
    retired: readonly number[],
  ): Promise<{ graphs: DomainGraphs; changes: number } | null> {
    const graphs = {} as DomainGraphs;
    for (const vectorName of VECTOR_NAMES) {
      const saved = entry.files[vectorName];
      const graph = await loadGraph({ ...saved, file: path.join(this.dir, saved.file) }, vectorName, this.dimensions[vectorName]);
      if (!graph) return null;
      graphs[vectorName] = graph;
    }
    // Slots are never reused, so the saved graphs differ from the live slots only by points removed since (retired
    // slots below the nextSlot of their save) and points added since (live slots the graphs lack).
    // Both graphs of a domain are saved at the same moment, so they hold the same keys.
    const removedSince = retired.filter((slot) => slot < entry.nextSlot);
    let removed = 0;
    if (removedSince.length > 0) {
      for (const vectorName of VECTOR_NAMES) {
        const counts = graphs[vectorName].remove(BigUint64Array.from(removedSince, (slot) => BigInt(slot))) as number[];
        if (vectorName === 'semantic') removed = counts.reduce((sum, n) => sum + n, 0);
      }
    }
    const present = live.length === 0 ? [] : graphs.semantic.contains(BigUint64Array.from(live, (slot) => BigInt(slot))) as boolean[];
    const missing = live.filter((_, i) => !present[i]);
    for (const vectorName of VECTOR_NAMES) addToGraph(graphs[vectorName], missing, this.matrices[vectorName].rows(missing), ALL_CORES);
    const complete = VECTOR_NAMES.every((vectorName) => graphs[vectorName].size() === live.length);
    return complete ? { graphs, changes: removed + missing.length } : null;
  }

  /**
   * Writes points in pieces of what one turn's write budget allows for their graph inserts (an insert into
   * a large graph costs about a millisecond), so that a large batch never holds the event loop. Each piece replaces
   * its items at once: a search sees an item's old vectors or its new ones, never neither.
   */
  async upsert(points: readonly VectorPoint[]): Promise<void> {
    checkDimensions(points, this.dimensions);
    // In bulk a write only copies the vectors into their rows.
    const perPoint = this.bulk ? this.dimensions.semantic + this.dimensions.recommendation : this.insertWork;
    const piece = Math.max(1, Math.floor(this.writeBudget.perTurn / perPoint));
    for (let start = 0; start < points.length; start += piece) {
      const part = points.slice(start, start + piece);
      await this.writeBudget.take(part.length * perPoint);
      this.remove(part.map((point) => point.id));
      this.insert(part);
    }
  }

  private insert(points: readonly VectorPoint[]): void {
    const byDomain = new Map<string, number[]>();
    for (const point of points) {
      const slot = this.ids.length;
      this.place(slot, point.id, point.domain, point.vectors);
      const slots = byDomain.get(point.domain) ?? [];
      slots.push(slot);
      byDomain.set(point.domain, slots);
    }
    for (const [domain, slots] of byDomain) {
      if (this.graphsFollow(domain)) this.addToGraphs(domain, slots, SERVING_THREADS);
    }
    if (points.length > 0) this.dirty = true;
  }

  /**
   * Whether a write to a domain goes into its graphs now. Not in bulk, nor in a domain whose graphs are being built
   * anew: such a domain is marked stale and searched exactly until buildStaleGraphs has caught up with it.
   */
  private graphsFollow(domain: string): boolean {
    if (this.bulk || this.staleDomains.has(domain)) {
      this.staleDomains.add(domain);
      return false;
    }
    return true;
  }

  /**
   * Runs `fill`, which writes many points into this collection before it serves, with the graphs left alone; then
   * builds the graphs of every domain it wrote to anew, in a worker thread (buildStaleGraphs). Searches meanwhile
   * are exact in those domains, so they see every point. Fills do not nest.
   */
  async fillInBulk<T>(fill: () => Promise<T>): Promise<T> {
    if (this.bulk) throw new Error(`collection ${this.name} is already being filled in bulk`);
    this.bulk = true;
    try {
      return await fill();
    } finally {
      this.bulk = false;
      await this.buildStaleGraphs();
    }
  }

  /**
   * Builds each stale domain's graphs anew from its live points in a worker thread, then brings them up to date with
   * the writes made meanwhile: points removed since are taken out, points added since go in a turn's write budget at
   * a time. The domain leaves the stale set the moment its new graphs are in place, so later writes go into them.
   * The files the worker saved become the domain's saved graphs (named by the next snapshot), so that no flush has
   * to save them again on the event loop.
   */
  private async buildStaleGraphs(): Promise<void> {
    for (const domain of [...this.staleDomains]) {
      const live = [...this.slotsOf(domain)];
      const nextSlot = this.ids.length;
      const building = await mkdtemp(path.join(this.dir, BUILDING_PREFIX));
      const graphs = {} as DomainGraphs;
      const files = {} as Record<VectorName, GraphFile>;
      try {
        const snapshot = snapshotId();
        for (const vectorName of VECTOR_NAMES) {
          const file = `graph.${snapshot}.built.${vectorName}.usearch`;
          const sha256 = await buildGraphOffThread({
            using: vectorName, dimensions: this.dimensions[vectorName], keys: live, blocks: this.matrices[vectorName].blocks,
            threads: SERVING_THREADS, file: path.join(building, file),
          });
          files[vectorName] = { file, sha256, scalar: GRAPH_SCALAR };
        }
        // Moved beside the snapshot files at once, and named as this domain's saved graphs in the same step, so a
        // flush never takes them for left-overs (removeUnnamedFiles spares the saved graphs of the moment).
        for (const vectorName of VECTOR_NAMES) renameSync(path.join(building, files[vectorName].file), path.join(this.dir, files[vectorName].file));
        this.savedGraphs.set(domain, { domain, nextSlot, files });
      } finally {
        await rm(building, { recursive: true, force: true });
      }
      // Served as read-only views of the files (viewedGraphs says why); the first write to the domain loads them.
      const viewed = {} as Record<VectorName, string>;
      for (const vectorName of VECTOR_NAMES) {
        viewed[vectorName] = path.join(this.dir, files[vectorName].file);
        graphs[vectorName] = viewGraphFile(viewed[vectorName], vectorName, this.dimensions[vectorName]);
      }
      this.graphs.set(domain, graphs);
      this.viewedGraphs.set(domain, viewed);
      this.staleDomains.delete(domain);
      // From here on writes to the domain go into the new graphs; what changed while they were built is caught up.
      const removedSince = live.filter((slot) => this.ids[slot] === null);
      if (removedSince.length > 0) {
        const mutable = this.graphsOf(domain);
        for (const vectorName of VECTOR_NAMES) mutable[vectorName].remove(BigUint64Array.from(removedSince, (slot) => BigInt(slot)));
      }
      const addedSince = [...this.slotsOf(domain)].filter((slot) => slot >= nextSlot);
      this.graphChanges.set(domain, removedSince.length);
      this.dirty = true;
      for (const slot of addedSince) {
        await this.writeBudget.take(this.insertWork);
        // Replaced or deleted while this waited: then its write already left the graphs as they should be.
        if (this.ids[slot] !== null && this.domains[slot] === domain && !this.graphsOf(domain).semantic.contains(BigInt(slot))) {
          this.addToGraphs(domain, [slot], SERVING_THREADS);
        }
      }
    }
  }

  /** Puts a point into a slot (not into the graphs). */
  private place(slot: number, id: string, domain: string, vectors: Record<VectorName, Float32Array>): void {
    this.ids[slot] = id;
    this.domains[slot] = domain;
    this.slotOf.set(id, slot);
    this.slotsOf(domain).add(slot);
    for (const vectorName of VECTOR_NAMES) this.matrices[vectorName].set(slot, vectors[vectorName]);
  }

  /** Adds placed slots of one domain to its graphs. */
  private addToGraphs(domain: string, slots: readonly number[], threads: number): void {
    const graphs = this.graphsOf(domain);
    for (const vectorName of VECTOR_NAMES) addToGraph(graphs[vectorName], slots, this.matrices[vectorName].rows(slots), threads);
    this.graphChanges.set(domain, (this.graphChanges.get(domain) ?? 0) + slots.length);
  }

  private slotsOf(domain: string): Set<number> {
    let slots = this.domainSlots.get(domain);
    if (!slots) {
      slots = new Set();
      this.domainSlots.set(domain, slots);
    }
    return slots;
  }

  /**
   * A domain's graphs, ready to be written to: created when the domain has none, and loaded from their files when
   * they are read-only views (viewedGraphs), the first write after a bulk fill.
   */
  private graphsOf(domain: string): DomainGraphs {
    const viewed = this.viewedGraphs.get(domain);
    if (viewed) {
      const loaded = {} as DomainGraphs;
      for (const vectorName of VECTOR_NAMES) loaded[vectorName] = loadGraphFile(viewed[vectorName], vectorName, this.dimensions[vectorName]);
      this.graphs.set(domain, loaded);
      this.viewedGraphs.delete(domain);
    }
    let graphs = this.graphs.get(domain);
    if (!graphs) {
      graphs = {
        semantic: createGraph('semantic', this.dimensions.semantic),
        recommendation: createGraph('recommendation', this.dimensions.recommendation),
      };
      this.graphs.set(domain, graphs);
    }
    return graphs;
  }

  async delete(ids: readonly string[]): Promise<void> {
    this.remove(ids);
  }

  /** Retires the slots of `ids` and takes them out of the graphs. */
  private remove(ids: readonly string[]): void {
    for (const id of ids) {
      const slot = this.slotOf.get(id);
      if (slot === undefined) continue;
      const domain = this.domains[slot];
      if (this.graphsFollow(domain)) {
        const graphs = this.graphsOf(domain);
        for (const vectorName of VECTOR_NAMES) graphs[vectorName].remove(BigInt(slot));
        this.graphChanges.set(domain, (this.graphChanges.get(domain) ?? 0) + 1);
      }
      this.ids[slot] = null;
      this.slotOf.delete(id);
      this.domainSlots.get(domain)?.delete(slot);
      this.dirty = true;
    }
  }

  /**
   * The vectors found are copied into one matrix (a new one, or `into`), of which each is a view: at most one
   * allocation per call, not one per vector. (A vector over 64 bytes has its memory outside V8's heap, and many of
   * them made V8 collect garbage for "external memory pressure" 4 times in a second of a model switch that
   * retrieves every item's vector.)
   */
  async retrieve(ids: readonly string[], using: VectorName, into?: Float32Array): Promise<Map<string, StoredVector>> {
    const dimensions = this.dimensions[using];
    checkRoom(into, ids.length, dimensions);
    const present = ids.filter((id) => this.slotOf.has(id));
    const slots = present.map((id) => this.slotOf.get(id)!);
    const rows = this.matrices[using].rows(slots, into);
    return new Map(present.map((id, i) => [id, { domain: this.domains[slots[i]], vector: rows.subarray(i * dimensions, (i + 1) * dimensions) }]));
  }

  async search(request: SearchRequest): Promise<SearchHit[]> {
    if (request.limit < 1) return [];
    const excluded = request.excludeIds ?? new Set<string>();
    const dimensions = this.dimensions[request.using];
    const score = this.scorer(request.using, request.query);
    const best = new BestHits(request.limit);
    if (request.ids) {
      const domains = request.domains && new Set(request.domains);
      await this.scan(request.ids, (id) => {
        const slot = this.slotOf.get(id);
        return slot !== undefined && !excluded.has(id) && (!domains || domains.has(this.domains[slot])) ? slot : undefined;
      }, score, dimensions, best);
      return best.hits();
    }
    for (const domain of request.domains ?? [...this.domainSlots.keys()]) {
      const graph = this.staleDomains.has(domain) ? undefined : this.graphs.get(domain)?.[request.using];
      const slots = this.domainSlots.get(domain);
      if (!slots || slots.size === 0) continue;
      const accept = (slot: number) => {
        const id = this.ids[slot];
        return id !== null && !excluded.has(id);
      };
      // The graph proposes candidates; too few (or a small domain) and every point of the domain is a candidate.
      const candidates = graph && slots.size > EXACT_SEARCH_MAX_POINTS
        ? await this.graphCandidates(graph, request.query, request.limit, accept, dimensions)
        : null;
      if (candidates) await this.scan(candidates, (slot) => slot, score, dimensions, best);
      else await this.scan(slots, (slot) => (accept(slot) ? slot : undefined), score, dimensions, best);
    }
    return best.hits();
  }

  /**
   * At least `limit` slots the graph finds nearest the query and `accept` takes, nearest first; a few more when the
   * graph offers them, so that exact scoring can reorder the margin. Asks the graph for more candidates until enough
   * are accepted, each search within one turn's budget; null when even the most one turn allows, or the whole graph,
   * falls short (HNSW is approximate, and removed points can leave parts of a graph unreachable): then the caller
   * scans exactly.
   */
  private async graphCandidates(
    graph: Graph,
    query: Float32Array,
    limit: number,
    accept: (slot: number) => boolean,
    dimensions: number,
  ): Promise<number[] | null> {
    const most = Math.min(graph.size(), Math.max(1, Math.floor(this.budget.perTurn / (dimensions * GRAPH_WORK_PER_CANDIDATE))));
    for (let wanted = Math.min(most, limit * 2 + 16); ; wanted = Math.min(most, wanted * 4)) {
      await this.budget.take(wanted * dimensions * GRAPH_WORK_PER_CANDIDATE);
      const accepted = searchGraph(graph, query, wanted, accept);
      if (accepted.length >= limit) return accepted;
      if (wanted >= most) return null;
    }
  }

  /**
   * Scores into `best` the slots of the items `slotOf` takes (undefined: skip), going through at most SCAN_CHUNK
   * items at a time, each chunk within the shared budget of a turn of the event loop: a scan of the whole catalogue
   * never holds the event loop for long.
   */
  private async scan<T>(
    items: Iterable<T>,
    slotOf: (item: T) => number | undefined,
    score: (slot: number) => number,
    dimensions: number,
    best: BestHits,
  ): Promise<void> {
    // A chunk is at most a quarter of a turn's budget, so pieces of several scans fill a turn between them.
    const chunkSize = Math.max(16, Math.min(SCAN_CHUNK, Math.floor(this.budget.perTurn / (4 * (dimensions + VISIT_WORK)))));
    let chunk: number[] = [];
    let visited = 0;
    const scoreChunk = async () => {
      // Looking an item up (and checking it against a filter) counts VISIT_WORK; the points scored, their dimensions.
      await this.budget.take(visited * VISIT_WORK + chunk.length * dimensions);
      for (const slot of chunk) {
        const id = this.ids[slot]; // null for a point deleted while the scan waited for its turn
        if (id !== null) best.add({ id, domain: this.domains[slot], score: score(slot) });
      }
      best.prune();
      chunk = [];
      visited = 0;
    };
    for (const item of items) {
      const slot = slotOf(item);
      if (slot !== undefined) chunk.push(slot);
      if (++visited === chunkSize) await scoreChunk();
    }
    if (visited > 0) await scoreChunk();
  }

  /** The exact score of a slot's vector for a query: cosine or dot product, as the named vector is ranked. */
  private scorer(using: VectorName, query: Float32Array): (slot: number) => number {
    const matrix = this.matrices[using];
    if (!ranksByCosine(using)) return (slot) => dotProduct(matrix.view(slot), query);
    const queryNorm = Math.sqrt(dotProduct(query, query));
    return (slot) => {
      const vector = matrix.view(slot);
      return dotProduct(vector, query) / (Math.sqrt(dotProduct(vector, vector)) * queryNorm);
    };
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
    return this.snapshot(false);
  }

  /** A last flush that also saves every graph that changed, so the next open loads them as they are. */
  close(): Promise<void> {
    return this.snapshot(true);
  }

  private snapshot(everyChangedGraph: boolean): Promise<void> {
    this.flushing = this.flushing.catch(() => undefined).then(() => this.writeSnapshot(everyChangedGraph));
    return this.flushing;
  }

  /** Whether a domain's graphs are saved with this snapshot. */
  private graphsDue(domain: string, everyChangedGraph: boolean): boolean {
    const live = this.domainSlots.get(domain)?.size ?? 0;
    const changes = this.graphChanges.get(domain) ?? 0;
    return live > 0 && changes > 0 && (everyChangedGraph || changes >= GRAPH_RESAVE_SHARE * live);
  }

  private async writeSnapshot(everyChangedGraph: boolean): Promise<void> {
    const due = [...this.graphs.keys()].filter((domain) => this.graphsDue(domain, everyChangedGraph));
    if (!this.dirty && due.length === 0) return;
    // The points and the graphs written are taken before the first await, so writes arriving meanwhile wait for the
    // next flush; the live slots' vectors are copied later, over several turns (a slot's vector never changes).
    const snapshot = snapshotId();
    const live = [...this.slotOf.values()].sort((a, b) => a - b);
    const nextSlot = this.ids.length;
    const file: CollectionFile = {
      dimensions: this.dimensions,
      points: live.map((slot) => [this.ids[slot]!, this.domains[slot]]),
      vectors: { semantic: `semantic.${snapshot}.f32`, recommendation: `recommendation.${snapshot}.f32` },
      slots: live,
      nextSlot,
      graphs: [],
    };
    const saving = due.map((domain, n) => ({
      domain,
      changes: this.graphChanges.get(domain)!,
      names: Object.fromEntries(VECTOR_NAMES.map((vectorName) => [vectorName, `graph.${snapshot}.${n}.${vectorName}.usearch`])) as Record<VectorName, string>,
    }));
    const kept = [...this.savedGraphs.values()].filter((entry) => !due.includes(entry.domain) && (this.domainSlots.get(entry.domain)?.size ?? 0) > 0);
    this.dirty = false;
    for (const { domain } of saving) this.graphChanges.set(domain, 0);
    try {
      mkdirSync(this.dir, { recursive: true });
      for (const { domain, names } of saving) {
        for (const vectorName of VECTOR_NAMES) saveGraph(this.graphs.get(domain)![vectorName], path.join(this.dir, names[vectorName]));
      }
      for (const vectorName of VECTOR_NAMES) {
        const pieces = this.matrices[vectorName].piecesOverTurns(live, this.writeBudget);
        await writeAtomically(path.join(this.dir, file.vectors![vectorName]), bytesOf(pieces));
      }
      const saved: SavedGraphs[] = [];
      for (const { domain, names } of saving) {
        const files = {} as Record<VectorName, GraphFile>;
        for (const vectorName of VECTOR_NAMES) {
          const sha256 = await sha256OfFile(path.join(this.dir, names[vectorName]));
          files[vectorName] = { file: names[vectorName], sha256, scalar: GRAPH_SCALAR };
        }
        saved.push({ domain, nextSlot, files });
      }
      file.graphs = [...kept, ...saved];
      // collection.json goes last: it names the files written before it.
      await writeAtomically(path.join(this.dir, 'collection.json'), JSON.stringify(file));
      this.savedGraphs = new Map(file.graphs.map((entry) => [entry.domain, entry]));
    } catch (error) {
      this.dirty = true;
      for (const { domain, changes } of saving) this.graphChanges.set(domain, (this.graphChanges.get(domain) ?? 0) + changes);
      throw error;
    }
    // Left-over files only take space: failing to remove them does not fail the flush.
    await removeUnnamedFiles(this.dir, file, () => this.savedGraphs.values()).catch(() => undefined);
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

/** A name for the files of one snapshot (or one graph build): unique, and ordered by time. */
function snapshotId(): string {
  return `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/**
 * Each piece as bytes, without a copy. writeFile writes a chunk before it asks for the next, which pieces sharing
 * one buffer (BlockMatrix.piecesOverTurns) rely on.
 */
async function* bytesOf(pieces: AsyncIterable<Float32Array>): AsyncGenerator<Buffer> {
  for await (const piece of pieces) yield Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
}

async function writeAtomically(file: string, content: string | Buffer | AsyncIterable<Buffer>): Promise<void> {
  const temporary = `${file}.tmp`;
  await writeFile(temporary, content);
  await rename(temporary, file);
}

/**
 * Removes the vector and graph files of earlier snapshots (and leftovers of interrupted ones): every file neither
 * `file` nor the collection's saved graphs of the moment name. Those are read after the directory is: a graph build
 * moves its files in and names them as saved graphs in one step, so a file listed is named by then if it is new.
 */
async function removeUnnamedFiles(dir: string, file: CollectionFile, saved: () => Iterable<SavedGraphs>): Promise<void> {
  const entries = await readdir(dir);
  const graphFiles = (of: Iterable<SavedGraphs>) => [...of].flatMap((entry) => VECTOR_NAMES.map((name) => entry.files[name].file));
  const named = new Set([...Object.values(file.vectors ?? {}), ...graphFiles(file.graphs ?? []), ...graphFiles(saved())]);
  for (const entry of entries) {
    if (/\.(f32|usearch|tmp)$/.test(entry) && !named.has(entry)) await rm(path.join(dir, entry), { force: true });
  }
}

/** Collections as directories under `root`. */
export class EmbeddedVectorStore implements VectorStore {
  private readonly open = new Map<string, EmbeddedCollection>();

  constructor(
    private readonly root: string,
    private readonly budget: TurnBudget = sharedTurnBudget,
    private readonly writeBudget: TurnBudget = sharedWriteBudget,
  ) {}

  async collection(name: string, dimensions: CollectionDimensions): Promise<EmbeddedCollection> {
    let collection = this.open.get(name);
    if (!collection) {
      collection = await EmbeddedCollection.open(path.join(this.root, name), name, dimensions, this.budget, this.writeBudget);
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

  async close(): Promise<void> {
    for (const collection of this.open.values()) await collection.close();
    this.open.clear();
  }
}
