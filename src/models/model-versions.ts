/** The model versions the platform knows, as rows of the database; exactly one is active. */
import type { Database } from '../db/index.js';
import type { RecommendationModel } from '../inference/recommendation-model.js';
import { modelEncoder, type ModelEncoderView } from './model-encoder.js';

export interface ModelVersionView {
  version: string;
  status: string;
  preset: string;
  backbone: string;
  /** Which item encoder the version's bundle carries: the raw backbone or an LLM2Rec run's (model-encoder.ts). */
  encoder: ModelEncoderView;
  createdAt: string;
  activatedAt: string | null;
  metrics: Record<string, unknown>;
}

export class ModelVersions {
  constructor(private readonly db: Database) {}

  /** Records a loaded model as the active version, activated now, and retires the one before it. */
  async activate(model: RecommendationModel): Promise<void> {
    await this.record(model, new Date());
  }

  /**
   * Records the model a starting process serves. Already the active version (a restart), it keeps the time it was
   * activated at; any other version is activated now.
   */
  async resume(model: RecommendationModel): Promise<void> {
    const row = await this.db.prisma.modelVersion.findUnique({ where: { version: model.version }, select: { status: true, activatedAt: true } });
    await this.record(model, row?.status === 'active' && row.activatedAt ? row.activatedAt : new Date());
  }

  private async record(model: RecommendationModel, activatedAt: Date): Promise<void> {
    const manifest = JSON.parse(JSON.stringify(model.manifest));
    await this.db.prisma.$transaction([
      this.db.prisma.modelVersion.updateMany({
        where: { status: 'active', version: { not: model.version } },
        data: { status: 'retired' },
      }),
      // The split version promoted to everyone: the split ends.
      this.db.prisma.modelVersion.updateMany({ where: { version: model.version, splitShare: { not: null } }, data: { splitShare: null } }),
      this.db.prisma.modelVersion.upsert({
        where: { version: model.version },
        create: { version: model.version, path: model.bundleDir, manifest, status: 'active', activatedAt },
        update: { path: model.bundleDir, manifest, status: 'active', activatedAt },
      }),
    ]);
  }

  /** Records `model` as the traffic split with `share` of users (the split before it, if any, ends). */
  async recordSplit(model: RecommendationModel, share: number): Promise<void> {
    const manifest = JSON.parse(JSON.stringify(model.manifest));
    await this.db.prisma.$transaction([
      this.db.prisma.modelVersion.updateMany({ where: { splitShare: { not: null }, version: { not: model.version } }, data: { splitShare: null } }),
      this.db.prisma.modelVersion.upsert({
        where: { version: model.version },
        create: { version: model.version, path: model.bundleDir, manifest, status: 'registered', splitShare: share },
        update: { splitShare: share },
      }),
    ]);
  }

  /** Records that no traffic split is in force. */
  async clearSplit(): Promise<void> {
    await this.db.prisma.modelVersion.updateMany({ where: { splitShare: { not: null } }, data: { splitShare: null } });
  }

  /** The traffic split recorded, if any. */
  async split(): Promise<{ version: string; share: number } | undefined> {
    const row = await this.db.prisma.modelVersion.findFirst({ where: { splitShare: { not: null } }, select: { version: true, splitShare: true } });
    return row ? { version: row.version, share: row.splitShare! } : undefined;
  }

  /** The version recorded as active, if any. */
  async activeVersion(): Promise<string | undefined> {
    const row = await this.db.prisma.modelVersion.findFirst({ where: { status: 'active' }, select: { version: true } });
    return row?.version;
  }

  /** The bundle directory of the version recorded as active, if any. */
  async activeBundleDir(): Promise<string | undefined> {
    const row = await this.db.prisma.modelVersion.findFirst({ where: { status: 'active' }, select: { path: true } });
    return row?.path;
  }

  async active(): Promise<ModelVersionView> {
    const row = await this.db.prisma.modelVersion.findFirstOrThrow({ where: { status: 'active' } });
    return view(row);
  }

  /** The retired versions, the most recently activated first. */
  async retired(): Promise<string[]> {
    const rows = await this.db.prisma.modelVersion.findMany({
      where: { status: 'retired' }, orderBy: [{ activatedAt: { sort: 'desc', nulls: 'last' } }, { version: 'asc' }], select: { version: true },
    });
    return rows.map((row) => row.version);
  }

  async list(): Promise<ModelVersionView[]> {
    const rows = await this.db.prisma.modelVersion.findMany({ orderBy: { createdAt: 'desc' } });
    return rows.map(view);
  }
}

function view(row: {
  version: string;
  status: string;
  manifest: unknown;
  createdAt: Date;
  activatedAt: Date | null;
}): ModelVersionView {
  const manifest = row.manifest as { preset: string; backbone: { name: string }; metrics: Record<string, unknown> };
  return {
    version: row.version,
    status: row.status,
    preset: manifest.preset,
    backbone: manifest.backbone.name,
    encoder: modelEncoder(manifest),
    createdAt: row.createdAt.toISOString(),
    activatedAt: row.activatedAt?.toISOString() ?? null,
    metrics: manifest.metrics,
  };
}
