import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addToGraph, createGraph, searchGraph } from '../../src/index/hnsw-graph.js';
import { randomVector } from './vector-store-contract.js';

describe('hnsw-graph', () => {
  // usearch 2.25 hung (a busy loop inside remove) once a graph had removed and re-added keys a few times: a catalogue
  // whose items are updated again and again would freeze the server. The rounds below stopped at the eighth there.
  it('keeps answering while its keys are removed and added again and again', () => {
    const dimensions = 8;
    const graph = createGraph('semantic', dimensions);
    const rows = (keys: number[]) => {
      const matrix = new Float32Array(keys.length * dimensions);
      keys.forEach((key, i) => matrix.set(randomVector(key, dimensions), i * dimensions));
      return matrix;
    };
    let live = Array.from({ length: 100 }, (_, i) => i);
    addToGraph(graph, live, rows(live), 0);
    for (let round = 1; round <= 60; round++) {
      for (const key of live) graph.remove(BigInt(key));
      live = live.map((key) => key + 100);
      addToGraph(graph, live, rows(live), 0);
    }
    assert.equal(graph.size(), live.length);
    const last = live[live.length - 1];
    assert.deepEqual(searchGraph(graph, randomVector(last, dimensions), 1, () => true), [last]);
    assert.deepEqual(searchGraph(graph, randomVector(last, dimensions), 10, (key) => key < live[0]), []);
  });
});
