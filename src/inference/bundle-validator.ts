/**
 * Everything a model bundle must pass before anything serves from it (docs/bundle-format.md), in order:
 *
 *   manifest      manifest.json parses and matches format 1
 *   files         every file the manifest lists is there with its size and sha256, and the graphs and tokenizer are listed
 *   tokenizer     tokenizer.json loads
 *   <graph>       each graph loads in onnxruntime, with the contract's input and output names, element types and
 *                 shapes (batch, token and length axes dynamic; feature axes = the manifest's dimensions)
 *   execution provider  cpu, or cuda; when cuda is asked for and this onnxruntime-node cannot load its CUDA provider,
 *                 the sessions run on the CPU and this check says why
 *   dynamic axes  each graph runs on batch and length sizes other than the export examples and gives the right shapes
 *   samples       the manifest's sample titles tokenize to the recorded ids and the encoder reproduces the recorded
 *                 embedding heads; adapter and sequence model turn them into finite vectors
 *
 * `npm run validate -- <bundle>` prints the checks; RecommendationModel.load runs the same ones and keeps the sessions.
 * The first failing check throws InvalidBundleError with a message that names the file and what is wrong.
 */
import path from 'node:path';
import { GRAPHS, resolveShape, type GraphName, type TensorSpec } from './bundle-format.js';
import { checkFiles, InvalidBundleError, parseManifest, type Manifest } from './manifest.js';
import { runEncoder, splitRows } from './encoder.js';
import { checkGraphNames, createSession, ort, type ExecutionProvider } from './onnx-runtime.js';
import { TitleTokenizer } from './tokenizer.js';

export type EncoderVariant = 'fp32' | 'int8';

/** One passed check, as `validate` prints it. */
export interface BundleCheck {
  name: string;
  detail: string;
}

export interface ValidateOptions {
  provider?: ExecutionProvider;
  /** The encoder the caller will serve with (default fp32). */
  encoder?: EncoderVariant;
  /** Also check the other encoder variants the bundle has (the `validate` command does; the server need not). */
  allVariants?: boolean;
  /** Called after each passed check. */
  onCheck?: (check: BundleCheck) => void;
  /**
   * The encoder's embeddings of the manifest's sample titles ([samples, item_embedding], row-major), computed by a
   * running encoder whose graph has the sha256 the manifest lists (checked before, when that encoder was loaded).
   * The encoder graph is then not loaded again: the samples are compared with these (a switch between versions that
   * share the encoder, issue #16). Applies to the `encoder` variant served; not with allVariants.
   */
  sampleEmbeddings?: Float32Array;
}

/** A bundle that passed every check, with its sessions open. */
export interface ValidatedBundle {
  manifest: Manifest;
  /** The provider the sessions run on: 'cpu' when 'cuda' was asked for but onnxruntime-node cannot load it. */
  provider: ExecutionProvider;
  tokenizer: TitleTokenizer;
  /** Absent when the caller gave the sample embeddings (ValidateOptions.sampleEmbeddings). */
  encoder?: ort.InferenceSession;
  adapter: ort.InferenceSession;
  sequenceModel: ort.InferenceSession;
  checks: BundleCheck[];
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

/** A number is a fixed size (the manifest's dimensions); a name is an axis that must be dynamic. */
type Dim = string | number;
interface ResolvedTensor { type: TensorSpec['type']; shape: Dim[] }
interface GraphContract { inputs: Record<string, ResolvedTensor>; outputs: Record<string, ResolvedTensor> }

/** The format's graph contracts (bundle-format.json), with the manifest's dimensions filled in. */
function contracts(manifest: Manifest): Record<GraphName, GraphContract> {
  const resolve = (tensors: Record<string, TensorSpec>) => Object.fromEntries(Object.entries(tensors)
    .map(([name, spec]) => [name, { type: spec.type, shape: resolveShape(spec.shape, manifest.dimensions) }]));
  return Object.fromEntries(Object.entries(GRAPHS).map(([graph, spec]) =>
    [graph, { inputs: resolve(spec.inputs), outputs: resolve(spec.outputs) }])) as Record<GraphName, GraphContract>;
}

const showShape = (shape: readonly Dim[]) => `[${shape.join(', ')}]`;

/** Checks a session's metadata against the contract; returns what is wrong, or null. */
function checkSignature(session: ort.InferenceSession, contract: GraphContract): string | null {
  for (const [kind, metadata, expected] of [
    ['input', session.inputMetadata, contract.inputs],
    ['output', session.outputMetadata, contract.outputs],
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

function describeSignature(session: ort.InferenceSession): string {
  const show = (values: readonly ort.InferenceSession.ValueMetadata[]) =>
    values.map((value) => (value.isTensor ? `${value.name} ${value.type} ${showShape(value.shape)}` : value.name)).join(', ');
  return `${show(session.inputMetadata)} -> ${show(session.outputMetadata)}`;
}

export async function validateBundle(bundleDir: string, options: ValidateOptions = {}): Promise<ValidatedBundle> {
  const provider = options.provider ?? 'cpu';
  const variant = options.encoder ?? 'fp32';
  const checks: BundleCheck[] = [];
  const passed = (name: string, detail: string) => {
    const check = { name, detail };
    checks.push(check);
    options.onCheck?.(check);
  };
  const opened: ort.InferenceSession[] = [];
  const fail = async (reason: string): Promise<never> => {
    await Promise.allSettled(opened.map((session) => session.release()));
    throw new InvalidBundleError(bundleDir, reason);
  };

  // manifest and files (parseManifest and checkFiles throw InvalidBundleError themselves)
  const manifest = await parseManifest(bundleDir);
  passed('manifest', `format 1, model ${manifest.model_version}, preset ${manifest.preset}, `
    + `${manifest.backbone.name} (${manifest.backbone.layers} layers, ${manifest.backbone.attention})`);
  await checkFiles(bundleDir, manifest);
  const int8Graph = manifest.graphs.encoder_int8;
  const int8Variant = manifest.variants?.encoder_int8;
  passed('files', `${Object.keys(manifest.files).length} files, sizes and sha256 as listed`);
  if (variant === 'int8' && !int8Graph) {
    return fail('the int8 encoder was asked for (LLM2REC_ENCODER_VARIANT=int8) but the bundle has none: '
      + 'add it with `.venv/bin/python -m training.llm2rec.quantize --bundle <dir>` or serve fp32');
  }
  if (int8Graph && !int8Variant) return fail('graphs.encoder_int8 is listed but variants.encoder_int8 (its measurements and sample heads) is missing');

  let tokenizer: TitleTokenizer;
  try {
    tokenizer = await TitleTokenizer.fromFile(path.join(bundleDir, manifest.tokenizer.file), {
      maxLength: manifest.tokenizer.max_length,
      padTokenId: manifest.tokenizer.pad_token_id,
      addSpecialTokens: manifest.tokenizer.add_special_tokens,
    });
  } catch (error) {
    return fail(`${manifest.tokenizer.file} does not load as a tokenizer (${(error as Error).message})`);
  }
  passed('tokenizer', `${manifest.tokenizer.file}: max_length ${manifest.tokenizer.max_length}, pad ${manifest.tokenizer.pad_token_id}`);

  // graphs: names, types and shapes
  const contract = contracts(manifest);
  const wanted: { key: 'encoder' | 'encoder_int8' | 'adapter' | 'sequence_model'; contract: GraphContract }[] = [];
  const given = options.sampleEmbeddings && !options.allVariants ? options.sampleEmbeddings : undefined;
  if (!given && (variant === 'fp32' || options.allVariants)) wanted.push({ key: 'encoder', contract: contract.encoder });
  if (!given && int8Graph && (variant === 'int8' || options.allVariants)) wanted.push({ key: 'encoder_int8', contract: contract.encoder });
  wanted.push({ key: 'adapter', contract: contract.adapter }, { key: 'sequence_model', contract: contract.sequence_model });
  const sessions = new Map<string, ort.InferenceSession>();
  const files = new Map<string, string>();
  let effectiveProvider: ExecutionProvider = provider;
  let cudaUnavailable: string | undefined;
  for (const { key, contract: graphContract } of wanted) {
    const graph = key === 'encoder_int8' ? int8Graph! : manifest.graphs[key];
    const expectedInputs = Object.keys(graphContract.inputs);
    const expectedOutputs = Object.keys(graphContract.outputs);
    if (!manifest.files[graph.file]) return fail(`manifest.files does not list ${graph.file}`);
    const size = key === 'adapter' || key === 'sequence_model' ? 'small' : 'large';
    let session: ort.InferenceSession;
    try {
      session = await createSession(path.join(bundleDir, graph.file), effectiveProvider, size);
    } catch (error) {
      const message = (error as Error).message;
      if (effectiveProvider !== 'cuda' || !/cuda|provider|shared library/i.test(message)) {
        return fail(`${graph.file} does not load in onnxruntime (${message})`);
      }
      // Not the bundle's fault: this onnxruntime-node has no usable CUDA execution provider. Serve on the CPU.
      cudaUnavailable = message;
      effectiveProvider = 'cpu';
      try {
        session = await createSession(path.join(bundleDir, graph.file), effectiveProvider, size);
      } catch (cpuError) {
        return fail(`${graph.file} does not load in onnxruntime (${(cpuError as Error).message})`);
      }
    }
    opened.push(session);
    const mismatch = checkGraphNames(session, graph);
    if (mismatch) return fail(`${graph.file}: ${mismatch}`);
    // The graph and the manifest agree; both must also use the contract's names, which the server feeds and reads.
    const sameNames = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((name) => b.includes(name));
    if (!sameNames(graph.inputs, expectedInputs) || !sameNames(graph.outputs, expectedOutputs)) {
      return fail(`${graph.file}: inputs [${graph.inputs}] and outputs [${graph.outputs}], format 1 wants `
        + `[${expectedInputs}] and [${expectedOutputs}]`);
    }
    const wrongSignature = checkSignature(session, graphContract);
    if (wrongSignature) return fail(`${graph.file}: ${wrongSignature}`);
    sessions.set(key, session);
    files.set(key, graph.file);
    passed(`graph ${key}`, `${graph.file}: ${describeSignature(session)}`);
  }

  passed('execution provider', cudaUnavailable
    ? `cpu: cuda was asked for but onnxruntime-node cannot use it here (${cudaUnavailable})`
    : effectiveProvider);

  try {
    const encoders = [...sessions.entries()].filter(([key]) => key.startsWith('encoder')) as [('encoder' | 'encoder_int8'), ort.InferenceSession][];
    const adapter = sessions.get('adapter')!;
    const sequenceModel = sessions.get('sequence_model')!;
    const itemDim = manifest.dimensions.item_embedding;
    const recDim = manifest.dimensions.recommendation;
    const maxHistory = manifest.sequence_model.max_history;

    // dynamic axes: shapes the export examples did not have
    try {
      const probeTitles = ['Tetris', 'The Legend of Zelda: Breath of the Wild - Nintendo Switch', 'Halo 3'];
      for (const [key, encoder] of encoders) {
        for (const titles of [probeTitles.slice(0, 1), probeTitles]) {
          const rows = await runEncoder(encoder, tokenizer, titles);
          expectShape(files.get(key)!, rows, titles.length, itemDim);
        }
      }
      for (const batch of [1, 3]) {
        const out = await adapter.run({ item_embedding: new ort.Tensor('float32', new Float32Array(batch * itemDim).fill(0.1), [batch, itemDim]) });
        expectShape(manifest.graphs.adapter.file, out.recommendation_vector, batch, recDim);
      }
      for (const [batch, length] of [[1, 1], [2, maxHistory], [3, maxHistory + 3]]) {
        const mask = new BigInt64Array(batch * length).fill(1n);
        const out = await sequenceModel.run({
          history: new ort.Tensor('float32', new Float32Array(batch * length * recDim).fill(0.1), [batch, length, recDim]),
          history_mask: new ort.Tensor('int64', mask, [batch, length]),
        });
        expectShape(manifest.graphs.sequence_model.file, out.user_vector, batch, recDim);
      }
    } catch (error) {
      return fail((error as Error).message);
    }
    passed('dynamic axes', `encoder batches of 1 and 3 titles, adapter batches 1 and 3, sequence model [1, 1], [2, ${maxHistory}], [3, ${maxHistory + 3}]`);

    // samples: tokenizer ids, encoder heads, finite vectors downstream
    const { samples } = manifest;
    if (samples.length === 0) {
      passed('samples', 'the manifest carries no samples: nothing to compare');
    } else {
      for (const sample of samples) {
        const ids = tokenizer.ids(sample.title);
        if (ids.join(',') !== sample.input_ids.join(',')) {
          return fail(`tokenizer gives [${ids}] for ${JSON.stringify(sample.title)}, training gave [${sample.input_ids}]`);
        }
      }
      const titles = samples.map((sample) => sample.title);
      const runs: [('encoder' | 'encoder_int8'), () => Promise<Float32Array[]>][] = encoders.map(([key, encoder]) =>
        [key, async () => splitRows(await runEncoder(encoder, tokenizer, titles), titles.length)]);
      if (given) {
        if (given.length !== titles.length * itemDim) return fail(`the given sample embeddings have ${given.length} values, not ${titles.length} x ${itemDim}`);
        runs.push([variant === 'int8' ? 'encoder_int8' : 'encoder', async () => splitRows(given, titles.length)]);
      }
      for (const [key, embed] of runs) {
        const int8 = key === 'encoder_int8';
        const heads = int8 ? int8Variant!.item_embedding_heads : samples.map((sample) => sample.item_embedding_head);
        if (heads.length !== samples.length) return fail(`variants.encoder_int8.item_embedding_heads has ${heads.length} rows for ${samples.length} samples`);
        const tolerance = int8 ? INT8_SAMPLE_TOLERANCE : SAMPLE_TOLERANCE;
        const embeddings = await embed();
        let worst = 0;
        for (let i = 0; i < samples.length; i++) {
          for (let j = 0; j < heads[i].length; j++) {
            const actual = embeddings[i][j];
            const expected = heads[i][j];
            const difference = Math.abs(actual - expected);
            if (!(difference <= tolerance)) {
              const who = int8 ? 'int8 encoder' : 'encoder';
              const reference = int8 ? 'quantization gave' : 'training gave';
              return fail(`${who} gives ${actual} at [${i}, ${j}] for ${JSON.stringify(samples[i].title)}, ${reference} ${expected}`);
            }
            worst = Math.max(worst, difference);
          }
        }
        if (key === 'encoder' || variant === 'int8') {
          const input = new Float32Array(samples.length * itemDim);
          embeddings.forEach((row, i) => input.set(row, i * itemDim));
          const vectors = (await adapter.run({ item_embedding: new ort.Tensor('float32', input, [samples.length, itemDim]) })).recommendation_vector.data as Float32Array;
          const mask = new BigInt64Array(samples.length).fill(1n);
          const user = (await sequenceModel.run({
            history: new ort.Tensor('float32', vectors, [1, samples.length, recDim]),
            history_mask: new ort.Tensor('int64', mask, [1, samples.length]),
          })).user_vector.data as Float32Array;
          if (!vectors.every(Number.isFinite) || !user.every(Number.isFinite)) {
            return fail(`${manifest.graphs.adapter.file} or ${manifest.graphs.sequence_model.file} gives non-finite values on the samples`);
          }
        }
        passed(int8 ? 'samples int8' : 'samples', `${samples.length} titles tokenize as in training; ${int8 ? 'int8 ' : ''}embedding heads within ${worst.toExponential(1)} (tolerance ${tolerance})`);
      }
    }
  } catch (error) {
    if (error instanceof InvalidBundleError) throw error;
    return fail(`the bundle's graphs fail on the checks' inputs (${(error as Error).message})`);
  }

  // keep the sessions the caller serves with, release the others
  const encoder = sessions.get(variant === 'int8' ? 'encoder_int8' : 'encoder');
  for (const [key, session] of sessions) {
    if (session !== encoder && key.startsWith('encoder')) await session.release();
  }
  return { manifest, provider: effectiveProvider, tokenizer, encoder, adapter: sessions.get('adapter')!, sequenceModel: sessions.get('sequence_model')!, checks };
}

function expectShape(file: string, tensor: ort.Tensor, rows: number, columns: number): void {
  const dims = tensor.dims.join(', ');
  if (tensor.dims.length !== 2 || tensor.dims[0] !== rows || tensor.dims[1] !== columns) {
    throw new Error(`${file} gives shape [${dims}] for a batch of ${rows}, expected [${rows}, ${columns}]`);
  }
  if (!(tensor.data as Float32Array).every(Number.isFinite)) throw new Error(`${file} gives non-finite values`);
}
