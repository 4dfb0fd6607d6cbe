-- CreateTable
CREATE TABLE "drop_counts" (
    "hour" TIMESTAMPTZ(6) NOT NULL,
    "app_name" VARCHAR(64) NOT NULL,
    "reason" VARCHAR(64) NOT NULL,
    "count" BIGINT NOT NULL,

    CONSTRAINT "drop_counts_pkey" PRIMARY KEY ("hour","app_name","reason")
);

-- CreateTable
CREATE TABLE "digest_deliveries" (
    "app_name" VARCHAR(64) NOT NULL,
    "period" VARCHAR(8) NOT NULL,
    "period_start" TIMESTAMPTZ(6) NOT NULL,
    "channel" VARCHAR(16) NOT NULL,
    "sent_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "digest_deliveries_pkey" PRIMARY KEY ("app_name","period","period_start","channel")
);

-- CreateTable
CREATE TABLE "alert_incidents" (
    "id" BIGSERIAL NOT NULL,
    "key" VARCHAR(200) NOT NULL,
    "kind" VARCHAR(16) NOT NULL,
    "app_name" VARCHAR(64) NOT NULL,
    "subject" VARCHAR(64) NOT NULL,
    "opened_at" TIMESTAMPTZ(6) NOT NULL,
    "since" TIMESTAMPTZ(6) NOT NULL,
    "detail" TEXT NOT NULL,
    "recovered_at" TIMESTAMPTZ(6),
    "notified_open" BOOLEAN NOT NULL DEFAULT false,
    "notified_recovery" BOOLEAN NOT NULL DEFAULT false,

    CONSTRAINT "alert_incidents_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "alert_notifications" (
    "incident_id" BIGINT NOT NULL,
    "phase" VARCHAR(8) NOT NULL,
    "channel" VARCHAR(16) NOT NULL,
    "sent_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "alert_notifications_pkey" PRIMARY KEY ("incident_id","phase","channel")
);

-- CreateIndex
CREATE INDEX "alert_incidents_key_recovered_at_idx" ON "alert_incidents"("key", "recovered_at");

