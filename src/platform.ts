/**
 * The composition root: opens the database and the vector store, starts the model switcher on the version to serve
 * and wires the services, each built from those before it (rows -> switcher -> catalogue). Everything a command or
 * the server needs hangs off the returned Platform.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Catalog } from './catalog/catalog.js';
import { IndexJournal } from './catalog/index-journal.js';
import { IndexSync } from './catalog/index-sync.js';
import { Replica } from './cluster/replicas.js';
import { ItemReadModel } from './catalog/item-read-model.js';
import type { Settings } from './config.js';
import { openDatabase, type Database } from './db/index.js';
import { Interactions } from './events/interactions.js';
import { createVectorStore } from './index/create-vector-store.js';
import type { VectorCollection, VectorStore } from './index/vector-index.js';
import type { RecommendationModel } from './inference/recommendation-model.js';
import type { Logger } from './logger.js';
import { ModelRegistry } from './models/model-registry.js';
import { ModelSwitcher } from './models/model-switcher.js';
import { ModelVersions } from './models/model-versions.js';
import type { ServingDependencies } from './models/serving-model.js';
import { AttributeMatcher } from './recommend/attribute-filter.js';
import type { Recommender } from './recommend/recommender.js';

export interface Platform {
  settings: Settings;
  logger: Logger;
  db: Database;
  vectors: VectorStore;
  catalog: Catalog;
  interactions: Interactions;
  models: ModelVersions;
  registry: ModelRegistry;
  switcher: ModelSwitcher;
  /** On PostgreSQL: this process as one of the replicas serving the database (cluster/replicas.ts). */
  replica?: Replica;
  /** The serving version's model, collection and recommender (they change together on a switch). */
  readonly model: RecommendationModel;
  readonly collection: VectorCollection;
  readonly recommender: Recommender;
  close(): Promise<void>;
}


export async function openPlatform(settings: Settings, logger: Logger): Promise<Platform> {
  const db = await openDatabase({ databaseUrl: settings.databaseUrl, dataDir: settings.dataDir });
  logger.info({ database: db.kind }, 'database ready');
  // On PostgreSQL, other server processes may share the database: events from here on are applied on top of the rows.
  const replica = db.pool ? await Replica.join(db.pool, logger) : undefined;
  // Serving reads item rows from memory; the catalogue keeps them in step with its writes and the other replicas'.
  const items = await ItemReadModel.load(db);
  logger.info({ items: items.size }, 'item rows loaded');
  const vectors = createVectorStore(settings);
  const models = new ModelVersions(db);
  const registry = new ModelRegistry(settings.modelRegistryDir);
  const interactions = new Interactions(db, items, { maxInteractionsPerBatch: settings.maxInteractionsPerBatch });
  const serving: ServingDependencies = {
    vectors,
    items,
    interactions,
    attributes: new AttributeMatcher(items),
    limits: settings,
    provider: settings.executionProvider,
    encoder: settings.encoderVariant,
    sharedEmbeddings: replica?.sharedEmbeddings,
  };

  // A version activated at run time keeps serving after a restart, as long as its bundle is still there.
  const activated = await models.activeBundleDir();
  const bundleDir = activated && existsSync(path.join(activated, 'manifest.json')) ? activated : settings.bundleDir;

  // After an unclean shutdown (a marker left in the data directory), items changed since the index's last durable
  // state are embedded again (index-journal.ts).
  const journal = IndexJournal.inDataDir(settings.dataDir);
  // Replicas keep the marker at a clean shutdown too: other replicas may change items while this one is away.
  const changedSince = await journal.changedSince();
  if (changedSince && replica) logger.info({ changedSince }, 'bringing the items changed since the index was last durable in step');
  else if (changedSince) logger.warn({ changedSince }, 'the previous process did not shut down cleanly: re-embedding items changed since');
  const syncStarted = new Date();
  let lastLogged = 0;
  const { switcher, filled } = await ModelSwitcher.open(bundleDir, {
    registry, versions: models, indexSync: new IndexSync(db, items, settings.encodeBatchSize), serving, logger, retention: settings,
    coordination: replica?.agreement,
  }, {
    changedSince,
    progress: (done, total) => {
      if (total > 0 && (done === total || Date.now() - lastLogged > 2000)) {
        lastLogged = Date.now();
        logger.info({ done, total }, 'embedding catalogue into the vector index');
      }
    },
  });
  await journal.durableSince(syncStarted); // the fill flushed: everything before it is in the index now
  const initial = switcher.active;
  logger.info({ version: initial.version, bundle: bundleDir, provider: settings.executionProvider }, 'model loaded');
  logger.info({ ...filled, points: await initial.collection.count(), collection: initial.collection.name }, 'vector index in step with the database');

  const catalog = new Catalog(db, items, () => switcher.targets(), {
    maxItemsPerBatch: settings.maxItemsPerBatch,
    encodeBatchSize: settings.encodeBatchSize,
  }, replica?.announce);
  replica?.follow(catalog, switcher, models);

  const flusher = setInterval(() => {
    const started = new Date();
    Promise.all(switcher.targets().map((target) => target.collection.flush()))
      .then(() => journal.durableSince(started))
      .catch((error) => logger.error({ err: error }, 'vector index flush failed'));
  }, settings.indexFlushIntervalMs);
  flusher.unref();

  return {
    settings, logger, db, vectors, catalog, interactions, models, registry, switcher, replica,
    get model() { return switcher.active.model; },
    get collection() { return switcher.active.collection; },
    get recommender() { return switcher.active.recommender; },
    async close() {
      clearInterval(flusher);
      await replica?.leave();
      const lastFlush = new Date();
      await switcher.close();
      await vectors.close();
      if (replica) await journal.durableSince(lastFlush);
      else await journal.closed();
      await db.close();
    },
  };
}
