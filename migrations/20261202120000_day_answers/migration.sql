-- CreateTable
CREATE TABLE "day_answers" (
    "kind" VARCHAR(64) NOT NULL,
    "key" CHAR(64) NOT NULL,
    "day" DATE NOT NULL,
    "answer" JSONB,
    "computed_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "day_answers_pkey" PRIMARY KEY ("kind","key","day")
);

-- CreateIndex
CREATE INDEX "day_answers_day_idx" ON "day_answers"("day");

