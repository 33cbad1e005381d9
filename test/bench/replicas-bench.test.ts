/**
 * `npm run bench:replicas` end to end on 200 items with the tiny bundle and runs of a fraction of a second: two
 * `serve` processes over a PostgreSQL database of the benchmark's own (created and dropped), the closed loop through
 * one and two replicas, then a switch and a killed replica. The numbers mean nothing here; the shape of the report,
 * no failed request other than on the killed replica and no encoder run by the replicas do. Runs when
 * TEST_DATABASE_URL is set.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { after, before, describe, it } from 'node:test';
import { replicasMarkdown } from '../../bench/lib/markdown.js';
import { PHASES, runReplicas } from '../../bench/replicas.js';
import { tinyBundle } from '../support/fixtures.js';

const serverUrl = process.env.TEST_DATABASE_URL;

describe('replicas benchmark (smoke)', { skip: !serverUrl && 'TEST_DATABASE_URL is not set' }, () => {
  let workDir: string;

  before(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-bench-replicas-'));
  });
  after(async () => {
    await rm(workDir, { recursive: true, force: true });
  });

  it('closed loop through 1 and 2 replicas, then a switch and a kill without a failure elsewhere', async () => {
    const report = await runReplicas({
      bundleDir: tinyBundle(), datasets: ['amazon-games'], limitPerDir: 200, databaseUrl: serverUrl!, keep: false,
      replicaCounts: [1, 2], closedSeconds: 0.5, closedConcurrency: 4, warmupSeconds: 0.2, eventReplicaCounts: [2],
      rate: 30, eventConcurrency: 4, beforeSeconds: 1, afterSwitchSeconds: [1], afterRestartSeconds: 1,
      switchTimeoutSeconds: 120, restartTimeoutSeconds: 120, samples: 20, historyLength: 3, first: 5, workDir,
      serverLogLevel: 'info', join: true, command: 'test', log: () => undefined,
    });
    assert.deepEqual(report.closed.map((run) => run.replicas), [1, 2]);
    for (const run of report.closed) {
      assert.equal(run.failed, 0, JSON.stringify(run.failures));
      assert.ok(run.requests > 0 && run.rps > 0 && run.p99_ms >= run.p50_ms);
      assert.equal(Object.keys(run.by_replica).length, run.replicas, 'every replica answered');
    }
    // The replicas filled their index from item_vectors: no encoder run.
    assert.equal(report.starts.length, 2);
    for (const start of report.starts) assert.deepEqual(start.titles_encoded, {}, start.replica);

    assert.equal(report.events.length, 1);
    const [run] = report.events;
    assert.equal(run.failed_unexpected, 0, run.first_failures.join('\n'));
    assert.equal(run.switch.error, null);
    assert.equal(run.switch.mode, 'reuse');
    assert.equal(run.switch.old_version_after, 0);
    assert.deepEqual(Object.keys(run.switch.replica_s).sort(), ['replica-1', 'replica-2']);
    assert.ok(run.responses_by_version[run.switch.to_version] > 0);
    assert.equal(run.kill.replica, 'replica-2');
    assert.equal(run.kill.error, null);
    assert.equal(run.kill.version, run.switch.to_version);
    assert.ok(run.kill.back_in_rotation_s! >= run.kill.ready_s!);
    assert.deepEqual(Object.keys(run.phases), PHASES);
    assert.ok(run.phases.before.requests > 0 && run.phases.after_restart.requests > 0);
    assert.ok(run.phases.after_restart.by_replica['replica-2'] > 0, 'the restarted replica is back in rotation');
    assert.equal(report.failed_unexpected, 0);
    // A replica joining after the switch serves the switched-to version.
    assert.equal(report.join?.error, null);
    assert.equal(report.join?.version, run.switch.to_version);
    assert.match(replicasMarkdown(report), /after it is back in rotation/);

    // The benchmark's database is gone.
    const admin = new pg.Client({ connectionString: serverUrl });
    await admin.connect();
    const { rows } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [report.database.name]);
    await admin.end();
    assert.equal(rows.length, 0);
  });
});
