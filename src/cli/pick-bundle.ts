/**
 * Which bundle the quickstart serves: the newest LLM2Rec bundle of the model registry that the server would accept,
 * else the raw `quick` bundle.
 *
 *   node --import tsx src/cli/pick-bundle.ts [--registry bundles] [--fallback bundles/quick]
 *
 * "LLM2Rec bundle": its manifest says the item encoder was trained by an LLM2Rec run (`encoder.kind` "llm2rec",
 * or the older wording in `backbone.source`; src/models/model-encoder.ts). "Newest": the latest manifest
 * `created_at` (then model version). "Accepted": every check of `npm run validate` passes. Bundles that fail are
 * skipped with the reason on stderr. Prints the chosen directory on stdout, and the fallback when none qualifies.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Command } from 'commander';
import { ModelRegistry } from '../models/model-registry.js';
import { modelEncoder } from '../models/model-encoder.js';
import { isMain } from './is-main.js';
import { validateCommand } from './validate.js';

export interface PickedBundle {
  dir: string;
  version: string;
  runId: string | null;
}

/** The newest valid LLM2Rec bundle of the registry, or undefined. */
export async function newestLlm2RecBundle(registryDir: string, log: (line: string) => void = console.error): Promise<PickedBundle | undefined> {
  const candidates: (PickedBundle & { createdAt: string })[] = [];
  for (const bundle of await new ModelRegistry(registryDir).list()) {
    const manifest = JSON.parse(await readFile(path.join(bundle.dir, 'manifest.json'), 'utf8'));
    const encoder = modelEncoder(manifest);
    if (encoder.kind !== 'LLM2REC') continue;
    candidates.push({ dir: bundle.dir, version: bundle.version, runId: encoder.runId, createdAt: String(manifest.created_at ?? '') });
  }
  candidates.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.version.localeCompare(a.version));
  for (const candidate of candidates) {
    const lines: string[] = [];
    if (await validateCommand(candidate.dir, {}, (line) => lines.push(line)) === 0) {
      log(`LLM2Rec bundle ${candidate.version} (run ${candidate.runId}) in ${candidate.dir}: valid`);
      return { dir: candidate.dir, version: candidate.version, runId: candidate.runId };
    }
    log(`skipped ${candidate.dir}: ${lines.filter((line) => line.startsWith('FAIL')).join('; ')}`);
  }
  return undefined;
}

if (isMain(import.meta.url)) {
  const program = new Command('pick-bundle')
    .description('Print the bundle to serve: the newest valid LLM2Rec bundle of the registry, else the fallback')
    .option('--registry <dir>', 'model registry', process.env.LLM2REC_MODEL_REGISTRY ?? 'bundles')
    .option('--fallback <dir>', 'bundle to serve when the registry holds no valid LLM2Rec bundle', 'bundles/quick')
    .parse();
  const options = program.opts<{ registry: string; fallback: string }>();
  const picked = await newestLlm2RecBundle(options.registry);
  if (!picked) console.error(`no valid LLM2Rec bundle in ${options.registry}: ${options.fallback}`);
  console.log(picked?.dir ?? options.fallback);
}
