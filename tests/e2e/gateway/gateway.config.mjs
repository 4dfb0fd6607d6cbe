// Hive Gateway configuration for the end-to-end test (tests/e2e/test_federation.py).
// The gateway verifies the caller's HS256 JWT, forwards the token itself to the subgraph in
// extensions.jwt, and signs each subgraph request (extensions["hmac-signature"]).
// Everything comes from the environment the test sets.
import { createInlineSigningKeyProvider, defineConfig, extractFromHeader } from "@graphql-hive/gateway";

export const gatewayConfig = defineConfig({
  supergraph: process.env.SIGNALS_E2E_SUPERGRAPH,
  jwt: {
    signingKeyProviders: [createInlineSigningKeyProvider(process.env.SIGNALS_E2E_JWT_SECRET)],
    tokenLookupLocations: [extractFromHeader({ name: "authorization", prefix: "Bearer" })],
    forward: { payload: false, token: true, extensionsFieldName: "jwt" },
    reject: { missingToken: false, invalidToken: true },
  },
  hmacSignature: { secret: process.env.SIGNALS_E2E_HMAC_SECRET },
  // trackEvent hashes the caller's User-Agent and IP: pass them on (the IP as set by the
  // load balancer in front of the gateway; list the gateway in SIGNALS_TRUSTED_PROXIES).
  propagateHeaders: {
    fromClientToSubgraphs: ({ request }) => ({
      "user-agent": request.headers.get("user-agent") ?? undefined,
      "x-forwarded-for": request.headers.get("x-forwarded-for") ?? undefined,
    }),
  },
  disableWebsockets: true,
});
