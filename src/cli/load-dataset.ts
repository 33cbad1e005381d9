/**
 * `npm run load-dataset -- <dir>`: loads a dataset in the shared layout into a running platform through its
 * GraphQL API: the catalogue with upsertItems, then the interactions with recordInteractions, with progress bars.
 *
 * Ids are namespaced by default (`amazon-games:0`), because datasets reuse the same ids for different items.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import { Command } from 'commander';
import {
  hasInteractions,
  interactionsFile,
  itemsFile,
  readInteractions,
  readItems,
} from '../datasets/shared-layout.js';
import { graphqlRequest } from './graphql-client.js';

const program = new Command('load-dataset')
  .description('Load a dataset in the shared layout (items.jsonl, interactions.csv) into a running platform')
  .argument('<dir>', 'dataset directory')
  .option('--url <url>', 'GraphQL endpoint', `http://127.0.0.1:${process.env.PORT ?? 4000}/graphql`)
  .option('--namespace <name>', 'prefix for item and user ids ("" for none); default: the directory name')
  .option('--api-key <key>', 'API key for mutations (LLM2REC_API_KEY)', process.env.LLM2REC_API_KEY)
  .option('--item-batch <n>', 'items per upsertItems call', '256')
  .option('--interaction-batch <n>', 'interactions per recordInteractions call', '5000')
  .option('--items-only', 'load the catalogue only')
  .parse();

const [dir] = program.args;
const options = program.opts<{
  url: string; namespace?: string; apiKey?: string; itemBatch: string; interactionBatch: string; itemsOnly?: boolean;
}>();
const namespace = options.namespace ?? path.basename(path.resolve(dir));
const qualify = (id: string) => (namespace === '' ? id : `${namespace}:${id}`);

const UPSERT = 'mutation Upsert($items: [ItemInput!]!) { upsertItems(items: $items) { count } }';
const RECORD = 'mutation Record($interactions: [InteractionInput!]!) { recordInteractions(interactions: $interactions) { count } }';

async function countLines(file: string): Promise<number> {
  const text = await readFile(file, 'utf8');
  return text.split('\n').filter((line) => line.trim() !== '').length;
}

function progressBar(label: string): SingleBar {
  return new SingleBar({
    format: `${label.padEnd(13)} [{bar}] {percentage}% | {value}/{total} | {speed}/s | ETA {eta_formatted}`,
    noTTYOutput: true,
    notTTYSchedule: 5000,
  }, Presets.shades_classic);
}

/** Sends the records of `source` in batches through `send`, with a progress bar. */
async function sendInBatches<T>(
  label: string,
  total: number,
  source: AsyncIterable<T>,
  batchSize: number,
  send: (batch: T[]) => Promise<unknown>,
): Promise<void> {
  const bar = progressBar(label);
  const started = Date.now();
  bar.start(total, 0, { speed: 0 });
  let batch: T[] = [];
  let done = 0;
  const flush = async () => {
    await send(batch);
    done += batch.length;
    batch = [];
    bar.update(done, { speed: Math.round(done / Math.max(0.001, (Date.now() - started) / 1000)) });
  };
  for await (const record of source) {
    batch.push(record);
    if (batch.length >= batchSize) await flush();
  }
  if (batch.length > 0) await flush();
  bar.stop();
}

async function* itemInputs() {
  for await (const item of readItems(dir)) {
    yield { id: qualify(item.id), domain: item.domain, title: item.title, attributes: item.attributes };
  }
}

async function* interactionInputs() {
  for await (const event of readInteractions(dir)) {
    yield { userId: qualify(event.userId), itemId: qualify(event.itemId), timestamp: String(event.timestamp) };
  }
}

try {
  await sendInBatches('items', await countLines(itemsFile(dir)), itemInputs(), Number(options.itemBatch),
    (items) => graphqlRequest(options.url, UPSERT, { items }, options.apiKey));
  if (!options.itemsOnly && (await hasInteractions(dir))) {
    await sendInBatches('interactions', (await countLines(interactionsFile(dir))) - 1, interactionInputs(),
      Number(options.interactionBatch),
      (interactions) => graphqlRequest(options.url, RECORD, { interactions }, options.apiKey));
  }
  console.log(`loaded ${dir} with namespace ${JSON.stringify(namespace)}`);
} catch (error) {
  // A server that is not there fails inside fetch ("fetch failed"): name the URL and why.
  const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
  const unreachable = error instanceof TypeError && cause !== undefined;
  console.error(unreachable
    ? `load-dataset failed: cannot reach ${options.url} (${cause.code ?? cause.message}); is the server running there? --url or PORT choose another`
    : `load-dataset failed: ${(error as Error).message} (${options.url})`);
  process.exit(1);
}
