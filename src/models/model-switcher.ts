/**
 * Hot-swap: which model version serves, and the switch to another one without dropping a request.
 *
 * activate(version): the bundle is loaded and checked (an invalid one is refused and the current version keeps
 * serving), its collection is brought in step with the catalogue in the background (catalogue writes go to both
 * versions meanwhile), then one assignment makes it the serving version. Requests already running finish on the
 * version they started with. The version before stays loaded for rollback().
 */
import { PlatformError } from '../errors.js';
import type { Catalog, EmbeddingTarget } from '../catalog/catalog.js';
import type { Logger } from '../logger.js';
import type { VectorStore } from '../index/vector-index.js';
import type { ModelRegistry } from './model-registry.js';
import type { ModelVersions } from './model-versions.js';
import { ServingModel, type ServingDependencies } from './serving-model.js';

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
}

/** How long a displaced version stays loaded for requests that started on it. */
const RELEASE_GRACE_MS = 60_000;

export class ModelSwitcher {
  private serving: ServingModel;
  private previous?: ServingModel;
  private pending?: ServingModel;
  private latest?: Activation;
  private completion: Promise<void> = Promise.resolve();

  constructor(
    initial: ServingModel,
    private readonly registry: ModelRegistry,
    private readonly catalog: () => Catalog,
    private readonly versions: ModelVersions,
    private readonly vectors: VectorStore,
    private readonly dependencies: ServingDependencies,
    private readonly logger: Logger,
  ) {
    this.serving = initial;
  }

  /** The version serving requests now. */
  get active(): ServingModel {
    return this.serving;
  }

  /** Every version whose collection must follow catalogue writes. */
  targets(): EmbeddingTarget[] {
    return this.pending ? [this.serving, this.pending] : [this.serving];
  }

  /** The most recent activation, if any. */
  activation(): Activation | undefined {
    return this.latest;
  }

  /** Resolves when the activation in progress (if any) has finished, either way. */
  settled(): Promise<void> {
    return this.completion;
  }

  /** Starts switching to a version of the registry; returns once the bundle is loaded and checked. */
  async activate(version: string): Promise<Activation> {
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
      next = this.previous?.version === version ? this.previous : await this.load(version);
    } catch (error) {
      this.fail(activation, error);
      throw error;
    }
    this.pending = next;
    activation.state = 'embedding';
    this.completion = this.complete(next, activation);
    return activation;
  }

  /** Switches back to the version that served before the last switch. */
  async rollback(): Promise<Activation> {
    if (!this.previous) throw new PlatformError('BAD_USER_INPUT', 'no earlier version to roll back to');
    return this.activate(this.previous.version);
  }

  async close(): Promise<void> {
    await this.completion;
    await this.serving.release();
    if (this.previous) await this.previous.release();
  }

  private async load(version: string): Promise<ServingModel> {
    const dir = await this.registry.find(version);
    if (!dir) throw new PlatformError('UNKNOWN_MODEL_VERSION', `no bundle of version ${JSON.stringify(version)} in ${this.registry.dir}`);
    try {
      return await ServingModel.open(dir, this.dependencies);
    } catch (error) {
      throw new PlatformError('INVALID_BUNDLE', (error as Error).message);
    }
  }

  private async complete(next: ServingModel, activation: Activation): Promise<void> {
    try {
      const progress = (done: number, total: number) => { activation.done = done; activation.total = total; };
      await this.catalog().syncIndex(next, progress);
      // A second pass catches what changed in the catalogue during the first; it is short.
      await this.catalog().syncIndex(next);
      const displaced = this.previous;
      this.previous = this.serving === next ? this.previous : this.serving;
      this.serving = next;
      this.pending = undefined;
      await this.vectors.setActiveCollection(next.collection.name);
      await this.versions.activate(next.model);
      activation.state = 'active';
      activation.finishedAt = new Date();
      this.logger.info({ version: next.version, seconds: (+activation.finishedAt - +activation.startedAt) / 1000 }, 'model version activated');
      if (displaced && displaced !== next && displaced !== this.previous) {
        setTimeout(() => { displaced.release().catch(() => undefined); }, RELEASE_GRACE_MS).unref();
      }
    } catch (error) {
      this.pending = undefined;
      this.fail(activation, error);
      if (next !== this.previous) await next.release().catch(() => undefined);
    }
  }

  private fail(activation: Activation, error: unknown): void {
    activation.state = 'failed';
    activation.finishedAt = new Date();
    activation.error = (error as Error).message;
    this.logger.error({ version: activation.version, err: error }, 'model activation failed; the serving version is unchanged');
  }
}
