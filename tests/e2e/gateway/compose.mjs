// Composes federation subgraphs with @theguild/federation-composition (the library Hive uses).
// stdin: [{"name", "url", "sdl"}]   stdout: {"errors": [messages], "supergraphSdl": string|null}
import { parse } from "graphql";
import { composeServices } from "@theguild/federation-composition";

const input = JSON.parse(await new Promise((resolve) => {
  let data = "";
  process.stdin.on("data", (chunk) => (data += chunk));
  process.stdin.on("end", () => resolve(data));
}));
const result = composeServices(input.map((s) => ({ name: s.name, url: s.url, typeDefs: parse(s.sdl) })));
process.stdout.write(JSON.stringify({
  errors: (result.errors ?? []).map((e) => e.message),
  supergraphSdl: result.supergraphSdl ?? null,
}));
