/**
 * load-dataset against no server (issue #12, operator experience): it follows PORT and names the URL it failed to
 * reach and why, exiting 1. A real dataset directory cut from the shared data; nothing listens on the port.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { REPO, cutDataset } from '../support/fixtures.js';

async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('load-dataset', () => {
  it('follows PORT and names the URL it cannot reach', async () => {
    const dataset = await cutDataset('amazon-games', 2);
    const port = await unusedPort();
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/load-dataset.ts', dataset], {
      cwd: REPO, env: { ...process.env, PORT: String(port) }, encoding: 'utf8',
    });
    assert.equal(run.status, 1);
    assert.match(run.stderr, new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}/graphql \\(ECONNREFUSED\\)`), run.stderr);
  });
});
