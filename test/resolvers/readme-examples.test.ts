/**
 * The README's example queries return results on the quickstart's data (issue #12: the `brand: "Nintendo"` filter
 * matched nothing there). Every operation of the README's first GraphQL block runs against a real server holding the
 * first 60 users of amazon-games (loaded with load-dataset, as the quickstart does) and, for the examples that say
 * so, a slice of amazon-scientific; each answers without errors and every list in it has entries.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO, SHARED_DATA, cutDataset } from '../support/fixtures.js';
import { TestPlatform } from '../support/http-platform.js';

/** The operations of the README's first ```graphql block, each with the comment above it. */
async function readmeOperations(): Promise<{ comment: string; text: string }[]> {
  const readme = await readFile(path.join(REPO, 'README.md'), 'utf8');
  const block = /```graphql\n([\s\S]*?)```/.exec(readme)![1];
  return block.split(/\n(?=#)/).flatMap((chunk) => {
    const comment = chunk.split('\n').filter((line) => line.startsWith('#')).join(' ');
    const body = chunk.split('\n').filter((line) => !line.startsWith('#')).join('\n');
    // Several one-line operations may follow one comment.
    return body.split(/\n(?=query|mutation)/).map((text) => ({ comment, text: text.trim() })).filter((op) => op.text);
  });
}

/** Paths to the empty lists in a result. */
function emptyLists(value: unknown, at = 'data'): string[] {
  if (Array.isArray(value)) return value.length === 0 ? [at] : value.flatMap((entry, i) => emptyLists(entry, `${at}[${i}]`));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([key, entry]) => emptyLists(entry, `${at}.${key}`));
  return [];
}

describe('README example queries', () => {
  let api: TestPlatform;

  before(async () => {
    api = await TestPlatform.start();
    await api.load(await cutDataset('amazon-games', 60));
    // amazon-scientific as the README's load-dataset command would name it: its PORTER-CABLE items and a hundred more.
    const lines = (await readFile(path.join(SHARED_DATA, 'amazon-scientific/items.jsonl'), 'utf8')).split('\n').filter(Boolean);
    const kept = lines.filter((line, i) => i < 100 || JSON.parse(line).brand === 'PORTER-CABLE');
    const dir = path.join(await mkdtemp(path.join(os.tmpdir(), 'llm2rec-readme-')), 'amazon-scientific');
    await mkdir(dir);
    await writeFile(path.join(dir, 'items.jsonl'), kept.join('\n') + '\n');
    await api.load(dir);
  });
  after(() => api?.destroy());

  it('answer without errors and with entries in every list', async () => {
    const operations = await readmeOperations();
    assert.ok(operations.length >= 8, JSON.stringify(operations.map((op) => op.text.slice(0, 40))));
    for (const { comment, text } of operations) {
      const result = await api.mutate(text);
      assert.equal(result.errors, undefined, `${comment}\n${text}\n${JSON.stringify(result.errors)}`);
      assert.deepEqual(emptyLists(result.data), [], `${comment}\n${text}`);
    }
  });
});
