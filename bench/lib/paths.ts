/** Where the benchmarks read and write. Everything they build goes under .tmp/bench (ignored by git). */
import path from 'node:path';

export const REPO = path.resolve(import.meta.dirname, '../..');
export const SHARED_DATA = path.resolve(process.env.LLM2REC_SHARED_DATA ?? path.join(REPO, '../shared/data'));
export const BENCH_TMP = path.join(REPO, '.tmp/bench');
/** The project's Python (`npm run setup`), which draws the plots. */
export const PYTHON = path.join(REPO, '.venv/bin/python');

/** The five datasets of the shared layout whose catalogues the benchmark loads together. */
export const DATASET_DIRS = [
  'amazon-games',
  'movielens-small',
  'amazon-scientific',
  'amazon-industrial-catalog',
  'amazon-office-catalog',
] as const;
