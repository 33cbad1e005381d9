/** sha256 of files on the calling thread and in a worker thread: the same digests, and a missing file rejects. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sha256OfFile, sha256OfFilesOffThread } from '../src/file-hash.js';

describe('file hashes', () => {
  let dir: string;
  const contents = [randomBytes(3 << 20), Buffer.alloc(0), Buffer.from('tokenizer')];
  const files = () => contents.map((_, i) => path.join(dir, `file-${i}`));

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-hash-'));
    await Promise.all(files().map((file, i) => writeFile(file, contents[i])));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('gives each file the sha256 of its bytes, here and in a worker thread', async () => {
    const expected = contents.map((bytes) => createHash('sha256').update(bytes).digest('hex'));
    assert.deepEqual(await Promise.all(files().map(sha256OfFile)), expected);
    assert.deepEqual(await sha256OfFilesOffThread(files()), expected);
  });

  it('rejects for a missing file', async () => {
    await assert.rejects(sha256OfFilesOffThread([path.join(dir, 'missing')]), /ENOENT/);
  });
});
