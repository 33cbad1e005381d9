/**
 * What a catalogue write and a served item list cost besides the model, on the embedded database (PGlite):
 *
 *   npx tsx bench/experiments/catalog-costs.ts
 *
 * 1. Storing 4 batches of 256 items: Prisma `$transaction` of one `item.upsert` per item (what Catalog.upsertItems
 *    does) against one `INSERT ... SELECT FROM unnest(...) ON CONFLICT (id) DO UPDATE` per batch; new and existing ids.
 * 2. Looking up the rows of 10 and 40 result ids (what the resolvers' DataLoader does per request): Prisma
 *    `findMany({ where: { id: { in } } })` against a Map in memory.
 * 3. How long the event loop stands still while the encoder embeds titles (onnxruntime-node runs a session
 *    synchronously on the main thread), by titles per call: what every request waits during an upsertItems call or a
 *    model switch.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { createLogger } from '../../src/logger.js';
import { openPlatform } from '../../src/platform.js';
import { RecommendationModel } from '../../src/inference/recommendation-model.js';
import { snapshotBundle } from '../lib/bundle.js';
import { readCatalogue } from '../lib/catalogue.js';
import { percentile } from '../lib/load.js';
import { busyProcesses } from '../lib/machine.js';
import { BENCH_TMP, REPO, SHARED_DATA } from '../lib/paths.js';
import { benchSettings } from '../lib/prepare.js';

const o = new Command().option('--bundle <dir>', 'bundle', path.join(REPO, 'bundles/quick')).parse().opts();
console.log(`busy at the start: ${JSON.stringify(await busyProcesses())}`);
const bundle = await snapshotBundle(path.resolve(o.bundle), path.join(BENCH_TMP, 'bundles'));
const items = await readCatalogue(['amazon-games', 'amazon-office-catalog'].map((name) => path.join(SHARED_DATA, name)), { limitPerDir: 1024 });
const cpuMs = () => { const used = process.cpuUsage(); return (used.user + used.system) / 1000; };

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-catalog-costs-'));
const platform = await openPlatform(benchSettings({ dataDir, bundleDir: bundle.dir, modelRegistryDir: path.dirname(bundle.dir) }), createLogger('warn'));
const prisma = platform.db.prisma;
type Item = (typeof items)[number];
const perItemUpsert = (batch: Item[]) => prisma.$transaction(batch.map((item) => {
  const data = { domain: item.domain, title: item.title, attributes: item.attributes as object };
  return prisma.item.upsert({ where: { id: item.id }, create: { id: item.id, ...data }, update: data });
}));
const oneStatement = (batch: Item[]) => prisma.$executeRawUnsafe(
  `INSERT INTO items (id, domain, title, attributes, updated_at)
   SELECT id, domain, title, attributes, now() FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[]) AS t(id, domain, title, attributes)
   ON CONFLICT (id) DO UPDATE SET domain = excluded.domain, title = excluded.title, attributes = excluded.attributes, updated_at = now()`,
  batch.map((item) => item.id), batch.map((item) => item.domain), batch.map((item) => item.title),
  batch.map((item) => JSON.stringify(item.attributes)));
const store = async (label: string, write: (batch: Item[]) => Promise<unknown>, offset: number) => {
  const started = performance.now();
  const cpu = cpuMs();
  for (let b = 0; b < 4; b++) await write(items.slice(offset + b * 256, offset + (b + 1) * 256));
  console.log(`store 1024 items, ${label}: ${((performance.now() - started) / 1024).toFixed(3)} ms per item, CPU ${((cpuMs() - cpu) / 1024).toFixed(3)} ms per item`);
};
await store('Prisma $transaction of item.upsert (new ids)', perItemUpsert, 0);
await store('one INSERT ... ON CONFLICT per batch (new ids)', oneStatement, 1024);
await store('Prisma $transaction of item.upsert (existing ids)', perItemUpsert, 1024);
await store('one INSERT ... ON CONFLICT per batch (existing ids)', oneStatement, 0);

const ids = items.map((item) => item.id);
const rows = new Map((await prisma.item.findMany()).map((row) => [row.id, row]));
for (const n of [10, 40]) {
  for (const [label, lookup] of [
    ['Prisma findMany', (some: string[]) => prisma.item.findMany({ where: { id: { in: some } } })],
    ['Map in memory', async (some: string[]) => some.map((id) => rows.get(id))],
  ] as const) {
    const latencies: number[] = [];
    for (let i = 0; i < 50; i++) await lookup(ids.slice(i, i + n));
    const cpu = cpuMs();
    for (let i = 0; i < 1000; i++) {
      const some = ids.slice((i * 7) % (ids.length - n), (i * 7) % (ids.length - n) + n);
      const t = performance.now();
      await lookup(some);
      latencies.push(performance.now() - t);
    }
    latencies.sort((a, b) => a - b);
    console.log(`rows of ${n} ids, ${label}: p50 ${percentile(latencies, 50).toFixed(3)} ms, p99 ${percentile(latencies, 99).toFixed(3)} ms, CPU ${((cpuMs() - cpu) / 1000).toFixed(3)} ms per lookup`);
  }
}
await platform.close();
await rm(dataDir, { recursive: true, force: true });

const model = await RecommendationModel.load(bundle.dir);
const titles = items.slice(0, 256).map((item) => item.title);
await model.embedItems(titles.slice(0, 8));
for (const n of [64, 16, 8]) {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => { const now = performance.now(); worst = Math.max(worst, now - last - 5); last = now; }, 5);
  const started = performance.now();
  for (let i = 0; i < titles.length; i += n) await model.embedItems(titles.slice(i, i + n));
  clearInterval(timer);
  console.log(`encoder, ${n} titles per call: ${(titles.length / ((performance.now() - started) / 1000)).toFixed(0)} titles/s, longest event-loop stall ${worst.toFixed(0)} ms`);
}
await model.release();
