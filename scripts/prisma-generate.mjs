#!/usr/bin/env node
// Runs `prisma generate` (writes the client to src/generated/prisma, git-ignored) on machines without internet.
//
// Prisma 7's client needs no native engine, but the CLI still resolves the schema engine binary at start-up and
// tries to download it when missing. `generate` never runs it, so pointing PRISMA_SCHEMA_ENGINE_BINARY at any
// existing file is enough. A real engine, when configured, is left alone. Extra arguments are passed on.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));
const prismaCli = path.join(path.dirname(require.resolve('prisma/package.json')), 'build', 'index.js');

const env = { ...process.env };
const engine = env.PRISMA_SCHEMA_ENGINE_BINARY;
if (!engine || !existsSync(path.resolve(root, engine))) {
  env.PRISMA_SCHEMA_ENGINE_BINARY = existsSync('/bin/true') ? '/bin/true' : process.execPath;
}
env.CHECKPOINT_DISABLE ??= '1'; // no update check over the network
env.PRISMA_HIDE_UPDATE_MESSAGE ??= '1';

const result = spawnSync(process.execPath, [prismaCli, 'generate', ...process.argv.slice(2)], { cwd: root, env, stdio: 'inherit' });
if (result.error) {
  console.error(`prisma-generate: cannot run ${prismaCli}: ${result.error.message}`);
  process.exit(1);
}
process.exit(result.status ?? 1);
