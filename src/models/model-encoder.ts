/**
 * Which item encoder a model bundle carries, read from its manifest (docs/bundle-format.md, `encoder`): the
 * backbone's own pretrained weights ("raw"), or the model of an LLM2Rec training run, named by its run id.
 *
 * Bundles written before the manifest had an `encoder` section still say it in words: `bundle --encoder` wrote
 * "fine-tuned by LLM2Rec run <id> (preset <p>, stages a -> b -> c, ...)" into `backbone.source`; that is read too.
 */

export type EncoderKind = 'RAW_BACKBONE' | 'LLM2REC';

export interface ModelEncoderView {
  kind: EncoderKind;
  /** The LLM2Rec training run (its run_id), null for a raw backbone. */
  runId: string | null;
  /** The training run's preset (tiny, cpu, paper), null for a raw backbone. */
  trainingPreset: string | null;
  /** The LLM2Rec stages the encoder went through, in order; empty for a raw backbone. */
  stages: string[];
  layers: number;
  attention: string;
}

interface ManifestLike {
  backbone?: { source?: unknown; layers?: unknown; attention?: unknown };
  encoder?: { kind?: unknown; run_id?: unknown; training_preset?: unknown; stages?: unknown };
}

const LEGACY_SOURCE = /fine-tuned by LLM2Rec run (\S+) \(preset ([^,]+), stages ([^,]+?),/;

export function modelEncoder(manifest: unknown): ModelEncoderView {
  const m = (manifest ?? {}) as ManifestLike;
  const shape = {
    layers: typeof m.backbone?.layers === 'number' ? m.backbone.layers : 0,
    attention: typeof m.backbone?.attention === 'string' ? m.backbone.attention : 'causal',
  };
  const raw: ModelEncoderView = { kind: 'RAW_BACKBONE', runId: null, trainingPreset: null, stages: [], ...shape };
  if (m.encoder !== undefined) {
    if (m.encoder.kind !== 'llm2rec') return raw;
    return {
      kind: 'LLM2REC',
      runId: typeof m.encoder.run_id === 'string' ? m.encoder.run_id : null,
      trainingPreset: typeof m.encoder.training_preset === 'string' ? m.encoder.training_preset : null,
      stages: Array.isArray(m.encoder.stages) ? m.encoder.stages.filter((s): s is string => typeof s === 'string') : [],
      ...shape,
    };
  }
  const legacy = typeof m.backbone?.source === 'string' ? LEGACY_SOURCE.exec(m.backbone.source) : null;
  if (!legacy) return raw;
  return { kind: 'LLM2REC', runId: legacy[1], trainingPreset: legacy[2], stages: legacy[3].split(' -> '), ...shape };
}
