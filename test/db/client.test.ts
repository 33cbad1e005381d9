import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { openDatabase, type Database } from '../../src/db/index.js';
import { turnsDuring } from '../support/turns.js';
import { tempDir } from './backends.js';

describe('the embedded database on the event loop', () => {
  let dir: string;
  let db: Database;
  before(async () => {
    dir = tempDir();
    db = await openDatabase({ dataDir: dir });
    await db.prisma.item.createMany({ data: Array.from({ length: 50 }, (_, i) => ({ id: `i${i}`, domain: 'games', title: `Game ${i}` })) });
  });
  after(async () => {
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('spreads queries asked at once over turns of the event loop, and answers each', async () => {
    // PGlite runs in this thread and its answers resolve as promises: without a share of the turn budget per query,
    // these 64 queries ran within one turn, whatever their length.
    const ids = Array.from({ length: 64 }, (_, i) => `i${i % 50}`);
    const { result, turns } = await turnsDuring(() => Promise.all(ids.map((id) => db.prisma.item.findMany({ where: { id }, select: { id: true } }))));
    assert.deepEqual(result.map((rows) => rows[0].id), ids);
    // A query takes a sixteenth of a turn's count (src/db/client.ts): 64 queries need four turns, three after the first.
    assert.ok(turns >= 3, `${turns} turns`);
  });

  it('keeps a failing query from holding up the ones after it', async () => {
    await assert.rejects(db.prisma.$queryRawUnsafe('SELECT * FROM no_such_table'));
    assert.equal((await db.prisma.item.count()), 50);
  });
});
