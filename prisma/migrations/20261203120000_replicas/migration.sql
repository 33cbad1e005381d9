-- Several server processes over one PostgreSQL (issue #15).

-- What every replica must hear about, in commit order: catalogue writes (kind 'items', the ids written).
-- Written in the transaction of the change itself, under a transaction-level advisory lock, so a later seq never
-- commits before an earlier one (src/cluster/event-feed.ts).
CREATE TABLE "platform_events" (
    "seq" BIGSERIAL NOT NULL,
    "origin" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "platform_events_pkey" PRIMARY KEY ("seq")
);

CREATE INDEX "platform_events_created_at_idx" ON "platform_events"("created_at");

-- An item's two vectors under one model version's collection, keyed by the sha256 of the title they were computed
-- from: computed by one replica, read by the others (src/cluster/shared-embeddings.ts).
CREATE TABLE "item_vectors" (
    "collection" TEXT NOT NULL,
    "title_sha256" TEXT NOT NULL,
    "semantic" BYTEA NOT NULL,
    "recommendation" BYTEA NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "item_vectors_pkey" PRIMARY KEY ("collection", "title_sha256")
);

-- The replicas alive now (a heartbeat every second) and where each stands in the model activation under way: an
-- activation switches once every live replica has prepared the version (src/cluster/model-agreement.ts).
CREATE TABLE "replicas" (
    "id" TEXT NOT NULL,
    "joined_after" BIGINT NOT NULL,
    "heartbeat_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "serving" TEXT,
    "activation_id" TEXT,
    "activation_state" TEXT,
    "activation_error" TEXT,
    "activation_error_code" TEXT,

    CONSTRAINT "replicas_pkey" PRIMARY KEY ("id")
);

-- The traffic split in force, if any: its version's share of users (at most one version has one). Replicas that
-- start or join serve the same split.
ALTER TABLE "model_versions" ADD COLUMN "split_share" DOUBLE PRECISION;
