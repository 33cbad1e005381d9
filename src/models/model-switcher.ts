/**
 * Hot-swap: which model version serves, and the switch to another one without dropping a request. The switcher
 * owns a version's life: open and check its bundle, fill its collection, switch, keep it for rollback, retire it.
 *
 * open(bundle): start-up. The first version goes the way of every activation except that nothing serves before it:
 * its bundle is loaded and checked, its collection brought in step with the catalogue, and it is recorded.
 *
 * activate(version): the bundle is loaded and checked (an invalid one is refused and the current version keeps
 * serving), its collection is brought in step with the catalogue in the background (catalogue writes go to both
 * versions meanwhile), then one assignment makes it the serving version. When its encoder is the serving one's
 * (same sha256), the serving collection's semantic vectors are reused and only the new adapter runs
 * (vector-reuse.ts): seconds instead of minutes. Requests already running finish on the
 * version they started with. The version before stays loaded for rollback().
 *
 * splitTraffic(version, share): a second version, prepared the same way, answers that share of users, chosen
 * deterministically by user id; everything else stays on the serving version.
 *
 * Retirement: after each switch (and at start-up) the collections of versions retired longer ago than the last
 * `retainedVersions` are dropped (retireCollections); never a loaded version's.
 */
import { createHash } from 'node:crypto';
import { PlatformError, type ErrorCode } from '../errors.js';
import type { EmbeddingTarget, Progress } from '../catalog/catalog.js';
import type { IndexSync, SyncResult } from '../catalog/index-sync.js';
import type { Logger } from '../logger.js';
import type { ModelRegistry } from './model-registry.js';
import type { ModelVersions } from './model-versions.js';
import { ServingModel, versionCollection, type ServingDependencies } from './serving-model.js';
import { reuseSemanticVectors, sameEncoder } from './vector-reuse.js';

export type ActivationState = 'loading' | 'embedding' | 'active' | 'failed';

/** Progress of one activation, readable while it runs. */
export interface Activation {
  version: string;
  state: ActivationState;
  /** Items embedded into the new version's collection so far, of `total`. */
  done: number;
  total: number;
  startedAt: Date;
  finishedAt?: Date;
  error?: string;
  /**
   * Which part failed: INVALID_BUNDLE, UNKNOWN_MODEL_VERSION (loading and checking), VECTOR_INDEX_UNAVAILABLE (the
   * version's collection), DATABASE_UNAVAILABLE (recording the version), INTERNAL_SERVER_ERROR (anything else).
   */
  errorCode?: ErrorCode | 'INTERNAL_SERVER_ERROR';
  /**
   * How the collection was filled: 'reuse' when the serving version's encoder is the same (sha256 of the graph and
   * tokenizer, see vector-reuse.ts) and its semantic vectors were taken, only the adapter run; 'embed' otherwise.
   */
  mode?: 'reuse' | 'embed';
  /** Items whose vectors were made from the serving version's semantic vectors ('reuse'). */
  reused?: number;
  /** Items run through the encoder. */
  embedded?: number;
  /** When the bundle was loaded and checked, and the collection's filling began. */
  loadedAt?: Date;
}

/** A change of the serving versions that another replica started: its id there and that replica. */
export interface FollowedChange {
  id: string;
  origin: string;
}

/**
 * A change this replica makes alone, to match what the database records (a split restored at start-up, a switch it
 * joined too late for, a split's new share): nothing to agree on.
 */
export const UNCOORDINATED: FollowedChange = { id: 'uncoordinated', origin: 'database' };

/** A change of the serving versions: a version to serve everyone, or a share of users. */
export interface VersionChange {
  version: string;
  /** 'activate': it will serve everyone; 'split': a share of users. */
  kind: 'activate' | 'split';
  share?: number;
  /** Set when another replica started the change. */
  follows?: FollowedChange;
}

/** A change being prepared here, as the other replicas are told of it. */
export interface Proposal {
  /**
   * Resolves when the prepared change may be installed here, having called `record` (which records it in the
   * database) when this replica started it; throws when the change cannot be made (the caller then abandons it).
   */
  agreed(record: () => Promise<void>): Promise<void>;
  /** This replica could not prepare it, or `agreed` failed: the change is abandoned everywhere. */
  abandon(): Promise<void>;
}

/**
 * What a change waits for when several replicas serve one database (cluster/model-agreement.ts): every live replica
 * prepares it while this one does, and it is installed once all have. Without one, the version is recorded and
 * installed as soon as it is prepared here.
 */
export interface Coordination {
  /** A change about to be prepared here (its bundle loaded and checked): the other replicas may start on it too. */
  propose(change: VersionChange): Promise<Proposal>;
  /** Tells the other replicas of a split whose share changed, or that ended (undefined). */
  splitChanged(split: { version: string; share: number } | undefined): Promise<void>;
}

/** What the switcher works with. */
export interface SwitcherDependencies {
  registry: ModelRegistry;
  versions: ModelVersions;
  /** Fills a version's collection from the catalogue's rows. */
  indexSync: IndexSync;
  /** What every ServingModel is opened with. */
  serving: ServingDependencies;
  logger: Logger;
  /** Replicas over one PostgreSQL: the agreement every change waits for. */
  coordination?: Coordination;
  retention: {
    /** Retired versions whose collections are kept (Settings.retainedVersions). */
    retainedVersions: number;
    /** How long a displaced version stays loaded for requests that started on it (Settings.releaseGraceMs). */
    releaseGraceMs: number;
  };
}

/** How a collection was brought in step with the catalogue (ModelSwitcher.fill). */
interface Filled extends SyncResult {
  mode: 'reuse' | 'embed';
  reused: number;
}

export class ModelSwitcher {
  private serving: ServingModel;
  private previous?: ServingModel;
  private pending?: ServingModel;
  private split?: { model: ServingModel; share: number };
  /** Displaced versions still loaded for the requests that started on them (releaseLater). */
  private readonly draining = new Set<ServingModel>();
  private latest?: Activation;
  private completion: Promise<void> = Promise.resolve();

  private constructor(initial: ServingModel, private readonly dependencies: SwitcherDependencies) {
    this.serving = initial;
  }

  /**
   * Start-up: opens and checks the bundle in `bundleDir`, brings its collection in step with the catalogue (with
   * `changedSince`, items the database changed since then are embedded again: index-journal.ts), records it as
   * serving (keeping its activation time across restarts) and drops retired versions' collections.
   */
  static async open(
    bundleDir: string,
    dependencies: SwitcherDependencies,
    options: { changedSince?: Date; progress?: Progress } = {},
  ): Promise<{ switcher: ModelSwitcher; filled: SyncResult }> {
    const initial = await ServingModel.open(bundleDir, dependencies.serving);
    const switcher = new ModelSwitcher(initial, dependencies);
    try {
      const filled = await switcher.fill(initial, undefined, options.progress, options.changedSince);
      await dependencies.versions.resume(initial.model);
      await switcher.retireCollections();
      await switcher.restoreSplit();
      return { switcher, filled };
    } catch (error) {
      await initial.release().catch(() => undefined);
      throw error;
    }
  }

  /** The traffic split the database records, prepared and in force again (start-up); one that cannot load is skipped. */
  private async restoreSplit(): Promise<void> {
    const split = await this.dependencies.versions.split();
    if (!split || split.version === this.serving.version) return;
    try {
      await this.splitTraffic(split.version, split.share, UNCOORDINATED);
      await this.settled();
    } catch (error) {
      this.dependencies.logger.warn({ err: error, version: split.version }, 'the recorded traffic split could not be restored; everyone gets the serving version');
    }
  }

  /** The version serving requests now. */
  get active(): ServingModel {
    return this.serving;
  }

  /** The version that answers a user: the split version for its share of users, else the serving one. */
  forUser(userId?: string): ServingModel {
    if (!this.split || userId === undefined) return this.serving;
    return userBucket(userId) < this.split.share ? this.split.model : this.serving;
  }

  /** The traffic split in force, if any. */
  trafficSplit(): { version: string; share: number } | undefined {
    return this.split && { version: this.split.model.version, share: this.split.share };
  }

  /** Every version whose collection must follow catalogue writes. */
  targets(): EmbeddingTarget[] {
    return [this.serving, this.pending, this.split?.model].filter((model): model is ServingModel => model !== undefined);
  }

  /** The most recent activation, if any. */
  activation(): Activation | undefined {
    return this.latest;
  }

  /** Resolves when the activation in progress (if any) has finished, either way. */
  settled(): Promise<void> {
    return this.completion;
  }

  /**
   * Starts switching to a version of the registry; returns once the bundle is loaded and checked. `follows`: another
   * replica started this switch.
   */
  async activate(version: string, follows?: FollowedChange): Promise<Activation> {
    return this.start(version, { kind: 'activate', follows }, (next) => {
      const displaced = this.previous;
      this.previous = this.serving;
      this.serving = next;
      if (this.split?.model === next) this.split = undefined;
      if (displaced && displaced !== next && displaced !== this.previous && displaced !== this.split?.model) {
        this.releaseLater(displaced);
      }
    });
  }

  /**
   * Loads and checks a version, then (in the background) brings its collection in step with the catalogue and
   * calls `install` with it, which puts it in place with plain assignments. A version that `serves` everyone after
   * the install is recorded in the database first: if that fails, the serving version is unchanged.
   */
  private async start(version: string, change: Omit<VersionChange, 'version'>, install: (next: ServingModel) => void): Promise<Activation> {
    if (this.pending || this.latest?.state === 'loading') {
      throw new PlatformError('ACTIVATION_IN_PROGRESS', `version ${this.latest?.version} is being activated`);
    }
    if (version === this.serving.version) {
      throw new PlatformError('BAD_USER_INPUT', `version ${JSON.stringify(version)} is already serving`);
    }
    const activation: Activation = { version, state: 'loading', done: 0, total: 0, startedAt: new Date() };
    this.latest = activation;
    let next: ServingModel;
    try {
      next = [this.previous, this.split?.model].find((model) => model?.version === version) ?? await this.load(version);
    } catch (error) {
      this.fail(activation, error);
      throw error;
    }
    this.pending = next;
    activation.state = 'embedding';
    activation.loadedAt = new Date();
    this.completion = this.complete(next, activation, install, change);
    return activation;
  }

  /**
   * Sends `share` (0 < share < 1) of users to another version once its collection is ready; the activation
   * record shows the progress. A later activate() of that version promotes it to serve everyone.
   */
  async splitTraffic(version: string, share: number, follows?: FollowedChange): Promise<Activation> {
    if (!(share > 0 && share < 1)) throw new PlatformError('BAD_USER_INPUT', `share must be between 0 and 1 (exclusive), got ${share}`);
    if (this.split?.model.version === version) {
      this.split.share = share;
      if (!follows) {
        await this.recordSplit(this.split.model, share);
        await this.dependencies.coordination?.splitChanged({ version, share });
      }
      return this.latest!;
    }
    return this.start(version, { kind: 'split', share, follows }, (next) => {
      const displaced = this.split?.model;
      this.split = { model: next, share };
      if (displaced && displaced !== this.previous) this.releaseLater(displaced);
    });
  }

  /** Ends a traffic split: everyone is answered by the serving version again. `followed`: another replica ended it. */
  async clearTrafficSplit(followed = false): Promise<void> {
    const model = this.split?.model;
    this.split = undefined;
    if (model && model !== this.previous) this.releaseLater(model);
    if (!followed) {
      await this.databaseWrite('recording the end of the traffic split', () => this.dependencies.versions.clearSplit());
      await this.dependencies.coordination?.splitChanged(undefined);
    }
  }

  /** Switches back to the version that served before the last switch. */
  async rollback(): Promise<Activation> {
    if (!this.previous) throw new PlatformError('BAD_USER_INPUT', 'no earlier version to roll back to');
    return this.activate(this.previous.version);
  }

  async close(): Promise<void> {
    await this.completion;
    const loaded = new Set([this.serving, this.previous, this.split?.model]);
    for (const model of loaded) if (model) await model.release();
  }

  private async load(version: string): Promise<ServingModel> {
    const { registry } = this.dependencies;
    const dir = await registry.find(version);
    if (!dir) throw new PlatformError('UNKNOWN_MODEL_VERSION', `no bundle of version ${JSON.stringify(version)} in ${registry.dir}`);
    const loaded = [this.serving, this.previous, this.split?.model].filter((model): model is ServingModel => model !== undefined);
    return ServingModel.open(dir, this.dependencies.serving, loaded);
  }

  /**
   * Brings a version's collection in step with the catalogue: from `source`'s semantic vectors when its encoder is
   * the same (vector-reuse.ts: only the new adapter runs), else by embedding what the collection lacks. A collection
   * that serves nobody yet and holds less than half the catalogue is filled in bulk (the index builds its search
   * structures at the end, off the event loop); one already answering a traffic split, or nearly complete (a version
   * served before), keeps its index up to date write by write. A second pass catches what changed meanwhile.
   */
  private async fill(
    next: ServingModel, source: ServingModel | undefined, progress?: Progress, changedSince?: Date, options: { keep?: boolean } = {},
  ): Promise<Filled> {
    const { indexSync } = this.dependencies;
    const run = async () => {
      const reuse = source && source !== next && sameEncoder(source.model, next.model)
        ? await reuseSemanticVectors(source, next, indexSync.items, progress, options)
        : null;
      // Embeds what is still missing: everything without reuse, else only items the serving collection lacked.
      const first = await indexSync.sync(next, reuse ? undefined : progress, { changedSince });
      return { mode: reuse ? 'reuse' as const : 'embed' as const, reused: reuse?.reused ?? 0, first };
    };
    const inBulk = next !== this.split?.model && (await next.collection.count()) * 2 < indexSync.items.size;
    const { mode, reused, first } = inBulk ? await next.collection.fillInBulk(run) : await run();
    const second = await indexSync.sync(next);
    return { mode, reused, embedded: first.embedded + second.embedded, dropped: first.dropped + second.dropped };
  }

  private async complete(
    next: ServingModel, activation: Activation, install: (next: ServingModel) => void, change: Omit<VersionChange, 'version'>,
  ): Promise<void> {
    const serves = change.kind === 'activate';
    let proposal: Proposal | undefined;
    try {
      proposal = await this.dependencies.coordination?.propose({ ...change, version: next.version });
      const progress = (done: number, total: number) => { activation.done = done; activation.total = total; };
      // The replica that started a change keeps what a same-encoder fill computes for the others; they need not.
      const filled = await this.fill(next, this.serving, progress, undefined, { keep: !change.follows });
      activation.mode = filled.mode;
      activation.reused = filled.reused;
      activation.embedded = filled.embedded;
      const record = () => (serves ? this.record(next) : this.recordSplit(next, change.share!));
      if (proposal) await proposal.agreed(record);
      else await record();
      install(next);
      this.pending = undefined;
      if (serves) {
        await this.retireCollections().catch((error) => this.dependencies.logger.warn({ err: error }, 'dropping retired versions\' collections failed'));
      }
      activation.state = 'active';
      activation.finishedAt = new Date();
      this.dependencies.logger.info({
        version: next.version, seconds: (+activation.finishedAt - +activation.startedAt) / 1000,
        mode: activation.mode, reused: activation.reused, embedded: activation.embedded,
        load_seconds: (+activation.loadedAt! - +activation.startedAt) / 1000,
        fill_seconds: (+activation.finishedAt - +activation.loadedAt!) / 1000,
      }, 'model version ready');
    } catch (error) {
      await proposal?.abandon().catch((failure) => this.dependencies.logger.warn({ err: failure }, 'announcing an abandoned change failed'));
      this.pending = undefined;
      this.fail(activation, error);
      if (next !== this.previous && next !== this.split?.model) await next.release().catch(() => undefined);
    }
  }

  /** Records `next` as the active version (and the one serving now as retired). */
  private record(next: ServingModel): Promise<void> {
    return this.databaseWrite(`recording version ${next.version} as active`, () => this.dependencies.versions.activate(next.model));
  }

  /** Records `split` as the traffic split with `share` of users. */
  private recordSplit(split: ServingModel, share: number): Promise<void> {
    return this.databaseWrite(`recording version ${split.version} as the traffic split`, () => this.dependencies.versions.recordSplit(split.model, share));
  }

  private async databaseWrite(what: string, write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (error) {
      throw new PlatformError('DATABASE_UNAVAILABLE', `${what} in the database failed`, {}, { cause: error });
    }
  }

  /**
   * Drops the collections of the versions the platform knows (recorded in the database or in the registry) except
   * those of loaded versions (serving, rollback target, split, being activated, still draining) and of the
   * `retainedVersions` most recently retired versions besides those. Returns the names dropped.
   */
  async retireCollections(): Promise<string[]> {
    const { versions, registry, retention, logger } = this.dependencies;
    const { encoder: variant, vectors } = this.dependencies.serving;
    const loaded = new Set([this.serving, this.previous, this.pending, this.split?.model, ...this.draining]
      .filter((model): model is ServingModel => model !== undefined).map((model) => model.collection.name));
    const retired = (await versions.retired()).map((version) => versionCollection(version, variant));
    const keep = new Set([...loaded, ...retired.filter((name) => !loaded.has(name)).slice(0, retention.retainedVersions)]);
    const known = new Set([...retired, ...(await registry.list()).map((bundle) => versionCollection(bundle.version, variant))]);
    const dropped = (await vectors.listCollections()).filter((name) => known.has(name) && !keep.has(name));
    for (const name of dropped) await vectors.dropCollection(name);
    if (dropped.length > 0) logger.info({ dropped, retained: retention.retainedVersions }, 'dropped the collections of retired model versions');
    return dropped;
  }

  /** Releases a displaced version once the requests that started on it have had time to finish. */
  private releaseLater(model: ServingModel): void {
    const { releaseGraceMs } = this.dependencies.retention;
    if (releaseGraceMs === 0) {
      model.release().catch(() => undefined);
      return;
    }
    this.draining.add(model);
    setTimeout(() => {
      this.draining.delete(model);
      model.release().catch(() => undefined);
    }, releaseGraceMs).unref();
  }

  private fail(activation: Activation, error: unknown): void {
    activation.state = 'failed';
    activation.finishedAt = new Date();
    // The store's own message too (operators read it; paths are redacted before it is shown).
    const cause = error instanceof PlatformError && error.cause instanceof Error ? `: ${error.cause.message}` : '';
    activation.error = (error as Error).message + cause;
    activation.errorCode = error instanceof PlatformError ? error.code : 'INTERNAL_SERVER_ERROR';
    // A version the registry does not have is the caller's mistake, not the server's: a warning without a stack.
    if (error instanceof PlatformError && error.code === 'UNKNOWN_MODEL_VERSION') {
      this.dependencies.logger.warn({ version: activation.version, code: error.code }, `model activation refused: ${error.message}`);
    } else {
      this.dependencies.logger.error({ version: activation.version, err: error }, 'model activation failed; the serving version is unchanged');
    }
  }
}

/** A user's fixed place in [0, 1): the same user always lands on the same side of a split. */
export function userBucket(userId: string): number {
  return createHash('sha256').update(userId).digest().readUInt32BE(0) / 2 ** 32;
}
