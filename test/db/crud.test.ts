import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { insertInteractions, Prisma, upsertItems, type Database } from '../../src/db/index.js';
import { sortById } from '../support/item-rows.js';
import { backends, type TestTarget } from './backends.js';

const ATTRIBUTES = {
  genres: ['RPG', 'Strategy'],
  price: 49.99,
  rank: 3,
  nested: { platform: 'Switch', flags: [true, false, null] },
  note: 'Unicode: héros ⚔️ "quoted" \\ backslash',
};

for (const backend of backends) {
  describe(`data on ${backend.kind}`, { skip: backend.skip }, () => {
    let target: TestTarget;
    let db: Database;

    before(async () => {
      target = backend.fresh();
      db = await target.open();
    });
    after(async () => {
      await db?.close();
      await backend.cleanup();
    });

    test('items: JSON attributes, default {}, timestamps, (domain, id) listing', async () => {
      const { prisma } = db;
      const created = await prisma.item.create({ data: { id: 'games:1', domain: 'games', title: 'Fire Emblem', attributes: ATTRIBUTES } });
      assert.deepEqual(created.attributes, ATTRIBUTES);
      assert.ok(created.createdAt instanceof Date && created.updatedAt instanceof Date);
      const bare = await prisma.item.create({ data: { id: 'books:1', domain: 'books', title: 'Dune' } });
      assert.deepEqual(bare.attributes, {});
      await prisma.item.createMany({
        data: [
          { id: 'games:3', domain: 'games', title: 'Zelda' },
          { id: 'games:2', domain: 'games', title: 'Metroid', attributes: [1, 'two'] },
        ],
      });

      const games = await prisma.item.findMany({ where: { domain: 'games' }, orderBy: { id: 'asc' } });
      assert.deepEqual(games.map((item) => item.id), ['games:1', 'games:2', 'games:3']);
      assert.deepEqual(games[1].attributes, [1, 'two']);
      const read = await prisma.item.findUniqueOrThrow({ where: { id: 'games:1' } });
      assert.deepEqual(read.attributes, ATTRIBUTES);

      const updated = await prisma.item.update({ where: { id: 'games:1' }, data: { title: 'Fire Emblem: Three Houses' } });
      assert.ok(updated.updatedAt.getTime() >= created.updatedAt.getTime());
      // JSON path filter works on both databases.
      const switchGames = await prisma.item.findMany({ where: { attributes: { path: ['nested', 'platform'], equals: 'Switch' } } });
      assert.deepEqual(switchGames.map((item) => item.id), ['games:1']);
    });

    test('upsertItems: inserts and replaces a batch in one statement, as Prisma would store it', async () => {
      const { prisma } = db;
      const before = Date.now();
      const returned = await upsertItems(prisma, [
        { id: 'bulk:1', domain: 'games', title: 'Tetris', attributes: ATTRIBUTES },
        { id: 'bulk:2', domain: 'games', title: 'Doom', attributes: {} },
      ]);
      const first = await prisma.item.findUniqueOrThrow({ where: { id: 'bulk:1' } });
      assert.deepEqual(first.attributes, ATTRIBUTES);
      // It returns the rows as stored, attributes exactly as Prisma reads them back (jsonb orders keys its own way).
      const stored = await prisma.item.findMany({ where: { id: { startsWith: 'bulk:' } }, select: { id: true, domain: true, title: true, attributes: true } });
      assert.equal(JSON.stringify(sortById(returned)), JSON.stringify(sortById(stored)));
      assert.ok(Math.abs(first.updatedAt.getTime() - before) < 60_000, `updatedAt ${first.updatedAt.toISOString()} is UTC now`);
      await upsertItems(prisma, [{ id: 'bulk:1', domain: 'puzzles', title: 'Tetris Effect', attributes: { brand: 'Enhance' } }]);
      const replaced = await prisma.item.findUniqueOrThrow({ where: { id: 'bulk:1' } });
      assert.deepEqual([replaced.domain, replaced.title, replaced.attributes], ['puzzles', 'Tetris Effect', { brand: 'Enhance' }]);
      assert.equal(replaced.createdAt.getTime(), first.createdAt.getTime());
      assert.equal((await prisma.item.findUniqueOrThrow({ where: { id: 'bulk:2' } })).title, 'Doom');
      await prisma.item.deleteMany({ where: { id: { startsWith: 'bulk:' } } });
    });

    test('users and interactions: order by id is insertion order, BigInt timestamps are exact', async () => {
      const { prisma } = db;
      await prisma.user.createMany({ data: [{ id: 'alice' }, { id: 'bob' }] });
      const big = 2n ** 62n + 12345n; // beyond Number.MAX_SAFE_INTEGER
      const sequence = ['games:3', 'games:1', 'games:2', 'games:1', 'books:1'];
      await prisma.interaction.createMany({
        data: sequence.map((itemId, k) => ({ userId: 'alice', itemId, timestamp: big - BigInt(k) })),
      });
      await prisma.interaction.create({ data: { userId: 'bob', itemId: 'games:2', timestamp: 1_700_000_000_000n } });

      const alice = await prisma.interaction.findMany({ where: { userId: 'alice' }, orderBy: { id: 'asc' } });
      assert.deepEqual(alice.map((row) => row.itemId), sequence);
      assert.equal(typeof alice[0].id, 'bigint');
      assert.equal(typeof alice[0].timestamp, 'bigint');
      assert.deepEqual(alice.map((row) => row.timestamp), sequence.map((_, k) => big - BigInt(k)));
      for (let k = 1; k < alice.length; k++) assert.ok(alice[k].id > alice[k - 1].id);

      // The last N of a user's history, newest last, as the recommender reads it.
      const lastThree = (await prisma.interaction.findMany({ where: { userId: 'alice' }, orderBy: { id: 'desc' }, take: 3 })).reverse();
      assert.deepEqual(lastThree.map((row) => row.itemId), sequence.slice(-3));

      const withItems = await prisma.user.findUniqueOrThrow({
        where: { id: 'alice' },
        include: { interactions: { orderBy: { id: 'asc' }, include: { item: true } } },
      });
      assert.equal(withItems.interactions[0].item.title, 'Zelda');
    });

    test('insertInteractions keeps order across batches and accepts number timestamps', async () => {
      const { prisma } = db;
      await prisma.user.create({ data: { id: 'carol' } });
      const items = ['games:1', 'games:2', 'games:3', 'books:1'];
      const rows = Array.from({ length: 2_503 }, (_, k) => ({ userId: 'carol', itemId: items[(k * 7) % 4], timestamp: 1_600_000_000_000 + k }));
      assert.equal(await insertInteractions(prisma, rows, { batchSize: 1_000 }), rows.length);
      const stored = await prisma.interaction.findMany({ where: { userId: 'carol' }, orderBy: { id: 'asc' } });
      assert.deepEqual(
        stored.map((row) => [row.itemId, row.timestamp]),
        rows.map((row) => [row.itemId, BigInt(row.timestamp)]),
      );
      assert.equal(await insertInteractions(prisma, []), 0);
      await assert.rejects(insertInteractions(prisma, [{ userId: 'carol', itemId: 'games:1', timestamp: 1.5 }]), RangeError);
    });

    test('insertInteractions rejects unknown items and inserts nothing of that batch; works inside a transaction', async () => {
      const { prisma } = db;
      const count = () => prisma.interaction.count({ where: { userId: 'carol' } });
      const before = await count();
      await assert.rejects(
        insertInteractions(prisma, [
          { userId: 'carol', itemId: 'games:1', timestamp: 1n },
          { userId: 'carol', itemId: 'no-such-item', timestamp: 2n },
        ]),
        /foreign key|interactions_item_id_fkey/i,
      );
      assert.equal(await count(), before);

      await assert.rejects(
        prisma.$transaction(async (tx) => {
          await insertInteractions(tx, [{ userId: 'carol', itemId: 'games:1', timestamp: 3n }]);
          throw new Error('abort');
        }),
        /abort/,
      );
      assert.equal(await count(), before);
      await prisma.$transaction(async (tx) => insertInteractions(tx, [{ userId: 'carol', itemId: 'games:1', timestamp: 4n }]));
      assert.equal(await count(), before + 1);
    });

    test('deleting an item cascades to its interactions; deleting a user cascades too', async () => {
      const { prisma } = db;
      const ofItem = (itemId: string) => prisma.interaction.count({ where: { itemId } });
      assert.ok((await ofItem('games:3')) > 0);
      const others = await prisma.interaction.count({ where: { itemId: { not: 'games:3' } } });
      await prisma.item.delete({ where: { id: 'games:3' } });
      assert.equal(await ofItem('games:3'), 0);
      assert.equal(await prisma.interaction.count(), others);

      await prisma.user.delete({ where: { id: 'bob' } });
      assert.equal(await prisma.interaction.count({ where: { userId: 'bob' } }), 0);
      assert.ok((await prisma.interaction.count({ where: { userId: 'alice' } })) > 0);
    });

    test('model versions: manifest JSON, status, activation', async () => {
      const { prisma } = db;
      const manifest = { format_version: 1, dimensions: { item_embedding: 576, recommendation: 128 }, metrics: { 'amazon-games': { 'recall@10': 0.1 } } };
      const registered = await prisma.modelVersion.create({ data: { version: 'v1', path: '/bundles/v1', manifest, status: 'registered' } });
      assert.equal(registered.activatedAt, null);
      assert.deepEqual(registered.manifest, manifest);
      const activated = await prisma.modelVersion.update({ where: { version: 'v1' }, data: { status: 'active', activatedAt: new Date() } });
      assert.ok(activated.activatedAt instanceof Date);
      assert.deepEqual(
        (await prisma.modelVersion.findMany({ where: { status: 'active' } })).map((m) => m.version),
        ['v1'],
      );
    });

    test('raw queries return BigInt for bigint columns and counts', async () => {
      const rows = await db.prisma.$queryRaw<{ n: bigint }[]>(Prisma.sql`SELECT count(*) AS n FROM "interactions"`);
      assert.equal(typeof rows[0].n, 'bigint');
    });

    test('data persists across close and re-open', async () => {
      const counts = async (d: Database) => [await d.prisma.item.count(), await d.prisma.user.count(), await d.prisma.interaction.count()];
      const expected = await counts(db);
      const lastBefore = await db.prisma.interaction.findFirstOrThrow({ orderBy: { id: 'desc' } });
      await db.close();
      db = await target.open();
      assert.deepEqual(db.migrations.applied, []);
      assert.deepEqual(await counts(db), expected);
      assert.deepEqual((await db.prisma.item.findUniqueOrThrow({ where: { id: 'games:1' } })).attributes, ATTRIBUTES);
      // The sequence continues after a re-open.
      const next = await db.prisma.interaction.create({ data: { userId: 'alice', itemId: 'games:1', timestamp: 0n } });
      assert.ok(next.id > lastBefore.id);
    });
  });
}
