/**
 * The manifest of a model bundle (docs/bundle-format.md): its schema and the checks that the files on disk are
 * the files training wrote.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

const Graph = z.object({
  file: z.string(),
  inputs: z.array(z.string()),
  outputs: z.array(z.string()),
});

export const Manifest = z.object({
  format_version: z.literal(1),
  model_version: z.string().min(1),
  created_at: z.string(),
  preset: z.string(),
  backbone: z.object({
    name: z.string(),
    architecture: z.string(),
    source: z.string(),
    layers: z.number().int().positive(),
    attention: z.enum(['causal', 'bidirectional']),
  }).passthrough(),
  dimensions: z.object({
    item_embedding: z.number().int().positive(),
    recommendation: z.number().int().positive(),
  }),
  tokenizer: z.object({
    file: z.string(),
    max_length: z.number().int().positive(),
    pad_token_id: z.number().int().nonnegative(),
    add_special_tokens: z.boolean(),
  }),
  pooling: z.literal('mean'),
  sequence_model: z.object({
    kind: z.string(),
    max_history: z.number().int().positive(),
  }).passthrough(),
  graphs: z.object({
    encoder: Graph,
    adapter: Graph,
    sequence_model: Graph,
    /** Optional int8 variant of the encoder (training.llm2rec.quantize): same inputs and outputs as `encoder`. */
    encoder_int8: Graph.optional(),
  }),
  files: z.record(z.string(), z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), bytes: z.number().int().nonnegative() })),
  training_data: z.array(z.object({ name: z.string() }).passthrough()),
  metrics: z.record(z.string(), z.unknown()),
  samples: z.array(z.object({
    title: z.string(),
    input_ids: z.array(z.number().int()),
    item_embedding_head: z.array(z.number()),
  })),
  /** What quantize measured about each variant; the server needs the int8 encoder's sample heads. */
  variants: z.object({
    encoder_int8: z.object({
      file: z.string(),
      bytes: z.number().int().positive(),
      speedup: z.number(),
      min_cosine: z.number(),
      top10_overlap: z.number(),
      item_embedding_heads: z.array(z.array(z.number())),
    }).passthrough().optional(),
  }).passthrough().optional(),
}).passthrough();

export type Manifest = z.infer<typeof Manifest>;

/** A bundle that cannot be served, with the reason in words a operator can act on. */
export class InvalidBundleError extends Error {
  constructor(bundleDir: string, reason: string) {
    super(`model bundle ${bundleDir} is invalid: ${reason}`);
    this.name = 'InvalidBundleError';
  }
}

export async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
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
  const parsed = Manifest.safeParse(json);
  if (!parsed.success) {
    throw new InvalidBundleError(bundleDir, `manifest.json does not match format 1: ${z.prettifyError(parsed.error)}`);
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
  for (const [file, expected] of Object.entries(manifest.files)) {
    const full = path.join(bundleDir, file);
    const info = await stat(full).catch(() => null);
    if (!info) throw new InvalidBundleError(bundleDir, `${file} is missing`);
    if (info.size !== expected.bytes) {
      throw new InvalidBundleError(bundleDir, `${file} has ${info.size} bytes, the manifest says ${expected.bytes}`);
    }
    const actual = await sha256OfFile(full);
    if (actual !== expected.sha256) {
      throw new InvalidBundleError(bundleDir, `${file} has sha256 ${actual}, the manifest says ${expected.sha256}`);
    }
  }
}
