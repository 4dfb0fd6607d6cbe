"""Client IP and host resolution: trusted proxies by CIDR or hop count, X-Forwarded-For and
X-Forwarded-Host, and the address shapes proxies write."""

from __future__ import annotations

import pytest

from app.ingest.client_ip import ClientIpResolver, normalise_host, parse_ip


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "client"),
    [
        ([], "203.0.113.7", ["198.51.100.1"], "203.0.113.7"),
        (["10.0.0.0/8"], "10.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        (["10.0.0.0/8"], "10.0.0.1", ["198.51.100.1, 10.0.0.2, 10.0.0.3"], "198.51.100.1"),
        (["10.0.0.0/8"], "10.0.0.1", ["6.6.6.6, 198.51.100.1", "10.0.0.3"], "198.51.100.1"),  # repeated header
        (["10.0.0.0/8"], "10.0.0.1", ["10.0.0.9, 10.0.0.3"], "10.0.0.9"),  # all trusted: the left-most
        (["10.0.0.0/8"], "10.0.0.1", ["garbage, 10.0.0.3"], "10.0.0.3"),  # stop at garbage
        (["10.0.0.0/8"], "10.0.0.1", [], "10.0.0.1"),
        (["10.0.0.0/8"], "192.0.2.1", ["198.51.100.1"], "192.0.2.1"),  # untrusted peer
        (["1"], "192.0.2.1", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
        (["2"], "192.0.2.1", ["6.6.6.6, 198.51.100.1, 10.0.0.3"], "198.51.100.1"),
        (["3"], "192.0.2.1", ["198.51.100.1, 10.0.0.3"], "192.0.2.1"),  # fewer hops than configured
        (["1", "10.0.0.0/8"], "192.0.2.1", ["198.51.100.1"], "192.0.2.1"),  # hops, but only from these
        (["::1/128"], "::1", ["[2001:db8::7]:443"], "2001:db8::7"),
        (["10.0.0.0/8"], "::ffff:10.0.0.1", ["198.51.100.1:5555"], "198.51.100.1"),  # v4-mapped peer
        ([], "2001:DB8:0:0:0:0:0:7", [], "2001:db8::7"),  # normalised
        ([], None, ["198.51.100.1"], ""),
    ],
)
def test_client_ip(trusted: list[str], peer: str | None, forwarded: list[str], client: str) -> None:
    assert ClientIpResolver(trusted).client_ip(peer, forwarded) == client


def test_host_header_and_forwarded_host() -> None:
    resolver = ClientIpResolver(["10.0.0.0/8"])
    assert resolver.host("192.0.2.1", "Admin.Example.Test:8443", ["evil.test"]) == "admin.example.test"
    assert resolver.host("10.0.0.1", "internal:8080", ["spoof.test, Admin.Example.Test"]) == "admin.example.test"
    assert normalise_host("[2001:db8::1]:443") == "[2001:db8::1]"
    assert parse_ip("not an ip") is None
