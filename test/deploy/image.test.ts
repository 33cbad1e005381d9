/**
 * The image as deployed, checked without a Docker engine (none runs here; issue #12): the Dockerfile's final stage
 * resolved by scripts/image-config.mjs, compose.yaml parsed, and the settings the container would load, with the
 * registry where compose mounts the bundles holding a real bundle; and the replicas behind HAProxy (issue #15): the
 * compose services and deploy/haproxy.cfg read line by line as HAProxy reads it, its routing rules evaluated for the
 * paths that matter. Not covered: building the image, running it, and HAProxy itself (`haproxy -c -f
 * deploy/haproxy.cfg` with HAProxy 3.1 or later checks the syntax; the Debian 12 package, 2.6, refuses init-state).
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

/** A line of an HAProxy configuration: its words (quotes and backslash escapes resolved) and its line number. */
interface Line {
  words: string[];
  line: number;
}

/** A section of an HAProxy configuration (global, defaults, frontend, backend, resolvers, ...) and its lines. */
interface Section {
  kind: string;
  name: string;
  lines: Line[];
}

const SECTION_KEYWORDS = new Set(['global', 'defaults', 'frontend', 'backend', 'listen', 'resolvers', 'peers', 'userlist', 'mailers', 'program', 'http-errors', 'ring', 'cache', 'log-forward', 'crt-store', 'traces']);

/** One line of HAProxy's configuration syntax: words split on blanks, '...' taken as is, "..." and \x escapes, # comments. */
function haproxyWords(text: string, line: number): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let at = 0; at < text.length;) {
    const char = text[at];
    if (char === '#') break;
    if (char === ' ' || char === '\t') {
      if (word !== undefined) words.push(word);
      word = undefined;
      at++;
      continue;
    }
    word ??= '';
    if (char === '\\') {
      word += text[at + 1] ?? '';
      at += 2;
    } else if (char === "'") {
      const end = text.indexOf("'", at + 1);
      assert.ok(end > 0, `haproxy.cfg:${line}: an unterminated '`);
      word += text.slice(at + 1, end);
      at = end + 1;
    } else if (char === '"') {
      let end = at + 1;
      for (; end < text.length && text[end] !== '"'; end++) word += text[end] === '\\' ? text[++end] : text[end];
      assert.ok(end < text.length, `haproxy.cfg:${line}: an unterminated "`);
      at = end + 1;
    } else {
      word += char;
      at++;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** HAProxy's configuration, enough for deploy/haproxy.cfg: a section keyword opens a section, every other line belongs to it. */
function parseHaproxy(text: string): Section[] {
  const sections: Section[] = [];
  text.split('\n').forEach((raw, index) => {
    const words = haproxyWords(raw, index + 1);
    if (words.length === 0) return;
    if (SECTION_KEYWORDS.has(words[0])) {
      sections.push({ kind: words[0], name: words[1] ?? '', lines: [] });
      return;
    }
    assert.ok(sections.length > 0, `haproxy.cfg:${index + 1}: ${words[0]} outside any section`);
    assert.equal(words.filter((word) => word === '{').length, words.filter((word) => word === '}').length, `haproxy.cfg:${index + 1}: every { of an anonymous ACL is closed`);
    sections.at(-1)!.lines.push({ words, line: index + 1 });
  });
  return sections;
}

/** The arguments after `keyword` (one or more words, as "timeout server") of every line of `section` that starts with it. */
function directives(section: Section | undefined, ...keyword: string[]): string[][] {
  return (section?.lines ?? []).filter((line) => keyword.every((word, index) => line.words[index] === word)).map((line) => line.words.slice(keyword.length));
}

/** The setting in force for `section`: its own last `keyword` line, else the defaults section's. */
function setting(section: Section, defaults: Section, ...keyword: string[]): string[] | undefined {
  return directives(section, ...keyword).at(-1) ?? directives(defaults, ...keyword).at(-1);
}

/** An HAProxy time (2s, 500ms, 1m; milliseconds without a unit) in milliseconds. */
function milliseconds(value: string | undefined): number {
  const match = /^(\d+)(us|ms|s|m|h|d)?$/.exec(value ?? '');
  assert.ok(match, `a time: ${value}`);
  return Number(match[1]) * { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? 'ms']!;
}

/** The value after `name` in a server line's parameters (`inter 1s` gives 1s). */
const parameter = (parameters: string[], name: string) => (parameters.includes(name) ? parameters[parameters.indexOf(name) + 1] : undefined);

/** The condition of a rule: the words after its `if` or `unless`, and which of the two it was. */
function conditionOf(words: string[]): { negate: boolean; terms: string[] } | undefined {
  const at = words.findIndex((word) => word === 'if' || word === 'unless');
  return at < 0 ? undefined : { negate: words[at] === 'unless', terms: words.slice(at + 1) };
}

/**
 * Whether a request for `path` meets an ACL condition of `section`: named ACLs (`acl name criterion values`, several
 * lines with one name match if any does), anonymous ones in { }, `!`, implicit AND and `||`. Only the criteria this
 * configuration routes on are known (path, path_beg); any other makes the test fail rather than guess.
 */
function meets(section: Section, condition: { negate: boolean; terms: string[] }, path: string): boolean {
  const criterion = ([fetch, ...values]: string[]): boolean => {
    if (fetch === 'path') return values.includes(path);
    if (fetch === 'path_beg') return values.some((value) => path.startsWith(value));
    throw new Error(`the test cannot evaluate the ACL criterion ${fetch}`);
  };
  const named = (name: string) => {
    const definitions = directives(section, 'acl').filter(([acl]) => acl === name);
    assert.ok(definitions.length > 0, `the ACL ${name} is defined in ${section.kind} ${section.name}`);
    return definitions.some(([, ...rest]) => criterion(rest));
  };
  let any = false;
  let all = true;
  for (let at = 0; at < condition.terms.length;) {
    let term = condition.terms[at];
    if (term === '||' || term === 'or') {
      any ||= all;
      all = true;
      at++;
      continue;
    }
    const not = term.startsWith('!');
    if (term === '!') term = condition.terms[++at];
    else if (not) term = term.slice(1);
    let value: boolean;
    if (term === '{') {
      const end = condition.terms.indexOf('}', at);
      assert.ok(end > at, 'an anonymous ACL is closed');
      value = criterion(condition.terms.slice(at + 1, end));
      at = end + 1;
    } else {
      value = named(term);
      at++;
    }
    all &&= not ? !value : value;
  }
  const result = any || all;
  return condition.negate ? !result : result;
}

/** Where HAProxy's `frontend` sends a request for `path`: the first final http-request rule it meets, else a backend. */
function route(frontend: Section, path: string): { status: number; body?: string } | { backend: string } {
  for (const rule of directives(frontend, 'http-request')) {
    if (!['return', 'deny', 'redirect', 'tarpit'].includes(rule[0])) continue;
    const condition = conditionOf(rule);
    if (condition && !meets(frontend, condition, path)) continue;
    assert.equal(rule[0], 'return', `only http-request return answers a path here (${rule[0]})`);
    return { status: Number(parameter(rule, 'status') ?? 200), body: parameter(rule, 'string') };
  }
  for (const [backend, ...rest] of directives(frontend, 'use_backend')) {
    const condition = conditionOf(rest);
    if (!condition || meets(frontend, condition, path)) return { backend };
  }
  const fallback = directives(frontend, 'default_backend').at(-1);
  assert.ok(fallback, `frontend ${frontend.name} has a default_backend`);
  return { backend: fallback[0] };
}

/** The address and port of a `bind` line (`:4000`, `*:4000`, `127.0.0.1:8081`). */
function bindAddress(bind: string[]): { host: string; port: string } {
  const match = /^(.*):(\d+)$/.exec(bind[0] ?? '');
  assert.ok(match, `a bind address with a port: ${bind[0]}`);
  return { host: match[1], port: match[2] };
}

/** deploy/haproxy.cfg parsed, its one defaults section, the frontend on the port compose publishes and its backend. */
async function haproxyConfig(): Promise<{ sections: Section[]; defaults: Section; frontend: Section; backend: Section }> {
  const sections = parseHaproxy(await readFile(path.join(REPO, 'deploy/haproxy.cfg'), 'utf8'));
  const defaults = sections.filter((section) => section.kind === 'defaults');
  assert.equal(defaults.length, 1, 'one defaults section, in force for every proxy');
  assert.ok(sections.indexOf(defaults[0]) < sections.findIndex((section) => ['frontend', 'backend', 'listen'].includes(section.kind)), 'defaults before the proxies');
  const published = String(interpolate(compose.services.haproxy.ports[0], {})).split(':').at(-1);
  const frontends = sections.filter((section) => section.kind === 'frontend' && directives(section, 'bind').some((bind) => bindAddress(bind).port === published));
  assert.equal(frontends.length, 1, `one frontend on the port compose publishes (${published})`);
  const frontend = frontends[0];
  for (const bind of directives(frontend, 'bind')) {
    assert.ok(['', '*', '0.0.0.0', '::', '[::]'].includes(bindAddress(bind).host), 'on every interface: compose forwards the published port to the container\'s address');
  }
  const backendName = directives(frontend, 'default_backend').at(-1)?.[0];
  const backend = sections.find((section) => section.kind === 'backend' && section.name === backendName);
  assert.ok(backend, `the backend ${backendName} exists`);
  return { sections, defaults: defaults[0], frontend, backend };
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
    assert.deepEqual(published.map(([name]) => name), ['haproxy'], 'HAProxy alone publishes a port: not the app replicas, Qdrant or PostgreSQL');
    assert.deepEqual(compose.services.haproxy.ports.map((port: string) => interpolate(port, {})), ['4000:4000'], 'LLM2REC_PORT, 4000 by default');
    assert.deepEqual(compose.services.haproxy.ports.map((port: string) => interpolate(port, { LLM2REC_PORT: '8000' })), ['8000:4000']);
    assert.match(String(compose.services.qdrant.environment.QDRANT__SERVICE__API_KEY), /QDRANT_API_KEY/);
  });

  it('has health checks, a restart policy, the app waiting for healthy PostgreSQL and Qdrant and HAProxy for the app', () => {
    const { app, haproxy, postgres, qdrant } = compose.services;
    for (const [name, service] of Object.entries({ app, haproxy, postgres, qdrant }) as [string, any][]) {
      assert.ok(service.healthcheck?.test, `${name} has a health check`);
      assert.equal(service.restart, 'unless-stopped', `${name} restarts`);
    }
    assert.deepEqual(app.depends_on, { postgres: { condition: 'service_healthy' }, qdrant: { condition: 'service_healthy' } });
    assert.deepEqual(haproxy.depends_on, { app: { condition: 'service_started' } }, 'HAProxy starts without waiting for every replica');
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

  it('runs HAProxy from the official alpine image, 3.1 or later, with deploy/haproxy.cfg mounted read-only', async () => {
    const { haproxy } = compose.services;
    const [repository, tag] = String(haproxy.image).split(':');
    assert.equal(repository, 'haproxy', 'the official HAProxy image');
    const version = /^(\d+)\.(\d+)(?:\.\d+)?-alpine$/.exec(tag ?? '');
    assert.ok(version, `a pinned version of the alpine variant, whose busybox has the wget of the health check: ${haproxy.image}`);
    const [major, minor] = [Number(version[1]), Number(version[2])];
    assert.ok(major > 3 || (major === 3 && minor >= 1), 'the server parameter init-state is in HAProxy from 3.1');
    assert.equal(minor % 2, 0, 'a long-term supported branch (an even minor version)');
    assert.ok((haproxy.volumes as string[]).includes('./deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro'));
    await haproxyConfig();
  });

  it('balances over every replica by name, re-resolved through Docker\'s DNS, with active checks on /readyz', async () => {
    const { sections, defaults, backend } = await haproxyConfig();
    assert.deepEqual(setting(backend, defaults, 'balance'), ['leastconn'], 'fewest requests in flight');
    const templates = directives(backend, 'server-template');
    assert.equal(templates.length, 1, 'one server-template: the service name, whose addresses fill its slots');
    assert.deepEqual(directives(backend, 'server'), [], 'no fixed server beside it');
    const [, slots, address, ...own] = templates[0];
    // The server's own parameters first: they win over default-server's (parameter() takes the first).
    const parameters = [...own, ...directives(backend, 'default-server').flat(), ...directives(defaults, 'default-server').flat()];
    const port = interpolate(compose.services.app.expose[0], {});
    assert.equal(port, image.env.PORT);
    assert.equal(address, `app:${port}`, 'the app service on the port it listens on');
    const range = /^(?:(\d+)-)?(\d+)$/.exec(slots);
    assert.ok(range, `a number of slots: ${slots}`);
    const replicas = Number(interpolate(String(compose.services.app.deploy.replicas), {}));
    assert.ok(Number(range[2]) - Number(range[1] ?? 1) + 1 >= replicas, 'a slot for every replica compose starts');

    const resolversName = parameter(parameters, 'resolvers');
    const resolvers = sections.find((section) => section.kind === 'resolvers' && section.name === resolversName);
    assert.ok(resolvers, `the resolvers section ${resolversName} exists: the name is looked up again, so scaled replicas are found`);
    assert.deepEqual(directives(resolvers, 'nameserver').map(([, nameserver]) => nameserver), ['127.0.0.11:53'], 'Docker\'s embedded DNS, alone');
    assert.ok(milliseconds(directives(resolvers, 'timeout', 'resolve').at(-1)?.[0] ?? '1s') <= 5000, 'asked again within 5 s');
    assert.ok((parameter(parameters, 'init-addr') ?? '').split(',').includes('none'), 'starts before Docker\'s DNS knows app (init-addr none)');

    assert.ok(parameters.includes('check'), 'health-checked');
    const httpchk = setting(backend, defaults, 'option', 'httpchk');
    assert.ok(httpchk, 'HTTP checks (option httpchk)');
    const send = setting(backend, defaults, 'http-check', 'send');
    const [method, uri] = send ? [parameter(send, 'meth') ?? 'OPTIONS', parameter(send, 'uri') ?? '/'] : httpchk.length >= 2 ? httpchk : ['OPTIONS', httpchk[0] ?? '/'];
    assert.deepEqual([method, uri], ['GET', '/readyz'], 'each replica\'s readiness is checked');
    const expect = directives(backend, 'http-check', 'expect').length > 0 ? directives(backend, 'http-check', 'expect') : directives(defaults, 'http-check', 'expect');
    assert.deepEqual(expect, [['status', '200']], 'only 200 counts as ready (/readyz answers 503 otherwise)');
    const inter = milliseconds(parameter(parameters, 'inter') ?? '2s');
    const fall = Number(parameter(parameters, 'fall') ?? 3);
    const rise = Number(parameter(parameters, 'rise') ?? 2);
    const checkTimeout = milliseconds(setting(backend, defaults, 'timeout', 'check')?.[0] ?? String(inter));
    assert.ok(inter * fall <= 3000, `a replica whose /readyz fails is out within 3 s (inter ${inter} ms, fall ${fall})`);
    assert.ok(fall * (inter + checkTimeout) <= 10_000, 'one that hangs is out within 10 s');
    assert.ok(inter * rise <= 5000, 'one that is ready again is back within 5 s');
    assert.ok(['down', 'fully-down'].includes(parameter(parameters, 'init-state') ?? 'up'), 'a replica that appears gets requests once its /readyz passed');
  });

  it('keeps connections and retries a request on another replica only when it cannot have reached one', async () => {
    const { defaults, frontend, backend } = await haproxyConfig();
    assert.ok(milliseconds(setting(backend, defaults, 'timeout', 'connect')?.[0]) <= 5000, 'on the compose network a connection opens at once');
    assert.ok(milliseconds(setting(frontend, defaults, 'timeout', 'client')?.[0]) >= 120_000, 'a client may wait for a slow mutation');
    assert.ok(milliseconds(setting(backend, defaults, 'timeout', 'server')?.[0]) >= 120_000, 'an upsertItems batch or activateModel may take long');
    for (const section of [frontend, backend]) {
      const keepAlive = setting(section, defaults, 'timeout', 'http-keep-alive');
      assert.ok(keepAlive, `timeout http-keep-alive for ${section.kind} ${section.name}`);
      assert.ok(milliseconds(keepAlive[0]) < KEEP_ALIVE_TIMEOUT_MS, 'HAProxy closes an idle connection before the app does');
    }
    const template = [...directives(backend, 'server-template')[0], ...directives(backend, 'default-server').flat(), ...directives(defaults, 'default-server').flat()];
    assert.ok(milliseconds(parameter(template, 'pool-purge-delay') ?? '5s') < KEEP_ALIVE_TIMEOUT_MS, 'idle connections to the replicas are trimmed before the app closes them');
    assert.ok(['safe', 'never'].includes(setting(backend, defaults, 'http-reuse')?.[0] ?? 'safe'), 'a client\'s first request never goes over a connection another client left idle');

    assert.ok(Number(setting(backend, defaults, 'retries')?.[0] ?? 3) >= 1, 'retries');
    assert.deepEqual(setting(backend, defaults, 'option', 'redispatch'), ['1'], 'every retry on another replica');
    assert.deepEqual(setting(backend, defaults, 'no', 'option', 'redispatch'), undefined);
    const retryOn = setting(backend, defaults, 'retry-on') ?? ['conn-failure'];
    for (const event of retryOn) {
      assert.ok(['none', 'conn-failure', 'empty-response'].includes(event), `retry-on ${event} may send again a request that reached a replica and ran`);
    }
    if (retryOn.includes('empty-response')) {
      // Sent, then the connection closed without an answer: repeated for GET and HEAD alone, never for a POST.
      const rules = [...directives(frontend, 'http-request'), ...directives(backend, 'http-request')].filter((rule) => rule[0] === 'disable-l7-retry');
      const getOnly = rules.some((rule) => {
        const condition = conditionOf(rule);
        return !condition || condition.terms.join(' ') === (condition.negate ? 'METH_GET' : '!METH_GET');
      });
      assert.ok(getOnly, 'retry-on empty-response only with http-request disable-l7-retry unless METH_GET');
    }
  });

  it('passes /graphql, /healthz, /readyz and /export/* to the replicas and answers every other path itself', async () => {
    const { frontend, backend } = await haproxyConfig();
    for (const route_ of ['/graphql', '/healthz', '/readyz', '/export/items', '/export/interactions']) {
      assert.deepEqual(route(frontend, route_), { backend: backend.name }, `${route_} goes to the replicas`);
    }
    const metrics = route(frontend, '/metrics');
    assert.ok('status' in metrics && metrics.status === 404, '/metrics is per replica, not passed on');
    assert.match(JSON.parse(metrics.body ?? '{}').errors[0].message, /per replica/);
    for (const other of ['/', '/metrics/', '/graphql/x', '/graphiql', '/export', '/healthz/x']) {
      const answer = route(frontend, other);
      assert.ok('status' in answer && answer.status === 404, `${other} is not passed on`);
      assert.equal(JSON.parse(answer.body ?? '{}').errors[0].extensions.code, 'NOT_FOUND', `${other}: the app's JSON error shape`);
    }
  });

  it('tells the replica the client\'s address and one request id', async () => {
    const { defaults, frontend } = await haproxyConfig();
    assert.ok(setting(frontend, defaults, 'option', 'forwardfor'), 'X-Forwarded-For (option forwardfor)');
    assert.ok(setting(frontend, defaults, 'unique-id-format'), 'an id for a request that comes without one');
    const setId = directives(frontend, 'http-request').filter((rule) => rule[0] === 'set-header' && rule[1]?.toLowerCase() === 'x-request-id');
    assert.equal(setId.length, 1, 'one X-Request-Id rule');
    assert.equal(setId[0][2], '%[unique-id]');
    const condition = conditionOf(setId[0]);
    assert.deepEqual(condition && { ...condition, terms: condition.terms.map((term) => term.toLowerCase()) }, { negate: true, terms: ['{', 'req.hdr(x-request-id)', '-m', 'found', '}'] }, 'the caller\'s x-request-id is kept');
  });

  it('gives compose a health check on HAProxy\'s loopback-only monitor listener', async () => {
    const { sections } = await haproxyConfig();
    const test = compose.services.haproxy.healthcheck.test as string[];
    assert.deepEqual(test.slice(0, 2), ['CMD', 'wget'], 'busybox wget of the alpine image (the image has no curl)');
    const probe = new URL(test.find((arg) => arg.startsWith('http://'))!);
    assert.equal(probe.hostname, '127.0.0.1');
    const local = sections.filter((section) => section.kind === 'frontend' && directives(section, 'bind').some((bind) => {
      const { host, port } = bindAddress(bind);
      return host === probe.hostname && port === probe.port;
    }));
    assert.equal(local.length, 1, `a frontend listens on ${probe.host}`);
    for (const bind of directives(local[0], 'bind')) assert.equal(bindAddress(bind).host, '127.0.0.1', 'on the loopback interface only');
    assert.deepEqual(directives(local[0], 'monitor-uri').at(-1), [probe.pathname], 'the health check asks HAProxy\'s monitor-uri');
    assert.deepEqual(directives(local[0], 'monitor', 'fail'), [], 'HAProxy stays healthy while it waits for the replicas');
  });
});
