"""Checks on what a caller sends to `trackEvent`: allowlists, entity ids, free-text fields
and the `description` object. Each check returns `None` (fine) or a `Problem`: the drop
reason and a message the caller can act on. Nothing here raises on bad input.

- `appName`, `eventType`, `entityType` must be in their allowlist when one is configured
  (`SIGNALS_ALLOWED_APPS` / `_EVENT_TYPES` / `_ENTITY_TYPES`); with an empty allowlist any
  well-formed name is accepted (letters, digits, `._:-`, at most 64 characters).
- `entityId` is checked against the format configured for its type
  (`SIGNALS_ENTITY_ID_PATTERNS`, e.g. `order=^[0-9]{1,12}$,customer=uuid`), else against
  `DEFAULT_ENTITY_ID`. It needs an `entityType`.
- `description` is a JSON object of at most 2 KiB (UTF-8, compact serialization) without
  PII-shaped keys at any depth (`email`, `firstName`, `user_id`, `IP-Address`, ...; keys are
  compared case- and separator-insensitively, after NFKC and with look-alike letters such
  as a Cyrillic i (U+0456) read as the Latin letter they imitate: `app.privacy.keys`, the
  rule the read side hides values by) and without email-shaped strings.
- Text is judged as a person would read it: a route, entity id or description string is
  checked for emails and query strings after percent-decoding and Unicode NFKC
  normalisation (`%40`, a full-width at sign, `%3F` count), and invisible or direction-changing characters
  (bidi overrides, zero-width, other format and control characters) are refused in every
  stored text field: they hide or spoof what the dashboard shows.
"""

from __future__ import annotations

import json
import re
import unicodedata
import urllib.parse
from dataclasses import dataclass
from typing import Any

from app.config import NAME, Settings, parse_entity_id_patterns
from app.privacy.keys import has_hidden_characters, pii_key
from app.storage.events import DESCRIPTION_MAX_DEPTH, is_utf8

DESCRIPTION_MAX_BYTES = 2048
ROUTE_MAX_CHARS = 512

TOKEN_128 = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")  # session ids, client event ids
DEFAULT_ENTITY_ID = TOKEN_128
EMAIL_SHAPED = re.compile(r"[^\s@/?#]+@[^\s@/?#]+\.[A-Za-z]{2,}")
_pii_key = pii_key  # the name tests and the fuzz suite know it by


@dataclass(frozen=True, slots=True)
class Problem:
    """Why an event is dropped: a `DropReason` name and a message for the caller."""

    reason: str
    message: str


def revealed(value: str) -> str:
    """`value` as it reads: percent-decoded (twice encoded too) and NFKC-normalised."""
    for _ in range(3):
        decoded = urllib.parse.unquote(value)
        if decoded == value:
            break
        value = decoded
    return unicodedata.normalize("NFKC", value)


def _text_problem(field: str, value: str, max_chars: int) -> Problem | None:
    if len(value) > max_chars:
        return Problem("INVALID_INPUT", f"{field} is longer than {max_chars} characters")
    if not is_utf8(value) or has_hidden_characters(value):
        return Problem("INVALID_INPUT", f"{field} contains control, invisible or direction-changing characters")
    shown = revealed(value)
    if has_hidden_characters(shown):
        return Problem("INVALID_INPUT", f"{field} contains encoded control, invisible or direction-changing characters")
    if "?" in shown or "#" in shown:  # query strings carry ids, tokens, search terms
        return Problem("INVALID_INPUT", f"{field} must be a path without query string or fragment (e.g. /orders/:id)")
    if EMAIL_SHAPED.search(shown):
        return Problem(
            "INVALID_INPUT", f"{field} looks like it contains an email address; personal data is not accepted"
        )
    return None


class EventValidator:
    """The configured allowlists and entity id formats, applied to one event's fields."""

    def __init__(self, settings: Settings) -> None:
        self.apps = frozenset(settings.allowed_apps)
        self.event_types = frozenset(settings.allowed_event_types)
        self.entity_types = frozenset(settings.allowed_entity_types)
        self.entity_id_patterns = parse_entity_id_patterns(settings.entity_id_patterns)

    @staticmethod
    def _named(kind: str, value: str, allowed: frozenset[str], reason: str) -> Problem | None:
        if allowed:
            if value not in allowed:
                return Problem(reason, f"{kind} is not one of the configured values ({', '.join(sorted(allowed))})")
            return None
        if not NAME.fullmatch(value):
            return Problem(
                "INVALID_INPUT", f"{kind} must be 1-64 letters, digits or ._:- starting with a letter or digit"
            )
        return None

    def app(self, app_name: str) -> Problem | None:
        return self._named("appName", app_name, self.apps, "UNKNOWN_APP")

    def event_type(self, event_type: str) -> Problem | None:
        return self._named("eventType", event_type, self.event_types, "UNKNOWN_EVENT_TYPE")

    def entity(self, entity_type: str | None, entity_id: str | None) -> Problem | None:
        if entity_type is None:
            if entity_id is not None:
                return Problem("INVALID_ENTITY", "entityId needs an entityType")
            return None
        problem = self._named("entityType", entity_type, self.entity_types, "UNKNOWN_ENTITY_TYPE")
        if problem is not None or entity_id is None:
            return problem
        shown = revealed(entity_id) if is_utf8(entity_id) else entity_id
        if not is_utf8(entity_id) or has_hidden_characters(entity_id) or has_hidden_characters(shown):
            return Problem("INVALID_ENTITY", "entityId contains control, invisible or direction-changing characters")
        if EMAIL_SHAPED.search(shown):
            return Problem("INVALID_ENTITY", "entityId looks like an email address; personal data is not accepted")
        pattern = self.entity_id_patterns.get(entity_type, DEFAULT_ENTITY_ID)
        if not pattern.fullmatch(entity_id):
            return Problem(
                "INVALID_ENTITY", f"entityId does not have the format configured for entity type {entity_type}"
            )
        return None

    @staticmethod
    def fields(route: str | None, session_id: str | None, client_event_id: str) -> Problem | None:
        if not TOKEN_128.fullmatch(client_event_id):
            return Problem("INVALID_INPUT", "clientEventId must be 1-128 letters, digits or ._:- (a UUID is ideal)")
        if session_id is not None and not TOKEN_128.fullmatch(session_id):
            return Problem("INVALID_INPUT", "sessionId must be 1-128 letters, digits or ._:-")
        if route is not None:
            return _text_problem("route", route, ROUTE_MAX_CHARS)
        return None


def compact_json(value: Any) -> str:
    """The stored form of a description: compact, non-ASCII kept (so its size is honest)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def check_description(description: Any) -> tuple[str | None, Problem | None]:
    """(stored form, None) for a fine description, (None, problem) otherwise.

    A JSON object <= 2 KiB compact UTF-8, no PII-shaped keys, no email-shaped strings."""
    if description is None:
        return None, None
    if not isinstance(description, dict):
        return None, Problem("INVALID_INPUT", "description must be a JSON object")
    try:
        stored = compact_json(description)
        size = len(stored.encode("utf-8"))
    except (ValueError, TypeError, RecursionError, UnicodeEncodeError):
        return None, Problem("INVALID_INPUT", "description is not valid JSON (NaN, Infinity or invalid Unicode)")
    if size > DESCRIPTION_MAX_BYTES:
        return None, Problem(
            "DESCRIPTION_TOO_LARGE", f"description is {size} bytes serialized; the limit is {DESCRIPTION_MAX_BYTES}"
        )
    problem = _content_problem(description)
    return (None, problem) if problem else (stored, None)


def _content_problem(description: dict[str, Any]) -> Problem | None:
    stack: list[tuple[Any, str, int]] = [(description, "description", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > DESCRIPTION_MAX_DEPTH:
            return Problem("INVALID_INPUT", f"description nests deeper than {DESCRIPTION_MAX_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                if has_hidden_characters(key) or EMAIL_SHAPED.search(revealed(key)):
                    return Problem(
                        "INVALID_INPUT", f"a key in {path} holds an email address or an invisible/control character"
                    )
                if pii_key(key):
                    return Problem("PII_KEY", f"description key {path}.{key} looks like personal data; remove it")
                stack.append((item, f"{path}.{key}", depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value))
        elif isinstance(value, str) and (has_hidden_characters(value) or EMAIL_SHAPED.search(revealed(value))):
            return Problem(
                "INVALID_INPUT",
                f"{path} holds an email address or an invisible/control character; personal data is not accepted",
            )
    return None
