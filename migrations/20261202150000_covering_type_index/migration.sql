-- DropIndex
DROP INDEX "events_app_name_event_type_created_at_idx";

-- CreateIndex
CREATE INDEX "events_app_name_event_type_created_at_id_session_id_idx" ON "events"("app_name", "event_type", "created_at", "id", "session_id");

