-- DropIndex
DROP INDEX "events_client_event_id_key";

-- AlterTable
ALTER TABLE "events" ADD COLUMN     "dedup_key" VARCHAR(64) NOT NULL DEFAULT encode(sha256((gen_random_uuid())::text::bytea), 'hex');

-- CreateIndex
CREATE UNIQUE INDEX "events_dedup_key_key" ON "events"("dedup_key");

