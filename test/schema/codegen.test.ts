/** The committed resolver types are what graphql-codegen makes of schema.graphql today. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { REPO } from '../support/fixtures.js';

describe('src/schema/resolvers-types.ts', () => {
  it('is up to date with schema.graphql (else: npm run codegen)', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'codegen.ts', '--check'], { cwd: REPO, encoding: 'utf8' });
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /src\/schema\/resolvers-types\.ts is up to date/);
  });
});
