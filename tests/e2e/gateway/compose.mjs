// Composes federation subgraphs with a real composition library: The Guild's
// (@theguild/federation-composition, what Hive uses) or Apollo's (@apollo/composition).
// stdin: {"library": "guild" | "apollo", "subgraphs": [{"name", "url", "sdl"}]}
// stdout: {"errors": [messages], "supergraphSdl": string|null}
import { parse } from "graphql";
import { composeServices as composeApollo } from "@apollo/composition";
import { composeServices as composeGuild } from "@theguild/federation-composition";

const input = JSON.parse(await new Promise((resolve) => {
  let data = "";
  process.stdin.on("data", (chunk) => (data += chunk));
  process.stdin.on("end", () => resolve(data));
}));
const compose = { apollo: composeApollo, guild: composeGuild }[input.library];
if (!compose) throw new Error(`unknown composition library ${input.library}`);
const result = compose(input.subgraphs.map((s) => ({ name: s.name, url: s.url, typeDefs: parse(s.sdl) })));
process.stdout.write(JSON.stringify({
  errors: (result.errors ?? []).map((e) => e.message),
  supergraphSdl: result.supergraphSdl ?? null,
}));
