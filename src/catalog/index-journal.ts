/**
 * Crash consistency of the vector index (issue #12). The database commits every write; the embedded index makes its
 * points durable only when flushed (every few seconds and at a clean shutdown). A process killed in between restarts
 * with the database ahead of the index: missing points are found by id, but an item whose title was replaced still
 * has its old vectors there.
 *
 * So while a server runs, a marker file in the data directory holds the time the last completed flush began: every
 * write before it is durable in the index. A clean shutdown removes the marker after its last flush. A marker found
 * at start-up means the previous process did not shut down cleanly, and the items the database changed since that
 * time (less a margin for the database's clock) are embedded again.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** How far the database's clock (updated_at) may be behind this process's. */
export const CLOCK_MARGIN_MS = 60_000;

export class IndexJournal {
  constructor(private readonly file: string) {}

  static inDataDir(dataDir: string): IndexJournal {
    return new IndexJournal(path.join(dataDir, 'index-durable-since.json'));
  }

  /**
   * After an unclean shutdown, the time from which items must be embedded again; undefined after a clean one (or on
   * the first start). An unreadable marker counts as unclean since the beginning.
   */
  async changedSince(): Promise<Date | undefined> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const since = Date.parse(JSON.parse(text)?.durableSince ?? '');
    return new Date(Number.isFinite(since) ? since - CLOCK_MARGIN_MS : 0);
  }

  /** Records that every index write made before `time` is durable (written atomically: temp file, then rename). */
  async durableSince(time: Date): Promise<void> {
    await mkdir(path.dirname(this.file), { recursive: true });
    const temp = `${this.file}.${process.pid}.tmp`;
    await writeFile(temp, JSON.stringify({ durableSince: time.toISOString(), pid: process.pid }));
    await rename(temp, this.file);
  }

  /** A clean shutdown, after the last flush: nothing to catch up next time. */
  async closed(): Promise<void> {
    await rm(this.file, { force: true });
  }
}
