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

const program = new Command('export-dataset')
  .description("Export a running platform's catalogue and interactions in the shared dataset layout")
  .requiredOption('--out <dir>', 'directory to write')
  .option('--url <url>', 'the platform (its GraphQL endpoint or its root)', `http://127.0.0.1:${process.env.PORT ?? 4000}`)
  .option('--api-key <key>', 'API key (LLM2REC_API_KEY)', process.env.LLM2REC_API_KEY)
  .parse();

const options = program.opts<{ out: string; url: string; apiKey?: string }>();
const root = new URL('/', options.url);

async function download(name: string): Promise<void> {
  const response = await fetch(new URL(`/export/${name}`, root), { headers: options.apiKey ? { 'x-api-key': options.apiKey } : {} });
  if (!response.ok || !response.body) throw new Error(`GET /export/${name}: HTTP ${response.status} ${await response.text()}`);
  const started = Date.now();
  await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), createWriteStream(path.join(options.out, name)));
  console.log(`${name} written in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

try {
  await mkdir(options.out, { recursive: true });
  await download('items.jsonl');
  await download('interactions.csv');
  await writeFile(path.join(options.out, 'README.md'),
    `# Platform export\n\nExported from ${root.href} on ${new Date().toISOString()} by \`npm run export-dataset\`.\n` +
    'Layout: items.jsonl (id, title, domain, attributes) and interactions.csv (user_id,item_id,timestamp; a user\'s rows in sequence order).\n');
  console.log(`exported to ${options.out}`);
} catch (error) {
  console.error(`export-dataset failed: ${(error as Error).message}`);
  process.exit(1);
}
