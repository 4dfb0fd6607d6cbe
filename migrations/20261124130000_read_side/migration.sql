-- CreateTable
CREATE TABLE "daily_app_users" (
    "app_name" VARCHAR(64) NOT NULL,
    "day" DATE NOT NULL,
    "events" INTEGER NOT NULL,
    "users" INTEGER NOT NULL,
    "computed_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "daily_app_users_pkey" PRIMARY KEY ("app_name","day")
);

-- CreateIndex
CREATE INDEX "events_created_at_id_idx" ON "events"("created_at", "id");

-- CreateIndex
CREATE INDEX "events_app_name_created_at_user_hash_idx" ON "events"("app_name", "created_at", "user_hash");

