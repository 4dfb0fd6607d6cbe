"""Properties (hypothesis) of event validation: check_description and compact_json over
arbitrary and hostile JSON, the allowlists and name rules, routes and other text fields, and
SIGNALS_ENTITY_ID_PATTERNS parsing. No database, no mocks; strategies in testkit.strategies."""

from __future__ import annotations

import json
import re
import string
import time
import unicodedata
import urllib.parse

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from app.config import load_settings
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
from testkit.strategies import NO_SURROGATES, huge_text, lone_control, odd_text, props, surrogate_text

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
@example({"client_iP": "x"})  # a stand-alone PII word is one in any case
@example({"clientIPHash": 1})  # an acronym followed by a word is two words
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


def hidden(text: str) -> bool:
    """The documented refusal: a control, format, surrogate, private-use or separator character."""
    return any(unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp") for char in text)


def as_read(text: str) -> str:
    """The documented reading: percent-decoded until it stops changing (at most three times), then NFKC."""
    for _ in range(3):
        decoded = urllib.parse.unquote(text)
        if decoded == text:
            break
        text = decoded
    return unicodedata.normalize("NFKC", text)


@props(80)
@given(json_objects)
@example({"k": "jane%40example.com"})
@example({"k": "jane\uff20example.com"})
@example({"k": "a\u202eb"})
def test_check_description_decides_exactly_by_its_documented_rules(description: dict) -> None:
    """Accepted iff: serializable, <= 2 KiB compact UTF-8, <= 16 deep, no PII-shaped key, no
    key or string that holds an invisible or control character or reads as an email once
    percent-decoded and NFKC-normalised. The reason names the rule that failed."""
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
    bad_text = any(hidden(k) or EMAIL_SHAPED.search(as_read(k)) for k in keys) or any(
        isinstance(node, str) and (hidden(node) or EMAIL_SHAPED.search(as_read(node))) for node, _ in nodes
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
@given(
    st.one_of(st.none(), any_text),
    st.one_of(st.none(), any_text, st.uuids().map(str), st.integers(0, 10**14).map(str)),
    st.booleans(),
)
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
    ),
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
@example("x=a{4294967296}")  # re raises OverflowError for this repeat count: must be a ValueError
@example("x=" + "(" * 2_000 + ")" * 2_000)  # re's parser raises RecursionError here: must be a ValueError
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
