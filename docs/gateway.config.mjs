// Hive Gateway in front of Signals and your other subgraphs:
//   JWKS_URL=... HMAC_SECRET=... npx hive-gateway supergraph supergraph.graphql --config-path gateway.config.mjs
// tests/e2e/test_federation.py runs this very file, and checks the README shows it unchanged.
import { createRemoteJwksSigningKeyProvider, defineConfig, extractFromHeader } from "@graphql-hive/gateway";

export const gatewayConfig = defineConfig({
  jwt: {
    // your identity provider's keys (Signals verifies the forwarded token against the same JWKS)
    signingKeyProviders: [createRemoteJwksSigningKeyProvider({ jwksUri: process.env.JWKS_URL })],
    tokenLookupLocations: [extractFromHeader({ name: "authorization", prefix: "Bearer" })],
    forward: { payload: false, token: true }, // -> extensions.jwt = { token: { value, prefix } }
    reject: { missingToken: false, invalidToken: true },
  },
  hmacSignature: { secret: process.env.HMAC_SECRET }, // = SIGNALS_GATEWAY_HMAC_SECRET
  // Signals counts a person as host + address + browser: pass the caller's on, as a proxy
  // does. Without these every user behind the gateway would look like one ("node" from the
  // gateway's address), so Signals drops such events as NO_CLIENT_IDENTITY.
  propagateHeaders: {
    fromClientToSubgraphs: ({ request, context }) => {
      const peer = context.req?.socket?.remoteAddress; // who connected to the gateway
      const chain = request.headers.get("x-forwarded-for");
      return {
        "user-agent": request.headers.get("user-agent") ?? undefined,
        // append the peer, never pass the caller's own chain on alone: Signals believes only
        // the entries added by the proxies in SIGNALS_TRUSTED_PROXIES (list the gateway there)
        "x-forwarded-for": peer ? (chain ? `${chain}, ${peer}` : peer) : undefined,
        "x-forwarded-host": request.headers.get("host") ?? undefined,
      };
    },
  },
});
