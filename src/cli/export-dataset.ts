/**
 * `npm run export-dataset -- --out DIR`: downloads a running platform's catalogue and interactions in the shared
 * layout (items.jsonl, interactions.csv, README.md), ready for `training` to make the next model version.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Command } from 'commander';
import { isMain } from './is-main.js';

export interface ExportOptions {
  out: string;
  /** The platform: its GraphQL endpoint or its root. */
  url: string;
  apiKey?: string;
  print?: (line: string) => void;
}

/** Writes the platform's items.jsonl, interactions.csv and a README.md into `out`. */
export async function exportDataset({ out, url, apiKey, print = console.log }: ExportOptions): Promise<void> {
  const root = new URL('/', url);
  await mkdir(out, { recursive: true });
  for (const name of ['items.jsonl', 'interactions.csv']) {
    const response = await fetch(new URL(`/export/${name}`, root), { headers: apiKey ? { 'x-api-key': apiKey } : {} });
    if (!response.ok || !response.body) throw new Error(`GET /export/${name}: HTTP ${response.status} ${await response.text()}`);
    const started = Date.now();
    await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), createWriteStream(path.join(out, name)));
    print(`${name} written in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  await writeFile(path.join(out, 'README.md'),
    `# Platform export\n\nExported from ${root.href} on ${new Date().toISOString()} by \`npm run export-dataset\`.\n` +
    'Layout: items.jsonl (id, title, domain, attributes) and interactions.csv (user_id,item_id,timestamp; a user\'s rows in sequence order).\n');
  print(`exported to ${out}`);
}

if (isMain(import.meta.url)) {
  const program = new Command('export-dataset')
    .description("Export a running platform's catalogue and interactions in the shared dataset layout")
    .requiredOption('--out <dir>', 'directory to write')
    .option('--url <url>', 'the platform (its GraphQL endpoint or its root)', `http://127.0.0.1:${process.env.PORT ?? 4000}`)
    .option('--api-key <key>', 'API key (LLM2REC_API_KEY)', process.env.LLM2REC_API_KEY)
    .parse();
  const options = program.opts<{ out: string; url: string; apiKey?: string }>();
  try {
    await exportDataset(options);
  } catch (error) {
    console.error(`export-dataset failed: ${(error as Error).message}`);
    process.exit(1);
  }
}
