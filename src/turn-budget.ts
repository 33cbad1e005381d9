/**
 * In-memory work that grows with the catalogue (exact scans of many points, large graph searches, long attribute
 * lists, queries on the embedded database) shares the event loop through a budget per turn: each piece of work takes
 * its size from the budget before it runs, and when the budget of the current turn is spent it waits for the next
 * turn. So one turn of the event loop runs at most one budget of such work, however many requests, aliases and
 * domains scan at once and however large the catalogue; between turns the event loop answers everything else
 * (/healthz, other requests, I/O).
 *
 * Work is counted in vector components (a point of 128 dimensions scored exactly is 128): that count is what tests
 * can check exactly. A turn also ends once the work it granted has run for `maxTurnMs` of wall-clock time, whatever
 * the count says: estimates of cost differ from machine to machine, and work that resolves as promises (microtasks)
 * would otherwise run on in the same turn. Callers cut their work into pieces of at most one budget; a larger piece
 * runs alone in a turn.
 */

/** Vector components one turn of the event loop may score (about 4-8 ms of JavaScript dot products). */
export const COMPONENTS_PER_TURN = 2 ** 22;
/**
 * What visiting one item costs in these units: a map lookup, and for a filter the item's row and attributes, cost
 * about as much as scoring 16-32 components. (Counted as one component, a filtered scan of 90k items ran within one
 * turn: `npm run bench:event-loop`, 2026-12-02.)
 */
export const VISIT_WORK = 16;
/** Wall-clock time after which the work of one turn waits for the next, however little of the count it used. */
export const MAX_TURN_MS = 10;

export class TurnBudget {
  private used = 0;
  private turnStarted = 0;
  /** Resolves when the turn in which work was last granted is over; undefined until work is granted again. */
  private turnEnd: Promise<void> | undefined;

  constructor(readonly perTurn: number = COMPONENTS_PER_TURN, readonly maxTurnMs: number = MAX_TURN_MS) {}

  /**
   * Resolves once `work` more may run in this turn: at once (in a microtask) while the budget lasts, else in a later
   * turn of the event loop. Every caller waiting for the next turn resumes in it, in the order they came.
   */
  async take(work: number): Promise<void> {
    while (this.turnEnd && (this.used + work > this.perTurn || performance.now() - this.turnStarted >= this.maxTurnMs)) {
      await this.turnEnd;
    }
    if (!this.turnEnd) {
      this.used = 0;
      this.turnStarted = performance.now();
      this.turnEnd = new Promise((resolve) => setImmediate(() => {
        this.turnEnd = undefined;
        resolve();
      }));
    }
    this.used += work;
  }
}

/** The budget every embedded collection, the catalogue's attribute lists and the embedded database share. */
export const sharedTurnBudget = new TurnBudget();

/**
 * Writes into the embedded index (graph inserts, the vector copies of a snapshot) take from a budget of their own, a
 * quarter of a turn's, besides the shared one: a model switch fills a whole collection while requests are served,
 * and a request must not queue behind turns full of inserts. Each turn runs at most this much write work.
 */
export const sharedWriteBudget = new TurnBudget(COMPONENTS_PER_TURN / 4, MAX_TURN_MS / 4);

/**
 * Background work done on the event loop in steps (a model switch's reuse of the serving version's vectors) takes
 * at most `share` of the wall-clock time: after each step it sleeps as long as the step ran times (1 - share) / share.
 * Run back to back, one step per turn, the reuse of 16,859 items added a step to nearly every turn of every request
 * for a second (a request spans ten or more turns): p99 during a same-encoder switch 32 ms against 8 ms before
 * (`npm run bench:hot-swap` with a CPU profile, 2026-12-02). Paced, a request meets a step at few of its turns.
 */
export class BackgroundPace {
  private stepStarted = performance.now();

  constructor(readonly share: number) {
    if (!(share > 0 && share <= 1)) throw new Error(`a background share is in (0, 1], got ${share}`);
  }

  /** Ends the step begun when the pace was made or at the last call, and waits before the next may begin. */
  async next(): Promise<void> {
    const ran = performance.now() - this.stepStarted;
    await new Promise((resolve) => setTimeout(resolve, (ran * (1 - this.share)) / this.share));
    this.stepStarted = performance.now();
  }
}
