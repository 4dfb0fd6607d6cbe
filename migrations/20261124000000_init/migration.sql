-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateTable
CREATE TABLE "events" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "app_name" VARCHAR(64) NOT NULL,
    "event_type" VARCHAR(64) NOT NULL,
    "route" VARCHAR(512),
    "entity_type" VARCHAR(64),
    "entity_id" VARCHAR(128),
    "user_hash" CHAR(64) NOT NULL,
    "session_id" VARCHAR(128),
    "device_type" VARCHAR(16) NOT NULL,
    "browser_family" VARCHAR(64) NOT NULL,
    "os_family" VARCHAR(64) NOT NULL,
    "client_event_id" VARCHAR(128) NOT NULL,
    "description" JSONB,

    CONSTRAINT "events_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "events_client_event_id_key" ON "events"("client_event_id");

-- CreateIndex
CREATE INDEX "events_app_name_event_type_created_at_idx" ON "events"("app_name", "event_type", "created_at");

-- CreateIndex
CREATE INDEX "events_entity_type_entity_id_created_at_idx" ON "events"("entity_type", "entity_id", "created_at");

-- CreateIndex
CREATE INDEX "events_user_hash_created_at_idx" ON "events"("user_hash", "created_at");

-- CreateIndex
CREATE INDEX "events_created_at_idx" ON "events" USING BRIN ("created_at");

