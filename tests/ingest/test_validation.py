"""Event validation on its own: entity id patterns, the default entity id format, PII-shaped
keys in descriptions, the description's size in UTF-8 bytes and its depth."""

from __future__ import annotations

import uuid

import pytest

from app.config import ConfigError, load_settings
from app.ingest.validation import EventValidator, check_description, parse_entity_id_patterns


def test_entity_id_patterns_allow_commas_inside_regexes_and_aliases() -> None:
    patterns = parse_entity_id_patterns("order=^[0-9]{1,12}$, customer=uuid,sku=slug")
    assert set(patterns) == {"order", "customer", "sku"}
    assert patterns["order"].fullmatch("123456789012") and not patterns["order"].fullmatch("1234567890123")
    assert patterns["customer"].fullmatch(str(uuid.uuid4())) and not patterns["customer"].fullmatch("42")
    assert patterns["sku"].fullmatch("red-shoe-42") and not patterns["sku"].fullmatch("Red Shoe")


@pytest.mark.parametrize("value", ["order", "order=([0-9]", "=x", "bad name=x"])
def test_bad_entity_id_patterns_are_a_configuration_error(value: str) -> None:
    with pytest.raises(ConfigError, match="SIGNALS_ENTITY_ID_PATTERNS"):
        load_settings(entity_id_patterns=value)


def test_entity_ids_without_a_configured_pattern_use_the_default_format() -> None:
    validator = EventValidator(load_settings(allowed_entity_types=[]))
    assert validator.entity("invoice", "INV-2026.001") is None
    assert validator.entity("invoice", "has space").reason == "INVALID_ENTITY"  # type: ignore[union-attr]
    assert validator.entity("invoice", "x" * 129).reason == "INVALID_ENTITY"  # type: ignore[union-attr]
    assert validator.entity("invoice", None) is None


@pytest.mark.parametrize(
    "key",
    ["email", "E-Mail", "eMail", "mail", "customerEmail", "name", "Name", "first_name", "lastName", "Full Name",
     "firstname", "surname", "phone", "phoneNumber", "mobile", "user id", "userid", "user_id", "userId", "token",
     "accessToken", "password", "passwd", "secret", "ip", "IP", "ip_address", "clientIP", "address", "street",
     "ssn", "dob", "birth_date", "dateOfBirth", "birthday"],
)  # fmt: skip
def test_pii_shaped_keys_are_refused_at_any_depth(key: str) -> None:
    for description in ({key: 1}, {"a": {"b": [{"c": {key: 1}}]}}):
        stored, problem = check_description(description)
        assert stored is None and problem is not None and problem.reason == "PII_KEY", (key, description)


@pytest.mark.parametrize(
    "key",
    ["button", "fileName", "rows", "zip_export", "tooltip", "description", "recipientCount", "filter", "tab", "ship"],
)
def test_ordinary_keys_pass(key: str) -> None:
    stored, problem = check_description({key: "value"})
    assert problem is None and stored == f'{{"{key}":"value"}}'


def test_description_size_counts_utf8_bytes_of_the_compact_form() -> None:
    padding = len('{"t":""}')
    assert check_description({"t": "é" * ((2048 - padding) // 2)})[1] is None
    assert check_description({"t": "é" * ((2048 - padding) // 2 + 1)})[1].reason == "DESCRIPTION_TOO_LARGE"  # type: ignore[union-attr]
    assert check_description({"t": "x " * 10})[0] == '{"t":"' + "x " * 10 + '"}'  # spaces in values kept


def test_description_rejects_non_json_and_deep_nesting() -> None:
    assert check_description({"n": float("nan")})[1].reason == "INVALID_INPUT"  # type: ignore[union-attr]
    assert check_description({"s": "\ud800"})[1].reason == "INVALID_INPUT"  # type: ignore[union-attr]
    deep: dict = {}
    node = deep
    for _ in range(20):
        node["d"] = {}
        node = node["d"]
    assert check_description(deep)[1].reason == "INVALID_INPUT"  # type: ignore[union-attr]
