-- CreateIndex
CREATE INDEX "events_session_id_created_at_id_idx" ON "events"("session_id", "created_at", "id");

