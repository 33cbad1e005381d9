import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BLOCK_ROWS, BlockMatrix } from '../../src/index/block-matrix.js';
import { TurnBudget } from '../../src/turn-budget.js';

const DIM = 4;

/** A matrix whose row r holds r*10, r*10+1, ... (rows across more than one block). */
function numbered(rows: number): BlockMatrix {
  const matrix = new BlockMatrix(DIM);
  for (let r = 0; r < rows; r += 1) matrix.set(r, Float32Array.from({ length: DIM }, (_, i) => r * 10 + i));
  return matrix;
}

describe('BlockMatrix', () => {
  it('keeps rows across blocks and copies them on request', () => {
    const matrix = numbered(BLOCK_ROWS + 3);
    assert.equal(matrix.blocks.length, 2);
    assert.deepEqual([...matrix.view(BLOCK_ROWS + 2)], [10 * (BLOCK_ROWS + 2), 10 * (BLOCK_ROWS + 2) + 1, 10 * (BLOCK_ROWS + 2) + 2, 10 * (BLOCK_ROWS + 2) + 3]);
    const copy = matrix.rows([1]);
    copy[0] = -1;
    assert.equal(matrix.view(1)[0], 10);
    assert.deepEqual([...matrix.rows([2, 0])], [20, 21, 22, 23, 0, 1, 2, 3]);
  });

  it('gives rows in pieces of one turn budget each, in one reused buffer', async () => {
    const matrix = numbered(BLOCK_ROWS + 50);
    const wanted = Array.from({ length: BLOCK_ROWS + 50 }, (_, r) => BLOCK_ROWS + 49 - r); // reversed, across blocks
    const budget = new TurnBudget(DIM * 300); // 300 rows per piece
    const pieces: Float32Array[] = [];
    const buffers = new Set<ArrayBufferLike>();
    for await (const piece of matrix.piecesOverTurns(wanted, budget)) {
      buffers.add(piece.buffer);
      pieces.push(piece.slice()); // a piece is valid until the next is asked for
    }
    assert.deepEqual(pieces.map((piece) => piece.length / DIM), [300, 300, 300, 174]);
    assert.equal(buffers.size, 1);
    assert.deepEqual(Float32Array.from(pieces.flatMap((piece) => [...piece])), matrix.rows(wanted));
  });
});
