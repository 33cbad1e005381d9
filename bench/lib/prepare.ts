/**
 * A data directory holding a benchmark catalogue: rows in the embedded database and points in the serving model's
 * vector collection, written directly (vectors from the cache, not through upsertItems) so that 100k items load in
 * seconds. Kept under .tmp/bench/data/ and reused while the catalogue and the bundle are the same.
 */
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadSettings, type Settings } from '../../src/config.js';
import type { ItemVectors } from '../../src/inference/recommendation-model.js';
import type { VectorPoint } from '../../src/index/vector-index.js';
import { createLogger } from '../../src/logger.js';
import { openPlatform, type Platform } from '../../src/platform.js';
import type { BenchItem } from './catalogue.js';

const MARKER = 'bench-catalogue.json';

interface Marker {
  fingerprint: string;
  items: number;
  modelVersion: string;
}

/** Settings of a platform on a benchmark data directory: embedded database and index, nothing from the environment. */
export function benchSettings(overrides: Partial<Settings> & { dataDir: string; bundleDir: string }): Settings {
  return loadSettings({}, { logLevel: 'warn', ...overrides });
}

export function fingerprint(items: readonly BenchItem[], modelVersion: string): string {
  const hash = createHash('sha256').update(modelVersion);
  for (const item of items) hash.update(`\n${item.id}\t${item.domain}\t${item.title}`);
  return hash.digest('hex');
}

/**
 * Opens a platform on `dataDir` holding exactly `items`: reuses the directory when its marker says it holds them
 * for this model version, else rebuilds it. The caller closes the platform.
 */
export async function openCatalogue(options: {
  settings: Settings;
  items: readonly BenchItem[];
  vectorsOf: (index: number) => ItemVectors;
  modelVersion: string;
  log?: (message: string) => void;
}): Promise<{ platform: Platform; reused: boolean; seconds: number }> {
  const { settings, items } = options;
  const log = options.log ?? (() => undefined);
  const started = performance.now();
  const wanted = fingerprint(items, options.modelVersion);
  const marker = await readFile(path.join(settings.dataDir, MARKER), 'utf8').then((text) => JSON.parse(text) as Marker, () => null);
  const logger = createLogger(settings.logLevel);
  if (marker?.fingerprint === wanted) {
    const platform = await openPlatform(settings, logger);
    const points = await platform.collection.count();
    if (points === items.length) {
      return { platform, reused: true, seconds: (performance.now() - started) / 1000 };
    }
    log(`cached catalogue in ${settings.dataDir} has ${points} points, not ${items.length}: rebuilding`);
    await platform.close();
  }
  await rm(settings.dataDir, { recursive: true, force: true });
  const platform = await openPlatform(settings, logger);
  if (platform.model.version !== options.modelVersion) {
    throw new Error(`the platform serves ${platform.model.version}, the vectors are of ${options.modelVersion}`);
  }
  for (let start = 0; start < items.length; start += 2000) {
    const batch = items.slice(start, start + 2000);
    await platform.db.prisma.item.createMany({
      data: batch.map((item) => ({ id: item.id, domain: item.domain, title: item.title, attributes: item.attributes as object })),
    });
  }
  // The rows went around the catalogue: its in-memory read model reads them now.
  await platform.catalog.reloadItems();
  log(`${items.length} rows written in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  for (let start = 0; start < items.length; start += 5000) {
    const points: VectorPoint[] = items.slice(start, start + 5000)
      .map((item, i) => ({ id: item.id, domain: item.domain, vectors: options.vectorsOf(start + i) }));
    await platform.collection.upsert(points);
  }
  await platform.collection.flush();
  log(`${items.length} points indexed in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const written: Marker = { fingerprint: wanted, items: items.length, modelVersion: options.modelVersion };
  await writeFile(path.join(settings.dataDir, MARKER), JSON.stringify(written));
  return { platform, reused: false, seconds: (performance.now() - started) / 1000 };
}
