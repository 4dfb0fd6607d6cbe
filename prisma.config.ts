// Prisma CLI configuration (dev-time only: `prisma validate`, `format`, `migrate diff`).
// The JS engine runs offline; the service applies migrations/ itself (app/migrations.py).
import { defineConfig } from "prisma/config";

export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: "schema.prisma",
  migrations: { path: "migrations" },
  async adapter() {
    const { PrismaPg } = await import("@prisma/adapter-pg");
    return new PrismaPg({ connectionString: process.env.DATABASE_URL ?? "postgresql://localhost/unused" });
  },
});
