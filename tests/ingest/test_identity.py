"""`missing_client_identity`: which header a trusted proxy failed to forward, on plain facts."""

from __future__ import annotations

import pytest

from app.auth.authenticate import ANONYMOUS
from app.ingest.client_ip import ClientIpResolver
from app.ingest.identity import missing_client_identity
from app.ingest.request import RequestFacts

NODE_FETCH = "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0"


def facts(peer: str, forwarded_for: tuple[str, ...] = (), user_agent: str = FIREFOX) -> RequestFacts:
    return RequestFacts(ANONYMOUS, user_agent, peer, "admin.example.test", forwarded_for, ())


@pytest.mark.parametrize(
    ("trusted", "request_facts", "missing"),
    [
        # not from a trusted proxy: never judged, whatever it sends
        ([], facts("10.1.2.3", user_agent="node"), None),
        (["10.0.0.0/8"], facts("203.0.113.7", user_agent=""), None),
        (["0"], facts("10.1.2.3"), None),  # "0": no proxy in front
        # a trusted proxy that named the client
        (["10.0.0.0/8"], facts("10.1.2.3", ("198.51.100.23",)), None),
        (["10.0.0.0/8"], facts("10.1.2.3", ("198.51.100.23, 10.9.9.9",)), None),
        (["1"], facts("10.1.2.3", ("198.51.100.23",)), None),
        (["2001:db8:ffff::/48"], facts("2001:db8:ffff::1", ("[2001:db8::5]:4711",)), None),
        # a trusted proxy that did not
        (["10.0.0.0/8"], facts("10.1.2.3"), "X-Forwarded-For"),
        (["10.0.0.0/8"], facts("10.1.2.3", ("10.9.9.9",)), "X-Forwarded-For"),
        (["10.0.0.0/8"], facts("10.1.2.3", ("not-an-address",)), "X-Forwarded-For"),
        (["2"], facts("10.1.2.3", ("198.51.100.23",)), "X-Forwarded-For"),
        (["10.0.0.0/8"], facts("10.1.2.3", ("198.51.100.23",), "node"), "User-Agent"),
        (["10.0.0.0/8"], facts("10.1.2.3", ("198.51.100.23",), "Bun/1.1.30"), "User-Agent"),
        (["10.0.0.0/8"], facts("10.1.2.3", ("198.51.100.23",), NODE_FETCH), "User-Agent"),
        (["10.0.0.0/8"], facts("10.1.2.3", ("198.51.100.23",), "   "), "User-Agent"),
        # the address is checked first: both missing names the address
        (["10.0.0.0/8"], facts("10.1.2.3", (), "node"), "X-Forwarded-For"),
        # a browser whose string merely contains a runtime's name is a browser
        (["10.0.0.0/8"], facts("10.1.2.3", ("198.51.100.23",), FIREFOX + " node/20"), None),
    ],
)  # fmt: skip
def test_missing_client_identity(trusted: list[str], request_facts: RequestFacts, missing: str | None) -> None:
    assert missing_client_identity(ClientIpResolver(trusted), request_facts) == missing
