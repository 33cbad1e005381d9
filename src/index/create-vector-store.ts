/** The vector index backend the settings ask for. */
import path from 'node:path';
import { EmbeddedVectorStore } from './embedded-vector-store.js';
import { QdrantVectorStore } from './qdrant-vector-store.js';
import type { VectorStore } from './vector-index.js';

export interface VectorStoreSettings {
  vectorIndex: 'embedded' | 'qdrant';
  /** The embedded store keeps its collections under `<dataDir>/vectors`. */
  dataDir: string;
  /** The Qdrant server, e.g. http://localhost:6333; required by the qdrant backend. */
  qdrantUrl?: string;
  qdrantApiKey?: string;
}

export function createVectorStore(settings: VectorStoreSettings): VectorStore {
  switch (settings.vectorIndex) {
    case 'embedded':
      return new EmbeddedVectorStore(path.join(settings.dataDir, 'vectors'));
    case 'qdrant':
      if (!settings.qdrantUrl) throw new Error('the qdrant vector index needs a Qdrant URL (qdrantUrl)');
      return new QdrantVectorStore({ url: settings.qdrantUrl, apiKey: settings.qdrantApiKey });
  }
}
