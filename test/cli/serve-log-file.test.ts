/**
 * Logs and progress bars (issue #12, operator experience): with LLM2REC_LOG_FILE, as the quickstart sets it, the
 * server's log lines go to that file and the terminal it shares with load-dataset gets one line saying where; the
 * progress bars are all load-dataset prints there. SIGTERM then shuts the server down cleanly, its last lines
 * written (Apollo's own signal handlers used to kill the process before the platform was closed). A real server process (`src/cli/serve.ts`, the tiny bundle,
 * PGlite) and the real load-dataset command on a cut of amazon-games.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { cutDataset, freePort, REPO, tinyBundle } from '../support/fixtures.js';

const run = promisify(execFile);


describe('serve with LLM2REC_LOG_FILE', () => {
  let dataDir: string;
  let logFile: string;
  let server: ChildProcess;
  let terminal = '';
  let url: string;

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-logs-'));
    logFile = path.join(dataDir, 'logs/server.log'); // its directory does not exist yet
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    server = spawn(process.execPath, ['--import', 'tsx', 'src/cli/serve.ts', '--bundle', tinyBundle(), '--data-dir', dataDir, '--port', String(port)], {
      cwd: REPO,
      env: { ...process.env, LOG_LEVEL: 'info', LLM2REC_LOG_FILE: logFile, LLM2REC_API_KEY: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Both of the server's streams go to the terminal the progress bars are drawn on.
    server.stdout!.on('data', (chunk) => { terminal += chunk; });
    server.stderr!.on('data', (chunk) => { terminal += chunk; });
    const deadline = Date.now() + 300_000; // generous: a loaded machine takes minutes to start it
    while (!(await fetch(`${url}/readyz`).then((response) => response.ok, () => false))) {
      assert.equal(server.exitCode, null, `the server exited while starting: ${terminal}`);
      if (Date.now() > deadline) {
        const log = await readFile(logFile, 'utf8').catch(() => '(no log file)');
        assert.fail(`the server did not become ready; its log:\n${log}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  });

  after(async () => {
    if (server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGKILL');
      await exited;
    }
    await rm(dataDir, { recursive: true, force: true });
  });

  it('writes its log lines to the file and one line to the terminal while load-dataset draws its bars', async () => {
    const dataset = await cutDataset('amazon-games', 3);
    const loaded = await run(process.execPath, ['--import', 'tsx', 'src/cli/load-dataset.ts', dataset,
      '--url', `${url}/graphql`, '--item-batch', '4', '--interaction-batch', '8'], { cwd: REPO });
    assert.match(loaded.stderr, /items\s+\[.*\] 100% \| \d+\/\d+/, 'the items bar is drawn');
    assert.match(loaded.stderr, /interactions\s+\[.*\] 100% \| \d+\/\d+/, 'the interactions bar is drawn');

    const exited = once(server, 'exit');
    server.kill('SIGTERM'); // logs "shutting down"; pino writes what is pending before the process exits
    const [code, signal] = await exited;
    const log = await readFile(logFile, 'utf8');
    // A clean shutdown: the platform closed (the index's marker of an unclean one is gone) before the process exited.
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, `${terminal}\n${log}`);
    assert.equal(existsSync(path.join(dataDir, 'index-durable-since.json')), false);

    assert.equal(terminal, `serve: logs go to ${logFile}\n`);
    const lines = log.trim().split('\n').map((line) => JSON.parse(line));
    const messages = lines.map((line) => line.msg);
    for (const message of ['database ready', 'model loaded', 'GraphQL API listening', 'shutting down']) {
      assert.ok(messages.includes(message), `"${message}" is in the log file`);
    }
    const operations = lines.filter((line) => line.msg === 'graphql operation').map((line) => line.operation);
    assert.ok(operations.includes('Upsert') && operations.includes('Record'), `load-dataset's calls are logged: ${operations}`);
  });
});
