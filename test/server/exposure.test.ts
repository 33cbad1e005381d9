/**
 * What a client may learn (issue #12, finding 5): no server paths in any response, introspection and schema hints
 * set per environment, the API key compared in constant time. A real tiny bundle, PGlite in a temp dir, the registry
 * being the directory the tiny bundle was built in.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadSettings } from '../../src/config.js';
import { sameKey } from '../../src/server/http-server.js';
import { pathRedactor } from '../../src/server/redact.js';
import { tinyBundle } from '../support/fixtures.js';
import { TestPlatform, errorCode } from '../support/http-platform.js';

describe('exposure', () => {
  let open: TestPlatform;
  let closed: TestPlatform;

  before(async () => {
    const registry = path.dirname(tinyBundle());
    open = await TestPlatform.start({ modelRegistryDir: registry, introspection: true });
    closed = await TestPlatform.start({ modelRegistryDir: registry, introspection: false });
  });
  after(async () => {
    await open?.destroy();
    await closed?.destroy();
  });

  it('names no server path in UNKNOWN_MODEL_VERSION or registeredModels', async () => {
    const unknown = await open.mutate('mutation { activateModel(version: "nope") { state } }');
    assert.equal(errorCode(unknown), 'UNKNOWN_MODEL_VERSION');
    const body = JSON.stringify(unknown);
    assert.ok(!body.includes(open.settings.modelRegistryDir), body);
    assert.doesNotMatch(body, /\/(work|tmp|home|app)\//, body);
    const registered = await open.query('{ registeredModels { version path } }');
    assert.deepEqual(registered.data.registeredModels.map((model: { path: string }) => model.path), ['tiny']);
  });

  it('redacts the directories of the settings and any other absolute path', () => {
    const redact = pathRedactor({ modelRegistryDir: '/srv/registry', dataDir: '/var/lib/llm2rec', bundleDir: '/srv/registry/quick' });
    assert.equal(redact('no bundle in /srv/registry'), 'no bundle in <registry>');
    assert.equal(redact('bad /srv/registry/quick/encoder.onnx'), 'bad <bundle>/encoder.onnx');
    assert.equal(redact("ENOENT: open '/etc/llm2rec/x.json'"), "ENOENT: open '<path>'");
    assert.equal(redact('unknown item ids: "a/b/c", "sku-1"'), 'unknown item ids: "a/b/c", "sku-1"');
  });

  it('answers introspection and "Did you mean" hints only where introspection is on', async () => {
    const schema = '{ __schema { queryType { name } } }';
    assert.deepEqual((await open.query(schema)).data, { __schema: { queryType: { name: 'Query' } } });
    const refused = await closed.query(schema);
    assert.equal(refused.data, undefined);
    assert.ok(refused.errors?.length);
    const typo = '{ domain { name } }';
    assert.match(JSON.stringify((await open.query(typo)).errors), /Did you mean/);
    const hidden = JSON.stringify((await closed.query(typo)).errors);
    assert.doesNotMatch(hidden, /Did you mean|domains/, hidden);
  });

  it('sets introspection per environment: off in production unless LLM2REC_INTROSPECTION says otherwise', () => {
    assert.equal(loadSettings({}).introspection, true);
    assert.equal(loadSettings({ NODE_ENV: 'production' }).introspection, false);
    assert.equal(loadSettings({ NODE_ENV: 'production', LLM2REC_INTROSPECTION: 'true' }).introspection, true);
    assert.equal(loadSettings({ LLM2REC_INTROSPECTION: 'false' }).introspection, false);
  });

  it('compares API keys whole: prefixes, extensions and other lengths are refused', async () => {
    assert.equal(sameKey('test-key', 'test-key'), true);
    for (const wrong of [undefined, '', 'test-ke', 'test-key ', 'test-kez', 'TEST-KEY']) assert.equal(sameKey(wrong, 'test-key'), false, String(wrong));
    const refused = await open.query('mutation { deleteItems(ids: ["x"]) { count } }', {}, 'test-ke');
    assert.equal(errorCode(refused), 'UNAUTHENTICATED');
  });
});
