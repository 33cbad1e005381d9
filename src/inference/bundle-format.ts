/**
 * The model bundle format, read from bundle-format.json: the one definition of what a bundle holds that training/
 * (Python: export and manifest) and the server (load and validate) both read. It has the contract of each ONNX graph
 * (file, input and output names, element types, shapes) and the JSON Schema of manifest.json; the `Manifest` type is
 * generated from that schema (`npm run codegen` writes bundle-manifest.ts).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Manifest } from './bundle-manifest.js';

export type { Manifest } from './bundle-manifest.js';

export type GraphName = 'encoder' | 'adapter' | 'sequence_model';

/** A tensor as the format states it: a shape entry is a key of manifest.dimensions (fixed) or a dynamic axis's name. */
export interface TensorSpec {
  type: 'int64' | 'float32';
  shape: string[];
}

export interface GraphSpec {
  file: string;
  inputs: Record<string, TensorSpec>;
  outputs: Record<string, TensorSpec>;
}

interface BundleFormat {
  format_version: number;
  graphs: Record<GraphName, GraphSpec>;
  manifest: Record<string, unknown>;
}

/** bundle-format.json, beside this module (the build copies it into dist/). */
const format = JSON.parse(readFileSync(path.join(import.meta.dirname, 'bundle-format.json'), 'utf8')) as BundleFormat;

export const FORMAT_VERSION = format.format_version;

export const GRAPHS: Readonly<Record<GraphName, GraphSpec>> = format.graphs;

/** manifest.json's schema as a validator. */
export const manifestSchema = z.fromJSONSchema(format.manifest as Parameters<typeof z.fromJSONSchema>[0]) as unknown as z.ZodType<Manifest>;

/** The names a shape may use for a fixed axis: the dimensions the manifest's schema declares. */
export const FIXED_AXES: ReadonlySet<string> = new Set(Object.keys(
  (format.manifest as { properties: { dimensions: { properties: Record<string, unknown> } } }).properties.dimensions.properties));

/** A shape with the manifest's dimensions filled in: numbers are fixed sizes, names are dynamic axes. */
export function resolveShape(shape: readonly string[], dimensions: Manifest['dimensions']): (string | number)[] {
  return shape.map((axis) => (FIXED_AXES.has(axis) ? dimensions[axis] as number : axis));
}
