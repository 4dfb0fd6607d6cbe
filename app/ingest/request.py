"""What the pipeline knows about the request that carried the events, as plain values.

`RequestFacts.build()` runs at the edge (the GraphQL context, the fast path): it copies out
of the transport the few things the steps need, so no step sees an HTTP request and the
same pipeline serves any transport (Plausible's `Request.build`). The User-Agent, peer and
forwarded headers live only here, in memory, for the length of the request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from app.auth.authenticate import AuthOutcome


class Headers(Protocol):
    """Case-insensitive header lookup (Starlette's `Headers` is one)."""

    def get(self, key: str, /) -> str | None: ...

    def getlist(self, key: str) -> Sequence[str]: ...


@dataclass(frozen=True, slots=True)
class RequestFacts:
    auth: AuthOutcome
    user_agent: str
    peer: str | None  # the direct peer's address
    host: str | None  # the Host header
    forwarded_for: tuple[str, ...]  # X-Forwarded-For values, believed only from a trusted peer
    forwarded_host: tuple[str, ...]  # X-Forwarded-Host values, likewise

    @classmethod
    def build(cls, auth: AuthOutcome, headers: Headers, peer: str | None) -> RequestFacts:
        return cls(
            auth=auth,
            user_agent=headers.get("user-agent") or "",
            peer=peer,
            host=headers.get("host"),
            forwarded_for=tuple(headers.getlist("x-forwarded-for")),
            forwarded_host=tuple(headers.getlist("x-forwarded-host")),
        )
