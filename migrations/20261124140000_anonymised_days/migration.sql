-- CreateTable
CREATE TABLE "anonymised_days" (
    "day" DATE NOT NULL,
    "anonymised_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "rows" INTEGER NOT NULL,

    CONSTRAINT "anonymised_days_pkey" PRIMARY KEY ("day")
);

