/**
 * `npm run train-and-activate`: the path from a running server's raw model to LLM2Rec in one command.
 *
 *   1. export the catalogue and interactions the server holds (GET /export/*, as `export-dataset`);
 *   2. train the LLM2Rec item encoder on them (`python -m training.llm2rec.cli train --preset cpu`);
 *   3. build a bundle with that encoder into the model registry (`bundle --encoder`: adapter + SASRec over it);
 *   4. activate it with the hot-swap (`activateModel`) and follow `modelActivation` until it serves.
 *
 * Everything of one run lives in its work directory (default runs/live-<UTC time>): `export/live/` and the training
 * run `encoder/`. Interrupted, the same command with `--work-dir` of that run reuses the export and resumes the
 * training where its last checkpoint left it.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Command } from 'commander';
import { ModelRegistry } from '../models/model-registry.js';
import { exportDataset } from './export-dataset.js';
import { graphqlRequest } from './graphql-client.js';
import { isMain } from './is-main.js';

export interface TrainAndActivateOptions {
  /** The platform's GraphQL endpoint. */
  url: string;
  apiKey?: string;
  /** LLM2Rec training preset (training/llm2rec/train_config.py). */
  preset: string;
  /** Bundle preset for the adapter + SASRec over the trained encoder (training/llm2rec/presets.py). */
  bundlePreset: string;
  /** `--set` overrides of the training preset. */
  set: string[];
  /** `--set` overrides of the bundle preset. */
  bundleSet: string[];
  config?: string;
  threads?: number;
  /** The server's model registry (its LLM2REC_MODEL_REGISTRY). */
  registry: string;
  workDir: string;
  python: string;
  pollSeconds: number;
  print?: (line: string) => void;
}

export interface TrainAndActivateResult {
  version: string;
  bundleDir: string;
  runId: string;
  seconds: Record<string, number>;
}

interface EncoderInfo { kind: string; runId: string | null }
interface ActivationInfo { version: string; state: string; done: number; total: number; error: string | null }

const STATUS = '{ activeModel { version encoder { kind runId } } }';
const REGISTERED = '{ registeredModels { version } }';
const ACTIVATE = 'mutation($v: String!) { activateModel(version: $v) { version state } }';
const PROGRESS = '{ modelActivation { version state done total error } }';
const ACTIVE = '{ activeModel { version preset encoder { kind runId trainingPreset stages } } }';

/** Runs a command with its output passed through; rejects unless it exits 0. */
function run(command: string, args: string[], print: (line: string) => void): Promise<void> {
  print(`$ ${command} ${args.join(' ')}`);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: 'inherit', env: { ...process.env, PYTHONUNBUFFERED: '1' } });
    child.on('error', reject);
    child.on('exit', (code, signal) => code === 0 ? resolve()
      : reject(new Error(`${path.basename(command)} ${args.slice(0, 3).join(' ')} failed (${signal ?? `exit ${code}`})`)));
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function trainAndActivate(options: TrainAndActivateOptions): Promise<TrainAndActivateResult> {
  const print = options.print ?? console.log;
  const seconds: Record<string, number> = {};
  const started = Date.now();
  let stepStarted = started;
  const step = (name: string) => {
    const now = Date.now();
    seconds[name] = Math.round((now - stepStarted) / 100) / 10;
    print(`== ${name}: ${seconds[name]} s`);
    stepStarted = now;
  };
  const gql = <T>(query: string, variables: Record<string, unknown> = {}) =>
    graphqlRequest<T>(options.url, query, variables, options.apiKey);

  const before = await gql<{ activeModel: { version: string; encoder: EncoderInfo } }>(STATUS);
  // The bundle must land where the server looks: check now, not after hours of training.
  const listed = (await gql<{ registeredModels: { version: string }[] }>(REGISTERED)).registeredModels.map((m) => m.version);
  const local = (await new ModelRegistry(options.registry).list()).map((bundle) => bundle.version);
  if (listed.sort().join('\n') !== local.sort().join('\n')) {
    throw new Error(`--registry ${options.registry} holds ${local.length ? local.join(', ') : 'no bundles'} but the ` +
      `server's registry lists ${listed.length ? listed.join(', ') : 'none'}: give --registry the directory the server ` +
      'uses (its LLM2REC_MODEL_REGISTRY)');
  }
  print(`== serving ${before.activeModel.version} (encoder ${before.activeModel.encoder.kind}` +
    `${before.activeModel.encoder.runId ? `, run ${before.activeModel.encoder.runId}` : ''}); work directory ${options.workDir}`);

  // 1. The server's data, in the shared layout. A resumed run keeps the export its training started on.
  const dataset = path.join(options.workDir, 'export', 'live');
  if (existsSync(path.join(dataset, 'interactions.csv')) && existsSync(path.join(dataset, 'items.jsonl'))) {
    print(`== export: reusing ${dataset} (resuming this work directory)`);
  } else {
    print(`== export: catalogue and interactions from ${options.url} into ${dataset}`);
    await exportDataset({ out: dataset, url: options.url, apiKey: options.apiKey, print });
  }
  step('export');

  // 2. LLM2Rec training (resumable: finished stages are skipped, an interrupted one continues from its checkpoint).
  const runDir = path.join(options.workDir, 'encoder');
  print(`== train: LLM2Rec preset ${options.preset} into ${runDir}`);
  await run(options.python, ['-m', 'training.llm2rec.cli', 'train', '--preset', options.preset, '--datasets', dataset,
    '--out', runDir, ...(options.config ? ['--config', options.config] : []),
    ...options.set.flatMap((item) => ['--set', item]),
    ...(options.threads ? ['--threads', String(options.threads)] : [])], print);
  const recordFile = path.join(runDir, 'training-run.json');
  if (!existsSync(recordFile)) {
    throw new Error(`training stopped before its last stage finished (${recordFile} is missing); run the same command ` +
      `with --work-dir ${options.workDir} to resume it`);
  }
  const runId = (JSON.parse(await readFile(recordFile, 'utf8')) as { run_id: string }).run_id;
  step('train');

  // 3. The bundle, straight into the registry (bundle writes <dir>.partial and renames it when complete).
  const bundleDir = path.join(options.registry, `llm2rec-${runId}`);
  print(`== bundle: preset ${options.bundlePreset} over the encoder of run ${runId} into ${bundleDir}`);
  await run(options.python, ['-m', 'training.llm2rec.cli', 'bundle', '--preset', options.bundlePreset,
    '--encoder', runDir, '--datasets', dataset, '--out', bundleDir,
    ...options.bundleSet.flatMap((item) => ['--set', item])], print);
  const version = (JSON.parse(await readFile(path.join(bundleDir, 'manifest.json'), 'utf8')) as { model_version: string }).model_version;
  step('bundle');

  // 4. Hot-swap to it.
  const registered = await gql<{ registeredModels: { version: string }[] }>(REGISTERED);
  if (!registered.registeredModels.some((model) => model.version === version)) {
    throw new Error(`the server does not list ${version} in its model registry: start it with ` +
      `LLM2REC_MODEL_REGISTRY=${path.resolve(options.registry)}, or give --registry the directory it uses`);
  }
  print(`== activate: ${version}`);
  await gql(ACTIVATE, { v: version });
  let last = '';
  for (;;) {
    const { modelActivation: progress } = await gql<{ modelActivation: ActivationInfo | null }>(PROGRESS);
    if (!progress || progress.version !== version) throw new Error(`another activation replaced ours: ${JSON.stringify(progress)}`);
    const line = `${progress.state} ${progress.done}/${progress.total} items embedded`;
    if (line !== last) print(`   ${line}`);
    last = line;
    if (progress.state === 'failed') throw new Error(`activation of ${version} failed: ${progress.error}`);
    if (progress.state === 'active') break;
    await sleep(options.pollSeconds * 1000);
  }
  const after = await gql<{ activeModel: { version: string; encoder: EncoderInfo & { stages: string[] } } }>(ACTIVE);
  if (after.activeModel.version !== version) {
    throw new Error(`activation finished but ${after.activeModel.version} is serving, not ${version}`);
  }
  step('activate');
  seconds.total = Math.round((Date.now() - started) / 100) / 10;
  print(`== serving ${version}: encoder ${after.activeModel.encoder.kind}, run ${after.activeModel.encoder.runId} ` +
    `(${after.activeModel.encoder.stages.join(' -> ')})`);
  print(`== timings: ${Object.entries(seconds).map(([name, s]) => `${name} ${s} s`).join(', ')}`);
  return { version, bundleDir, runId, seconds };
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

if (isMain(import.meta.url)) {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, 'Z');
  const program = new Command('train-and-activate')
    .description("Train LLM2Rec on a running server's data, publish the bundle into its registry and switch to it")
    .option('--url <url>', 'the platform\'s GraphQL endpoint', `http://127.0.0.1:${process.env.PORT ?? 4000}/graphql`)
    .option('--api-key <key>', 'API key for the mutations (LLM2REC_API_KEY)', process.env.LLM2REC_API_KEY)
    .option('--preset <name>', 'LLM2Rec training preset: tiny | cpu | paper', 'cpu')
    .option('--set <section.field=value>', 'override a training preset field (repeatable), e.g. csft.steps=200', collect, [])
    .option('--config <file>', 'JSON or TOML file overriding training preset fields')
    .option('--threads <n>', 'torch CPU threads for the training', (value) => Number.parseInt(value, 10))
    .option('--bundle-preset <name>', 'bundle preset for the adapter + SASRec: quick | tiny', 'quick')
    .option('--bundle-set <field=value>', 'override a bundle preset field (repeatable), e.g. epochs=2', collect, [])
    .option('--registry <dir>', 'the server\'s model registry (LLM2REC_MODEL_REGISTRY)', process.env.LLM2REC_MODEL_REGISTRY ?? 'bundles')
    .option('--work-dir <dir>', 'export and training run of this command; an existing one is resumed', `runs/live-${stamp}`)
    .option('--python <path>', 'the training venv\'s python', '.venv/bin/python')
    .option('--poll-seconds <s>', 'how often to ask for the activation\'s progress', Number, 2)
    .parse();
  try {
    await trainAndActivate(program.opts<TrainAndActivateOptions>());
  } catch (error) {
    console.error(`train-and-activate failed: ${(error as Error).message}`);
    process.exit(1);
  }
}
