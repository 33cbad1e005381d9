/**
 * The image as deployed, checked without a Docker engine (none runs here; issue #12): the Dockerfile's final stage
 * resolved by scripts/image-config.mjs, compose.yaml parsed, and the settings the container would load, with the
 * registry where compose mounts the bundles holding a real bundle. Not covered: building the image and running it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { loadSettings } from '../../src/config.js';
import { ModelRegistry } from '../../src/models/model-registry.js';
import { REPO, tinyBundle } from '../support/fixtures.js';

interface ImageConfig {
  workdir: string;
  env: Record<string, string>;
  user: string;
  cmd: string[];
  healthcheck?: { options: string[]; cmd: string[] };
  volumes: string[];
}

const image = JSON.parse(execFileSync(process.execPath, ['scripts/image-config.mjs'], { cwd: REPO, encoding: 'utf8' })) as ImageConfig;
const compose = parse(await readFile(path.join(REPO, 'compose.yaml'), 'utf8'));
const packageJson = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8'));

/** compose's ${NAME:?message} / ${NAME:-default} with the given values; a required one without a value throws. */
function interpolate(value: string, values: Record<string, string>): string {
  return value.replace(/\$\{(\w+)(?::([?-])([^}]*))?\}/g, (_, name: string, kind?: string, rest?: string) => {
    if (values[name] !== undefined) return values[name];
    if (kind === '-') return rest ?? '';
    throw new Error(`${name} is required: ${rest}`);
  });
}

describe('the image and compose as deployed', () => {
  it('runs the compiled server as a non-root user with a health check on /readyz', () => {
    assert.deepEqual(image.cmd, ['node', 'dist/src/cli/serve.js']);
    // What npm run build would emit for src/cli/serve.ts, as tsc resolves tsconfig.build.json (no files written).
    const emitted = execFileSync(process.execPath, [path.join(REPO, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--showConfig'], { cwd: REPO, encoding: 'utf8' });
    const config = JSON.parse(emitted);
    assert.equal(path.normalize(config.compilerOptions.outDir), 'dist');
    assert.ok(config.files.some((file: string) => path.normalize(file) === path.normalize('./src/cli/serve.ts')), 'serve.ts is compiled');
    assert.notEqual(image.user, 'root');
    assert.ok(image.healthcheck, 'HEALTHCHECK');
    assert.match(image.healthcheck.cmd.join(' '), /\/readyz/);
    assert.equal(image.env.NODE_ENV, 'production');
  });

  it('keeps the Prisma CLI out of the runtime dependencies', () => {
    assert.equal(packageJson.dependencies.prisma, undefined);
    assert.ok(packageJson.devDependencies.prisma);
    assert.ok(packageJson.dependencies['@prisma/client']);
  });

  it('points the model registry where compose mounts the bundles, and activateModel finds the versions there', async () => {
    const app = compose.services.app;
    const bundlesMount = (app.volumes as string[]).find((volume) => volume.startsWith('./bundles:'))!;
    const target = bundlesMount.split(':')[1];
    const secrets = { LLM2REC_API_KEY: 'k', POSTGRES_PASSWORD: 'p', QDRANT_API_KEY: 'q' };
    const environment = Object.fromEntries(Object.entries(app.environment as Record<string, string>).map(([key, value]) => [key, interpolate(String(value), secrets)]));
    const settings = loadSettings({ ...image.env, ...environment });
    assert.equal(settings.modelRegistryDir, target);
    assert.equal(path.dirname(settings.bundleDir), target);
    assert.equal(image.env.LLM2REC_MODEL_REGISTRY, target, 'the image alone points there too');
    assert.equal(settings.vectorIndex, 'qdrant');
    assert.equal(settings.qdrantApiKey, 'q');
    assert.equal(settings.introspection, false, 'production: no introspection');
    // The host's ./bundles as the container sees it: a registry holding the quick bundle.
    const host = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-bundles-'));
    try {
      await cp(tinyBundle(), path.join(host, path.basename(settings.bundleDir)), { recursive: true });
      const manifest = JSON.parse(await readFile(path.join(tinyBundle(), 'manifest.json'), 'utf8'));
      const registry = new ModelRegistry(path.join(host, path.relative(target, settings.modelRegistryDir)));
      assert.deepEqual((await registry.list()).map((bundle) => bundle.version), [manifest.model_version]);
    } finally {
      await rm(host, { recursive: true, force: true });
    }
  });

  it('ships no default secret and publishes only the app', () => {
    const text = JSON.stringify(compose);
    assert.doesNotMatch(text, /change-me/);
    const secrets = { LLM2REC_API_KEY: 'k', POSTGRES_PASSWORD: 'p', QDRANT_API_KEY: 'q' };
    for (const name of Object.keys(secrets)) {
      const without = Object.fromEntries(Object.entries(secrets).filter(([key]) => key !== name));
      assert.throws(() => interpolate(text, without), new RegExp(`${name} is required`), `compose refuses to start without ${name}`);
    }
    assert.doesNotThrow(() => interpolate(text, secrets));
    assert.equal(compose.services.qdrant.ports, undefined, 'Qdrant is not published');
    assert.equal(compose.services.postgres.ports, undefined, 'PostgreSQL is not published');
    assert.match(String(compose.services.qdrant.environment.QDRANT__SERVICE__API_KEY), /QDRANT_API_KEY/);
  });

  it('has health checks, a restart policy and the app waiting for healthy PostgreSQL and Qdrant', () => {
    const { app, postgres, qdrant } = compose.services;
    for (const [name, service] of Object.entries({ app, postgres, qdrant }) as [string, any][]) {
      assert.ok(service.healthcheck?.test, `${name} has a health check`);
      assert.equal(service.restart, 'unless-stopped', `${name} restarts`);
    }
    assert.deepEqual(app.depends_on, { postgres: { condition: 'service_healthy' }, qdrant: { condition: 'service_healthy' } });
    assert.match(app.healthcheck.test.join(' '), /\/readyz/);
    assert.match(qdrant.healthcheck.test.join(' '), /\/readyz/);
  });
});
