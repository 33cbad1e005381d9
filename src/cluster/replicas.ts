/**
 * One server process among several over one PostgreSQL (issue #15). What a replica shares with the others goes
 * through the database:
 *   - catalogue writes: announced in their own transaction (event-feed.ts); every other replica applies them to its
 *     rows in memory and its vector collections (Catalog.follow);
 *   - item vectors: computed once per model version by whichever replica gets there first and read by the others
 *     (shared-embeddings.ts), so followers, restarts and new replicas do not run the encoder again;
 *   - model switches: prepared on every live replica before any switches (model-agreement.ts).
 * Interactions need nothing: recommendations read a user's history from the database.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type pg from 'pg';
import type { Catalog } from '../catalog/catalog.js';
import type { RawQueryExecutor } from '../db/index.js';
import type { RecommendationModel } from '../inference/recommendation-model.js';
import type { Logger } from '../logger.js';
import { EventFeed, latestEventSeq, prismaQuery, recordEvent, type PlatformEvent } from './event-feed.js';
import { SharedEmbeddings, type ItemEmbedder } from './shared-embeddings.js';
import { ModelAgreement } from './model-agreement.js';
import type { ModelSwitcher } from '../models/model-switcher.js';
import type { ModelVersions } from '../models/model-versions.js';

/** The payload of a catalogue write's event. */
interface ItemsChanged {
  ids: string[];
}

export class Replica {
  private feed?: EventFeed;
  /** How model switches are agreed between the replicas (the switcher's coordination). */
  readonly agreement: ModelAgreement;
  /** Titles this replica ran through the encoder, per version collection. */
  private readonly titlesEncoded = new Map<string, number>();

  private constructor(
    private readonly pool: pg.Pool,
    /** This process, as its events name it. */
    readonly id: string,
    /** The last event applied to the state this replica loaded; follow() starts after it. */
    private readonly loadedAfter: bigint,
    private readonly logger: Logger,
  ) {
    this.agreement = new ModelAgreement(pool, id, logger);
  }

  /** Joins before the catalogue's rows are read: events after this point are applied on top of them. */
  static async join(pool: pg.Pool, logger: Logger): Promise<Replica> {
    const id = `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    const after = await latestEventSeq(pool);
    const replica = new Replica(pool, id, after, logger);
    await replica.agreement.register(after);
    logger.info({ replica: id, after: after.toString() }, 'joined the replicas of this database');
    return replica;
  }

  /** What every ServingModel embeds through: vectors computed once for all replicas. */
  readonly sharedEmbeddings = (model: RecommendationModel, collection: string): ItemEmbedder =>
    new SharedEmbeddings(model, this.pool, collection, (titles) => {
      this.titlesEncoded.set(collection, (this.titlesEncoded.get(collection) ?? 0) + titles);
    });

  /** Titles this replica ran through the encoder, per version collection. */
  encoded(): Record<string, number> {
    return Object.fromEntries(this.titlesEncoded);
  }

  /** Announces a catalogue write, inside its transaction. */
  readonly announce = (tx: RawQueryExecutor, ids: readonly string[]): Promise<void> =>
    recordEvent(prismaQuery(tx), this.id, 'items', { ids: [...ids] } satisfies ItemsChanged).then(() => undefined);

  /** Starts applying the other replicas' events. */
  follow(catalog: Catalog, switcher: ModelSwitcher, versions: ModelVersions): void {
    this.agreement.attach(switcher, versions);
    this.feed = EventFeed.start(this.pool, {
      origin: this.id,
      after: this.loadedAfter,
      logger: this.logger,
      apply: async (event: PlatformEvent) => {
        if (event.kind === 'items') await catalog.follow((event.payload as ItemsChanged).ids);
        else if (event.kind.startsWith('model-')) await this.agreement.apply(event);
        else this.logger.warn({ kind: event.kind, seq: event.seq.toString() }, 'ignoring a platform event of a kind this version does not know');
      },
    });
  }

  /** The seq of the last event applied here. */
  get position(): bigint {
    return this.feed?.position ?? this.loadedAfter;
  }

  async leave(): Promise<void> {
    await this.feed?.stop();
    await this.agreement.stop();
  }
}
