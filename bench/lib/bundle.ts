/**
 * Bundles as the benchmarks use them: a private copy of the bundle under test (a training run may rewrite
 * bundles/quick while a benchmark reads it), and copies published under another model version for hot-swaps.
 */
import { appendFile, cp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sha256OfFile } from '../../src/file-hash.js';

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

/**
 * Makes the encoder graph of the bundle in `dir` differ in its bytes (its sha256), not in what it computes: ONNX's
 * ModelProto.doc_string (field 6, a string) is appended to the file, and in protobuf the last value of a field wins.
 * The manifest gets the new sha256 and size. A switch to such a bundle cannot reuse the serving version's semantic
 * vectors and re-embeds the catalogue, as after a retrained encoder.
 */
export async function markEncoder(dir: string, mark: string): Promise<void> {
  const manifestFile = path.join(dir, 'manifest.json');
  const manifest = JSON.parse(await readFile(manifestFile, 'utf8'));
  const file = path.join(dir, manifest.graphs.encoder.file);
  const text = Buffer.from(`llm2rec bench: ${mark}`, 'utf8');
  if (text.length > 127) throw new Error('mark too long');
  await appendFile(file, Buffer.concat([Buffer.from([(6 << 3) | 2, text.length]), text]));
  manifest.files[manifest.graphs.encoder.file] = { sha256: await sha256OfFile(file), bytes: (await stat(file)).size };
  await writeFile(manifestFile, JSON.stringify(manifest, null, 2));
}

/** A copy of `source` published in `registryDir/<dirName>` as `version`, its encoder marked with `mark` (markEncoder). */
export async function publishWithOtherEncoder(source: string, registryDir: string, options: { version: string; dirName: string; mark: string }): Promise<{ dir: string; version: string }> {
  const dir = path.join(registryDir, options.dirName);
  await rm(dir, { recursive: true, force: true });
  await mkdir(registryDir, { recursive: true });
  await cp(source, dir, { recursive: true });
  const manifest = await manifestOf(dir);
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify({ ...manifest, model_version: options.version }, null, 2));
  await markEncoder(dir, options.mark);
  return { dir, version: options.version };
}
