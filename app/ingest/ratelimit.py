"""Per-caller rate limit on recorded events (the `limits` library, sliding-window counter).

`SIGNALS_RATE_LIMIT` uses the `limits` syntax (`60/minute`, `10/second;500/hour`); every
event counts once, so a batch of 20 costs 20 and the first events of a batch win. Limits
are kept in process memory, or in Redis when `REDIS_URL` is set so that replicas share
them. The key is `Principal.key`, an opaque hash of the subject, never the subject itself.

When the store cannot answer within `STORE_TIMEOUT` seconds (Redis down), events are let
through: losing analytics is worse than a brief unlimited window. The first failure is
logged as a warning and the store's return once more (not a line per request).
"""

from __future__ import annotations

import asyncio

from limits import RateLimitItem, parse_many
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from app.logs import OutageLog, get_logger

log = get_logger("signals.ratelimit")

NAMESPACE = "signals-track"
STORE_TIMEOUT = 0.5


def storage_uri(redis_url: str | None) -> str:
    if not redis_url:
        return "async+memory://"
    return f"async+{redis_url}"  # redis://... -> async+redis://..., rediss:// likewise


class RateLimiter:
    def __init__(self, limit: str, redis_url: str | None, *, namespace: str = NAMESPACE) -> None:
        self.namespace = namespace
        self.items: list[RateLimitItem] = parse_many(limit)
        self.storage = storage_from_string(storage_uri(redis_url), key_prefix="signals")
        self.limiter = SlidingWindowCounterRateLimiter(self.storage)
        self.shared = bool(redis_url)
        self._outage = OutageLog(
            log,
            "rate limit store unavailable; events let through until it is back",
            "rate limit store available again; limits apply",
        )

    async def allow(self, key: str, count: int) -> int:
        """How many of `count` events this caller may record now (the first ones win)."""
        if not self.shared:  # process memory: nothing to wait for
            return await self._grant_all(key, count)
        try:
            async with asyncio.timeout(STORE_TIMEOUT):
                granted = await self._grant_all(key, count)
        except Exception as exc:  # noqa: BLE001 - any store failure: fail open, and say so once
            self._outage.failed(exc)
            return count
        self._outage.succeeded()
        return granted

    async def _grant_all(self, key: str, count: int) -> int:
        granted = count
        for item in self.items:
            if granted == 0:
                break
            granted = await self._grant(item, key, granted)
        return granted

    async def _grant(self, item: RateLimitItem, key: str, wanted: int) -> int:
        """Consume up to `wanted` from one limit; return how many were granted."""
        if await self.limiter.hit(item, self.namespace, key, cost=wanted):
            return wanted
        stats = await self.limiter.get_window_stats(item, self.namespace, key)
        remaining = min(wanted, int(stats.remaining))
        if remaining > 0 and await self.limiter.hit(item, self.namespace, key, cost=remaining):
            return remaining
        return 0
