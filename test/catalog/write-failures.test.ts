/**
 * A catalogue write that fails at any step (embedding, the database before or after it took the rows, either of two
 * vector collections before or after they took the points) leaves the database, the in-memory read model and every
 * collection in agreement, and later writes work (issue #12, finding 1). Real database (PGlite, PostgreSQL when
 * TEST_DATABASE_URL is set), the tiny bundle's real ONNX sessions and the embedded index; the faults are thrown
 * around the real calls.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Catalog, type EmbeddingTarget } from '../../src/catalog/catalog.js';
import { ItemReadModel } from '../../src/catalog/item-read-model.js';
import type { Database } from '../../src/db/index.js';
import { EmbeddedVectorStore } from '../../src/index/embedded-vector-store.js';
import type { VectorCollection } from '../../src/index/vector-index.js';
import { RecommendationModel } from '../../src/inference/recommendation-model.js';
import { backends } from '../db/backends.js';
import { tinyBundle } from '../support/fixtures.js';
import { itemRows, sortById } from '../support/item-rows.js';

type When = 'before' | 'after';

/** Faults to throw, by step: each is thrown `times` times, before or after the real call ran. */
class Faults {
  private readonly planned = new Map<string, { when: When; times: number }>();
  plan(step: string, when: When, times = 1): void {
    this.planned.set(step, { when, times });
  }
  clear(): void {
    this.planned.clear();
  }
  async around<T>(step: string, call: () => Promise<T>): Promise<T> {
    const fault = this.planned.get(step);
    const fire = (when: When) => {
      if (fault?.when === when && fault.times > 0) {
        fault.times -= 1;
        throw new Error(`injected fault: ${step} ${when}`);
      }
    };
    fire('before');
    const result = await call();
    fire('after');
    return result;
  }
}

function faultyDatabase(db: Database, faults: Faults): Database {
  const item = new Proxy(db.prisma.item, {
    get(target, prop) {
      const value = Reflect.get(target, prop);
      if (prop !== 'findMany' && prop !== 'deleteMany') return typeof value === 'function' ? value.bind(target) : value;
      return (...args: unknown[]) => faults.around(`db.${prop}`, () => value.apply(target, args));
    },
  });
  const prisma = new Proxy(db.prisma, {
    get(target, prop) {
      if (prop === 'item') return item;
      const value = Reflect.get(target, prop);
      if (prop === '$queryRawUnsafe') return (...args: unknown[]) => faults.around('db.upsert', () => value.apply(target, args));
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return Object.create(db, { prisma: { value: prisma } }) as Database;
}

function faultyCollection(collection: VectorCollection, name: string, faults: Faults): VectorCollection {
  return Object.create(collection, {
    upsert: { value: (points: Parameters<VectorCollection['upsert']>[0]) => faults.around(`${name}.upsert`, () => collection.upsert(points)) },
    delete: { value: (ids: readonly string[]) => faults.around(`${name}.delete`, () => collection.delete(ids)) },
  }) as VectorCollection;
}

const item = (id: string, title: string) => ({ id, domain: id.startsWith('gone') ? 'to_delete' : 'video_games', title, attributes: { n: title.length } });

for (const backend of backends) {
  describe(`catalogue writes failing at each step on ${backend.kind}`, { skip: backend.skip }, () => {
    let db: Database;
    let model: RecommendationModel;
    let vectorsDir: string;
    let collections: VectorCollection[];
    let catalog: Catalog;
    const faults = new Faults();

    before(async () => {
      db = await backend.fresh().open();
      model = await RecommendationModel.load(tinyBundle());
      vectorsDir = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-faults-'));
      const store = new EmbeddedVectorStore(vectorsDir);
      collections = [await store.collection('serving', model.dimensions), await store.collection('prepared', model.dimensions)];
      const faultyModel = Object.create(model, {
        embedItems: { value: (titles: string[]) => faults.around('embed', () => model.embedItems(titles)) },
      }) as RecommendationModel;
      const targets: EmbeddingTarget[] = collections.map((collection, i) => ({ model: faultyModel, embedder: faultyModel, collection: faultyCollection(collection, `index${i}`, faults) }));
      const faulty = faultyDatabase(db, faults);
      catalog = new Catalog(faulty, await ItemReadModel.load(faulty), () => targets, { maxItemsPerBatch: 100, encodeBatchSize: 4 });
      await catalog.upsertItems([item('a', 'Tetris'), item('b', 'Doom'), item('c', 'Halo')]);
    });
    after(async () => {
      await model?.release();
      await db?.close();
      await backend.cleanup();
      await rm(vectorsDir, { recursive: true, force: true });
    });

    /** The database, the read model and both collections hold the same items, each with the vectors of its title. */
    async function assertInStep(context: string): Promise<void> {
      const rows = await itemRows(db);
      const memory = sortById(catalog.items.values());
      assert.equal(JSON.stringify(memory), JSON.stringify(rows), `${context}: read model`);
      const counts = new Map<string, number>();
      for (const row of rows) counts.set(row.domain, (counts.get(row.domain) ?? 0) + 1);
      assert.deepEqual(catalog.items.domains(), [...counts].sort().map(([name, items]) => ({ name, items })), `${context}: domain counts`);
      const expected = await model.embedItems(rows.map((row) => row.title));
      for (const [i, collection] of collections.entries()) {
        assert.deepEqual((await collection.listIds()).sort(), rows.map((row) => row.id), `${context}: ids of collection ${i}`);
        const stored = await collection.retrieve(rows.map((row) => row.id), 'semantic');
        rows.forEach((row, k) => {
          // Batches of other titles (padding) move the encoder's output in the last float digits only.
          const gap = Math.max(...expected[k].semantic.map((value, d) => Math.abs(value - stored.get(row.id)!.vector[d])));
          assert.ok(gap < 1e-4, `${context}: vectors of ${row.id} in collection ${i} are those of its title (gap ${gap})`);
        });
      }
    }

    const upsertSteps = ['embed', 'db.upsert', 'index0.upsert', 'index1.upsert'];
    const deleteSteps = ['db.deleteMany', 'index0.delete', 'index1.delete']; // which ids exist, the rows in memory say

    for (const step of upsertSteps) {
      for (const when of ['before', 'after'] as const) {
        it(`upsertItems failing ${when} ${step}`, async () => {
          faults.plan(step, when);
          await assert.rejects(catalog.upsertItems([item('a', `Tetris ${step} ${when}`), item(`new-${step}-${when}`, 'Quake')]), /injected fault/);
          faults.clear();
          await assertInStep(`${step} ${when}`);
          await catalog.upsertItems([item('b', `Doom ${step} ${when}`)]);
          await assertInStep(`the write after ${step} ${when}`);
        });
      }
    }

    for (const step of deleteSteps) {
      for (const when of ['before', 'after'] as const) {
        it(`deleteItems failing ${when} ${step}`, async () => {
          const id = `gone-${step}-${when}`;
          await catalog.upsertItems([item(id, 'Soon deleted')]);
          faults.plan(step, when);
          await assert.rejects(catalog.deleteItems([id]), /injected fault/);
          faults.clear();
          await assertInStep(`${step} ${when}`);
          if (catalog.items.has(id)) assert.equal(await catalog.deleteItems([id]), 1);
          await assertInStep(`the delete after ${step} ${when}`);
        });
      }
    }

    it('suspends writes while a failed write cannot be read back, and catches up once the store answers', async () => {
      // The write fails after the database took it, and the collection also refuses the repair right after.
      faults.plan('index1.upsert', 'before', 2);
      await assert.rejects(catalog.upsertItems([item('c', 'Halo Infinite')]), /injected fault/);
      assert.match(catalog.unavailable ?? '', /suspended/);
      faults.clear();
      await catalog.upsertItems([item('a', 'Tetris Effect')]);
      assert.equal(catalog.unavailable, undefined);
      await assertInStep('after catching up');
    });

    it('a write that the database cannot take (NUL in an id) does not block later writes', async () => {
      // Below the API's checks: the read-back of the failed rows is refused by the database too.
      await assert.rejects(catalog.deleteItems(['a\u0000']));
      await assert.rejects(catalog.upsertItems([item('x\u0000', 'NUL')]));
      await catalog.upsertItems([item('after-nul', 'Portal')]);
      assert.equal(await catalog.deleteItems(['after-nul']), 1);
      assert.equal(catalog.unavailable, undefined);
      await assertInStep('after NUL ids');
    });
  });
}
