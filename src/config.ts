/**
 * Every setting of the server and its commands, read once from the environment.
 * The README lists the same settings with their defaults; keep the two in step.
 */
import path from 'node:path';
import bytes from 'bytes';
import { z } from 'zod';

const Settings = z.object({
  /** Where the embedded database, the embedded vector index and the model registry live. */
  dataDir: z.string().default('data'),
  /** PostgreSQL connection string; unset means the embedded PGlite database under dataDir. */
  databaseUrl: z.string().optional(),
  /** The model bundle the server loads at start-up (unless a version activated later is recorded as active). */
  bundleDir: z.string().default('bundles/quick'),
  /** The model registry: a directory of bundles that activateModel can switch to. */
  modelRegistryDir: z.string().default('bundles'),
  /** Vector index backend: 'embedded' (in-process HNSW persisted under dataDir) or 'qdrant'. */
  vectorIndex: z.enum(['embedded', 'qdrant']).default('embedded'),
  /** Qdrant server for the qdrant backend, e.g. http://localhost:6333. */
  qdrantUrl: z.string().url().optional(),
  qdrantApiKey: z.string().optional(),
  /** onnxruntime execution provider: 'cpu', or 'cuda' when onnxruntime-node finds CUDA. */
  executionProvider: z.enum(['cpu', 'cuda']).default('cpu'),
  /** Item encoder graph: 'fp32', or 'int8' (the bundle's encoder.int8.onnx from training.llm2rec.quantize). */
  encoderVariant: z.enum(['fp32', 'int8']).default('fp32'),
  /** When set, GraphQL mutations need this value in the x-api-key header. */
  apiKey: z.string().optional(),
  host: z.string().default('127.0.0.1'),
  port: z.coerce.number().int().min(0).max(65535).default(4000),
  /** Largest `first` a recommendation query may ask for. */
  maxResults: z.coerce.number().int().positive().default(100),
  /** Largest history (item ids) a query may pass. */
  maxHistoryInput: z.coerce.number().int().positive().default(200),
  /** Most items one upsertItems or deleteItems call may carry. */
  maxItemsPerBatch: z.coerce.number().int().positive().default(1000),
  /** Most interactions one recordInteractions call may carry. */
  maxInteractionsPerBatch: z.coerce.number().int().positive().default(10000),
  /** Titles per encoder call when items are ingested. */
  encodeBatchSize: z.coerce.number().int().positive().default(64),
  /** Deepest selection nesting a GraphQL operation may have (fragments do not add a level). */
  maxQueryDepth: z.coerce.number().int().positive().default(8),
  /**
   * Highest estimated cost of a GraphQL operation: 1 per field, a field's subtree multiplied by its `first` argument
   * and, for list fields, by the length of its `ids` or `domains` argument.
   */
  maxQueryComplexity: z.coerce.number().int().positive().default(5000),
  /** Largest HTTP request body the API accepts, as a byte count or with a unit: 512kb, 8mb. */
  maxBodySize: z.string()
    .refine((value) => (bytes.parse(value) ?? 0) > 0, { message: 'a byte size such as 1048576, 512kb or 8mb' })
    .default('8mb'),
  /** Longest id (item ids, user ids, model versions, ...) a request may carry, in characters. */
  maxIdLength: z.coerce.number().int().positive().default(256),
  /** Longest domain name, in characters. */
  maxDomainLength: z.coerce.number().int().positive().default(128),
  /** Longest item title, in characters. */
  maxTitleLength: z.coerce.number().int().positive().default(2000),
  /** Largest item attributes object, as JSON text in characters. */
  maxAttributesSize: z.coerce.number().int().positive().default(65536),
  /** Deepest nesting of objects and arrays in item attributes (the attributes object itself is level 1). */
  maxAttributesDepth: z.coerce.number().int().positive().default(8),
  /**
   * How many retired model versions keep their vector collections (the most recently active first), so that
   * activating one again only embeds what changed since; older versions' collections are dropped after a switch.
   * The serving version, its rollback target and a traffic-split version always keep theirs.
   */
  retainedVersions: z.coerce.number().int().nonnegative().default(2),
  /** How long a version displaced by a switch stays loaded (with its collection) for requests that started on it. */
  releaseGraceMs: z.coerce.number().int().nonnegative().default(60_000),
  /** How often the vector index's accepted writes are made durable (the embedded index; the database commits each). */
  indexFlushIntervalMs: z.coerce.number().int().positive().default(10_000),
  /** Deepest nesting of brackets ({, [, () in a GraphQL document, literal arguments included; checked before parsing. */
  maxDocumentNesting: z.coerce.number().int().positive().default(64),
  /** Most aliased fields one GraphQL operation may have. */
  maxAliases: z.coerce.number().int().nonnegative().default(30),
  /** Most root fields one GraphQL operation may select (fragments expanded). */
  maxRootFields: z.coerce.number().int().positive().default(20),
  /**
   * Whether the schema may be introspected and whether validation errors suggest field names ("Did you mean ..."):
   * on by default outside production (NODE_ENV=production), off in production.
   */
  introspection: z.preprocess(
    (value) => (typeof value === 'string' ? ['1', 'true', 'yes', 'on'].includes(value.toLowerCase()) : value),
    z.boolean(),
  ).default(true),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /**
   * Where `serve` writes its logs: unset, stderr; else this file (appended to, its directory created), so that a
   * terminal shared with progress bars (the quickstart's load-dataset) keeps only the bars.
   */
  logFile: z.string().optional(),
});

export type Settings = z.infer<typeof Settings>;

/** Environment variable of each setting. */
export const ENVIRONMENT_NAMES: Record<keyof Settings, string> = {
  dataDir: 'LLM2REC_DATA_DIR',
  databaseUrl: 'DATABASE_URL',
  bundleDir: 'LLM2REC_BUNDLE',
  modelRegistryDir: 'LLM2REC_MODEL_REGISTRY',
  vectorIndex: 'LLM2REC_VECTOR_INDEX',
  qdrantUrl: 'QDRANT_URL',
  qdrantApiKey: 'QDRANT_API_KEY',
  executionProvider: 'LLM2REC_EXECUTION_PROVIDER',
  encoderVariant: 'LLM2REC_ENCODER_VARIANT',
  apiKey: 'LLM2REC_API_KEY',
  host: 'HOST',
  port: 'PORT',
  maxResults: 'LLM2REC_MAX_RESULTS',
  maxHistoryInput: 'LLM2REC_MAX_HISTORY_INPUT',
  maxItemsPerBatch: 'LLM2REC_MAX_ITEMS_PER_BATCH',
  maxInteractionsPerBatch: 'LLM2REC_MAX_INTERACTIONS_PER_BATCH',
  encodeBatchSize: 'LLM2REC_ENCODE_BATCH_SIZE',
  maxQueryDepth: 'LLM2REC_MAX_QUERY_DEPTH',
  maxQueryComplexity: 'LLM2REC_MAX_QUERY_COMPLEXITY',
  maxBodySize: 'LLM2REC_MAX_BODY_SIZE',
  maxIdLength: 'LLM2REC_MAX_ID_LENGTH',
  maxDomainLength: 'LLM2REC_MAX_DOMAIN_LENGTH',
  maxTitleLength: 'LLM2REC_MAX_TITLE_LENGTH',
  maxAttributesSize: 'LLM2REC_MAX_ATTRIBUTES_SIZE',
  maxAttributesDepth: 'LLM2REC_MAX_ATTRIBUTES_DEPTH',
  retainedVersions: 'LLM2REC_RETAINED_VERSIONS',
  releaseGraceMs: 'LLM2REC_RELEASE_GRACE_MS',
  indexFlushIntervalMs: 'LLM2REC_INDEX_FLUSH_INTERVAL_MS',
  maxDocumentNesting: 'LLM2REC_MAX_DOCUMENT_NESTING',
  maxAliases: 'LLM2REC_MAX_ALIASES',
  maxRootFields: 'LLM2REC_MAX_ROOT_FIELDS',
  introspection: 'LLM2REC_INTROSPECTION',
  logLevel: 'LOG_LEVEL',
  logFile: 'LLM2REC_LOG_FILE',
};

/** Reads the settings from an environment (process.env by default), then applies explicit overrides. */
export function loadSettings(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Settings> = {},
): Settings {
  const raw: Record<string, unknown> = {};
  for (const [key, name] of Object.entries(ENVIRONMENT_NAMES)) {
    const value = env[name];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  // Introspection and schema hints: explicit when LLM2REC_INTROSPECTION is set, else off in production only.
  raw.introspection ??= env.NODE_ENV !== 'production';
  const settings = Settings.parse({ ...raw, ...overrides });
  return {
    ...settings,
    dataDir: path.resolve(settings.dataDir),
    bundleDir: path.resolve(settings.bundleDir),
    modelRegistryDir: path.resolve(settings.modelRegistryDir),
    ...(settings.logFile !== undefined && { logFile: path.resolve(settings.logFile) }),
  };
}
