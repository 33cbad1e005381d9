/**
 * Background threads (the item encoder, bundle checks, graph builds) run at a lower CPU priority than the event loop.
 */
import os from 'node:os';

/**
 * How many steps nicer than the calling thread the threads doing background work run (the item encoder, bundle
 * checks), so that serving gets a core when it needs one while the encoder re-embeds a catalogue (issue #16), and
 * the encoder still has every core the event loop leaves idle. Linux keeps nice values per thread; threads started
 * by a thread (onnxruntime's pool) inherit its value. 10 steps: a tenth of the event loop's CPU weight.
 */
export const BACKGROUND_NICE_STEPS = 10;

/** The nice value for background threads started from the calling thread (at most 19, the lowest priority). */
export function backgroundNice(): number {
  return Math.min(19, os.getPriority() + BACKGROUND_NICE_STEPS);
}

/**
 * Sets the calling thread's nice value (a worker thread, before it starts threads of its own: they inherit it);
 * undefined leaves it as it is, and where the system refuses the thread runs at the priority it inherited.
 */
export function runAtNice(nice: number | undefined): void {
  if (nice === undefined) return;
  try { os.setPriority(nice); } catch { /* not allowed here: run at the inherited priority */ }
}
