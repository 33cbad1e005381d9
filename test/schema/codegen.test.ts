/** The committed generated types are what their sources give today: the GraphQL schema and the bundle format. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { REPO } from '../support/fixtures.js';

describe('npm run codegen', () => {
  it('has written the resolver types and the bundle manifest type from their sources as they are now', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'codegen.ts', '--check'], { cwd: REPO, encoding: 'utf8' });
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /src\/schema\/resolvers-types\.ts is up to date/);
    assert.match(result.stdout, /src\/inference\/bundle-manifest\.ts is up to date/);
  });
});
