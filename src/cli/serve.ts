/** `npm run serve`: the GraphQL API on the configured database, vector index and model bundle. */
import { Command } from 'commander';
import { loadSettings } from '../config.js';
import { createLogger } from '../logger.js';
import { openPlatform } from '../platform.js';
import { startHttpServer } from '../server/http-server.js';

const program = new Command('serve')
  .description('Serve the GraphQL API (settings come from the environment; see README)')
  .option('--bundle <dir>', 'model bundle to serve (LLM2REC_BUNDLE)')
  .option('--data-dir <dir>', 'data directory (LLM2REC_DATA_DIR)')
  .option('--host <host>', 'interface to listen on (HOST)')
  .option('--port <port>', 'port to listen on (PORT)')
  .parse();

const options = program.opts<{ bundle?: string; dataDir?: string; host?: string; port?: string }>();
const settings = loadSettings(process.env, {
  ...(options.bundle && { bundleDir: options.bundle }),
  ...(options.dataDir && { dataDir: options.dataDir }),
  ...(options.host && { host: options.host }),
  ...(options.port && { port: Number(options.port) }),
});
const logger = createLogger(settings.logLevel, settings.logFile);
// The one line a terminal gets when the logs go to a file: where to find them.
if (settings.logFile) console.error(`serve: logs go to ${settings.logFile}`);

try {
  const platform = await openPlatform(settings, logger);
  const server = await startHttpServer(platform, settings);
  const shutdown = async (signal: string) => {
    logger.info({ signal }, 'shutting down');
    await server.close();
    await platform.close();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
} catch (error) {
  logger.fatal({ err: error }, (error as Error).message);
  // Logging to a file, the terminal would not learn why the server stopped.
  if (settings.logFile) console.error(`serve failed: ${(error as Error).message} (details in ${settings.logFile})`);
  process.exit(1);
}
