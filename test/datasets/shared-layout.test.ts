/**
 * Reading the shared layout as editors write it: a byte-order mark and CRLF line ends in both files read as the
 * same data without them; a bad line is still named by file and line.
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { readInteractions, readItems } from '../../src/datasets/shared-layout.js';

async function dataset(items: string[], interactions: string[], bom: boolean, lineEnd: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'shared-layout-'));
  const mark = bom ? '\uFEFF' : '';
  await writeFile(path.join(dir, 'items.jsonl'), mark + items.join(lineEnd) + lineEnd);
  await writeFile(path.join(dir, 'interactions.csv'), mark + interactions.join(lineEnd) + lineEnd);
  return dir;
}

async function read(dir: string) {
  const items = [];
  for await (const item of readItems(dir)) items.push(item);
  const interactions = [];
  for await (const interaction of readInteractions(dir)) interactions.push(interaction);
  return { items, interactions };
}

const ITEMS = ['{"id": "a-1", "title": "Space Quest", "domain": "games"}', '{"id": 2, "title": "Kart", "domain": "games"}'];
const INTERACTIONS = ['user_id,item_id,timestamp', 'u1,a-1,10', 'u1,2,11'];

describe('shared layout', () => {
  it('reads a byte-order mark and CRLF line ends as the same data', async () => {
    const plain = await read(await dataset(ITEMS, INTERACTIONS, false, '\n'));
    assert.deepEqual(plain.items.map((item) => item.id), ['a-1', '2']);
    assert.deepEqual(plain.interactions, [
      { userId: 'u1', itemId: 'a-1', timestamp: 10n }, { userId: 'u1', itemId: '2', timestamp: 11n }]);
    assert.deepEqual(await read(await dataset(ITEMS, INTERACTIONS, true, '\r\n')), plain);
  });

  it('names the file and line of an item that is not JSON, after a byte-order mark too', async () => {
    const dir = await dataset([ITEMS[0], '{"id": 3, "title": '], INTERACTIONS, true, '\r\n');
    await assert.rejects(read(dir), { name: 'DatasetFormatError', message: /items\.jsonl:2: not JSON/ });
  });
});
