/**
 * Bundles as the benchmarks use them: a private copy of the bundle under test (a training run may rewrite
 * bundles/quick while a benchmark reads it), and copies published under another model version for hot-swaps.
 */
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

export async function manifestOf(bundleDir: string): Promise<{ model_version: string; [key: string]: unknown }> {
  return JSON.parse(await readFile(path.join(bundleDir, 'manifest.json'), 'utf8'));
}

/**
 * A copy of `source` in `registryDir/<dirName>`, published as model version `version` (the manifest's own version
 * when absent). An existing copy with the same manifest is kept.
 */
export async function snapshotBundle(source: string, registryDir: string, options: { version?: string; dirName?: string } = {}): Promise<{ dir: string; version: string }> {
  const manifest = await manifestOf(source);
  const version = options.version ?? manifest.model_version;
  const dir = path.join(registryDir, options.dirName ?? version.replace(/[^A-Za-z0-9_.-]/g, '_'));
  const wanted = JSON.stringify({ ...manifest, model_version: version }, null, 2);
  const existing = await readFile(path.join(dir, 'manifest.json'), 'utf8').catch(() => null);
  if (existing !== wanted) {
    await rm(dir, { recursive: true, force: true });
    await mkdir(registryDir, { recursive: true });
    await cp(source, dir, { recursive: true });
    // The manifest is read again after the copy: the copied files must be the ones it describes.
    const copied = await manifestOf(dir);
    if (JSON.stringify(copied) !== JSON.stringify(manifest)) throw new Error(`${source} changed while it was copied; try again`);
    await writeFile(path.join(dir, 'manifest.json'), wanted);
  }
  return { dir, version };
}
