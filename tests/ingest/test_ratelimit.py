"""The rate limiter: a batch gets the first of its events granted; with Redis unreachable it
fails open and says so once; when Redis comes back the limit applies again."""

from __future__ import annotations

import uuid

import pytest

from app.ingest.ratelimit import RateLimiter
from testkit.faultproxy import FaultProxy
from testkit.logs import production_log_lines


async def test_rate_limiter_grants_the_first_of_a_batch() -> None:
    limiter = RateLimiter("5/minute;7/hour", None)
    assert await limiter.allow("k", 3) == 3
    assert await limiter.allow("k", 4) == 2  # 5/minute leaves two
    assert await limiter.allow("k", 1) == 0
    assert await limiter.allow("other", 1) == 1


async def test_rate_limiter_fails_open_when_redis_is_unreachable_and_says_so_once() -> None:
    limiter = RateLimiter("1/minute", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    with production_log_lines() as lines:
        for _ in range(3):
            assert await limiter.allow("k", 3) == 3
    assert sum("rate limit store unavailable" in line for line in lines) == 1, lines


async def test_rate_limits_apply_again_when_redis_comes_back() -> None:
    """The machine's Redis behind the fault proxy: cut, the limiter lets events through
    (one warning); restored, the limit applies again (one line saying so)."""
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    key = f"comeback-{uuid.uuid4()}"
    with FaultProxy("redis://127.0.0.1:6379/0") as proxy, production_log_lines() as lines:
        limiter = RateLimiter("2/minute", proxy.url)
        assert await limiter.allow(key, 1) == 1
        proxy.cut()
        assert [await limiter.allow(key, 1) for _ in range(3)] == [1, 1, 1]  # fail open
        proxy.restore()
        granted = [await limiter.allow(key, 1) for _ in range(3)]
    assert granted == [1, 0, 0], granted  # 2/minute: one left from before the outage
    assert sum("rate limit store unavailable" in line for line in lines) == 1, lines
    assert sum("rate limit store available again" in line for line in lines) == 1, lines
