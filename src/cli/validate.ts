/**
 * `npm run validate -- <bundle> [--encoder fp32|int8] [--provider cpu|cuda]`: runs every check the server runs before
 * it accepts a bundle, prints each one, and exits 1 with the reason on the first that fails. The checks are the
 * server's loading path (src/inference/bundle-loader.ts): the bundle is opened as the server opens it, then closed.
 * Without --encoder it checks every encoder variant the bundle has.
 */
import { Command, Option } from 'commander';
import { checkOtherEncoder, type BundleCheck, type EncoderVariant } from '../inference/bundle-loader.js';
import { InvalidBundleError } from '../inference/manifest.js';
import { RecommendationModel } from '../inference/recommendation-model.js';
import type { ExecutionProvider } from '../inference/onnx-runtime.js';
import { isMain } from './is-main.js';

export interface ValidateCommandOptions {
  provider?: ExecutionProvider;
  encoder?: EncoderVariant;
}

/** Validates a bundle, printing each check through `print`; returns the exit status (0 valid, 1 refused). */
export async function validateCommand(
  bundleDir: string,
  options: ValidateCommandOptions = {},
  print: (line: string) => void = console.log,
): Promise<number> {
  const checks: BundleCheck[] = [];
  const onCheck = (check: BundleCheck) => {
    checks.push(check);
    print(`ok    ${check.name.padEnd(20)} ${check.detail}`);
  };
  try {
    const encoder = options.encoder ?? 'fp32';
    const model = await RecommendationModel.load(bundleDir, { provider: options.provider ?? 'cpu', encoder, nice: null, onCheck });
    try {
      if (options.encoder === undefined && model.manifest.graphs.encoder_int8) {
        await checkOtherEncoder(bundleDir, model.manifest, model.executionProvider, 'int8', onCheck);
      }
    } finally {
      await model.release();
    }
    print(`valid: ${bundleDir} (model ${model.version}, ${checks.length} checks passed)`);
    return 0;
  } catch (error) {
    if (!(error instanceof InvalidBundleError)) throw error;
    print(`FAIL  ${error.message}`);
    print(`refused: ${bundleDir} cannot be served`);
    return 1;
  }
}

if (isMain(import.meta.url)) {
  const program = new Command('validate')
    .description('Check a model bundle as the server does before accepting it')
    .argument('<bundle>', 'bundle directory')
    .addOption(new Option('--encoder <variant>', 'check only the encoder the server would use').choices(['fp32', 'int8']))
    .addOption(new Option('--provider <provider>', 'onnxruntime execution provider').choices(['cpu', 'cuda']).default('cpu'))
    .parse();
  const options = program.opts<{ encoder?: EncoderVariant; provider: ExecutionProvider }>();
  process.exitCode = await validateCommand(program.args[0], options);
}
