/**
 * The benchmark catalogues: the real items of the shared datasets loaded together (ids namespaced by directory,
 * as load-dataset does), a larger catalogue made from them deterministically, and real user histories.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { readItems } from '../../src/datasets/shared-layout.js';

export interface BenchItem {
  id: string;
  domain: string;
  title: string;
  attributes: Record<string, unknown>;
}

/** A catalogue and, for each made-up item, the two real items (indexes into `items`) its title comes from. */
export interface Catalogue {
  name: string;
  items: BenchItem[];
  /** How many of `items` (the first ones) are real. */
  real: number;
  /** parents[i - real] = [base, donor] of made-up item i. */
  parents: [number, number][];
}

/** The items of shared-layout datasets, ids prefixed with the directory name (`amazon-games:0`). */
export async function readCatalogue(dirs: readonly string[], options: { limitPerDir?: number } = {}): Promise<BenchItem[]> {
  const items: BenchItem[] = [];
  for (const dir of dirs) {
    const namespace = path.basename(dir);
    let n = 0;
    for await (const item of readItems(dir)) {
      if (options.limitPerDir !== undefined && n >= options.limitPerDir) break;
      items.push({ id: `${namespace}:${item.id}`, domain: item.domain, title: item.title, attributes: item.attributes });
      n++;
    }
  }
  return items;
}

/** A small deterministic PRNG (mulberry32). */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SUFFIXES = ['Bundle', '2-Pack', 'Deluxe Edition', 'Refurbished', 'Gift Set', 'International Version',
  'Starter Kit', 'Value Pack', 'Collector\'s Edition', 'Travel Size', 'Pro', 'Classic'];

/**
 * Grows a real catalogue to `total` items, spread over the same domains in the same proportions: made-up item k
 * takes the first half of the words of a real item's title (its base, cycling through the catalogue), the second
 * half of another real title of the same domain (its donor, drawn with a fixed seed) and a suffix. Ids are
 * `synthetic:<k>`; attributes are the base's.
 */
export function growCatalogue(name: string, real: readonly BenchItem[], total: number, seed = 20261124): Catalogue {
  const next = random(seed);
  const byDomain = new Map<string, number[]>();
  real.forEach((item, i) => {
    const list = byDomain.get(item.domain) ?? [];
    list.push(i);
    byDomain.set(item.domain, list);
  });
  const items = [...real];
  const parents: [number, number][] = [];
  for (let k = 0; items.length < total; k++) {
    const base = k % real.length;
    const sameDomain = byDomain.get(real[base].domain)!;
    const donor = sameDomain[Math.floor(next() * sameDomain.length)];
    const head = words(real[base].title);
    const tail = words(real[donor].title);
    const title = [
      ...head.slice(0, Math.max(1, Math.ceil(head.length / 2))),
      ...tail.slice(Math.floor(tail.length / 2)),
      '-', SUFFIXES[k % SUFFIXES.length], `#${Math.floor(k / real.length) + 1}`,
    ].join(' ');
    items.push({ id: `synthetic:${k}`, domain: real[base].domain, title, attributes: real[base].attributes });
    parents.push([base, donor]);
  }
  return { name, items, real: real.length, parents };
}

function words(title: string): string[] {
  return title.split(/\s+/).filter((word) => word !== '');
}

/**
 * Real user histories: the last `length` items of users of a dataset's interactions.csv (file order is each user's
 * sequence), ids namespaced like the catalogue's; only users with at least `length` known items, at most `count`.
 */
export async function sampleHistories(
  datasetDir: string,
  options: { count: number; length: number; known: ReadonlySet<string> },
): Promise<string[][]> {
  const namespace = path.basename(datasetDir);
  const lines = (await readFile(path.join(datasetDir, 'interactions.csv'), 'utf8')).split('\n');
  const byUser = new Map<string, string[]>();
  for (const line of lines.slice(1)) {
    if (line.trim() === '') continue;
    const [user, item] = line.split(',');
    const id = `${namespace}:${item.trim()}`;
    if (!options.known.has(id)) continue;
    const history = byUser.get(user) ?? [];
    history.push(id);
    byUser.set(user, history);
  }
  const eligible = [...byUser.values()].filter((history) => history.length >= options.length);
  // Spread the sample over the whole file rather than its first users.
  const step = Math.max(1, Math.floor(eligible.length / options.count));
  const histories: string[][] = [];
  for (let i = 0; i < eligible.length && histories.length < options.count; i += step) {
    histories.push(eligible[i].slice(-options.length));
  }
  return histories;
}
