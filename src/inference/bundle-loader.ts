/**
 * Opening a model bundle to serve it, each part checked as it opens (docs/bundle-format.md). There is no second
 * runtime for validation: `npm run validate` opens a bundle this way, prints the checks and closes it again. In order:
 *
 *   manifest      manifest.json parses and matches format 1
 *   files         every file the manifest lists is there with its size and sha256, and the graphs and tokenizer are listed
 *   tokenizer     tokenizer.json loads (in the encoder's thread, which tokenizes for it)
 *   graph <name>  each graph loads where it will serve (the encoder and the sequence model in their worker threads,
 *                 the adapter on the calling thread), with the contract's input and output names, element types and
 *                 shapes (batch, token and length axes dynamic; feature axes = the manifest's dimensions)
 *   execution provider  cpu, or cuda; when cuda is asked for and this onnxruntime-node cannot load its CUDA provider,
 *                 the graphs run on the CPU and this check says why
 *   dynamic axes  each graph runs on batch and length sizes other than the export examples and gives the right shapes
 *   samples       the manifest's sample titles tokenize to the recorded ids and the encoder reproduces the recorded
 *                 embedding heads; adapter and sequence model turn them into finite vectors
 *
 * The first failing check throws InvalidBundleError with a message that names the file and what is wrong, and
 * whatever was opened is closed.
 */
import path from 'node:path';
import { GRAPHS, resolveShape, type GraphName, type TensorSpec } from './bundle-format.js';
import { rowViews } from './encoder.js';
import { EncoderThread } from './encoder-thread.js';
import { checkFiles, InvalidBundleError, parseManifest, type Manifest } from './manifest.js';
import { checkGraphNames, createSession, ort, sameNames, type ExecutionProvider, type GraphSignature } from './onnx-runtime.js';
import { SequenceModelThread } from './sequence-model-thread.js';

export type EncoderVariant = 'fp32' | 'int8';

/** One passed check, as `validate` prints it. */
export interface BundleCheck {
  name: string;
  detail: string;
}

export interface OpenOptions {
  provider: ExecutionProvider;
  /** The encoder graph that serves: the fp32 one or the bundle's int8 variant. */
  encoder: EncoderVariant;
  /** Nice value of the encoder's thread (undefined: the caller's). */
  nice?: number;
  /** Called after each passed check. */
  onCheck?: (check: BundleCheck) => void;
  /**
   * A running encoder whose graph and tokenizer have this bundle's sha256s and settings (a version that shares the
   * encoder, issue #16), if there is one: its thread serves this bundle too, and the encoder checks run through it.
   */
  sharedEncoder?: (manifest: Manifest) => { thread: EncoderThread; provider: ExecutionProvider } | undefined;
}

/** A bundle's parts, open and checked. */
export interface OpenedBundle {
  manifest: Manifest;
  /** The provider the graphs run on: 'cpu' when 'cuda' was asked for but onnxruntime-node cannot load it. */
  provider: ExecutionProvider;
  encoder: EncoderThread;
  adapter: ort.InferenceSession;
  sequenceModel: SequenceModelThread;
}

/**
 * Largest absolute difference allowed between this runtime's fp32 encoder and the embedding heads PyTorch recorded in
 * the manifest: the fidelity bound of the parity report (reports/parity.json measures it on thousands of titles).
 * onnxruntime-node reproduces the heads of the tiny and quick bundles within 2e-6.
 */
export const SAMPLE_TOLERANCE = 1e-4;
/**
 * The int8 encoder is checked against the heads the int8 graph gave in onnxruntime (Python) when it was quantized
 * (variants.encoder_int8.item_embedding_heads): same graph, another runtime build, so the same tolerance as fp32
 * (onnxruntime-node 1.30 reproduces onnxruntime 1.32's int8 heads exactly on the tiny bundle).
 * Its distance to fp32 (cosine >= 0.99 on every title, top-10 overlap >= 0.9) is measured over whole datasets by
 * `training.llm2rec.quantize`, which refuses to add a variant that misses it; 8 recorded values cannot show a cosine.
 */
export const INT8_SAMPLE_TOLERANCE = 1e-4;

/** Titles no export example had: batches of 1 and 3 exercise the dynamic axes. */
const PROBE_TITLES = ['Tetris', 'The Legend of Zelda: Breath of the Wild - Nintendo Switch', 'Halo 3'];

/** Opens a bundle's parts for serving, checking each (see the top of this file). */
export async function openBundle(bundleDir: string, options: OpenOptions): Promise<OpenedBundle> {
  const checks: CheckLog = new CheckLog(bundleDir, options.onCheck);
  const manifest = await parseManifest(bundleDir);
  checks.pass('manifest', `format 1, model ${manifest.model_version}, preset ${manifest.preset}, `
    + `${manifest.backbone.name} (${manifest.backbone.layers} layers, ${manifest.backbone.attention})`);
  await checkFiles(bundleDir, manifest);
  checks.pass('files', `${Object.keys(manifest.files).length} files, sizes and sha256 as listed`);
  if (options.encoder === 'int8' && !manifest.graphs.encoder_int8) {
    checks.fail('the int8 encoder was asked for (LLM2REC_ENCODER_VARIANT=int8) but the bundle has none: '
      + 'add it with `.venv/bin/python -m training.llm2rec.quantize --bundle <dir>` or serve fp32');
  }
  if (manifest.graphs.encoder_int8 && !manifest.variants?.encoder_int8) {
    checks.fail('graphs.encoder_int8 is listed but variants.encoder_int8 (its measurements and sample heads) is missing');
  }

  const closers: (() => Promise<unknown>)[] = [];
  try {
    const key = options.encoder === 'int8' ? 'encoder_int8' : 'encoder';
    const shared = options.sharedEncoder?.(manifest);
    const encoder = shared ? shared.thread.retain() : startEncoder(bundleDir, manifest, key, options);
    closers.push(() => encoder.close());
    const loaded = await checkEncoderLoads(checks, manifest, key, encoder, true);
    const provider = shared?.provider ?? loaded.provider;

    const adapterFile = manifest.graphs.adapter.file;
    const adapter = await createSession(path.join(bundleDir, adapterFile), provider, 'small')
      .catch((error: Error) => checks.fail(`${adapterFile} does not load in onnxruntime (${error.message})`));
    closers.push(() => adapter.release());
    checks.graph('adapter', manifest, adapter);

    const sequenceFile = manifest.graphs.sequence_model.file;
    const sequenceModel = SequenceModelThread.start({ file: path.join(bundleDir, sequenceFile), provider },
      { length: manifest.sequence_model.max_history, dim: manifest.dimensions.recommendation });
    closers.push(() => sequenceModel.close());
    const described = await sequenceModel.describe();
    if (!described.ok) checks.fail(`${sequenceFile} does not load in onnxruntime (${described.message})`);
    checks.graph('sequence_model', manifest, described.signature);

    checks.pass('execution provider', loaded.cudaUnavailable
      ? `cpu: cuda was asked for but onnxruntime-node cannot use it here (${loaded.cudaUnavailable})`
      : provider);
    await checkDynamicAxes(checks, manifest, key, encoder, adapter, sequenceModel);
    await checkSamples(checks, manifest, key, encoder, adapter, sequenceModel);
    return { manifest, provider, encoder, adapter, sequenceModel };
  } catch (error) {
    await Promise.allSettled(closers.map((close) => close()));
    if (error instanceof InvalidBundleError) throw error;
    throw new InvalidBundleError(bundleDir, `the bundle's graphs fail on the checks' inputs (${(error as Error).message})`);
  }
}

/**
 * The checks of an encoder variant the bundle has besides the one served (`validate` checks every variant): the
 * variant is opened in a thread of its own, checked as openBundle checks the served one, and closed.
 */
export async function checkOtherEncoder(bundleDir: string, manifest: Manifest, provider: ExecutionProvider,
  variant: EncoderVariant, onCheck?: (check: BundleCheck) => void): Promise<void> {
  const checks: CheckLog = new CheckLog(bundleDir, onCheck);
  const key = variant === 'int8' ? 'encoder_int8' : 'encoder';
  if (!manifest.graphs[key]) checks.fail(`the bundle has no ${variant} encoder`);
  const encoder = startEncoder(bundleDir, manifest, key, { provider });
  try {
    await checkEncoderLoads(checks, manifest, key, encoder, false);
    await checkDynamicAxes(checks, manifest, key, encoder);
    await checkSamples(checks, manifest, key, encoder);
  } finally {
    await encoder.close();
  }
}

type EncoderKey = 'encoder' | 'encoder_int8';

function startEncoder(bundleDir: string, manifest: Manifest, key: EncoderKey, options: { provider: ExecutionProvider; nice?: number }): EncoderThread {
  const { tokenizer } = manifest;
  return EncoderThread.start({
    encoderFile: path.resolve(bundleDir, manifest.graphs[key]!.file),
    tokenizerFile: path.resolve(bundleDir, tokenizer.file),
    tokenizer: { maxLength: tokenizer.max_length, padTokenId: tokenizer.pad_token_id, addSpecialTokens: tokenizer.add_special_tokens },
    provider: options.provider,
    nice: options.nice,
  });
}

/** The tokenizer and encoder graph loaded in the thread, with the contract's signature. */
async function checkEncoderLoads(checks: CheckLog, manifest: Manifest, key: EncoderKey, encoder: EncoderThread, reportTokenizer: boolean) {
  const file = manifest.graphs[key]!.file;
  const loaded = await encoder.describe();
  if (!loaded.ok) {
    checks.fail(loaded.failed === 'tokenizer'
      ? `${manifest.tokenizer.file} does not load as a tokenizer (${loaded.message})`
      : `${file} does not load in onnxruntime (${loaded.message})`);
  }
  if (reportTokenizer) {
    checks.pass('tokenizer', `${manifest.tokenizer.file}: max_length ${manifest.tokenizer.max_length}, pad ${manifest.tokenizer.pad_token_id}`);
  }
  checks.graph('encoder', manifest, loaded.signature, key);
  return loaded;
}

/** Shapes the export examples did not have: encoder batches of 1 and 3 titles, adapter batches 1 and 3, histories of odd lengths. */
async function checkDynamicAxes(checks: CheckLog, manifest: Manifest, key: EncoderKey, encoder: EncoderThread,
  adapter?: ort.InferenceSession, sequenceModel?: SequenceModelThread): Promise<void> {
  const itemDim = manifest.dimensions.item_embedding;
  const recDim = manifest.dimensions.recommendation;
  const maxHistory = manifest.sequence_model.max_history;
  const tried: string[] = [];
  for (const titles of [PROBE_TITLES.slice(0, 1), PROBE_TITLES]) {
    checks.shape(manifest.graphs[key]!.file, await encoder.encode(titles), titles.length, itemDim);
  }
  tried.push(`${key === 'encoder' ? '' : 'int8 '}encoder batches of 1 and 3 titles`);
  if (adapter) {
    for (const batch of [1, 3]) {
      checks.shape(manifest.graphs.adapter.file, await adaptRows(adapter, Array.from({ length: batch }, () => new Float32Array(itemDim).fill(0.1))), batch, recDim);
    }
    tried.push('adapter batches 1 and 3');
  }
  if (sequenceModel) {
    for (const [rows, length] of [[1, 1], [2, maxHistory], [3, maxHistory + 3]]) {
      const batch = { rows, length, dim: recDim, vectors: new Float32Array(rows * length * recDim).fill(0.1), mask: new BigInt64Array(rows * length).fill(1n) };
      checks.shape(manifest.graphs.sequence_model.file, await sequenceModel.runBatch(batch), rows, recDim);
    }
    tried.push(`sequence model [1, 1], [2, ${maxHistory}], [3, ${maxHistory + 3}]`);
  }
  checks.pass(adapter ? 'dynamic axes' : `dynamic axes ${key}`, tried.join(', '));
}

/**
 * The manifest's samples through the serving parts: token ids as in training, embedding heads as training (or, for
 * int8, quantization) recorded them, and finite recommendation and user vectors.
 */
async function checkSamples(checks: CheckLog, manifest: Manifest, key: EncoderKey, encoder: EncoderThread,
  adapter?: ort.InferenceSession, sequenceModel?: SequenceModelThread): Promise<void> {
  const int8 = key === 'encoder_int8';
  const name = int8 ? 'samples int8' : 'samples';
  const { samples } = manifest;
  if (samples.length === 0) {
    checks.pass(name, 'the manifest carries no samples: nothing to compare');
    return;
  }
  const titles = samples.map((sample) => sample.title);
  const ids = await encoder.tokenize(titles);
  samples.forEach((sample, i) => {
    if (ids[i].join(',') !== sample.input_ids.join(',')) {
      checks.fail(`tokenizer gives [${ids[i]}] for ${JSON.stringify(sample.title)}, training gave [${sample.input_ids}]`);
    }
  });
  const heads = int8 ? manifest.variants!.encoder_int8!.item_embedding_heads : samples.map((sample) => sample.item_embedding_head);
  if (heads.length !== samples.length) checks.fail(`variants.encoder_int8.item_embedding_heads has ${heads.length} rows for ${samples.length} samples`);
  const tolerance = int8 ? INT8_SAMPLE_TOLERANCE : SAMPLE_TOLERANCE;
  const embeddings = await encoder.encode(titles);
  let worst = 0;
  samples.forEach((sample, i) => heads[i].forEach((expected, j) => {
    const actual = embeddings[i][j];
    const difference = Math.abs(actual - expected);
    if (!(difference <= tolerance)) {
      checks.fail(`${int8 ? 'int8 encoder' : 'encoder'} gives ${actual} at [${i}, ${j}] for ${JSON.stringify(sample.title)}, `
        + `${int8 ? 'quantization gave' : 'training gave'} ${expected}`);
    }
    worst = Math.max(worst, difference);
  }));
  if (adapter && sequenceModel) {
    const items = await adaptRows(adapter, embeddings);
    const users = await sequenceModel.run(items.map((_, end) => items.slice(0, end + 1)));
    if (![...items, ...users].every((vector) => vector.every(Number.isFinite))) {
      checks.fail(`${manifest.graphs.adapter.file} or ${manifest.graphs.sequence_model.file} gives non-finite values on the samples`);
    }
  }
  checks.pass(name, `${samples.length} titles tokenize as in training; ${int8 ? 'int8 ' : ''}embedding heads within `
    + `${worst.toExponential(1)} (tolerance ${tolerance})`);
}

/** Recommendation vectors of item embeddings through the adapter session (one call, one row per embedding). */
export async function adaptRows(adapter: ort.InferenceSession, embeddings: readonly Float32Array[]): Promise<Float32Array[]> {
  if (embeddings.length === 0) return [];
  const dim = embeddings[0].length;
  const input = new Float32Array(embeddings.length * dim);
  embeddings.forEach((row, i) => input.set(row, i * dim));
  return adaptMatrix(adapter, input, embeddings.length);
}

/** Recommendation vectors of a [rows, item_embedding] matrix of item embeddings, as views of the adapter's output. */
export async function adaptMatrix(adapter: ort.InferenceSession, embeddings: Float32Array, rows: number): Promise<Float32Array[]> {
  const output = (await adapter.run({ item_embedding: new ort.Tensor('float32', embeddings, [rows, embeddings.length / rows]) })).recommendation_vector;
  return rowViews(output.data as Float32Array, output.dims[0]);
}

/** Reports each passed check, and fails one with the bundle's InvalidBundleError. */
class CheckLog {
  constructor(private readonly bundleDir: string, private readonly onCheck?: (check: BundleCheck) => void) {}

  pass(name: string, detail: string): void {
    this.onCheck?.({ name, detail });
  }

  fail(reason: string): never {
    throw new InvalidBundleError(this.bundleDir, reason);
  }

  /** A graph's names, element types and shapes against the manifest and the format's contract. */
  graph(name: GraphName, manifest: Manifest, signature: GraphSignature, key: string = name): void {
    const listed = key === 'encoder_int8' ? manifest.graphs.encoder_int8! : manifest.graphs[name];
    const contract = contractOf(name, manifest);
    const wrongNames = checkGraphNames(signature, listed);
    if (wrongNames) this.fail(`${listed.file}: ${wrongNames}`);
    // The graph and the manifest agree; both must also use the contract's names, which the server feeds and reads.
    const inputs = Object.keys(contract.inputs);
    const outputs = Object.keys(contract.outputs);
    if (!sameNames(listed.inputs, inputs) || !sameNames(listed.outputs, outputs)) {
      this.fail(`${listed.file}: inputs [${listed.inputs}] and outputs [${listed.outputs}], format 1 wants [${inputs}] and [${outputs}]`);
    }
    const wrongSignature = checkSignature(signature, contract);
    if (wrongSignature) this.fail(`${listed.file}: ${wrongSignature}`);
    this.pass(`graph ${key}`, `${listed.file}: ${describeSignature(signature)}`);
  }

  /** Rows of a graph's output: `rows` of `columns` finite values. */
  shape(file: string, output: readonly Float32Array[], rows: number, columns: number): void {
    if (output.length !== rows || output.some((row) => row.length !== columns)) {
      this.fail(`${file} gives ${output.length} rows of ${output[0]?.length ?? 0} for a batch of ${rows}, expected [${rows}, ${columns}]`);
    }
    if (!output.every((row) => row.every(Number.isFinite))) this.fail(`${file} gives non-finite values`);
  }
}

/** A number is a fixed size (the manifest's dimensions); a name is an axis that must be dynamic. */
type Dim = string | number;
interface ResolvedTensor { type: TensorSpec['type']; shape: Dim[] }
interface GraphContract { inputs: Record<string, ResolvedTensor>; outputs: Record<string, ResolvedTensor> }

/** A graph's contract from the format (bundle-format.json), with the manifest's dimensions filled in. */
function contractOf(graph: GraphName, manifest: Manifest): GraphContract {
  const resolve = (tensors: Record<string, TensorSpec>) => Object.fromEntries(Object.entries(tensors)
    .map(([name, spec]) => [name, { type: spec.type, shape: resolveShape(spec.shape, manifest.dimensions) }]));
  return { inputs: resolve(GRAPHS[graph].inputs), outputs: resolve(GRAPHS[graph].outputs) };
}

const showShape = (shape: readonly Dim[]) => `[${shape.join(', ')}]`;

/** A graph's metadata against the contract; returns what is wrong, or null. */
function checkSignature(graph: GraphSignature, contract: GraphContract): string | null {
  for (const [kind, metadata, expected] of [
    ['input', graph.inputMetadata, contract.inputs],
    ['output', graph.outputMetadata, contract.outputs],
  ] as const) {
    for (const value of metadata) {
      const spec = expected[value.name];
      if (!spec || !value.isTensor) continue; // names are checked before
      if (value.type !== spec.type) return `${kind} ${value.name} is ${value.type}, format 1 wants ${spec.type}`;
      if (value.shape.length !== spec.shape.length) {
        return `${kind} ${value.name} has shape ${showShape(value.shape)}, format 1 wants ${spec.shape.length} axes ${showShape(spec.shape)}`;
      }
      for (let axis = 0; axis < spec.shape.length; axis++) {
        const actual = value.shape[axis];
        const want = spec.shape[axis];
        if (typeof want === 'string' && typeof actual === 'number' && actual >= 0) {
          return `${kind} ${value.name} has shape ${showShape(value.shape)}: axis ${axis} (${want}) is fixed at ${actual}, it must be dynamic`;
        }
        if (typeof want === 'number' && typeof actual === 'number' && actual !== want) {
          return `${kind} ${value.name} has shape ${showShape(value.shape)}, the manifest's dimensions make it ${showShape(spec.shape)}`;
        }
      }
    }
  }
  return null;
}

function describeSignature(graph: GraphSignature): string {
  const show = (values: readonly ort.InferenceSession.ValueMetadata[]) =>
    values.map((value) => (value.isTensor ? `${value.name} ${value.type} ${showShape(value.shape)}` : value.name)).join(', ');
  return `${show(graph.inputMetadata)} -> ${show(graph.outputMetadata)}`;
}
