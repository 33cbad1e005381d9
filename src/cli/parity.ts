/**
 * The Node side of the parity report (scripts/parity-report.sh): runs the server's own RecommendationModel on the
 * inputs `python -m training.llm2rec.parity prepare` wrote into a work directory and compares its outputs with the
 * PyTorch and onnxruntime (Python) outputs written beside them. Writes <work>/node.json.
 *
 *   node --import tsx src/cli/parity.ts --bundle bundles/quick --work .tmp/parity
 *
 * - tokenizer: the TypeScript ids of every title in tokens.json against the Python ids;
 * - encoder: model.encode on the same length-sorted batches as Python, against both Python outputs;
 * - adapter: model.adapt on the PyTorch item embeddings; sequence model: model.userVectors on the histories of
 *   PyTorch recommendation vectors (left-padded to max_history by the server code);
 * - int8 (if the bundle has it): the int8 encoder's cosine to the PyTorch fp32 embeddings and its difference to the
 *   int8 outputs of onnxruntime in Python.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Command, Option } from 'commander';
import type { ExecutionProvider } from '../inference/onnx-runtime.js';
import { RecommendationModel } from '../inference/recommendation-model.js';
import { isMain } from './is-main.js';

interface ParityCase {
  bundle: string;
  titles: string[];
  batches: number[][];
  histories: number[][];
  dimensions: { item_embedding: number; recommendation: number };
  int8: boolean;
  tokens: string;
}

export interface NodeMeasurements {
  onnxruntime_node: string;
  provider: ExecutionProvider;
  tokenizer: { titles: number; mismatches: number; examples: { title: string; python: number[]; node: number[] }[] };
  encoder_fp32: { titles: number; max_abs_diff_vs_pytorch: number; max_abs_diff_vs_onnxruntime_python: number };
  adapter: { rows: number; max_abs_diff_vs_pytorch: number; max_abs_diff_vs_onnxruntime_python: number };
  sequence_model: { histories: number; max_abs_diff_vs_pytorch: number; max_abs_diff_vs_onnxruntime_python: number };
  encoder_int8?: { titles: number; min_cosine_vs_pytorch: number; max_abs_diff_vs_onnxruntime_python: number };
  seconds: Record<string, number>;
}

async function readF32(file: string): Promise<Float32Array> {
  const buffer = await readFile(file);
  return new Float32Array(buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength));
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const difference = Math.abs(a[i] - b[i]);
    if (!(difference <= worst)) worst = Number.isNaN(difference) ? Infinity : difference;
  }
  return worst;
}

function minCosine(a: Float32Array, b: Float32Array, dim: number): number {
  let worst = 1;
  for (let row = 0; row < a.length / dim; row++) {
    let dot = 0, na = 0, nb = 0;
    for (let j = row * dim; j < (row + 1) * dim; j++) {
      dot += a[j] * b[j];
      na += a[j] * a[j];
      nb += b[j] * b[j];
    }
    worst = Math.min(worst, dot / Math.max(Math.sqrt(na * nb), 1e-12));
  }
  return worst;
}

const rowsOf = (data: Float32Array, dim: number, indices: readonly number[]) =>
  indices.map((i) => data.subarray(i * dim, (i + 1) * dim));

/** Encodes the case's titles batch by batch (the same batches as Python) into one row-major array. */
async function encodeBatches(model: RecommendationModel, parity: ParityCase, dim: number): Promise<Float32Array> {
  const out = new Float32Array(parity.titles.length * dim);
  for (const batch of parity.batches) {
    const rows = await model.encode(batch.map((i) => parity.titles[i]));
    batch.forEach((title, r) => out.set(rows[r], title * dim));
  }
  return out;
}

export async function runNodeParity(bundleDir: string, workDir: string, provider: ExecutionProvider = 'cpu'): Promise<NodeMeasurements> {
  const parity = JSON.parse(await readFile(path.join(workDir, 'case.json'), 'utf8')) as ParityCase;
  const { item_embedding: itemDim, recommendation: recDim } = parity.dimensions;
  const file = (name: string) => path.join(workDir, name);
  const seconds: Record<string, number> = {};
  const timed = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    const result = await run();
    seconds[name] = Math.round(performance.now() - started) / 1000;
    return result;
  };

  const model = await timed('load fp32', () => RecommendationModel.load(bundleDir, { provider, encoder: 'fp32' }));
  try {
    // tokenizer
    const reference = JSON.parse(await readFile(file('tokens.json'), 'utf8')) as { titles: string[]; ids: number[][] };
    const examples: NodeMeasurements['tokenizer']['examples'] = [];
    let mismatches = 0;
    const tokenizer = await model.tokenizer();
    await timed('tokenizer', async () => reference.titles.forEach((title, i) => {
      const ids = tokenizer.ids(title);
      if (ids.join(',') !== reference.ids[i].join(',')) {
        mismatches += 1;
        if (examples.length < 5) examples.push({ title, python: reference.ids[i], node: ids });
      }
    }));

    // encoder
    const torchItems = await readF32(file('pytorch.item_embedding.f32'));
    const ortItems = await readF32(file('onnxruntime.item_embedding.f32'));
    const nodeItems = await timed('encoder fp32', () => encodeBatches(model, parity, itemDim));

    // adapter, on the PyTorch item embeddings
    const all = parity.titles.map((_, i) => i);
    const nodeVectors = new Float32Array(all.length * recDim);
    await timed('adapter', async () => {
      for (let start = 0; start < all.length; start += 256) {
        const chunk = all.slice(start, start + 256);
        (await model.adapt(rowsOf(torchItems, itemDim, chunk))).forEach((row, r) => nodeVectors.set(row, (start + r) * recDim));
      }
    });

    // sequence model, on histories of PyTorch recommendation vectors
    const torchVectors = await readF32(file('pytorch.recommendation_vector.f32'));
    const nodeUsers = new Float32Array(parity.histories.length * recDim);
    await timed('sequence model', async () => {
      for (let start = 0; start < parity.histories.length; start += 256) {
        const histories = parity.histories.slice(start, start + 256).map((history) => rowsOf(torchVectors, recDim, history));
        (await model.userVectors(histories)).forEach((row, r) => nodeUsers.set(row, (start + r) * recDim));
      }
    });

    const measurements: NodeMeasurements = {
      onnxruntime_node: onnxruntimeNodeVersion(),
      provider,
      tokenizer: { titles: reference.titles.length, mismatches, examples },
      encoder_fp32: {
        titles: parity.titles.length,
        max_abs_diff_vs_pytorch: maxAbsDiff(nodeItems, torchItems),
        max_abs_diff_vs_onnxruntime_python: maxAbsDiff(nodeItems, ortItems),
      },
      adapter: {
        rows: all.length,
        max_abs_diff_vs_pytorch: maxAbsDiff(nodeVectors, torchVectors),
        max_abs_diff_vs_onnxruntime_python: maxAbsDiff(nodeVectors, await readF32(file('onnxruntime.recommendation_vector.f32'))),
      },
      sequence_model: {
        histories: parity.histories.length,
        max_abs_diff_vs_pytorch: maxAbsDiff(nodeUsers, await readF32(file('pytorch.user_vector.f32'))),
        max_abs_diff_vs_onnxruntime_python: maxAbsDiff(nodeUsers, await readF32(file('onnxruntime.user_vector.f32'))),
      },
      seconds,
    };

    if (parity.int8) {
      const int8 = await timed('load int8', () => RecommendationModel.load(bundleDir, { provider, encoder: 'int8' }));
      try {
        const int8Items = await timed('encoder int8', () => encodeBatches(int8, parity, itemDim));
        measurements.encoder_int8 = {
          titles: parity.titles.length,
          min_cosine_vs_pytorch: minCosine(int8Items, torchItems, itemDim),
          max_abs_diff_vs_onnxruntime_python: maxAbsDiff(int8Items, await readF32(file('onnxruntime.item_embedding_int8.f32'))),
        };
      } finally {
        await int8.release();
      }
    }
    await writeFile(file('node.json'), JSON.stringify(measurements, null, 2) + '\n');
    return measurements;
  } finally {
    await model.release();
  }
}

function onnxruntimeNodeVersion(): string {
  const require = createRequire(import.meta.url);
  return (require('onnxruntime-node/package.json') as { version: string }).version;
}

if (isMain(import.meta.url)) {
  const program = new Command('parity')
    .description('Node side of the parity report: run the server model on the inputs Python prepared')
    .requiredOption('--bundle <dir>', 'bundle directory')
    .requiredOption('--work <dir>', 'work directory written by `python -m training.llm2rec.parity prepare`')
    .addOption(new Option('--provider <provider>', 'onnxruntime execution provider').choices(['cpu', 'cuda']).default('cpu'))
    .parse();
  const options = program.opts<{ bundle: string; work: string; provider: ExecutionProvider }>();
  const measured = await runNodeParity(options.bundle, options.work, options.provider);
  const { tokenizer, ...rest } = measured;
  console.log(JSON.stringify({ tokenizer: { titles: tokenizer.titles, mismatches: tokenizer.mismatches }, ...rest }, null, 2));
}
