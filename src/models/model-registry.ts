/**
 * The model registry: a directory whose sub-directories are model bundles (`<registry>/<any name>/manifest.json`).
 * `training` publishes bundles into it; the server activates them by model version.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { modelEncoder, type ModelEncoderView } from './model-encoder.js';

export interface RegisteredBundle {
  version: string;
  dir: string;
  encoder: ModelEncoderView;
}

export class ModelRegistry {
  constructor(readonly dir: string) {}

  /** Every bundle in the registry whose manifest can be read, by version. */
  async list(): Promise<RegisteredBundle[]> {
    const entries = await readdir(this.dir, { withFileTypes: true }).catch(() => []);
    const bundles: RegisteredBundle[] = [];
    for (const entry of entries.filter((e) => e.isDirectory())) {
      const dir = path.join(this.dir, entry.name);
      const manifest = await readFile(path.join(dir, 'manifest.json'), 'utf8').then(JSON.parse, () => null);
      if (typeof manifest?.model_version === 'string') bundles.push({ version: manifest.model_version, dir, encoder: modelEncoder(manifest) });
    }
    return bundles.sort((a, b) => a.version.localeCompare(b.version));
  }

  /** The directory of a version's bundle, or undefined when the registry has no such version. */
  async find(version: string): Promise<string | undefined> {
    return (await this.list()).find((bundle) => bundle.version === version)?.dir;
  }
}
