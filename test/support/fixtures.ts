/**
 * Real components for tests: a tiny model bundle trained by `training/` on a slice of amazon-games, and small
 * datasets cut at run time from ../shared/data (never committed).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { cp, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export const REPO = path.resolve(import.meta.dirname, '../..');
export const SHARED_DATA = path.resolve(process.env.LLM2REC_SHARED_DATA ?? path.join(REPO, '../shared/data'));
export const PYTHON = path.join(REPO, '.venv/bin/python');

/** Builds (once per checkout) the `tiny` preset bundle and returns its directory. */
export function tinyBundle(): string {
  const out = path.join(REPO, '.tmp/test-bundles/tiny');
  if (!existsSync(path.join(out, 'manifest.json'))) {
    execFileSync(PYTHON, ['-m', 'training.llm2rec.cli', 'bundle', '--preset', 'tiny',
      '--datasets', path.join(SHARED_DATA, 'amazon-games'), '--out', out], { cwd: REPO, stdio: 'inherit' });
  }
  return out;
}

/**
 * A dataset in the shared layout holding the first `users` users of a shared dataset, their interactions and the
 * items they touched.
 */
export async function cutDataset(name: string, users: number): Promise<string> {
  const source = path.join(SHARED_DATA, name);
  const lines = (await readFile(path.join(source, 'interactions.csv'), 'utf8')).trim().split('\n');
  const kept: string[] = [];
  const userIds = new Set<string>();
  for (const line of lines.slice(1)) {
    const [userId] = line.split(',');
    if (!userIds.has(userId)) {
      if (userIds.size === users) break;
      userIds.add(userId);
    }
    kept.push(line);
  }
  const itemIds = new Set(kept.map((line) => line.split(',')[1]));
  const items = (await readFile(path.join(source, 'items.jsonl'), 'utf8'))
    .split('\n')
    .filter((line) => line.trim() !== '' && itemIds.has(String(JSON.parse(line).id)));
  const dir = path.join(await mkdtemp(path.join(os.tmpdir(), 'llm2rec-data-')), name);
  await mkdir(dir);
  await writeFile(path.join(dir, 'items.jsonl'), items.join('\n') + '\n');
  await writeFile(path.join(dir, 'interactions.csv'), [lines[0], ...kept].join('\n') + '\n');
  return dir;
}

/** A private copy of the tiny bundle under a new temporary directory (for tests that damage it). */
export async function copyOfTinyBundle(): Promise<string> {
  const dir = path.join(await mkdtemp(path.join(os.tmpdir(), 'llm2rec-bundle-')), 'bundle');
  await cp(tinyBundle(), dir, { recursive: true });
  return dir;
}

/** A copy of the tiny bundle published in `registry` under model version `version`; returns its directory. */
export async function publishTinyBundle(registry: string, version: string): Promise<string> {
  const dir = path.join(registry, version);
  await cp(tinyBundle(), dir, { recursive: true });
  await editManifest(dir, (manifest) => { manifest.model_version = version; });
  return dir;
}

/** Rewrites a bundle's manifest.json through `edit`. */
export async function editManifest(dir: string, edit: (manifest: any) => void): Promise<void> {
  const file = path.join(dir, 'manifest.json');
  const manifest = JSON.parse(await readFile(file, 'utf8'));
  edit(manifest);
  await writeFile(file, JSON.stringify(manifest, null, 2));
}

/** A TCP port on 127.0.0.1 that nothing listens on (for a server a test starts in another process). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
