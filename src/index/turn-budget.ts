/**
 * In-memory work that grows with the catalogue (exact scans of many points, large graph searches, long attribute
 * lists) shares the event loop through a budget per turn: each piece of work takes its size from the budget before
 * it runs, and when the budget of the current turn is spent it waits for the next turn. So one turn of the event
 * loop runs at most one budget of such work, however many requests, aliases and domains scan at once and however
 * large the catalogue; between turns the event loop answers everything else (/healthz, other requests, I/O).
 *
 * Work is counted in vector components (a point of 128 dimensions scored exactly is 128). Callers cut their work
 * into pieces of at most one budget; a larger piece runs alone in a turn.
 */

/** Vector components one turn of the event loop may score (about 4-8 ms of JavaScript dot products). */
export const COMPONENTS_PER_TURN = 2 ** 22;

export class TurnBudget {
  private used = 0;
  private nextTurn: Promise<void> | undefined;

  constructor(readonly perTurn: number = COMPONENTS_PER_TURN) {}

  /**
   * Resolves once `work` more may run in this turn: at once (in a microtask) while the budget lasts, else in a later
   * turn of the event loop. Every caller waiting for the next turn resumes in it, in the order they came.
   */
  async take(work: number): Promise<void> {
    while (this.used > 0 && this.used + work > this.perTurn) {
      this.nextTurn ??= new Promise((resolve) => setImmediate(() => {
        this.nextTurn = undefined;
        this.used = 0;
        resolve();
      }));
      await this.nextTurn;
    }
    this.used += work;
  }
}

/** The budget every embedded collection and the catalogue's attribute lists of this process share. */
export const sharedTurnBudget = new TurnBudget();
