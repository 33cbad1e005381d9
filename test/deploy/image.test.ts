/**
 * The image as deployed, checked without a Docker engine (none runs here; issue #12): the Dockerfile's final stage
 * resolved by scripts/image-config.mjs, compose.yaml parsed, and the settings the container would load, with the
 * registry where compose mounts the bundles holding a real bundle; and the replicas behind nginx (issue #15): the
 * compose services and deploy/nginx.conf read as nginx would parse it. Not covered: building the image, running it,
 * and nginx itself (its `nginx -t` needs 1.27.3 or later for the upstream `resolve` parameter).
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
import { KEEP_ALIVE_TIMEOUT_MS } from '../../src/server/http-server.js';
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
const secrets = { LLM2REC_API_KEY: 'k', POSTGRES_PASSWORD: 'p', QDRANT_API_KEY: 'q' };

/** compose's ${NAME:?message} / ${NAME:-default} with the given values; a required one without a value throws. */
function interpolate(value: string, values: Record<string, string>): string {
  return value.replace(/\$\{(\w+)(?::([?-])([^}]*))?\}/g, (_, name: string, kind?: string, rest?: string) => {
    if (values[name] !== undefined) return values[name];
    if (kind === '-') return rest ?? '';
    throw new Error(`${name} is required: ${rest}`);
  });
}

/** A directive of an nginx configuration: its name, its arguments (quotes removed) and its block, if it has one. */
interface Directive {
  name: string;
  args: string[];
  block?: Directive[];
}

/** nginx's configuration syntax, enough for deploy/nginx.conf: words, quoted strings, `;`, blocks, # comments. */
function parseNginx(text: string): Directive[] {
  const tokens: { value: string; quoted: boolean }[] = [];
  const pattern = /\s+|#[^\n]*|'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|([{};])|([^\s{};'"#]+)/gy;
  for (let position = 0; position < text.length; position = pattern.lastIndex) {
    pattern.lastIndex = position;
    const match = pattern.exec(text);
    assert.ok(match, `nginx.conf: an unterminated quote at character ${position}`);
    if (match[1] !== undefined || match[2] !== undefined) tokens.push({ value: match[1] ?? match[2], quoted: true });
    else if (match[3] ?? match[4]) tokens.push({ value: match[3] ?? match[4], quoted: false });
  }
  let at = 0;
  const block = (nested: boolean): Directive[] => {
    const directives: Directive[] = [];
    while (at < tokens.length) {
      if (!tokens[at].quoted && tokens[at].value === '}') {
        assert.ok(nested, 'an unopened } in nginx.conf');
        at++;
        return directives;
      }
      const [name, ...args] = ((): string[] => {
        const words: string[] = [];
        while (at < tokens.length && (tokens[at].quoted || !'{;}'.includes(tokens[at].value))) words.push(tokens[at++].value);
        return words;
      })();
      assert.ok(name !== undefined && at < tokens.length, `nginx.conf: a directive without ; or { near token ${at}`);
      const end = tokens[at++].value;
      assert.notEqual(end, '}', `nginx.conf: ${name} lacks its ;`);
      directives.push(end === '{' ? { name, args, block: block(true) } : { name, args });
    }
    assert.ok(!nested, 'nginx.conf: a block is not closed');
    return directives;
  };
  return block(false);
}

/** The directives named `name` directly in `block`. */
const all = (block: Directive[] | undefined, name: string) => (block ?? []).filter((directive) => directive.name === name);
/** The one directive named `name` directly in `block`. */
function one(block: Directive[] | undefined, name: string): Directive {
  const found = all(block, name);
  assert.equal(found.length, 1, `exactly one ${name}`);
  return found[0];
}

/** An nginx size (9m) or an app size (8mb), in bytes: both count k and m in 1024s. */
function sizeBytes(size: string): number {
  const match = /^(\d+)\s*([kmg]?)b?$/i.exec(size.trim());
  assert.ok(match, `a size: ${size}`);
  return Number(match[1]) * 1024 ** ' kmg'.indexOf(match[2].toLowerCase() || ' ');
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

  it('ships no default secret and publishes only the load balancer', () => {
    const text = JSON.stringify(compose);
    assert.doesNotMatch(text, /change-me/);
    for (const name of Object.keys(secrets)) {
      const without = Object.fromEntries(Object.entries(secrets).filter(([key]) => key !== name));
      assert.throws(() => interpolate(text, without), new RegExp(`${name} is required`), `compose refuses to start without ${name}`);
    }
    assert.doesNotThrow(() => interpolate(text, secrets));
    const published = Object.entries(compose.services as Record<string, { ports?: string[] }>).filter(([, service]) => service.ports !== undefined);
    assert.deepEqual(published.map(([name]) => name), ['nginx'], 'nginx alone publishes a port: not the app replicas, Qdrant or PostgreSQL');
    assert.deepEqual(compose.services.nginx.ports.map((port: string) => interpolate(port, {})), ['4000:80'], 'LLM2REC_PORT, 4000 by default');
    assert.deepEqual(compose.services.nginx.ports.map((port: string) => interpolate(port, { LLM2REC_PORT: '8000' })), ['8000:80']);
    assert.match(String(compose.services.qdrant.environment.QDRANT__SERVICE__API_KEY), /QDRANT_API_KEY/);
  });

  it('has health checks, a restart policy, the app waiting for healthy PostgreSQL and Qdrant and nginx for the app', () => {
    const { app, nginx, postgres, qdrant } = compose.services;
    for (const [name, service] of Object.entries({ app, nginx, postgres, qdrant }) as [string, any][]) {
      assert.ok(service.healthcheck?.test, `${name} has a health check`);
      assert.equal(service.restart, 'unless-stopped', `${name} restarts`);
    }
    assert.deepEqual(app.depends_on, { postgres: { condition: 'service_healthy' }, qdrant: { condition: 'service_healthy' } });
    assert.deepEqual(Object.keys(nginx.depends_on), ['app']);
    assert.match(app.healthcheck.test.join(' '), /\/readyz/);
    assert.match(qdrant.healthcheck.test.join(' '), /\/readyz/);
  });

  it('runs LLM2REC_REPLICAS app replicas, 3 by default, each with a data directory of its own', () => {
    const { app } = compose.services;
    assert.equal(Number(interpolate(String(app.deploy.replicas), {})), 3);
    assert.equal(Number(interpolate(String(app.deploy.replicas), { LLM2REC_REPLICAS: '5' })), 5);
    assert.equal(app.container_name, undefined, 'a fixed container name allows one replica only');
    assert.equal(app.ports, undefined, 'replicas publish no host port');
    // The data directory the settings name, mounted as an anonymous volume (one per container), never as a named
    // volume or a host directory that all replicas would share.
    const environment = Object.fromEntries(Object.entries(app.environment as Record<string, string>).map(([key, value]) => [key, interpolate(String(value), secrets)]));
    const dataDir = loadSettings({ ...image.env, ...environment }).dataDir;
    assert.equal(dataDir, '/data');
    const mounts = (app.volumes as string[]).map((volume) => volume.split(':'));
    const data = mounts.filter((mount) => (mount.length === 1 ? mount[0] : mount[1]) === dataDir);
    assert.deepEqual(data, [[dataDir]], `${dataDir} is an anonymous volume, one per replica`);
    for (const mount of mounts.filter((candidate) => candidate.length > 1)) {
      assert.ok(mount[0].startsWith('./') && mount.at(-1) === 'ro', `what replicas share is a host directory, read-only: ${mount.join(':')}`);
    }
    assert.equal(compose.volumes['app-data'], undefined, 'no named volume for the app data');
    // Qdrant by default; embedded on request, where the per-replica volumes hold each replica's own index.
    assert.equal(interpolate(app.environment.LLM2REC_VECTOR_INDEX, {}), 'qdrant');
    assert.equal(interpolate(app.environment.LLM2REC_VECTOR_INDEX, { LLM2REC_VECTOR_INDEX: 'embedded' }), 'embedded');
  });

  it('runs nginx from the official image, 1.27.3 or later, with deploy/nginx.conf mounted read-only', async () => {
    const { nginx } = compose.services;
    const [repository, tag] = String(nginx.image).split(':');
    assert.equal(repository, 'nginx', 'the official nginx image');
    const version = /^(\d+)\.(\d+)(?:\.(\d+))?(?:-|$)/.exec(tag ?? '');
    assert.ok(version, `a pinned version: ${nginx.image}`);
    const [major, minor, patch] = [Number(version[1]), Number(version[2]), Number(version[3] ?? 99)];
    assert.ok(major > 1 || minor > 27 || (minor === 27 && patch >= 3), 'the upstream `resolve` parameter is in open-source nginx from 1.27.3');
    assert.ok((nginx.volumes as string[]).includes('./deploy/nginx.conf:/etc/nginx/nginx.conf:ro'));
    await readFile(path.join(REPO, 'deploy/nginx.conf'), 'utf8');
  });

  it('balances over every replica by name, re-resolved through Docker\'s DNS, with keep-alive and passive checks', async () => {
    const conf = parseNginx(await readFile(path.join(REPO, 'deploy/nginx.conf'), 'utf8'));
    const http = one(conf, 'http').block;
    assert.ok(one(conf, 'events').block);
    const resolver = one(http, 'resolver');
    assert.equal(resolver.args[0], '127.0.0.11', 'Docker\'s embedded DNS');
    const valid = resolver.args.find((arg) => arg.startsWith('valid='));
    assert.ok(valid && Number.parseInt(valid.slice('valid='.length), 10) <= 30, 'answers kept briefly, not for their 600 s TTL');
    const upstreams = all(http, 'upstream');
    assert.equal(upstreams.length, 1);
    const upstream = upstreams[0];
    const servers = all(upstream.block, 'server');
    assert.equal(servers.length, 1, 'one server entry: the service name, which resolves to every replica');
    const [address, ...parameters] = servers[0].args;
    assert.equal(address, `app:${interpolate(compose.services.app.expose[0], {})}`, 'the app service on the port it listens on');
    assert.equal(interpolate(compose.services.app.expose[0], {}), image.env.PORT);
    assert.ok(parameters.includes('resolve'), 'looked up again, so scaled replicas are found');
    assert.ok(parameters.some((parameter) => parameter.startsWith('max_fails=')), 'passive checks: max_fails');
    assert.ok(parameters.some((parameter) => parameter.startsWith('fail_timeout=')), 'passive checks: fail_timeout');
    assert.ok(one(upstream.block, 'zone'), '`resolve` needs the group in shared memory');
    assert.ok(Number(one(upstream.block, 'keepalive').args[0]) > 0, 'idle upstream connections kept');
    const keepaliveTimeout = one(upstream.block, 'keepalive_timeout').args[0];
    assert.match(keepaliveTimeout, /^\d+s$/);
    assert.ok(Number.parseInt(keepaliveTimeout, 10) * 1000 < KEEP_ALIVE_TIMEOUT_MS, 'nginx closes an idle connection before the app does');

    const servers80 = all(http, 'server').filter((server) => all(server.block, 'listen').some((listen) => listen.args[0] === '80'));
    assert.equal(servers80.length, 1, 'one server on the port compose publishes');
    const server = servers80[0].block;
    assert.equal(one(server, 'proxy_http_version').args[0], '1.1');
    assert.deepEqual(all(server, 'proxy_set_header').find((header) => header.args[0].toLowerCase() === 'connection')?.args, ['Connection', ''], 'no Connection: close upstream');
    const nextUpstream = one(server, 'proxy_next_upstream').args;
    assert.deepEqual(nextUpstream, ['error', 'timeout'], 'connection errors only: no non_idempotent, no retry on an HTTP status');
    const bodyLimit = sizeBytes(one(server, 'client_max_body_size').args[0]);
    assert.ok(bodyLimit >= sizeBytes(loadSettings({}).maxBodySize), 'bodies the app accepts pass nginx');

    const locations = new Map(all(server, 'location').map((location) => [location.args.join(' '), location.block]));
    for (const route of ['= /graphql', '= /healthz', '= /readyz', '/export/']) {
      const location = locations.get(route);
      assert.ok(location, `${route} is routed`);
      assert.equal(one(location, 'proxy_pass').args[0], `http://${upstream.args[0]}`, `${route} goes to the replicas`);
      assert.deepEqual(all(location, 'proxy_next_upstream'), [], `${route} keeps the server's retry rule`);
      assert.deepEqual(all(location, 'proxy_set_header'), [], `${route} inherits the server's proxy headers`);
    }
    const metrics = locations.get('= /metrics');
    assert.ok(metrics, '/metrics has its own answer');
    assert.deepEqual(all(metrics, 'proxy_pass'), [], '/metrics is per replica, not proxied');
    for (const [route, location] of locations) {
      if (all(location, 'proxy_pass').length === 0) assert.ok(all(location, 'return').length > 0, `${route} answers itself`);
    }

    // compose's health check for nginx asks a listener nginx.conf has, on the loopback interface only.
    const probe = new URL(compose.services.nginx.healthcheck.test.find((arg: string) => arg.startsWith('http://')));
    const local = all(http, 'server').find((candidate) => all(candidate.block, 'listen').some((listen) => listen.args[0] === probe.host));
    assert.ok(local, `a server listens on ${probe.host}`);
    assert.equal(probe.hostname, '127.0.0.1');
    const health = all(local.block, 'location').find((location) => location.args.join(' ') === `= ${probe.pathname}`);
    assert.equal(one(health?.block, 'return').args[0], '200');
  });
});
