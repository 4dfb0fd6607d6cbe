"""Signing keys from a JWKS URL: fetched without blocking the event loop, cached, and
refetched when a token names a `kid` the cache does not hold (key rotation).

pyjwt's `PyJWKClient` does the same with blocking `urllib` and refetches on *every*
unknown `kid`, which lets anyone make the service hammer the identity provider. Here a
fetch runs on httpx's async client, concurrent callers share one fetch, and an unknown
`kid` triggers a refetch at most once per `min_refresh_seconds`. Parsing stays pyjwt's
(`PyJWKSet`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt

from app.logs import get_logger

log = get_logger("signals.jwks")


class JwksUnavailable(Exception):
    """The key set could not be fetched or parsed; `str()` is safe to show."""


class JwksCache:
    def __init__(
        self,
        url: str,
        *,
        ttl_seconds: float = 300.0,
        min_refresh_seconds: float = 30.0,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.url = url
        self.ttl_seconds = ttl_seconds
        self.min_refresh_seconds = min_refresh_seconds
        self.timeout_seconds = timeout_seconds
        self._keys: dict[str | None, dict[str, Any]] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self.fetch_count = 0

    async def _fetch(self) -> None:
        self.fetch_count += 1
        try:
            async with httpx.AsyncClient(timeout=self.timeout_seconds, follow_redirects=False) as client:
                response = await client.get(self.url, headers={"accept": "application/json"})
                response.raise_for_status()
                document = response.json()
            jwt.PyJWKSet.from_dict(document)  # pyjwt's own validation of the set
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            raise JwksUnavailable(f"signing keys could not be fetched ({type(exc).__name__})") from None
        self._keys = {key.get("kid"): key for key in document["keys"] if isinstance(key, dict)}
        self._fetched_at = time.monotonic()
        log.info("jwks fetched", keys=len(self._keys))

    async def _refresh(self, *, unknown_kid: bool) -> None:
        started = time.monotonic()
        async with self._lock:
            if self._fetched_at >= started:
                return  # another caller fetched while we waited
            age = time.monotonic() - self._fetched_at
            if unknown_kid and age < self.min_refresh_seconds:
                return  # rate limit: an unknown kid cannot force a fetch per request
            try:
                await self._fetch()
            except JwksUnavailable:
                if not self._keys:
                    raise
                log.warning("jwks refresh failed; keeping the cached keys")

    async def get(self, kid: str | None) -> dict[str, Any] | None:
        """The JWK (as a dict) for `kid`; a set holding one key also serves a token without `kid`."""
        if time.monotonic() - self._fetched_at > self.ttl_seconds:
            await self._refresh(unknown_kid=False)
        key = self._find(kid)
        if key is None:
            await self._refresh(unknown_kid=True)
            key = self._find(kid)
        return key

    def _find(self, kid: str | None) -> dict[str, Any] | None:
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid) if kid is not None else None
