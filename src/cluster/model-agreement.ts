/**
 * A model switch that every replica takes together (issue #15). The replica that is asked (activateModel,
 * rollbackModel, splitTraffic) loads and checks the version's bundle as one process would, then:
 *
 *   1. announces `model-prepare` {id, version, kind, share} and fills its own collection; every other live replica
 *      prepares the same version meanwhile (loads and checks the bundle, fills its collection, from the shared
 *      vectors where they are) and reports in `replicas` that it is prepared, or why it failed;
 *   2. waits until every replica that was alive when it announced has prepared; one that failed (or its own
 *      failure) abandons the change everywhere (`model-abandon`) and the activation fails with that reason;
 *   3. records the change (the version active, or the split) and announces `model-switch`: every replica installs
 *      it, which is a plain assignment by then, so the last replica switches within one event delivery of the first.
 *
 * The database is what decides: a replica that follows switches when the event says so or when it finds the change
 * recorded (the version active, or the split with its share), whichever it sees first, and abandons the change when
 * the event says so or when the replica that started it has gone away without recording it. Splits whose share
 * changes, or that end, are announced as they happen. Liveness is a heartbeat row per replica, written every second.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { PlatformError, type ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { UNCOORDINATED, type Coordination, type FollowedChange, type ModelSwitcher, type Proposal, type VersionChange } from '../models/model-switcher.js';
import type { ModelVersions } from '../models/model-versions.js';
import { recordEvent, type PlatformEvent } from './event-feed.js';

/** A replica whose heartbeat is older than this is gone. */
export const REPLICA_TIMEOUT_MS = 5000;
const HEARTBEAT_MS = 1000;
/** How long a change waits for the slowest replica to prepare. */
const PREPARE_LIMIT_MS = 30 * 60_000;

interface PrepareEvent {
  id: string;
  version: string;
  kind: 'activate' | 'split';
  share?: number;
}

interface SplitEvent {
  split: { version: string; share: number } | null;
}


export class ModelAgreement implements Coordination {
  private switcher?: ModelSwitcher;
  private versions?: ModelVersions;
  /** Changes this replica follows, waiting for the decision of the replica that started them. */
  private readonly decisions = new Map<string, { origin: string; settle: (switched: boolean) => void }>();
  /** Changes being prepared here for another replica, with the decision if it came before the preparation ended. */
  private readonly preparing = new Map<string, boolean | undefined>();
  /** Other replicas' changes are prepared here one after another, each to its end (an abandoned one included). */
  private preparations: Promise<void> = Promise.resolve();
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly pool: pg.Pool,
    private readonly replica: string,
    private readonly logger: Logger,
  ) {
    this.heartbeat = setInterval(() => {
      this.beat().catch((error) => this.logger.warn({ err: error }, 'replica heartbeat failed'));
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** Registers this replica (alive from now on) with the event it loaded its state after. */
  async register(joinedAfter: bigint): Promise<void> {
    await this.pool.query(
      'INSERT INTO "replicas" ("id", "joined_after", "heartbeat_at") VALUES ($1, $2, LOCALTIMESTAMP) ' +
      'ON CONFLICT ("id") DO UPDATE SET "heartbeat_at" = LOCALTIMESTAMP',
      [this.replica, joinedAfter.toString()],
    );
  }

  /** The switcher whose changes this agreement coordinates, and the recorded versions (built after the agreement). */
  attach(switcher: ModelSwitcher, versions: ModelVersions): void {
    this.switcher = switcher;
    this.versions = versions;
  }

  async propose(change: VersionChange): Promise<Proposal> {
    if (change.follows) return { agreed: () => this.follow(change.follows!, change), abandon: async () => undefined };
    const id = randomUUID();
    // Announced before this replica fills its collection: the others prepare meanwhile.
    const seq = await this.announce('model-prepare', { id, version: change.version, kind: change.kind, share: change.share } satisfies PrepareEvent);
    const abandon = () => this.announce('model-abandon', { id }).then(() => undefined);
    return {
      agreed: async (record) => {
        await this.allPrepared(id, seq);
        await record();
        // Recorded, so decided: a replica that misses the event finds the record within a second (follow()).
        await this.announce('model-switch', { id }).catch((error) => this.logger.warn({ err: error }, 'announcing a switch failed; the other replicas find it recorded'));
      },
      abandon,
    };
  }

  async splitChanged(split: { version: string; share: number } | undefined): Promise<void> {
    await this.announce('model-split', { split: split ?? null } satisfies SplitEvent);
  }

  /** Applies another replica's model event. Never waits for a preparation: the feed must go on meanwhile. */
  async apply(event: PlatformEvent): Promise<void> {
    const switcher = this.switcher!;
    if (event.kind === 'model-prepare') {
      const { id, version, kind, share } = event.payload as PrepareEvent;
      const follows = { id, origin: event.origin };
      this.preparing.set(id, undefined);
      await this.report(id, 'preparing');
      const start = () => kind === 'activate' ? switcher.activate(version, follows) : switcher.splitTraffic(version, share!, follows);
      this.preparations = this.preparations.then(() => this.prepare(id, start, version, kind))
        .catch((failure) => this.logger.warn({ err: failure }, 'reporting a preparation failed'));
    } else if (event.kind === 'model-switch' || event.kind === 'model-abandon') {
      const { id } = event.payload as { id: string };
      const switched = event.kind === 'model-switch';
      const waiting = this.decisions.get(id);
      if (waiting) waiting.settle(switched);
      else if (this.preparing.has(id)) this.preparing.set(id, switched); // decided before this replica was done
      else if (switched) await this.catchUp();
    } else if (event.kind === 'model-split') {
      const { split } = event.payload as SplitEvent;
      if (!split) await switcher.clearTrafficSplit(true);
      else if (switcher.trafficSplit()?.version === split.version) await switcher.splitTraffic(split.version, split.share, UNCOORDINATED);
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.heartbeat);
    for (const waiting of this.decisions.values()) waiting.settle(false);
    await this.pool.query('DELETE FROM "replicas" WHERE "id" = $1', [this.replica]).catch(() => undefined);
  }

  /** Prepares another replica's change here and reports a failure (success is reported by follow()). */
  private async prepare(id: string, start: () => Promise<unknown>, version: string, kind: PrepareEvent['kind']): Promise<void> {
    const switcher = this.switcher!;
    try {
      await start();
    } catch (error) {
      this.preparing.delete(id);
      // Already serving what is asked: prepared by definition.
      const serving = kind === 'activate' && switcher.active.version === version;
      await this.report(id, serving ? 'prepared' : 'failed', serving ? undefined : error);
      return;
    }
    await switcher.settled();
    this.preparing.delete(id);
    const activation = switcher.activation();
    if (activation?.version === version && activation.state === 'failed' && this.decisions.get(id) === undefined) {
      await this.report(id, 'failed', new PlatformError((activation.errorCode ?? 'INVALID_BUNDLE') as ErrorCode, activation.error ?? 'failed'));
    }
  }

  /** A switch this replica was not part of (it joined meanwhile): serve what the database says is active. */
  private async catchUp(): Promise<void> {
    const active = await this.versions!.activeVersion();
    const switcher = this.switcher!;
    if (active && active !== switcher.active.version) {
      this.logger.info({ version: active }, 'switching to the version the other replicas switched to');
      await switcher.activate(active, UNCOORDINATED).catch((error) => this.logger.error({ err: error }, 'catching up with the active version failed'));
    }
  }

  /** Reports this replica prepared, then waits for the decision of the replica that started the change. */
  private async follow(follows: FollowedChange, change: VersionChange): Promise<void> {
    if (follows === UNCOORDINATED) return; // nothing to agree on
    const early = this.preparing.get(follows.id);
    if (early !== undefined) {
      if (!early) throw new PlatformError('ACTIVATION_IN_PROGRESS', `the replica that started this change (${follows.origin}) abandoned it`);
      return;
    }
    const decided = new Promise<boolean>((resolve) => this.decisions.set(follows.id, { origin: follows.origin, settle: resolve }));
    await this.report(follows.id, 'prepared');
    // The event may be missed (a lost connection) and the replica that started the change may go away before it
    // decides: the database says what happened.
    const watch = setInterval(() => {
      this.recorded(change).then(async (recorded) => {
        if (recorded) this.decisions.get(follows.id)?.settle(true);
        else if (!(await this.alive(follows.origin))) this.decisions.get(follows.id)?.settle(false);
      }).catch(() => undefined);
    }, HEARTBEAT_MS);
    try {
      if (!(await decided)) throw new PlatformError('ACTIVATION_IN_PROGRESS', `the replica that started this change (${follows.origin}) abandoned it`);
    } finally {
      clearInterval(watch);
      this.decisions.delete(follows.id);
    }
  }

  /** Waits until every replica alive at the announcement (seq) has prepared change `id`; throws the first failure. */
  private async allPrepared(id: string, seq: bigint): Promise<void> {
    const deadline = Date.now() + PREPARE_LIMIT_MS;
    for (;;) {
      const { rows } = await this.pool.query<{ id: string; activation_id: string | null; activation_state: string | null; activation_error: string | null; activation_error_code: string | null }>(
        'SELECT "id", "activation_id", "activation_state", "activation_error", "activation_error_code" FROM "replicas" ' +
        'WHERE "id" <> $1 AND "joined_after" < $2 AND "heartbeat_at" > LOCALTIMESTAMP - make_interval(secs => $3)',
        [this.replica, seq.toString(), REPLICA_TIMEOUT_MS / 1000],
      );
      const failed = rows.find((row) => row.activation_id === id && row.activation_state === 'failed');
      if (failed) {
        throw new PlatformError((failed.activation_error_code ?? 'INVALID_BUNDLE') as ErrorCode, `replica ${failed.id} could not prepare the version: ${failed.activation_error}`);
      }
      if (rows.every((row) => row.activation_id === id && row.activation_state === 'prepared')) return;
      if (Date.now() > deadline) {
        throw new PlatformError('ACTIVATION_IN_PROGRESS', `replicas ${rows.filter((row) => row.activation_state !== 'prepared').map((row) => row.id).join(', ')} did not prepare the version within ${PREPARE_LIMIT_MS / 60_000} minutes`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  private async report(id: string, state: 'preparing' | 'prepared' | 'failed', error?: unknown): Promise<void> {
    const code = error instanceof PlatformError ? error.code : error ? 'INTERNAL_SERVER_ERROR' : null;
    await this.pool.query(
      'UPDATE "replicas" SET "activation_id" = $2, "activation_state" = $3, "activation_error" = $4, "activation_error_code" = $5, "heartbeat_at" = LOCALTIMESTAMP WHERE "id" = $1',
      [this.replica, id, state, error ? (error as Error).message : null, code],
    );
  }

  /** Whether the database records `change` as made: its version active, or the split with its share. */
  private async recorded(change: VersionChange): Promise<boolean> {
    if (change.kind === 'activate') return (await this.versions!.activeVersion()) === change.version;
    const split = await this.versions!.split();
    return split?.version === change.version && split.share === change.share;
  }

  private async alive(replica: string): Promise<boolean> {
    const { rows } = await this.pool.query('SELECT 1 FROM "replicas" WHERE "id" = $1 AND "heartbeat_at" > LOCALTIMESTAMP - make_interval(secs => $2)', [replica, REPLICA_TIMEOUT_MS / 1000]);
    return rows.length > 0;
  }

  private async beat(): Promise<void> {
    await this.pool.query(
      'UPDATE "replicas" SET "heartbeat_at" = LOCALTIMESTAMP, "serving" = $2 WHERE "id" = $1',
      [this.replica, this.switcher?.active.version ?? null],
    );
    // Replicas gone for an hour (each start is a new row) are forgotten.
    await this.pool.query('DELETE FROM "replicas" WHERE "heartbeat_at" < LOCALTIMESTAMP - interval \'1 hour\'');
  }

  /** Records an event in a transaction of its own; returns its seq. */
  private async announce(kind: string, payload: unknown): Promise<bigint> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const seq = await recordEvent(async (sql, values) => (await client.query(sql, values)).rows, this.replica, kind, payload);
      await client.query('COMMIT');
      return seq;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }
}
