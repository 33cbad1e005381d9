import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe } from 'node:test';
import { EmbeddedVectorStore } from '../../src/index/embedded-vector-store.js';
import { vectorStoreContract } from './vector-store-contract.js';

describe('EmbeddedVectorStore', () => {
  vectorStoreContract(async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'llm2rec-index-'));
    return {
      openStore: () => new EmbeddedVectorStore(root),
      collectionPrefix: '',
      cleanUp: () => rm(root, { recursive: true, force: true }),
    };
  });
});
