// `npx vite build example --outDir DIR`: the example page against the built package (npm run build).
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const dist = (name: string) => fileURLToPath(new URL(`../dist/${name}`, import.meta.url));

export default defineConfig({
  base: "./", // served under any path
  esbuild: { jsx: "automatic" },
  resolve: {
    alias: [
      { find: /^@signals\/react\/apollo$/, replacement: dist("apollo.js") },
      { find: /^@signals\/react$/, replacement: dist("index.js") },
    ],
  },
  build: { emptyOutDir: true, sourcemap: false },
  logLevel: "warn",
});
