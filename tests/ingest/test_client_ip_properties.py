"""Properties (hypothesis) of client IP and host resolution: every address shape proxies
write, garbage in X-Forwarded-For, CIDR and hop-count trust, and a client that cannot spoof
its address through trusted proxies. No network, no mocks."""

from __future__ import annotations

import ipaddress
import string

from hypothesis import example, given
from hypothesis import strategies as st

from app.ingest.client_ip import ClientIpResolver, header_entries, normalise_host, parse_ip
from testkit.strategies import huge_text, odd_strings, odd_text, props, surrogate_text

GARBAGE = ["unknown", "_hidden", "_gw1", "1.2.3", "256.1.1.1", "1.2.3.4.5", "localhost", "2001:db8::g", "1.2.3.4/24",
           "::ffff:", "fe80::1%", "fe80::1%a%b", "::1::", "0x7f.0.0.1", "01.02.03.004", "[]", "[]:80", "- ", "\x00",
           "1.2.3.4:80:90", "\u0661.\u0662.\u0663.\u0664", "\uff11.2.3.4", "1.2.3.4 5.6.7.8", ":::"]  # fmt: skip
garbage_entries = st.one_of(
    st.sampled_from(GARBAGE),
    odd_strings(1, 20),
).filter(lambda t: "," not in t and t.strip() and parse_ip(t) is None)

NETWORK_POOL = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.1", "100.64.0.0/10", "::1", "fd00::/8",
                "2001:db8:aa::/48", "fe80::/10"]  # fmt: skip
random_networks = st.one_of(
    st.builds(
        lambda a, p: str(ipaddress.ip_network(f"{a}/{p}", strict=False)), st.ip_addresses(v=4), st.integers(8, 32)
    ),
    st.builds(
        lambda a, p: str(ipaddress.ip_network(f"{a}/{p}", strict=False)), st.ip_addresses(v=6), st.integers(16, 128)
    ),
)
network_configs = st.lists(
    st.one_of(st.sampled_from(NETWORK_POOL), random_networks), min_size=1, max_size=3, unique=True
)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def canonical(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@st.composite
def rendered(draw: st.DrawFn, address: Address) -> tuple[str, str]:
    """(header entry, the normalised address it stands for): the shapes proxies write."""
    port = draw(st.integers(0, 65535))
    pad = draw(st.sampled_from(["", " ", "  ", "\t"]))
    if isinstance(address, ipaddress.IPv4Address):
        shape = draw(st.sampled_from(["plain", "port", "quoted", "mapped", "mapped-bracketed"]))
        text = {"plain": str(address), "port": f"{address}:{port}", "quoted": f'"{address}"',
                "mapped": f"::ffff:{address}", "mapped-bracketed": f"[::ffff:{address}]:{port}"}[shape]  # fmt: skip
        return pad + text + pad, str(address)
    shape = draw(
        st.sampled_from(["plain", "upper", "bracketed", "bracketed-port", "scoped", "scoped-bracketed", "exploded"])
    )
    if shape.startswith("scoped"):
        scoped = ipaddress.IPv6Address(f"{address}%eth0")
        text = f"[{scoped}]:{port}" if shape == "scoped-bracketed" else str(scoped)
        expected = canonical(scoped)
        return pad + text + pad, str(expected)
    text = {"plain": str(address), "upper": str(address).upper(), "bracketed": f"[{address}]",
            "bracketed-port": f"[{address}]:{port}", "exploded": address.exploded}[shape]  # fmt: skip
    return pad + text + pad, str(canonical(address))


@st.composite
def address_in(draw: st.DrawFn, networks: list[str]) -> Address:
    network = ipaddress.ip_network(draw(st.sampled_from(networks)), strict=False)
    return network.network_address + draw(st.integers(0, network.num_addresses - 1))


@st.composite
def chains(draw: st.DrawFn, networks: list[str]) -> list[tuple[str, str | None]]:
    """X-Forwarded-For entries: (text, normalised address or None for garbage)."""
    items = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["trusted", "trusted", "public", "garbage"] if networks else ["public", "garbage"]))
        if kind == "garbage":
            items.append((draw(garbage_entries), None))
        else:
            address = draw(address_in(networks)) if kind == "trusted" else draw(st.ip_addresses())
            items.append(draw(rendered(address)))
    return items


@st.composite
def headers(draw: st.DrawFn, items: list[tuple[str, str | None]]) -> list[str]:
    """The entries spread over repeated headers, with empty entries sprinkled in."""
    values: list[str] = []
    current: list[str] = []
    for text, _ in items:
        current.extend(draw(st.lists(st.sampled_from(["", " "]), max_size=1)))  # empty entries
        current.append(text)
        if draw(st.booleans()):
            values.append(draw(st.sampled_from([",", ", ", " ,"])).join(current))
            current = []
    if current or draw(st.booleans()):
        values.append(", ".join(current))
    return values


def trusted_by(networks: list[str], address: str) -> bool:
    plain = ipaddress.ip_address(address.partition("%")[0])
    return any(
        plain.version == net.version and plain in net
        for net in (ipaddress.ip_network(n, strict=False) for n in networks)
    )


@props(150)
@given(st.ip_addresses().flatmap(lambda a: st.tuples(st.just(canonical(a)), rendered(a))))
def test_parse_ip_reads_every_shape_proxies_write(case: tuple[Address, tuple[str, str]]) -> None:
    _address, (text, expected) = case
    parsed = parse_ip(text)
    assert parsed is not None and str(parsed) == expected
    assert parse_ip(str(parsed)) == parsed  # normalised form is a fixed point
    if isinstance(parsed, ipaddress.IPv6Address):
        assert parsed.ipv4_mapped is None  # mapped addresses become IPv4


@props(200)
@given(st.one_of(garbage_entries, odd_text, huge_text, surrogate_text, st.sampled_from(GARBAGE)))
def test_parse_ip_never_raises(text: str) -> None:
    parsed = parse_ip(text)
    assert parsed is None or isinstance(parsed, (ipaddress.IPv4Address, ipaddress.IPv6Address))


@props(100)
@given(st.lists(odd_strings(0, 30), max_size=5))
def test_header_entries_keep_order_and_drop_empties(values: list[str]) -> None:
    entries = header_entries(values)
    assert all(entry and entry == entry.strip() and "," not in entry for entry in entries)
    expected = [part.strip() for part in ",".join(values).split(",") if part.strip()]
    assert entries == expected


peers = st.one_of(st.none(), st.ip_addresses().map(str), garbage_entries)
Chain = list[tuple[str, str | None]]


@st.composite
def scenarios(draw: st.DrawFn, networks: list[str]) -> tuple[str | None, Chain, list[str], Chain]:
    """(peer, forwarded entries with what each stands for, the headers carrying them,
    more entries a client could prepend)."""
    if networks and draw(st.booleans()):
        peer: str | None = str(draw(address_in(networks)))
    else:
        peer = draw(peers)
    items = draw(chains(networks))
    return peer, items, draw(headers(items)), draw(chains(networks))


def with_networks(networks: st.SearchStrategy[list[str]]) -> st.SearchStrategy:
    return networks.flatmap(lambda nets: st.tuples(st.just(nets), scenarios(nets)))


def peer_text_of(peer: str | None) -> str:
    parsed = parse_ip(peer) if peer is not None else None
    return str(parsed) if parsed is not None else ""


def possible_results(peer: str | None, items: Chain) -> set[str]:
    return {peer_text_of(peer)} | {address for _, address in items if address is not None}


@props(60)
@given(scenarios([]), st.text(string.ascii_letters + ".:-", max_size=20))
def test_without_trusted_proxies_the_peer_is_the_client(case: tuple, host: str) -> None:
    peer, _, forwarded, _ = case
    resolver = ClientIpResolver([])
    assert resolver.client_ip(peer, forwarded) == peer_text_of(peer)
    assert not resolver.trusts_peer(peer)
    assert resolver.host(peer, host, ["spoof.example"]) == normalise_host(host)


SCOPED_PROXY = (["fe80::/10"], ("fe80::1%eth0", [("198.51.100.7", "198.51.100.7"), ("fe80::2%eth0", "fe80::2%eth0")],
                                ["198.51.100.7, [fe80::2%eth0]:8080"], []))  # fmt: skip


@props(100)
@given(with_networks(network_configs))
@example(SCOPED_PROXY)
@example((["10.0.0.0/8"], ("10.0.0.1", [("198.51.100.1", "198.51.100.1"), ("garbage", None), ("10.0.0.3", "10.0.0.3")],
                           ["198.51.100.1, garbage, 10.0.0.3"], [])))  # fmt: skip
def test_cidr_trust_picks_the_first_untrusted_address_from_the_right(case: tuple) -> None:
    networks, (peer, items, forwarded, _) = case
    result = ClientIpResolver(networks).client_ip(peer, forwarded)
    peer_text = peer_text_of(peer)
    assert result in possible_results(peer, items)  # always the peer or a forwarded entry
    if not peer_text or not trusted_by(networks, peer_text):
        assert result == peer_text  # an untrusted peer's headers are ignored
        return
    # walk from the right over trusted proxies: the first entry that is not one decides
    suffix = 0
    while suffix < len(items) and items[-1 - suffix][1] is not None and trusted_by(networks, items[-1 - suffix][1]):
        suffix += 1
    if suffix == len(items):  # every entry is a trusted proxy: the left-most one (or the peer)
        assert result == (items[0][1] if items else peer_text)
        return
    decider = items[-1 - suffix][1]
    if decider is not None:  # an untrusted address: that is the client, whatever is to its left
        assert result == decider
        assert not trusted_by(networks, result)
    else:  # garbage (from the untrusted side): the last trusted hop's view; nothing left of it counts
        assert result == (items[-suffix][1] if suffix else peer_text)
        assert trusted_by(networks, result)


@props(60)
@given(network_configs, st.data())
def test_a_client_cannot_spoof_its_ip_through_trusted_proxies(networks: list[str], data: st.DataObject) -> None:
    """Whatever the client puts in X-Forwarded-For ends up left of the address the first
    trusted proxy appended, and so never changes the result."""
    client = data.draw(st.ip_addresses().filter(lambda a: not trusted_by(networks, str(canonical(a)))), label="client")
    proxies = data.draw(st.lists(address_in(networks), max_size=3), label="proxies")
    peer = str(data.draw(address_in(networks), label="peer"))
    spoofed = data.draw(chains(networks), label="client-supplied")
    honest = [str(client), *map(str, proxies)]
    resolver = ClientIpResolver(networks)
    with_spoof = [", ".join([*(text for text, _ in spoofed), *honest])]
    assert (
        resolver.client_ip(peer, with_spoof) == resolver.client_ip(peer, [", ".join(honest)]) == str(canonical(client))
    )


@props(100)
@given(st.integers(0, 4), with_networks(st.one_of(st.just([]), network_configs)))
@example(0, ([], ("192.0.2.1", [], [], [])))  # "0" hops and no X-Forwarded-For: the peer, no IndexError
@example(
    0, ([], ("192.0.2.1", [("6.6.6.6", "6.6.6.6")], ["6.6.6.6"], []))
)  # "0" hops: the peer, never the spoofable left-most entry
def test_hop_count_takes_the_nth_entry_from_the_right(hops: int, case: tuple) -> None:
    networks, (peer, items, forwarded, prefix) = case
    resolver = ClientIpResolver([str(hops), *networks])
    result = resolver.client_ip(peer, forwarded)
    peer_text = peer_text_of(peer)
    assert result in possible_results(peer, items)
    if hops == 0 or len(items) < hops or (networks and (not peer_text or not trusted_by(networks, peer_text))):
        assert result == peer_text  # no proxies in front, too few hops, or an untrusted peer
        return
    expected = items[-hops][1]
    assert result == (expected if expected is not None else peer_text)
    # what the client prepends cannot move the N-th entry from the right
    if prefix:
        assert resolver.client_ip(peer, [", ".join(text for text, _ in prefix), *forwarded]) == result


@props(100)
@given(
    st.one_of(st.just([]), network_configs),
    st.one_of(st.none(), st.integers(0, 3)),
    peers,
    st.lists(st.text(string.ascii_letters + ".:-[]", max_size=20), max_size=3),
    st.one_of(st.none(), st.text(string.ascii_letters + string.digits + ".:-[]", max_size=30)),
)
def test_host_is_lowercase_and_portless(
    networks: list[str], hops: int | None, peer: str | None, forwarded_host: list[str], host_header: str | None
) -> None:
    resolver = ClientIpResolver([*([] if hops is None else [str(hops)]), *networks])
    host = resolver.host(peer, host_header, forwarded_host)
    assert host == host.lower() == host.strip()
    if not resolver.trusts_peer(peer):
        assert host == normalise_host(host_header or "")
