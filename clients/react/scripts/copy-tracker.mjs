// tsc compiles src/*.ts(x) to dist/; the tracker itself is plain JavaScript (src/signals.js is
// a link to Signals' own app/static/signals.js) with hand-written types: copy both as they are.
import fs from "node:fs";

const here = new URL("../", import.meta.url);
for (const name of ["signals.js", "signals.d.ts"]) {
  fs.copyFileSync(new URL(`src/${name}`, here), new URL(`dist/${name}`, here));
}
