/**
 * The manifest of a model bundle (docs/bundle-format.md): reading it against the format's schema
 * (bundle-format.ts) and the checks that the files on disk are the files training wrote.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { sha256OfFilesOffThread } from '../file-hash.js';
import { FORMAT_VERSION, manifestSchema, type Manifest } from './bundle-format.js';

export type { Manifest } from './bundle-format.js';

/** A bundle that cannot be served, with the reason in words a operator can act on. */
export class InvalidBundleError extends Error {
  constructor(bundleDir: string, reason: string) {
    super(`model bundle ${bundleDir} is invalid: ${reason}`);
    this.name = 'InvalidBundleError';
  }
}

/** Reads manifest.json, checks it against the schema and checks every listed file's size and sha256. */
export async function readManifest(bundleDir: string): Promise<Manifest> {
  const manifest = await parseManifest(bundleDir);
  await checkFiles(bundleDir, manifest);
  return manifest;
}

/** Reads manifest.json and checks it against the schema. */
export async function parseManifest(bundleDir: string): Promise<Manifest> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path.join(bundleDir, 'manifest.json'), 'utf8'));
  } catch (error) {
    throw new InvalidBundleError(bundleDir, `cannot read manifest.json (${(error as Error).message})`);
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    throw new InvalidBundleError(bundleDir, `manifest.json does not match format ${FORMAT_VERSION}: ${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}

/** Checks that the manifest lists the tokenizer and every graph, and that every listed file has its size and sha256. */
export async function checkFiles(bundleDir: string, manifest: Manifest): Promise<void> {
  const needed = [
    manifest.tokenizer.file,
    manifest.graphs.encoder.file,
    manifest.graphs.adapter.file,
    manifest.graphs.sequence_model.file,
    ...(manifest.graphs.encoder_int8 ? [manifest.graphs.encoder_int8.file] : []),
  ];
  for (const file of needed) {
    if (!manifest.files[file]) throw new InvalidBundleError(bundleDir, `manifest.files does not list ${file}`);
  }
  const listed = Object.entries(manifest.files);
  for (const [file, expected] of listed) {
    const info = await stat(path.join(bundleDir, file)).catch(() => null);
    if (!info) throw new InvalidBundleError(bundleDir, `${file} is missing`);
    if (info.size !== expected.bytes) {
      throw new InvalidBundleError(bundleDir, `${file} has ${info.size} bytes, the manifest says ${expected.bytes}`);
    }
  }
  // Off the calling thread: the files are hundreds of MB (file-hash.ts).
  const hashes = await sha256OfFilesOffThread(listed.map(([file]) => path.join(bundleDir, file)));
  listed.forEach(([file, expected], i) => {
    if (hashes[i] !== expected.sha256) {
      throw new InvalidBundleError(bundleDir, `${file} has sha256 ${hashes[i]}, the manifest says ${expected.sha256}`);
    }
  });
}
