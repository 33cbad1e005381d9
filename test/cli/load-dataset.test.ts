/**
 * load-dataset against no server (issue #12, operator experience): it follows PORT and names the URL it failed to
 * reach and why, exiting 1. A real dataset directory cut from the shared data; nothing listens on the port.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { cutDataset, freePort, REPO } from '../support/fixtures.js';


describe('load-dataset', () => {
  it('follows PORT and names the URL it cannot reach', async () => {
    const dataset = await cutDataset('amazon-games', 2);
    const port = await freePort();
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/load-dataset.ts', dataset], {
      cwd: REPO, env: { ...process.env, PORT: String(port) }, encoding: 'utf8',
    });
    assert.equal(run.status, 1);
    assert.match(run.stderr, new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}/graphql \\(ECONNREFUSED\\)`), run.stderr);
  });
});
