/**
 * A vector collection whose failures say that they are the index's: every operation that fails is rethrown as
 * VECTOR_INDEX_UNAVAILABLE, naming the collection and the operation, with the store's own error as its `cause`
 * (logged by the server, never sent: a store's message may name hosts or paths). The model switcher reports a
 * failure while filling a version's collection with this code; a request whose search fails gets it too.
 */
import { PlatformError } from '../errors.js';
import type { SearchRequest, VectorCollection, VectorName, VectorPoint } from './vector-index.js';

export function reportingIndexFailures(collection: VectorCollection): VectorCollection {
  const failure = (operation: string, error: unknown): Error => error instanceof PlatformError ? error
    : new PlatformError('VECTOR_INDEX_UNAVAILABLE', `the vector index failed: ${operation} in collection ${collection.name}`, {}, { cause: error });
  const guarded = async <T>(operation: string, call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (error) {
      throw failure(operation, error);
    }
  };
  return {
    name: collection.name,
    dimensions: collection.dimensions,
    upsert: (points: readonly VectorPoint[]) => guarded('upsert', () => collection.upsert(points)),
    delete: (ids: readonly string[]) => guarded('delete', () => collection.delete(ids)),
    retrieve: (ids: readonly string[], using: VectorName, into?: Float32Array) => guarded('retrieve', () => collection.retrieve(ids, using, into)),
    search: (request: SearchRequest) => guarded('search', () => collection.search(request)),
    count: (domain?: string) => guarded('count', () => collection.count(domain)),
    listIds: () => guarded('listIds', () => collection.listIds()),
    listDomains: () => guarded('listDomains', () => collection.listDomains()),
    flush: () => guarded('flush', () => collection.flush()),
    // What `fill` itself throws (the encoder's failures, say) is not the index's: it passes unchanged.
    fillInBulk: async <T>(fill: () => Promise<T>) => {
      const thrownByFill = new Set<unknown>();
      const tracked = () => fill().catch((error: unknown) => {
        thrownByFill.add(error);
        throw error;
      });
      try {
        return await collection.fillInBulk(tracked);
      } catch (error) {
        throw thrownByFill.has(error) ? error : failure('fillInBulk', error);
      }
    },
  };
}
