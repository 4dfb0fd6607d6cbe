-- CreateIndex
CREATE INDEX "events_created_at_id_idx" ON "events"("created_at", "id");

-- CreateIndex
CREATE INDEX "events_app_name_created_at_user_hash_idx" ON "events"("app_name", "created_at", "user_hash");

