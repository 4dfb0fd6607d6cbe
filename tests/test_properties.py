"""Property tests (hypothesis) over the pure units of the ingest pipeline: validation,
hashing, client IP resolution and User-Agent inspection. No database, no mocks.

Every property states behaviour, not a hard-coded output: what may be accepted, what must be
refused, what the resolved IP may be, what the privacy hash must and must not reveal. The
strategies lean towards hostile input: arbitrary JSON, odd Unicode, lone control characters,
100 KB strings, 500-deep (and deeper) nesting, scoped/mapped/bracketed IPs, garbage in
X-Forwarded-For, binary-ish User-Agent strings.

Runs derandomized (fixed seed per test, no example database) so the suite does not flake;
`@example` pins the inputs that once exposed a bug.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import string
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.config import load_settings
from app.ingest.client_ip import ClientIpResolver, header_entries, normalise_host, parse_ip
from app.ingest.useragents import FAMILY_MAX_CHARS, UA_MAX_CHARS, ClientAgent, UserAgentInspector
from app.ingest.validation import (
    DESCRIPTION_MAX_BYTES,
    DESCRIPTION_MAX_DEPTH,
    EMAIL_SHAPED,
    ROUTE_MAX_CHARS,
    EventValidator,
    Problem,
    _pii_key,
    check_description,
    compact_json,
    parse_entity_id_patterns,
)
from app.privacy.hashing import daily_salt, normalised_user_agent, user_hash, utc_day
from tests.test_ingest_parts import AGENTS


def props(max_examples: int) -> settings:
    """Bounded, deterministic: the whole file stays well under 20 s on two cores."""
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None)


# ============================================================================================
# strategies
# ============================================================================================

NO_SURROGATES = st.characters(blacklist_categories=("Cs",))
ODD_CHARS = st.sampled_from(
    [
        "\x00", "\x01", "\x1f", "\x7f", "\x85", "\x9f", "\u00a0", "\u200b", "\u200d", "\u2028", "\u2029",
        "\u202e", "\u2066", "\ufeff", "\ufffd", "\uffff", "\U0001f600", "\U0001f1fa", "\u0301",
        "\u0130", "\u0131", "\u00df", "\u017f", "\u212a", "\uff45", "\U0001d41e", "\u0663", "\u4e2d",
        "@", "/", "?", "#", "%", ":", "[", "]", ",", ";", '"', "\\", " ", "\t", "\n", "\r",
    ]
)  # fmt: skip


def odd_strings(min_size: int = 0, max_size: int = 40) -> st.SearchStrategy[str]:
    """Unicode without lone surrogates, heavy on controls, invisibles, confusables, delimiters."""
    return st.text(st.one_of(NO_SURROGATES, ODD_CHARS), min_size=min_size, max_size=max_size)


odd_text = odd_strings()
lone_control = st.sampled_from([chr(c) for c in [*range(0x20), 0x7F]])
surrogate_text = st.builds(
    lambda a, s, b: a + s + b, odd_text, st.sampled_from(["\ud800", "\udfff", "\udc80"]), odd_text
)
huge_text = st.builds(  # 20-100 K repetitions: up to ~400 KB of UTF-8
    lambda chunk, n: chunk * n, st.sampled_from(["x", "é", "\U0001f600", "a@b.io ", "/"]), st.integers(20_000, 100_000)
)

ORDINARY_KEYS = ["button", "fileName", "rows", "zip_export", "tooltip", "recipientCount", "filter", "tab", "ship",
                 "page", "sort", "durationMs", "variant", "step", "column", "ok"]  # fmt: skip
PII_PART_WORDS = ["email", "phone", "password", "secret", "token", "address", "street", "birth", "surname",
                  "first name", "last name", "full name", "user name", "user id"]  # fmt: skip
PII_ALONE_WORDS = ["ip", "ssn", "dob", "mail", "mobile", "tel", "uid"]
FILLER_WORDS = ["client", "billing", "x", "auth", "country", "hash", "primary", "v2", "count", "source"]


def _render_words(words: list[str], style: str, case_bits: list[bool]) -> str:
    """Join words the way real code spells keys."""
    if style in ("_", "-", " ", "."):
        key = style.join(words)
    elif style == "camel":
        key = words[0].lower() + "".join(w.capitalize() for w in words[1:])
    elif style == "acronym":  # `clientIPHash`: short words written as acronyms
        key = words[0].lower() + "".join(w.upper() if len(w) <= 3 else w.capitalize() for w in words[1:])
    else:  # "run": no word boundaries at all
        key = "".join(words)
    if style in ("_", "-", " ", ".") and case_bits:  # case-insensitive means any casing
        key = "".join(c.upper() if case_bits[i % len(case_bits)] else c.lower() for i, c in enumerate(key))
    return key


@st.composite
def pii_keys(draw: st.DrawFn) -> tuple[str, bool]:
    """(key, must_be_refused): a PII word among filler words, in some spelling.

    Keys containing a PII part (`customerEmail`) must be refused in every spelling; keys where
    a short PII word stands alone (`ip_country`, `client IP`) only when the word boundaries
    are visible (a separator, camelCase or an acronym), not when run together (`clientip`)."""
    alone = draw(st.booleans())
    pii = draw(st.sampled_from(PII_ALONE_WORDS if alone else PII_PART_WORDS))
    before = draw(st.lists(st.sampled_from(FILLER_WORDS), max_size=2))
    after = draw(st.lists(st.sampled_from(FILLER_WORDS), max_size=2))
    style = draw(st.sampled_from(["_", "-", " ", ".", "camel", "acronym", "run"]))
    if style == "acronym":  # `clientXIP` has no visible boundary: next to an acronym, only real words
        before, after = ([w for w in ws if w.isalpha() and len(w) > 1] for ws in (before, after))
    words = [*before, *pii.split(" "), *after] if not alone else [*before, pii, *after]
    case_bits = draw(st.lists(st.booleans(), max_size=6))
    key = _render_words(words, style, case_bits)
    return key, (not alone) or style != "run"


json_keys = st.one_of(
    st.sampled_from(ORDINARY_KEYS),
    pii_keys().map(lambda pair: pair[0]),
    st.text(NO_SURROGATES, max_size=12),
    odd_text,
)
json_strings = st.one_of(
    st.text(NO_SURROGATES, max_size=30),
    odd_text,
    st.emails().map(lambda e: f"contact {e} now"),
    st.sampled_from(["/orders/:id", "a@b", "x@y.z", "no-reply at example dot com", "", "\x00"]),
)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), json_strings
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(json_keys, children, max_size=5),
    max_leaves=10,
)
json_objects = st.dictionaries(json_keys, json_values, max_size=4)


def nested(depth: int, kind: str) -> object:
    """`depth` levels of lists or dicts, built without recursion."""
    value: object = 1
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


deep_descriptions = st.builds(
    lambda depth, kind, wrap: {"d": nested(depth, kind)} if wrap else nested(depth, "dict"),
    st.sampled_from(
        [DESCRIPTION_MAX_DEPTH - 1, DESCRIPTION_MAX_DEPTH, DESCRIPTION_MAX_DEPTH + 1, 30, 500, 1_500, 50_000]
    ),
    st.sampled_from(["list", "dict"]),
    st.booleans(),
)
hostile_descriptions = st.one_of(
    json_objects,
    json_values,  # not only objects: lists, strings, numbers, null
    deep_descriptions,
    huge_text.map(lambda text: {"t": text}),
    st.dictionaries(json_keys, st.sampled_from([float("nan"), float("inf"), -float("inf")]), min_size=1, max_size=2),
    st.builds(lambda k, s: {k: s}, json_keys, surrogate_text),
    st.builds(lambda s: {s: 1}, surrogate_text),
    st.integers(min_value=10**5000, max_value=10**5000 + 10).map(lambda n: {"n": n}),  # > int str digit limit
)

# ============================================================================================
# independent models (deliberately not the module's code)
# ============================================================================================

REASONS = {"INVALID_INPUT", "DESCRIPTION_TOO_LARGE", "PII_KEY", "UNKNOWN_APP", "UNKNOWN_EVENT_TYPE",
           "UNKNOWN_ENTITY_TYPE", "INVALID_ENTITY"}  # fmt: skip
MUST_REFUSE_FRAGMENTS = ("email", "password", "phone", "secret", "token", "address", "birth", "surname",
                         "firstname", "lastname", "username", "userid")  # fmt: skip
MUST_REFUSE_WORDS = {"ip", "ssn", "dob"}


def walk(value: object) -> list[tuple[object, int]]:
    """Every node with its depth (root 0), iteratively."""
    out, stack = [], [(value, 0)]
    while stack:
        node, depth = stack.pop()
        out.append((node, depth))
        if isinstance(node, dict):
            stack.extend((item, depth + 1) for item in node.values())
        elif isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)
    return out


def all_keys(value: object) -> list[str]:
    return [key for node, _ in walk(value) if isinstance(node, dict) for key in node]


def obviously_pii(key: str) -> bool:
    """A weaker, independent PII test: anything it flags the module must refuse."""
    lowered = key.lower()
    flat = "".join(c for c in lowered if c in string.ascii_lowercase + string.digits)
    if any(fragment in flat for fragment in MUST_REFUSE_FRAGMENTS):
        return True
    return any(word in MUST_REFUSE_WORDS for word in re.split(r"[^a-z0-9]+", lowered))


def assert_problem(problem: object) -> None:
    assert isinstance(problem, Problem)
    assert problem.reason in REASONS
    assert isinstance(problem.message, str) and problem.message.strip()


# ============================================================================================
# validation: check_description, compact_json
# ============================================================================================


@props(150)
@given(hostile_descriptions)
@example({"client_iP": "x"})  # was accepted: the stand-alone word check was case-sensitive
@example({"clientIPHash": 1})  # was accepted: an acronym followed by a word was one word
@example({"d": nested(500, "list")})
@example(nested(500, "dict"))
@example({"d": nested(100_000, "list")})  # json's own recursion limit: refused, not raised
def test_check_description_never_raises_and_accepts_only_safe_objects(description: object) -> None:
    started = time.monotonic()
    stored, problem = check_description(description)
    assert time.monotonic() - started < 5, "check_description must not hang"
    if description is None:
        assert (stored, problem) == (None, None)
        return
    assert (stored is None) != (problem is None), "exactly one of stored form and problem"
    if problem is not None:
        assert_problem(problem)
        assert problem.reason in {"INVALID_INPUT", "DESCRIPTION_TOO_LARGE", "PII_KEY"}
        return
    # accepted: a JSON object that round-trips, within the size and depth limits ...
    assert isinstance(stored, str) and isinstance(description, dict)
    assert json.loads(stored) == description
    assert len(stored.encode("utf-8")) <= DESCRIPTION_MAX_BYTES
    assert max(depth for _, depth in walk(description)) <= DESCRIPTION_MAX_DEPTH
    # ... with no PII-shaped key at any depth (module's definition and an independent one) ...
    for key in all_keys(description):
        assert not _pii_key(key), key
        assert not obviously_pii(key), key
        assert "\x00" not in key and not EMAIL_SHAPED.search(key)
    # ... and no email-shaped or NUL-bearing string anywhere.
    for node, _ in walk(description):
        if isinstance(node, str):
            assert "\x00" not in node and not EMAIL_SHAPED.search(node)


@props(80)
@given(json_objects)
def test_check_description_decides_exactly_by_its_documented_rules(description: dict) -> None:
    """Accepted iff: serializable, <= 2 KiB compact UTF-8, <= 16 deep, no PII-shaped key,
    no email-shaped or NUL-bearing key or string. The reason names the rule that failed."""
    stored, problem = check_description(description)
    try:
        size = len(json.dumps(description, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode())
    except (ValueError, UnicodeEncodeError):
        assert problem is not None and problem.reason == "INVALID_INPUT"
        return
    if size > DESCRIPTION_MAX_BYTES:
        assert problem is not None and problem.reason == "DESCRIPTION_TOO_LARGE"
        assert str(size) in problem.message
        return
    nodes = walk(description)
    too_deep = max(depth for _, depth in nodes) > DESCRIPTION_MAX_DEPTH
    keys = all_keys(description)
    pii = any(_pii_key(key) for key in keys)
    bad_text = any("\x00" in k or EMAIL_SHAPED.search(k) for k in keys) or any(
        isinstance(node, str) and ("\x00" in node or EMAIL_SHAPED.search(node)) for node, _ in nodes
    )
    assert (problem is None) == (not (too_deep or pii or bad_text)), (problem, too_deep, pii, bad_text)
    if problem is None:
        assert stored == compact_json(description)
    elif pii and not (too_deep or bad_text):
        assert problem.reason == "PII_KEY"
    elif not pii:
        assert problem.reason == "INVALID_INPUT"


@props(200)
@given(pii_keys(), st.integers(0, 4), st.sampled_from(["dict", "list"]))
@example(("client_iP", True), 0, "dict")
@example(("user_sSN", True), 2, "list")
@example(("clientIPHash", True), 1, "dict")
def test_pii_shaped_keys_are_refused_at_any_depth(pair: tuple[str, bool], depth: int, kind: str) -> None:
    key, must_refuse = pair
    inner: object = {key: "v"}
    for _ in range(depth):
        inner = {"wrap": inner} if kind == "dict" else {"rows": [0, inner]}
    stored, problem = check_description(inner)  # type: ignore[arg-type]
    if must_refuse or obviously_pii(key):
        assert stored is None and problem is not None and problem.reason == "PII_KEY", key
        assert "personal data" in problem.message


@props(150)
@given(st.dictionaries(st.sampled_from(ORDINARY_KEYS), st.text(string.ascii_letters + " -_/", max_size=20), max_size=8))
def test_ordinary_descriptions_are_stored_compactly(description: dict) -> None:
    stored, problem = check_description(description)
    assert problem is None and stored is not None
    assert stored == json.dumps(description, separators=(",", ":"))
    assert json.loads(stored) == description


@props(80)
@given(json_values)
def test_compact_json_is_compact_and_round_trips(value: object) -> None:
    text = compact_json(value)
    assert json.loads(text) == value
    assert compact_json(json.loads(text)) == text  # a fixed point: nothing left to compact
    assert len(text) <= len(json.dumps(value, ensure_ascii=False))  # never bigger than the default form


@props(50)
@given(st.sampled_from([float("nan"), float("inf"), -float("inf")]), st.integers(0, 3))
def test_compact_json_refuses_nan_and_infinity(number: float, copies: int) -> None:
    with pytest.raises(ValueError):
        compact_json({"n": [1, *[number] * (copies + 1)]})


# ============================================================================================
# validation: allowlists, entity ids, text fields, entity id patterns
# ============================================================================================

ALLOWED_APPS = ["admin-console", "billing-admin"]
ALLOWED_EVENTS = ["click", "view", "export"]
ALLOWED_ENTITIES = ["order", "customer", "invoice"]
OPEN = EventValidator(load_settings(allowed_apps=[], allowed_event_types=[], allowed_entity_types=[]))
CLOSED = EventValidator(
    load_settings(
        allowed_apps=ALLOWED_APPS,
        allowed_event_types=ALLOWED_EVENTS,
        allowed_entity_types=ALLOWED_ENTITIES,
        entity_id_patterns="order=^[0-9]{1,12}$, customer=uuid",
    )
)
NAME_CHARS = string.ascii_letters + string.digits + "._:-"


def is_name(value: str, max_chars: int = 64) -> bool:
    return (
        0 < len(value) <= max_chars
        and value[0] in string.ascii_letters + string.digits
        and all(c in NAME_CHARS for c in value)
    )


any_text = st.one_of(
    st.text(NAME_CHARS, min_size=1, max_size=70),
    odd_text,
    surrogate_text,
    huge_text,
    st.builds(
        lambda a, c, b: a + c + b, st.text(NAME_CHARS, max_size=10), lone_control, st.text(NAME_CHARS, max_size=10)
    ),
    st.sampled_from([*ALLOWED_APPS, *ALLOWED_EVENTS, *ALLOWED_ENTITIES, "", " ", "-x", "a" * 64, "a" * 65]),
)


@props(300)
@given(any_text, st.sampled_from(["app", "event_type"]), st.booleans())
def test_names_are_checked_without_raising(value: str, kind: str, closed: bool) -> None:
    validator = CLOSED if closed else OPEN
    problem = getattr(validator, kind)(value)
    allowed = {"app": ALLOWED_APPS, "event_type": ALLOWED_EVENTS}[kind]
    if problem is None:
        assert value in allowed if closed else is_name(value)
    else:
        assert_problem(problem)
        assert not (value in allowed if closed else is_name(value))
        if len(value) >= 8:
            assert value not in problem.message  # the caller's input is not echoed back


@props(300)
@given(st.one_of(st.none(), any_text), st.one_of(st.none(), any_text, st.uuids().map(str), st.integers(0, 10**14).map(str)),
       st.booleans())  # fmt: skip
def test_entities_are_checked_without_raising(entity_type: str | None, entity_id: str | None, closed: bool) -> None:
    validator = CLOSED if closed else OPEN
    problem = validator.entity(entity_type, entity_id)
    if entity_type is None and entity_id is not None:
        assert problem is not None and problem.reason == "INVALID_ENTITY"
    if problem is not None:
        assert_problem(problem)
        return
    if entity_type is None:
        return
    assert entity_type in ALLOWED_ENTITIES if closed else is_name(entity_type)
    if entity_id is None:
        return
    if closed and entity_type == "order":
        assert entity_id.isascii() and entity_id.isdigit() and len(entity_id) <= 12
    elif closed and entity_type == "customer":
        assert re.fullmatch(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", entity_id)
    else:
        assert is_name(entity_id, 128)


route_segments = st.text(string.ascii_letters + string.digits + "-_.:~", min_size=1, max_size=12)
clean_routes = st.lists(route_segments, min_size=0, max_size=8).map(lambda parts: "/" + "/".join(parts))


@props(200)
@given(st.one_of(st.none(), clean_routes, any_text), st.one_of(st.none(), any_text), any_text)
def test_text_fields_are_checked_without_raising(
    route: str | None, session_id: str | None, client_event_id: str
) -> None:
    problem = EventValidator.fields(route, session_id, client_event_id)
    if problem is not None:
        assert_problem(problem)
        assert problem.reason == "INVALID_INPUT"
        return
    assert is_name(client_event_id, 128)
    assert session_id is None or is_name(session_id, 128)
    if route is not None:
        assert len(route) <= ROUTE_MAX_CHARS
        assert not any(ord(c) < 0x20 or c == "\x7f" for c in route)
        route.encode("utf-8")  # no lone surrogates
        assert "?" not in route and "#" not in route
        assert not EMAIL_SHAPED.search(route)


@props(200)
@given(clean_routes, lone_control, st.integers(0, 100))
def test_a_lone_control_character_anywhere_in_a_route_is_refused(route: str, control: str, at: int) -> None:
    at %= len(route) + 1
    assert EventValidator.fields(route, None, "evt-1") is None
    problem = EventValidator.fields(route[:at] + control + route[at:], None, "evt-1")
    assert problem is not None and problem.reason == "INVALID_INPUT"


@props(100)
@given(clean_routes, st.sampled_from(["?q=1", "#top", "?", "/x@example.com", "\ud800"]), huge_text)
def test_routes_with_queries_emails_bad_unicode_or_huge_are_refused(route: str, suffix: str, huge: str) -> None:
    for bad in (route + suffix, "/" + huge):
        problem = EventValidator.fields(bad, None, "evt-1")
        assert problem is not None and problem.reason == "INVALID_INPUT"


regexish = st.one_of(
    st.sampled_from(
        [
            "uuid",
            "INT",
            "slug",
            "^[0-9]{1,12}$",
            "[a-z]{2,4}",
            "a{4294967296}",
            "a{99999999999999999999}",
            "(" * 300 + ")" * 300,
            "(" * 2_000 + ")" * 2_000,
            "([0-9]",
            "*",
            "a{2,1}",
            "(?<=x",
            "\\",
            "[z-a]",
        ]
    ),  # fmt: skip
    odd_text,
)
pattern_entries = st.builds(
    lambda name, sep, rx: f"{name}{sep}{rx}",
    st.one_of(st.text(NAME_CHARS, min_size=1, max_size=8), odd_text),
    st.sampled_from(["=", " = ", "", ":"]),
    regexish,
)


@props(200)
@given(st.one_of(st.lists(pattern_entries, max_size=4).map(", ".join), odd_text, huge_text))
@example("x=a{4294967296}")  # was OverflowError from re, not ValueError
@example("x=" + "(" * 2_000 + ")" * 2_000)  # was RecursionError from re's parser
def test_entity_id_patterns_parse_or_raise_value_error_only(value: str) -> None:
    try:
        patterns = parse_entity_id_patterns(value)
    except ValueError as exc:
        assert str(exc)
        return
    for entity_type, pattern in patterns.items():
        assert is_name(entity_type)
        assert isinstance(pattern, re.Pattern)


@props(150)
@given(st.dictionaries(st.text(NAME_CHARS, min_size=1, max_size=10).filter(lambda n: is_name(n)),
                       st.sampled_from(["uuid", "int", "slug", "^[0-9]{1,12}$", "[A-Z]{2,3}-[0-9]{1,4}"]),
                       min_size=1, max_size=5))  # fmt: skip
def test_well_formed_entity_id_patterns_round_trip(config: dict[str, str]) -> None:
    patterns = parse_entity_id_patterns(", ".join(f"{name}={rx}" for name, rx in config.items()))
    assert set(patterns) == set(config)
    samples = {"uuid": "123e4567-e89b-12d3-a456-426614174000", "int": "42", "slug": "red-shoe-42",
               "^[0-9]{1,12}$": "123456789012", "[A-Z]{2,3}-[0-9]{1,4}": "INV-2026"}  # fmt: skip
    for name, rx in config.items():
        assert patterns[name].fullmatch(samples[rx])
        assert not patterns[name].fullmatch(samples[rx] + " ")


# ============================================================================================
# hashing
# ============================================================================================

text_values = st.text(NO_SURROGATES, max_size=40)
salt_secrets = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=64
).map(
    lambda s: s.encode("utf-8")
)  # text secrets (as read from settings/files); HMAC zero-pads keys, so b"k" == b"k\0" as keys
salts = st.binary(min_size=32, max_size=32)
HEX = set("0123456789abcdef")


@props(300)
@given(salts, text_values, text_values, text_values)
def test_user_hash_is_deterministic_fixed_length_hex(salt: bytes, host: str, ip: str, ua: str) -> None:
    digest = user_hash(salt, host, ip, ua)
    assert digest == user_hash(salt, host, ip, ua)
    assert len(digest) == 64 and set(digest) <= HEX
    for raw in (host, ip, ua):  # hex alone cannot spell an address, a host name or a UA
        if len(raw) >= 8 or not set(raw) <= HEX:
            assert raw not in digest


@props(300)
@given(salts, text_values, text_values, text_values, st.sampled_from(["salt", "host", "ip", "ua"]), st.data())
def test_user_hash_changes_when_any_one_input_changes(
    salt: bytes, host: str, ip: str, ua: str, which: str, data: st.DataObject
) -> None:
    inputs = {"salt": salt, "host": host, "ip": ip, "normalised_ua": ua}
    name = "normalised_ua" if which == "ua" else which
    other = data.draw(salts if which == "salt" else text_values, label=which)
    if other == inputs[name]:
        return
    changed = {**inputs, name: other}
    assert user_hash(**inputs) != user_hash(**changed)


ip_strings = st.ip_addresses().map(str)


@props(200)
@given(salts, st.text(string.ascii_lowercase + ".-", min_size=3, max_size=30), ip_strings, ip_strings)
def test_user_hash_hides_realistic_inputs(salt: bytes, host: str, ip: str, other_ip: str) -> None:
    normalised = normalised_user_agent("Chrome", "120", "Windows")
    digest = user_hash(salt, host, ip, normalised)
    assert ip not in digest and host not in digest and normalised not in digest
    if ip != other_ip:
        assert digest != user_hash(salt, host, other_ip, normalised)


day_moments = st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2200, 1, 1))
zones = st.one_of(
    st.timezones(),
    st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: dt.timezone(dt.timedelta(minutes=m))),
)


@props(200)
@given(salt_secrets, st.dates(dt.date(1971, 1, 2), dt.date(2199, 12, 30)), st.integers(0, 86_399_999_999),
       st.integers(0, 86_399_999_999), zones, zones)  # fmt: skip
def test_daily_salt_is_one_value_per_utc_day(
    secret: bytes, day: dt.date, micros_a: int, micros_b: int, zone_a: dt.tzinfo, zone_b: dt.tzinfo
) -> None:
    midnight = dt.datetime.combine(day, dt.time(), dt.UTC)
    a = (midnight + dt.timedelta(microseconds=micros_a)).astimezone(zone_a)
    b = (midnight + dt.timedelta(microseconds=micros_b)).astimezone(zone_b)
    assert utc_day(a) == utc_day(b) == day.isoformat()
    assert daily_salt(secret, a) == daily_salt(secret, b)
    assert len(daily_salt(secret, a)) == 32
    next_day = midnight + dt.timedelta(days=1)
    assert daily_salt(secret, a) != daily_salt(secret, next_day.astimezone(zone_b))
    assert daily_salt(secret, a) != daily_salt(secret, (midnight - dt.timedelta(microseconds=1)).astimezone(zone_a))


@props(200)
@given(salt_secrets, salt_secrets, day_moments, day_moments)
def test_daily_salt_differs_across_days_and_secrets(
    secret: bytes, other_secret: bytes, moment: dt.datetime, other: dt.datetime
) -> None:
    assert daily_salt(secret, moment) == daily_salt(secret, moment.replace(tzinfo=dt.UTC))  # naive is UTC
    if utc_day(moment) != utc_day(other):
        assert daily_salt(secret, moment) != daily_salt(secret, other)
    if secret != other_secret:
        assert daily_salt(secret, moment) != daily_salt(other_secret, moment)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", utc_day(moment))


# ============================================================================================
# client IP
# ============================================================================================

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
    address, (text, expected) = case
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
@example(0, ([], ("192.0.2.1", [], [], [])))  # was IndexError: "0" hops and no X-Forwarded-For
@example(
    0, ([], ("192.0.2.1", [("6.6.6.6", "6.6.6.6")], ["6.6.6.6"], []))
)  # was 6.6.6.6: the spoofable left-most entry
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


# ============================================================================================
# User-Agent
# ============================================================================================

REAL_AGENTS = AGENTS[:7]  # phones, tablets, desktops of the unit tests
BOT_AGENTS = ["Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "curl/8.4.0",
              "python-requests/2.31", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"]  # fmt: skip
DEVICE_TYPES = {"mobile", "tablet", "desktop", "other"}

user_agents = st.one_of(
    st.sampled_from(REAL_AGENTS + BOT_AGENTS + ["", " ", "\t", "-", "Mozilla/5.0", "Mozilla/5.0 ()"]),
    st.builds(lambda ua, junk: ua + junk, st.sampled_from(REAL_AGENTS + BOT_AGENTS), odd_text),
    st.builds(lambda junk, ua: junk + ua, odd_text, st.sampled_from(REAL_AGENTS)),
    st.builds(lambda ua, n: " ".join([ua] * n), st.sampled_from(REAL_AGENTS), st.integers(2, 1_000)),  # huge
    st.binary(max_size=200).map(lambda raw: raw.decode("latin-1")),  # what ASGI makes of arbitrary header bytes
    st.text(NO_SURROGATES, max_size=200),
    odd_text,
    huge_text,
)
CACHED = UserAgentInspector(cache_size=4096)
UNCACHED = UserAgentInspector(cache_size=0)


@props(150)
@given(st.one_of(st.none(), user_agents))
def test_user_agent_parsing_never_raises_and_stays_in_its_vocabulary(ua: str | None) -> None:
    agent = CACHED.parse(ua)
    assert isinstance(agent, ClientAgent)
    assert agent.device_type in DEVICE_TYPES
    assert isinstance(agent.spider, bool)
    for family in (agent.browser_family, agent.os_family):
        assert isinstance(family, str) and 0 < len(family) <= FAMILY_MAX_CHARS
    assert isinstance(agent.browser_major, str) and len(agent.browser_major) <= 16
    assert agent.normalised == f"{agent.browser_family}|{agent.browser_major}|{agent.os_family}"
    is_bot = CACHED.is_bot(ua)
    assert isinstance(is_bot, bool)
    if not (ua or "").strip() or agent.spider:
        assert is_bot  # no User-Agent, or a crawler ua-parser knows


@props(150)
@given(user_agents)
def test_user_agent_results_are_stable_with_and_without_cache(ua: str) -> None:
    first, bot = CACHED.parse(ua), CACHED.is_bot(ua)
    assert CACHED.parse(ua) == first and CACHED.is_bot(ua) == bot  # from the cache
    assert UNCACHED.parse(ua) == first and UNCACHED.is_bot(ua) == bot  # computed afresh
    clipped = ua.strip()[:UA_MAX_CHARS]  # only the first UA_MAX_CHARS characters count
    assert UNCACHED.parse(clipped + " junk/1.0" * (len(clipped) >= UA_MAX_CHARS)) == first


@props(60)
@given(st.sampled_from(REAL_AGENTS), st.sampled_from(BOT_AGENTS))
def test_real_browsers_are_people_and_crawlers_are_bots(browser: str, bot: str) -> None:
    assert not UNCACHED.is_bot(browser)
    assert UNCACHED.parse(browser).device_type != "other"
    assert UNCACHED.is_bot(bot)
