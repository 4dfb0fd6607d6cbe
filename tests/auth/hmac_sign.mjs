// Signs subgraph requests with @graphql-mesh/hmac-upstream-signature's own plugin code,
// exactly as Hive Gateway runs it. stdin: {"secret": "...", "requests": [{"query", "variables"}]}
// stdout: [{"query": <printed document as sent upstream>, "variables", "signature", "serialized"}]
import { parse } from "graphql";
import { defaultParamsSerializer, useHmacUpstreamSignature } from "@graphql-mesh/hmac-upstream-signature";
import { serializeExecutionRequest } from "@graphql-tools/executor-common";

const input = JSON.parse(await new Promise((resolve) => {
  let data = "";
  process.stdin.on("data", (chunk) => (data += chunk));
  process.stdin.on("end", () => resolve(data));
}));
const plugin = useHmacUpstreamSignature({ secret: input.secret });
plugin.onYogaInit({ yoga: { fetchAPI: { TextEncoder, crypto: globalThis.crypto, btoa } } });
const log = { child: () => log, debug: () => {} };
const out = [];
for (const request of input.requests) {
  const executionRequest = { document: parse(request.query), variables: request.variables };
  await plugin.onSubgraphExecute({ subgraphName: "signals", subgraph: {}, executionRequest, log });
  // what the gateway's HTTP transport puts in the upstream request body
  const body = serializeExecutionRequest({ executionRequest });
  out.push({
    query: body.query,
    variables: body.variables ?? null,
    signature: executionRequest.extensions["hmac-signature"],
    serialized: defaultParamsSerializer({ query: body.query, variables: body.variables }),
  });
}
process.stdout.write(JSON.stringify(out));
