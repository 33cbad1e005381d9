/**
 * The file of a worker thread's module beside the module that starts it: `name`.ts under tsx, `name`.js once built
 * (piscina loads it by URL).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export function workerModule(name: string, besideUrl: string): string {
  return new URL(`./${name}${path.extname(fileURLToPath(besideUrl))}`, besideUrl).href;
}
