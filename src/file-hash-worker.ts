/** The worker thread behind sha256OfFilesOffThread (a piscina task): hashes files one after another at its nice value. */
import { runAtNice } from './background-priority.js';
import { sha256OfFile } from './file-hash.js';

export interface FileHashRequest {
  files: string[];
  nice?: number;
}

export default async function hash(request: FileHashRequest): Promise<string[]> {
  runAtNice(request.nice);
  const hashes: string[] = [];
  for (const file of request.files) hashes.push(await sha256OfFile(file));
  return hashes;
}
