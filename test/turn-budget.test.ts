import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BackgroundPace, TurnBudget } from '../src/turn-budget.js';
import { turnsDuring } from './support/turns.js';

/** Keeps the thread busy for `ms` (work the event loop cannot interrupt). */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

describe('TurnBudget', () => {
  it('lets work run in one turn while its count and time last', async () => {
    const budget = new TurnBudget(100, 1_000);
    const { turns } = await turnsDuring(async () => {
      for (let i = 0; i < 10; i++) await budget.take(10);
    });
    assert.equal(turns, 0);
  });

  it('moves work past its count to later turns, at most one count per turn', async () => {
    const budget = new TurnBudget(100, 1_000);
    const { turns } = await turnsDuring(async () => {
      await Promise.all(Array.from({ length: 10 }, () => budget.take(40)));
    });
    // Two pieces of 40 fit in a turn: ten pieces need five turns, four of them after the first.
    assert.ok(turns >= 4, `${turns} turns`);
  });

  it('ends a turn once the work it granted has run for its time, however little of the count it used', async () => {
    const budget = new TurnBudget(Number.MAX_SAFE_INTEGER, 5);
    const { turns } = await turnsDuring(async () => {
      for (let i = 0; i < 20; i++) {
        await budget.take(1);
        busy(2);
      }
    });
    // 40 ms of work in pieces of 2 ms, at most about 5 ms of it per turn.
    assert.ok(turns >= 6, `${turns} turns`);
  });

  it('runs a piece larger than a whole turn alone in its turn', async () => {
    const budget = new TurnBudget(100, 1_000);
    const { turns } = await turnsDuring(async () => {
      await budget.take(10);
      await budget.take(500);
      await budget.take(10);
    });
    assert.equal(turns, 2);
  });
});

describe('BackgroundPace', () => {
  it('sleeps after each step so that the steps take at most their share of the time', async () => {
    const pace = new BackgroundPace(0.25);
    const started = performance.now();
    for (let step = 0; step < 5; step++) {
      busy(4);
      await pace.next();
    }
    // 20 ms of steps at a quarter share: about 60 ms of sleep besides (timers take whole milliseconds).
    assert.ok(performance.now() - started >= 70, `${performance.now() - started} ms`);
  });

  it('lets other work of the event loop run between its steps', async () => {
    const pace = new BackgroundPace(0.5);
    const { turns } = await turnsDuring(async () => {
      for (let step = 0; step < 3; step++) {
        busy(2);
        await pace.next();
      }
    });
    assert.ok(turns >= 3, `${turns} turns`);
  });

  it('refuses a share outside (0, 1]', () => {
    assert.throws(() => new BackgroundPace(0), /share/);
    assert.throws(() => new BackgroundPace(1.5), /share/);
  });
});
