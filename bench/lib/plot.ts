/**
 * Draws a report's plot with one of the bench's matplotlib scripts (in .venv, made by `npm run setup`):
 * <report>.json -> <report>.png beside it. A missing Python or a failing script is a warning, not a failed bench.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { PYTHON, REPO } from './paths.js';

export async function drawPlot(script: string, reportFile: string): Promise<void> {
  if (!existsSync(PYTHON)) {
    console.warn(`no ${PYTHON}: plot skipped (npm run setup makes it)`);
    return;
  }
  const png = reportFile.replace(/\.json$/, '') + '.png';
  try {
    await promisify(execFile)(PYTHON, [path.join(REPO, script), reportFile, png], { cwd: REPO });
    console.log(`wrote ${path.relative(process.cwd(), png)}`);
  } catch (error) {
    console.warn(`plot failed: ${(error as Error).message}`);
  }
}
