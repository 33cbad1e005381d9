/**
 * The composition root: opens the database, loads the model bundle, opens the model version's vector collection and
 * wires the services. Everything a command or the server needs hangs off the returned Platform.
 */
import { Catalog } from './catalog/catalog.js';
import type { Settings } from './config.js';
import { openDatabase, type Database } from './db/index.js';
import { Interactions } from './events/interactions.js';
import { createVectorStore } from './index/create-vector-store.js';
import { collectionName, type VectorCollection, type VectorStore } from './index/vector-index.js';
import { RecommendationModel } from './inference/recommendation-model.js';
import type { Logger } from './logger.js';
import { ModelVersions } from './models/model-versions.js';
import { AttributeMatcher } from './recommend/attribute-filter.js';
import { Recommender } from './recommend/recommender.js';

export interface Platform {
  settings: Settings;
  logger: Logger;
  db: Database;
  model: RecommendationModel;
  vectors: VectorStore;
  collection: VectorCollection;
  catalog: Catalog;
  interactions: Interactions;
  recommender: Recommender;
  models: ModelVersions;
  close(): Promise<void>;
}

/** How often accepted index writes are made durable. The database stays the source of truth in between. */
const FLUSH_INTERVAL_MS = 10_000;

export async function openPlatform(settings: Settings, logger: Logger): Promise<Platform> {
  const db = await openDatabase({ databaseUrl: settings.databaseUrl, dataDir: settings.dataDir });
  logger.info({ database: db.kind }, 'database ready');
  const model = await RecommendationModel.load(settings.bundleDir, settings.executionProvider);
  logger.info({ version: model.version, bundle: settings.bundleDir, provider: settings.executionProvider }, 'model loaded');

  const vectors = createVectorStore(settings);
  const collection = await vectors.collection(collectionName(model.version), model.dimensions);
  const models = new ModelVersions(db);
  await models.activate(model);

  const catalog = new Catalog(db, model, collection, {
    maxItemsPerBatch: settings.maxItemsPerBatch,
    encodeBatchSize: settings.encodeBatchSize,
  });
  const interactions = new Interactions(db, { maxInteractionsPerBatch: settings.maxInteractionsPerBatch });
  const recommender = new Recommender(model, collection, interactions, settings, new AttributeMatcher(db));

  let lastLogged = 0;
  const synced = await catalog.syncIndex((done, total) => {
    if (total > 0 && (done === total || Date.now() - lastLogged > 2000)) {
      lastLogged = Date.now();
      logger.info({ done, total }, 'embedding catalogue into the vector index');
    }
  });
  await vectors.setActiveCollection(collection.name);
  logger.info({ ...synced, points: await collection.count(), collection: collection.name }, 'vector index in step with the database');

  const flusher = setInterval(() => {
    collection.flush().catch((error) => logger.error({ err: error }, 'vector index flush failed'));
  }, FLUSH_INTERVAL_MS);
  flusher.unref();

  return {
    settings, logger, db, model, vectors, collection, catalog, interactions, recommender, models,
    async close() {
      clearInterval(flusher);
      await vectors.close();
      await model.release();
      await db.close();
    },
  };
}
