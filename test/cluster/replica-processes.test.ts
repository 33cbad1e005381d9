/**
 * Issue #15 with real processes: three `serve` processes on three ports over one PostgreSQL, requests spread over
 * them as a load balancer would. One replica is killed with SIGKILL while the others keep answering; the catalogue
 * changes while it is down; started again on its data directory, it is ready without running the encoder and serves
 * the writes it missed. Runs when TEST_DATABASE_URL is set.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { REPO, cutDataset, freePort, tinyBundle } from '../support/fixtures.js';
import { TEST_DATABASES } from '../support/databases.js';

const postgres = TEST_DATABASES.find((database) => database.name === 'postgres');
const API_KEY = 'replica-key';

class ServeProcess {
  child?: ChildProcess;
  url = '';
  log = '';

  constructor(readonly databaseUrl: string, readonly dataDir: string) {}

  async start(): Promise<void> {
    const port = await freePort();
    this.url = `http://127.0.0.1:${port}`;
    this.log = '';
    this.child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/serve.ts', '--bundle', tinyBundle(), '--data-dir', this.dataDir, '--port', String(port)], {
      cwd: REPO,
      env: { ...process.env, DATABASE_URL: this.databaseUrl, LLM2REC_API_KEY: API_KEY, LOG_LEVEL: 'info', LLM2REC_LOG_FILE: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (chunk) => { this.log += chunk; });
    this.child.stderr!.on('data', (chunk) => { this.log += chunk; });
    const deadline = Date.now() + 300_000;
    while (!(await this.ready())) {
      assert.equal(this.child.exitCode, null, `a replica exited while starting:\n${this.log}`);
      assert.ok(Date.now() < deadline, `a replica did not become ready:\n${this.log}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  ready(): Promise<boolean> {
    return fetch(`${this.url}/readyz`).then((response) => response.ok, () => false);
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    const child = this.child!;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  }

  async query(query: string, variables: Record<string, unknown> = {}): Promise<any> {
    const response = await fetch(`${this.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
      body: JSON.stringify({ query, variables }),
    });
    return response.json();
  }

  /** A metric's value from /metrics, summed over its series (0 when it has none). */
  async metric(name: string): Promise<number> {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    return text.split('\n').filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
      .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
  }
}

const SIMILAR = 'query($id: ID!) { similarItems(id: $id, first: 5) { items { score item { id } } } }';
const RECOMMEND = 'query($h: [ID!]) { recommendations(history: $h, first: 5) { modelVersion items { item { id } } } }';
const UPSERT = 'mutation($items: [ItemInput!]!) { upsertItems(items: $items) { count } }';

describe('replica processes: one killed and restarted', { skip: !postgres && 'TEST_DATABASE_URL is not set' }, () => {
  const replicas: ServeProcess[] = [];
  let itemIds: string[];

  before(async () => {
    const databaseUrl = (await postgres!.createUrl())!;
    for (let i = 0; i < 3; i++) replicas.push(new ServeProcess(databaseUrl, await mkdtemp(path.join(os.tmpdir(), `llm2rec-replica-${i}-`))));
    await replicas[0].start();
    const dataset = await cutDataset('amazon-games', 30);
    await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/load-dataset.ts', dataset, '--url', `${replicas[0].url}/graphql`,
      '--api-key', API_KEY, '--item-batch', '100', '--interaction-batch', '400'], { cwd: REPO });
    await Promise.all(replicas.slice(1).map((replica) => replica.start()));
    const lines = (await readFile(path.join(dataset, 'items.jsonl'), 'utf8')).trim().split('\n');
    itemIds = lines.map((line) => `amazon-games:${JSON.parse(line).id}`);
  });

  after(async () => {
    for (const replica of replicas) {
      await replica.kill('SIGKILL').catch(() => undefined);
      await rm(replica.dataDir, { recursive: true, force: true });
    }
  });

  it('keeps serving through the others while one is killed; the restarted one catches up without the encoder', async () => {
    const history = itemIds.slice(0, 4);
    assert.equal(await replicas[1].metric('llm2rec_replica_titles_encoded'), 0);
    // Requests spread over the replicas a load balancer holds ready.
    let running = true;
    let answered = 0;
    const failures: string[] = [];
    const load = (async () => {
      for (let n = 0; running; n++) {
        const ready = replicas.filter((replica) => replica !== replicas[2]);
        const replica = ready[n % ready.length];
        const answer = await replica.query(RECOMMEND, { h: history }).catch((error) => ({ errors: [{ message: String(error) }] }));
        if (answer.errors) failures.push(JSON.stringify(answer.errors));
        else answered += 1;
      }
    })();

    await replicas[2].kill('SIGKILL');
    const added = 'amazon-games:written-while-down';
    const renamed = itemIds[7];
    assert.equal((await replicas[0].query(UPSERT, { items: [{ id: added, domain: 'video_games', title: 'Written While A Replica Was Killed' }] })).data?.upsertItems.count, 1);
    assert.equal((await replicas[1].query(UPSERT, { items: [{ id: renamed, domain: 'video_games', title: 'Renamed While A Replica Was Killed' }] })).data?.upsertItems.count, 1);

    await replicas[2].start(); // the same data directory: its index as flushed before the kill
    running = false;
    await load;
    assert.deepEqual(failures, []);
    assert.ok(answered > 10, `${answered} requests answered`);
    assert.equal(await replicas[2].metric('llm2rec_replica_titles_encoded'), 0, 'the restarted replica ran the encoder');
    for (const id of [added, renamed, itemIds[0]]) {
      assert.deepEqual((await replicas[2].query(SIMILAR, { id })).data, (await replicas[0].query(SIMILAR, { id })).data);
    }
    // It follows new writes again, and every replica answers alike once each has applied the write (the replicas
    // apply it each on its own notification: the restarted one may have it before one of the others).
    const later = 'amazon-games:after-restart';
    await replicas[1].query(UPSERT, { items: [{ id: later, domain: 'video_games', title: 'Written After The Restart' }] });
    const deadline = Date.now() + 1000;
    for (const [number, replica] of replicas.entries()) {
      while ((await replica.query(SIMILAR, { id: later })).errors) {
        assert.ok(Date.now() < deadline, `a write after the restart did not reach replica ${number} within a second`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    const answers = await Promise.all(replicas.map((replica) => replica.query(RECOMMEND, { h: [...history, later] })));
    assert.deepEqual(answers.map((answer) => answer.errors ?? null), [null, null, null]);
    for (const answer of answers) assert.deepEqual(answer.data, answers[0].data);
  });
});
