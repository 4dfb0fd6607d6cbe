"""Requests from a federation gateway: the HMAC signature, and the JWT claims it forwards.

GraphQL Hive Gateway (`hmacSignature` option, npm `@graphql-mesh/hmac-upstream-signature`
2.1.0) signs every subgraph request:

    extensions["hmac-signature"] = base64(HMAC_SHA256(secret, S))
    S = json-stable-stringify({query, variables})   # variables left out when empty

json-stable-stringify is JSON.stringify with object keys sorted (by UTF-16 code units), no
whitespace and non-ASCII left as is: exactly RFC 8785 (JSON Canonicalization Scheme),
whose ECMAScript number formatting also matches what JavaScript prints. The `rfc8785`
package produces it. The subgraph recomputes S from the request's own `query` and
`variables` and compares in constant time.

The gateway's `jwt.forward` option puts the verified token's claims and/or the token itself
in `extensions.jwt = {"payload"?: {...}, "token"?: {"value": "<jwt>", "prefix": "Bearer"}}`.
They are looked at only when the signature verifies: anyone can put anything in `extensions`.

The signature covers the operation and its variables, not the extensions: it proves the
gateway sent this operation, not who the caller is. app/auth/authenticate.py therefore takes
the caller from the forwarded *token*, verified like a bearer token, unless the operator
chose to trust forwarded claims (SIGNALS_GATEWAY_TRUST=payload).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import rfc8785

SIGNATURE_EXTENSION = "hmac-signature"
JWT_EXTENSION = "jwt"
_SAFE_INTEGER = 2**53 - 1


def _as_javascript(value: Any) -> Any:
    """Integers past 2**53 as the doubles JavaScript held when it printed them; past the
    double range JavaScript holds Infinity, which JSON.stringify prints as null."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if abs(value) <= _SAFE_INTEGER:
            return value
        try:
            return float(value)
        except OverflowError:
            return None
    if isinstance(value, dict):
        return {key: _as_javascript(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_javascript(item) for item in value]
    return value


def signed_content(query: str | None, variables: dict[str, Any] | None) -> bytes:
    """S, the bytes the gateway signs for this query and variables (UTF-8)."""
    params: dict[str, Any] = {}
    if query is not None:
        params["query"] = query
    if variables:
        params["variables"] = _as_javascript(variables)
    return rfc8785.dumps(params)


def sign(secret: bytes, query: str | None, variables: dict[str, Any] | None) -> str:
    return base64.b64encode(hmac.new(secret, signed_content(query, variables), hashlib.sha256).digest()).decode()


def signature_is_valid(secret: bytes, query: str | None, variables: dict[str, Any] | None, signature: object) -> bool:
    if not isinstance(signature, str) or not signature:
        return False
    try:
        given = base64.b64decode(signature, validate=True)
        expected = hmac.new(secret, signed_content(query, variables), hashlib.sha256).digest()
    except (binascii.Error, ValueError):  # bad base64; content JSON cannot hold (lone surrogates, NaN)
        return False
    return hmac.compare_digest(given, expected)


@dataclass(frozen=True, slots=True)
class ForwardedJwt:
    """What a signed gateway request forwards in `extensions.jwt`: the verified token's
    payload (`jwt.forward.payload`) and/or the token itself (`jwt.forward.token`)."""

    payload: dict[str, Any] | None
    token: str | None


def forwarded_jwt(
    secret: bytes | None,
    query: str | None,
    variables: dict[str, Any] | None,
    extensions: dict[str, Any] | None,
) -> ForwardedJwt | None:
    """`extensions.jwt` when the request carries one AND a valid gateway signature."""
    if not extensions or secret is None:
        return None
    forwarded = extensions.get(JWT_EXTENSION)
    if not isinstance(forwarded, dict):
        return None
    if not signature_is_valid(secret, query, variables, extensions.get(SIGNATURE_EXTENSION)):
        return None
    payload, token = forwarded.get("payload"), forwarded.get("token")
    value = token.get("value") if isinstance(token, dict) else None  # {"value": "<jwt>", "prefix": "Bearer"}
    return ForwardedJwt(payload if isinstance(payload, dict) else None, value if isinstance(value, str) else None)
