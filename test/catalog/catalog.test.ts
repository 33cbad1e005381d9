/**
 * The catalogue's in-memory read model of item rows against the database it mirrors, on PGlite and PostgreSQL:
 * equal after upserts, replacements and deletes, after writes the database refuses and after writes that fail
 * once the database has taken them; and equal to a fresh read of the database.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Catalog, type EmbeddingTarget } from '../../src/catalog/catalog.js';
import { IndexSync } from '../../src/catalog/index-sync.js';
import { ItemReadModel } from '../../src/catalog/item-read-model.js';
import type { Database } from '../../src/db/index.js';
import { EmbeddedVectorStore } from '../../src/index/embedded-vector-store.js';
import { RecommendationModel } from '../../src/inference/recommendation-model.js';
import { backends } from '../db/backends.js';
import { tinyBundle } from '../support/fixtures.js';
import { itemRows, sortById } from '../support/item-rows.js';

/** The rows of the items table, by id, as JSON text: key order and number forms count too. */
async function databaseRows(db: Database): Promise<string> {
  return JSON.stringify(await itemRows(db));
}

function memoryRows(items: ItemReadModel): string {
  return JSON.stringify(sortById(items.values()));
}

const item = (id: string, title = `Title of ${id}`, attributes?: Record<string, unknown>) =>
  ({ id, domain: 'video_games', title, ...(attributes && { attributes }) });

for (const backend of backends) {
  describe(`catalogue read model on ${backend.kind}`, { skip: backend.skip }, () => {
    let db: Database;
    let model: RecommendationModel;
    let vectorsDir: string;
    let target: EmbeddingTarget;
    let catalog: Catalog;

    before(async () => {
      db = await backend.fresh().open();
      model = await RecommendationModel.load(tinyBundle());
      vectorsDir = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-catalog-'));
      const store = new EmbeddedVectorStore(vectorsDir);
      target = { model, embedder: model, collection: await store.collection('items', model.dimensions) };
      catalog = new Catalog(db, await ItemReadModel.load(db), () => [target], { maxItemsPerBatch: 100, encodeBatchSize: 8 });
    });
    after(async () => {
      await model?.release();
      await db?.close();
      await backend.cleanup();
      await rm(vectorsDir, { recursive: true, force: true });
    });

    it('holds exactly the rows of the database after upserts, replacements and deletes', async () => {
      await catalog.upsertItems([
        // jsonb keeps numbers as given, orders keys by length and drops duplicates: memory holds what it stored.
        item('a', 'Tetris', { zeta: 1, a: 2, price: 1.50, big: 12345678901234567890, note: 'héros ⚔️ "quoted"', nested: { z: [true, null] } }),
        item('b', 'Doom'),
        item('c', 'Halo 3', { brand: 'Microsoft' }),
      ]);
      assert.equal(memoryRows(catalog.items), await databaseRows(db));
      await catalog.upsertItems([
        { id: 'b', domain: 'pc_games', title: 'Doom Eternal', attributes: { brand: 'id Software' } },
        item('d', 'Quake'),
      ]);
      await catalog.deleteItems(['c']);
      assert.equal(memoryRows(catalog.items), await databaseRows(db));
      assert.deepEqual(catalog.items.get('b'), { id: 'b', domain: 'pc_games', title: 'Doom Eternal', attributes: { brand: 'id Software' } });
      assert.equal(catalog.items.get('c'), undefined);
      // What a restart would load.
      assert.equal(memoryRows(await ItemReadModel.load(db)), memoryRows(catalog.items));
    });

    it('pages a domain through ids beyond the Basic Multilingual Plane, each item once, in the database order', async () => {
      // By UTF-16 unit '\u{A2C45}' (a surrogate pair) sorts before '１２' (U+FF11); by code point, as PostgreSQL does, after.
      const ids = ['astral-a', '１２', '\u{A2C45}x', '\u{1F600}', 'astral-z'];
      await catalog.upsertItems(ids.map((id) => ({ id, domain: 'astral', title: `Title of ${id}` })));
      const seen: string[] = [];
      let after: string | undefined;
      for (let turn = 0; turn < ids.length + 1; turn++) {
        const { items, hasNextPage } = await catalog.page('astral', 2, after);
        seen.push(...items.map((row) => row.id));
        if (!hasNextPage) break;
        after = items[items.length - 1].id;
      }
      assert.deepEqual(seen, [...ids].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
    });

    it('re-embedding never stores the old vectors of an item replaced while it was being embedded', async () => {
      await catalog.upsertItems([item('r1', 'Mario Kart'), item('r2', 'Zelda')]);
      const store = new EmbeddedVectorStore(vectorsDir);
      const fresh = await store.collection('re-embedding', model.dimensions);
      // A model that lets a storefront rename r1 while the encoder is busy with the first chunk.
      let renamed = false;
      const renamingModel = Object.create(model, {
        embedItems: {
          value: async (titles: string[]) => {
            const vectors = await model.embedItems(titles);
            if (!renamed) {
              renamed = true;
              await catalog.upsertItems([item('r1', 'Gran Turismo 7')]);
            }
            return vectors;
          },
        },
      }) as RecommendationModel;
      const reembed = { model: renamingModel, embedder: renamingModel, collection: fresh };
      const indexSync = new IndexSync(db, catalog.items, 8);
      await indexSync.sync(reembed);
      await indexSync.sync(reembed); // the switcher's second pass
      assert.ok(renamed);
      const [expected] = await model.embedItems(['Gran Turismo 7']);
      const stored = (await fresh.retrieve(['r1'], 'semantic')).get('r1');
      assert.ok(stored, 'r1 is in the new collection');
      assert.deepEqual([...stored.vector], [...expected.semantic]);
      assert.equal(await fresh.count(), catalog.items.size);
      await store.close();
    });

    it('changes nothing when the database refuses a write', async () => {
      await db.prisma.$executeRawUnsafe(`CREATE FUNCTION refuse_some_items() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF (TG_OP = 'DELETE' AND OLD.id = 'kept') OR (TG_OP <> 'DELETE' AND NEW.title = 'refused') THEN
            RAISE EXCEPTION 'refused by the test trigger';
          END IF;
          RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
        END $$`);
      await db.prisma.$executeRawUnsafe(
        'CREATE TRIGGER refuse_some_items BEFORE INSERT OR UPDATE OR DELETE ON "items" FOR EACH ROW EXECUTE FUNCTION refuse_some_items()');
      try {
        await catalog.upsertItems([item('kept', 'Kept')]);
        const before = await databaseRows(db);
        // One refused row fails the whole statement: neither the new item nor the replacement is stored.
        await assert.rejects(catalog.upsertItems([item('new'), item('a', 'Tetris 99'), item('bad', 'refused')]), /refused by the test trigger/);
        await assert.rejects(catalog.deleteItems(['d', 'kept']), /refused by the test trigger/);
        assert.equal(await databaseRows(db), before);
        assert.equal(memoryRows(catalog.items), before);
        assert.equal(catalog.items.get('a')?.title, 'Tetris');
        assert.ok(catalog.items.has('d') && !catalog.items.has('new'));
      } finally {
        await db.prisma.$executeRawUnsafe('DROP TRIGGER refuse_some_items ON "items"');
        await db.prisma.$executeRawUnsafe('DROP FUNCTION refuse_some_items()');
      }
      // Refused requests (unknown ids, bad input) change nothing either.
      await assert.rejects(catalog.deleteItems(['d', 'nope']), /unknown item ids: "nope"/);
      await assert.rejects(catalog.upsertItems([item('e', ' ')]), /empty title/);
      assert.equal(memoryRows(catalog.items), await databaseRows(db));
    });

    it('agrees with the database when a write fails after the database took it', async () => {
      // A collection of other dimensions refuses the vectors, after the rows are stored.
      const mismatched = await new EmbeddedVectorStore(vectorsDir).collection('mismatched', { semantic: 3, recommendation: 3 });
      const withBrokenIndex = new Catalog(db, catalog.items, () => [{ model, embedder: model, collection: mismatched }], { maxItemsPerBatch: 100, encodeBatchSize: 8 });
      await assert.rejects(withBrokenIndex.upsertItems([item('late', 'Stored anyway')]), /dimensions/);
      assert.equal((await db.prisma.item.findUnique({ where: { id: 'late' } }))?.title, 'Stored anyway');
      assert.equal(memoryRows(catalog.items), await databaseRows(db));
    });

    it('reads rows written around it once asked to reload', async () => {
      await db.prisma.item.create({ data: { id: 'direct', domain: 'video_games', title: 'Written by a script' } });
      assert.equal(catalog.items.has('direct'), false);
      await catalog.reloadItems();
      assert.equal(memoryRows(catalog.items), await databaseRows(db));
    });
  });
}
