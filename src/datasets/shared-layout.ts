/**
 * Reads a dataset in the shared layout: a directory with `items.jsonl` (one item per line: id, title, domain and
 * optional categories, brand, description, ...) and, optionally, `interactions.csv` (user_id,item_id,timestamp; the
 * order of a user's rows is that user's sequence).
 */
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { parse } from 'csv-parse';
import { z } from 'zod';

const ItemLine = z.object({
  id: z.union([z.string(), z.number()]).transform(String),
  title: z.string(),
  domain: z.string().min(1),
}).passthrough();

export interface DatasetItem {
  id: string;
  title: string;
  domain: string;
  /** Every other field of the line (categories, brand, description, ...). */
  attributes: Record<string, unknown>;
}

export interface DatasetInteraction {
  userId: string;
  itemId: string;
  timestamp: bigint;
}

export class DatasetFormatError extends Error {
  constructor(file: string, line: number, reason: string) {
    super(`${file}:${line}: ${reason}`);
    this.name = 'DatasetFormatError';
  }
}

export function itemsFile(datasetDir: string): string {
  return path.join(datasetDir, 'items.jsonl');
}

export function interactionsFile(datasetDir: string): string {
  return path.join(datasetDir, 'interactions.csv');
}

export async function hasInteractions(datasetDir: string): Promise<boolean> {
  return access(interactionsFile(datasetDir)).then(() => true, () => false);
}

/** The items of a dataset, in file order. */
export async function* readItems(datasetDir: string): AsyncGenerator<DatasetItem> {
  const file = itemsFile(datasetDir);
  const lines = readline.createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let lineNumber = 0;
  for await (const raw of lines) {
    lineNumber++;
    const line = lineNumber === 1 ? raw.replace(/^\uFEFF/, '') : raw; // a byte-order mark is not data
    if (line.trim() === '') continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (error) {
      throw new DatasetFormatError(file, lineNumber, `not JSON (${(error as Error).message})`);
    }
    const parsed = ItemLine.safeParse(json);
    if (!parsed.success) throw new DatasetFormatError(file, lineNumber, z.prettifyError(parsed.error));
    const { id, title, domain, ...attributes } = parsed.data;
    yield { id, title, domain, attributes };
  }
}

/** The interactions of a dataset, in file order. */
export async function* readInteractions(datasetDir: string): AsyncGenerator<DatasetInteraction> {
  const file = interactionsFile(datasetDir);
  const parser = createReadStream(file).pipe(parse({ bom: true, columns: true, skip_empty_lines: true, trim: true }));
  let lineNumber = 1;
  for await (const row of parser as AsyncIterable<Record<string, string>>) {
    lineNumber++;
    const { user_id: userId, item_id: itemId, timestamp } = row;
    if (!userId || !itemId || timestamp === undefined || !/^-?\d+$/.test(timestamp)) {
      throw new DatasetFormatError(file, lineNumber, 'expected user_id,item_id,timestamp with an integer timestamp');
    }
    yield { userId, itemId, timestamp: BigInt(timestamp) };
  }
}
