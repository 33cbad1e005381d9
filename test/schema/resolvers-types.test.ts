/** The committed resolver types are what graphql-codegen makes of schema.graphql today. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { REPO } from '../support/fixtures.js';

describe('src/schema/resolvers-types.ts', () => {
  it('is up to date with schema.graphql (else: npm run codegen)', () => {
    const cli = path.join(REPO, 'node_modules/.bin/graphql-codegen');
    const result = spawnSync(cli, ['--config', 'codegen.ts', '--check'], { cwd: REPO, encoding: 'utf8' });
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
  });
});
