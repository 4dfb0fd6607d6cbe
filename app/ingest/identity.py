"""Whether a request from a trusted proxy still tells its users apart.

A person is counted as host + client address + browser (app/privacy/hashing.py). Behind a
gateway those reach Signals only when the gateway forwards them: the client's address
appended to `X-Forwarded-For`, and its `User-Agent`. A gateway that forwards neither sends
its own address and its own HTTP client's User-Agent (Hive Gateway: `node`), and every user
behind it would hash to the same person. Such requests are dropped (NO_CLIENT_IDENTITY)
with the header the gateway must forward, instead of being counted wrongly.

Only requests from a trusted proxy (`SIGNALS_TRUSTED_PROXIES`) are judged: from any other
peer, the peer is the client and its User-Agent is its own (the bot filter judges that).
"""

from __future__ import annotations

import re

from app.ingest.client_ip import ClientIpResolver
from app.ingest.request import RequestFacts

# The User-Agents of the HTTP clients gateways are built on, when they send their own:
# Node's fetch ("node"), undici, node-fetch, axios, Bun, Deno and Go's net/http.
PROXY_USER_AGENT = re.compile(r"(?:node|undici|node-fetch|axios|bun|deno|go-http-client)(?:[/ ].*)?", re.IGNORECASE)

FORWARD_ADDRESS = "X-Forwarded-For"
FORWARD_USER_AGENT = "User-Agent"


def missing_client_identity(resolver: ClientIpResolver, request: RequestFacts) -> str | None:
    """The header a trusted proxy failed to forward (`X-Forwarded-For` or `User-Agent`), or
    None when the request names its client (or did not come from a trusted proxy)."""
    if not resolver.trusts_peer(request.peer):
        return None
    if not resolver.names_client(request.peer, request.forwarded_for):
        return FORWARD_ADDRESS
    user_agent = request.user_agent.strip()
    if not user_agent or PROXY_USER_AGENT.fullmatch(user_agent):
        return FORWARD_USER_AGENT
    return None


def advice(header: str) -> str:
    """What the operator must change, for the log line and the caller's message."""
    if header == FORWARD_ADDRESS:
        return (
            "the proxy in front of Signals (SIGNALS_TRUSTED_PROXIES) did not append the client's address to "
            "X-Forwarded-For, so every user behind it would count as one person: make it append the peer address"
        )
    return (
        "the proxy in front of Signals (SIGNALS_TRUSTED_PROXIES) sent its own User-Agent instead of the client's, "
        "so every user behind it would count as one person: make it forward the client's User-Agent"
    )
