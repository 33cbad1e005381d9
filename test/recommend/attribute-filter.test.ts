/**
 * Attribute filters run on the item rows in memory; they must keep the same items as the database's JSON equality
 * (Prisma's path filter), which is what they replaced, and the attribute index must find the same items as checking
 * every row. Checked on PGlite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ItemReadModel } from '../../src/catalog/item-read-model.js';
import { upsertItems, type Database } from '../../src/db/index.js';
import { AttributeMatcher, type AttributeFilter } from '../../src/recommend/attribute-filter.js';
import { backends } from '../db/backends.js';

const ITEMS: Record<string, Record<string, unknown>> = {
  switch: { brand: 'Nintendo', year: 2017, price: 299.99, handheld: true, tags: ['console'] },
  wii: { brand: 'Nintendo', year: 2006, price: 249, handheld: false },
  ps4: { brand: 'Sony', year: '2013', price: 399.0, 'a.b': 'dotted' },
  bare: {},
  nested: { brand: { name: 'Nintendo' }, year: null },
};

const FILTERS: AttributeFilter[] = [
  { brand: 'Nintendo' },
  { brand: 'Nintendo', year: 2017 },
  { year: 2013 },
  { year: '2013' },
  { price: 399 },
  { price: 299.99 },
  { handheld: false },
  { handheld: 'false' },
  { 'a.b': 'dotted' },
  { constructor: 'x' },
  { brand: 'nintendo' },
  {},
];

for (const backend of backends) {
  describe(`attribute filters on ${backend.kind}`, { skip: backend.skip }, () => {
    let db: Database;
    let matcher: AttributeMatcher;
    const ids = Object.keys(ITEMS);

    before(async () => {
      db = await backend.fresh().open();
      await upsertItems(db.prisma, ids.map((id) => ({ id, domain: 'games', title: id, attributes: ITEMS[id] })));
      matcher = new AttributeMatcher(await ItemReadModel.load(db));
    });
    after(async () => {
      await db?.close();
      await backend.cleanup();
    });

    it('keep the items the database would keep', async () => {
      for (const filter of FILTERS) {
        const rows = await db.prisma.item.findMany({
          where: { id: { in: ids }, AND: Object.entries(filter).map(([key, value]) => ({ attributes: { path: [key], equals: value } })) },
          select: { id: true },
        });
        const expected = rows.map((row) => row.id).sort();
        assert.deepEqual([...matcher.matching([...ids, 'unknown'], filter)].sort(), expected, JSON.stringify(filter));
      }
    });

    it('find the same items through the attribute index of a domain, after writes too', async () => {
      const rows = await ItemReadModel.load(db);
      const indexed = new AttributeMatcher(rows);
      const check = async (stage: string) => {
        const present = [...rows.values()].map((item) => item.id);
        for (const filter of FILTERS.filter((entries) => Object.keys(entries).length > 0)) {
          const expected = [...indexed.matching(present, filter)].sort();
          assert.deepEqual(indexed.fewMatching('games', filter, present.length)?.sort(), expected, `${stage} ${JSON.stringify(filter)}`);
          assert.deepEqual((await indexed.allMatching('games', filter)).sort(), expected, `${stage} ${JSON.stringify(filter)}`);
          assert.deepEqual(indexed.fewMatching('movies', filter, present.length), []);
        }
      };
      await check('loaded');
      assert.equal(indexed.fewMatching('games', { brand: 'Nintendo' }, 1), undefined, 'two items hold it: more than 1');
      rows.put([{ id: 'wii', domain: 'games', title: 'wii', attributes: { brand: 'Sony', year: 2006 } }]);
      rows.put([{ id: 'ds', domain: 'games', title: 'ds', attributes: { brand: 'Nintendo', handheld: true } }]);
      rows.remove(['switch']);
      await check('after writes');
      assert.deepEqual(indexed.fewMatching('games', { brand: 'Nintendo' }, 1), ['ds']);
    });
  });
}
