/**
 * Servers under test run in processes of their own, never in the load generator's event loop: the platform's
 * `serve` command, run as the Dockerfile runs it (compiled by `npm run build`, plain node, NODE_ENV=production), and
 * the floor (a bare node:http server answering precomputed bodies).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { ENVIRONMENT_NAMES } from '../../src/config.js';
import { REPO } from './paths.js';

export interface ServerProcess {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  origin: string;
  pid: number;
  /** Seconds from spawn to ready. */
  startupSeconds: number;
  stop(): Promise<void>;
}

/** A free loopback port (asked of the kernel, then released for the child to take). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // The benchmark decides every platform setting: none leaks in from the caller's environment.
  for (const name of Object.values(ENVIRONMENT_NAMES)) delete env[name];
  delete env.NODE_OPTIONS;
  return { ...env, ...extra };
}

function spawnLogged(args: string[], env: NodeJS.ProcessEnv, logFile: string): ChildProcess {
  mkdirSync(path.dirname(logFile), { recursive: true });
  const fd = openSync(logFile, 'a');
  try {
    return spawn(process.execPath, args, { cwd: REPO, env, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
}

async function waitUntil(child: ChildProcess, url: string, timeoutMs: number, logFile: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: number | null = null;
  child.once('exit', (code) => { exited = code ?? -1; });
  while (Date.now() < deadline) {
    if (exited !== null) throw new Error(`server exited with code ${exited} before it was ready; see ${logFile}`);
    const ok = await fetch(url).then((response) => response.ok, () => false);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`server not ready after ${timeoutMs / 1000} s; see ${logFile}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

let built: Promise<unknown> | undefined;

/** Compiles the platform into dist/ (`npm run build`), once per process. */
export function buildPlatform(): Promise<unknown> {
  built ??= promisify(execFile)('npm', ['run', '--silent', 'build'], { cwd: REPO });
  return built;
}

/** Builds the platform, starts its `serve` command (dist/src/cli/serve.js) on a data directory and waits for /readyz. */
export async function startPlatformServer(options: {
  dataDir: string;
  bundleDir: string;
  registryDir?: string;
  apiKey?: string;
  logLevel?: string;
  logFile: string;
  readyTimeoutMs?: number;
  env?: Record<string, string>;
  /** Modules the server process preloads (node --import), for experiments. */
  nodeImports?: string[];
  /** More node options for the server process (e.g. --cpu-prof), for experiments. */
  nodeArgs?: string[];
  /** The port to listen on (a free one when absent), e.g. a restarted replica's old one. */
  port?: number;
}): Promise<ServerProcess> {
  await buildPlatform();
  const port = options.port ?? await freePort();
  const started = performance.now();
  const env = childEnv({
    LLM2REC_DATA_DIR: options.dataDir,
    LLM2REC_BUNDLE: options.bundleDir,
    LLM2REC_MODEL_REGISTRY: options.registryDir ?? path.dirname(options.bundleDir),
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: options.logLevel ?? 'info',
    // As deployed (the Dockerfile sets it): graphql-js skips its development-time checks.
    NODE_ENV: 'production',
    ...(options.apiKey && { LLM2REC_API_KEY: options.apiKey }),
    ...options.env,
  });
  const imports = (options.nodeImports ?? []).flatMap((file) => ['--import', file]);
  const child = spawnLogged([...(options.nodeArgs ?? []), ...imports, 'dist/src/cli/serve.js'], env, options.logFile);
  const origin = `http://127.0.0.1:${port}`;
  try {
    await waitUntil(child, `${origin}/readyz`, options.readyTimeoutMs ?? 15 * 60_000, options.logFile);
  } catch (error) {
    await stopChild(child);
    throw error;
  }
  return { origin, pid: child.pid!, startupSeconds: (performance.now() - started) / 1000, stop: () => stopChild(child) };
}

/** Starts the floor: bench/floor-server.ts answering each path with its body from `bodiesFile`. */
export async function startFloorServer(options: { bodiesFile: string; logFile: string }): Promise<ServerProcess> {
  const port = await freePort();
  const started = performance.now();
  const child = spawnLogged(['--import', 'tsx', 'bench/floor-server.ts', options.bodiesFile, String(port)], childEnv({}), options.logFile);
  const origin = `http://127.0.0.1:${port}`;
  try {
    await waitUntil(child, `${origin}/healthz`, 60_000, options.logFile);
  } catch (error) {
    await stopChild(child);
    throw error;
  }
  return { origin, pid: child.pid!, startupSeconds: (performance.now() - started) / 1000, stop: () => stopChild(child) };
}
