/**
 * The rows of an embedded collection's vectors (one matrix per named vector, row s for slot s), kept in blocks of
 * BLOCK_ROWS rows. Growing adds a block and never copies: a matrix that doubled copied up to 38 MB at once while a
 * model switch filled a collection of 16,859 items, holding the event loop 10-30 ms each time, plus the garbage
 * collections such allocations bring (`npm run bench:hot-swap` with a CPU profile, 2026-12-02). Each block is a
 * SharedArrayBuffer, so a worker thread reads rows without a copy (graph-build-worker.ts): a row never changes once
 * written, because a replaced point gets a new slot.
 */
import type { TurnBudget } from '../turn-budget.js';

/** Rows per block: 2.25 MiB of 576-dimension vectors. */
export const BLOCK_ROWS = 1024;

export class BlockMatrix {
  /** @param blocks existing blocks to read (a worker's view of a matrix), each BLOCK_ROWS rows of `dim` */
  constructor(readonly dim: number, readonly blocks: Float32Array[] = []) {}

  set(row: number, vector: Float32Array): void {
    const block = Math.floor(row / BLOCK_ROWS);
    while (this.blocks.length <= block) this.blocks.push(new Float32Array(new SharedArrayBuffer(BLOCK_ROWS * this.dim * 4)));
    this.blocks[block].set(vector, (row % BLOCK_ROWS) * this.dim);
  }

  /** A row without copying it. */
  view(row: number): Float32Array {
    const start = (row % BLOCK_ROWS) * this.dim;
    return this.blocks[Math.floor(row / BLOCK_ROWS)].subarray(start, start + this.dim);
  }

  /** The given rows, one after another, in a new matrix (or, with `target`, in the start of that). */
  rows(rows: readonly number[], target?: Float32Array): Float32Array {
    return this.copyRows(rows, target ?? new Float32Array(rows.length * this.dim));
  }

  /** Copies the given rows, one after another, into the start of `target`; returns that part of it. */
  private copyRows(rows: readonly number[], target: Float32Array): Float32Array {
    rows.forEach((row, i) => target.set(this.view(row), i * this.dim));
    return target.subarray(0, rows.length * this.dim);
  }

  /**
   * rows() in pieces of what one turn's budget allows, each piece taken from the budget before it is copied: a
   * snapshot of a large collection copied in one piece held the event loop 60-130 ms (16,859 items, 2026-12-02).
   * Every piece is copied into the same buffer, so a piece is valid only until the next one is asked for: a new
   * 4 MB buffer per piece (47 MB per snapshot of 16,859 items) brought garbage collections of 30-80 ms into the
   * same-encoder model switch (`npm run bench:hot-swap` with a CPU profile, 2026-12-03).
   */
  async *piecesOverTurns(rows: readonly number[], budget: TurnBudget): AsyncGenerator<Float32Array> {
    const piece = Math.max(1, Math.floor(budget.perTurn / this.dim));
    const buffer = new Float32Array(Math.min(piece, rows.length) * this.dim);
    for (let start = 0; start < rows.length; start += piece) {
      const end = Math.min(rows.length, start + piece);
      await budget.take((end - start) * this.dim);
      yield this.copyRows(rows.slice(start, end), buffer);
    }
  }
}
