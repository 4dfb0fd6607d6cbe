"""The caller's IP address and the hashed host, trusting forwarded headers only from proxies.

`SIGNALS_TRUSTED_PROXIES` holds CIDRs/IPs and/or one hop count:

- CIDRs: when the direct peer is inside one of them, `X-Forwarded-For` is walked from the
  right, skipping addresses that are themselves trusted; the first untrusted address is the
  client. A peer outside them is the client, whatever headers it sent.
- a hop count N: N proxies stand in front of the service (0: none); the client is the N-th address
  from the right of `X-Forwarded-For`. Fewer entries than that means the request did not come
  through those proxies: `client_ip` gives the peer, and `names_client` says the client is
  unknown. With CIDRs as well, the peer must be inside them.
- nothing configured: the peer is the client and forwarded headers are ignored.

A request that came from a trusted proxy without naming its client (`names_client` False)
would hash the proxy: the ingest pipeline drops it as NO_CLIENT_IDENTITY rather than count
everyone behind that proxy as one person.

The host in the user hash is the admin app's host as this service saw it: the `Host`
header, or, from a trusted peer, the right-most `X-Forwarded-Host` (the value the nearest
proxy set), lower-cased and without a port.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence

from app.config import is_hop_count

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=4096)  # peers and proxies repeat
def parse_ip(value: str) -> IPAddress | None:
    """An address from a header entry: `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]:443`, `::1`.
    IPv4-mapped IPv6 (`::ffff:1.2.3.4`) becomes IPv4. None when it is not an address."""
    text = value.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def header_entries(values: Iterable[str]) -> list[str]:
    """All comma-separated entries of a (possibly repeated) header, in order."""
    return [entry.strip() for value in values for entry in value.split(",") if entry.strip()]


class ClientIpResolver:
    def __init__(self, trusted: Sequence[str]) -> None:
        self.networks: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(item, strict=False) for item in trusted if not is_hop_count(item)
        )
        hops = [int(item) for item in trusted if is_hop_count(item)]
        self.hops: int | None = max(hops) if hops else None

    def _in_networks(self, address: IPAddress | None) -> bool:
        return address is not None and any(address in network for network in self.networks)

    def trusts_peer(self, peer: str | None) -> bool:
        """Whether forwarded headers from this direct peer are believed."""
        if (self.hops is None and not self.networks) or self.hops == 0:  # "0": no proxy in front
            return False
        if self.hops is not None:
            return not self.networks or self._in_networks(parse_ip(peer or ""))
        return self._in_networks(parse_ip(peer or ""))

    def client_ip(self, peer: str | None, forwarded_for: Sequence[str]) -> str:
        """The client's address as a normalised string ("" when even the peer is unknown)."""
        peer_ip = parse_ip(peer or "")
        fallback = str(peer_ip) if peer_ip is not None else ""
        if not self.trusts_peer(peer):
            return fallback
        entries = header_entries(forwarded_for)
        if self.hops is not None:
            if len(entries) < self.hops:
                return fallback
            address = parse_ip(entries[-self.hops])
            return str(address) if address is not None else fallback
        client = fallback
        for entry in reversed(entries):
            address = parse_ip(entry)
            if address is None:
                break  # garbage from the untrusted side: keep the last trusted hop's view
            client = str(address)
            if not self._in_networks(address):
                break
        return client

    def names_client(self, peer: str | None, forwarded_for: Sequence[str]) -> bool:
        """False when a trusted proxy sent the request but `X-Forwarded-For` does not reach past
        the trusted proxies (absent, too short for the hop count, or ending in a trusted
        address): the address found would be a proxy's, the same for every user behind it."""
        if not self.trusts_peer(peer):
            return True  # a direct caller: the peer is the client
        if self.hops is not None and len(header_entries(forwarded_for)) < self.hops:
            return False
        client = parse_ip(self.client_ip(peer, forwarded_for))
        return client is not None and not self._in_networks(client)

    def host(self, peer: str | None, host_header: str | None, forwarded_host: Sequence[str]) -> str:
        value = host_header or ""
        if forwarded_host and self.trusts_peer(peer):
            entries = header_entries(forwarded_host)
            value = entries[-1] if entries else value
        return normalise_host(value)


def normalise_host(value: str) -> str:
    text = value.strip().lower()
    if text.startswith("["):  # [v6]:port
        return text.partition("]")[0] + "]"
    return text.rpartition(":")[0] if text.count(":") == 1 else text
