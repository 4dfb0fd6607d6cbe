"""trackEvent load the way signals.js sends it: each event has its own clientEventId, and an
event the service did not acknowledge (ACCEPTED or DUPLICATE) is sent again with the same id
(backoff 50 ms doubling to 1 s) until it is. Every answer that was not an acknowledgement
is recorded, so a test can assert that callers only ever saw retryable ones."""

from __future__ import annotations

import asyncio
import collections
import uuid
from dataclasses import dataclass, field

import httpx

TRACK = "mutation($input: TrackEventInput!) { trackEvent(input: $input) { status reason retryable } }"
ACKNOWLEDGED = ("ACCEPTED", "DUPLICATE")
RETRYABLE_HTTP = (502, 503)  # the proxy found no replica able to answer / the service is shedding load
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"


@dataclass
class TrackLoad:
    """One client task per bearer token in `tokens` (each its own connection) against
    `base_url`, `rate` new events per second in all, until `stop()`; then the ids not yet
    acknowledged keep being retried for `drain` seconds."""

    base_url: str
    tokens: list[str]
    rate: float = 100.0
    drain: float = 20.0
    timeout: float = 5.0
    prefix: str = field(default_factory=lambda: f"load-{uuid.uuid4().hex[:8]}-")
    started: list[str] = field(default_factory=list)
    acked: set[str] = field(default_factory=set)
    accepted: collections.Counter[str] = field(default_factory=collections.Counter)  # id -> times ACCEPTED
    requests: int = 0
    # what the callers saw instead of an acknowledgement: "http 502", "UNAVAILABLE retryable", "ConnectError"...
    refusals: collections.Counter[str] = field(default_factory=collections.Counter)
    not_retryable: list[str] = field(default_factory=list)  # any such answer: a caller would give up (a bug)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self) -> None:
        """No new ids from now on; the ones under way are retried until acknowledged or `drain` ends."""
        self._stopping.set()

    @property
    def unacknowledged(self) -> set[str]:
        return set(self.started) - self.acked

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        http = [
            httpx.AsyncClient(
                base_url=self.base_url,
                headers={"authorization": f"Bearer {token}", "user-agent": BROWSER_UA},
                timeout=self.timeout,
                limits=limits,
            )
            for token in self.tokens
        ]
        try:
            await asyncio.gather(*(self._client(n, client) for n, client in enumerate(http)))
        finally:
            for client in http:
                await client.aclose()

    async def _client(self, n: int, client: httpx.AsyncClient) -> None:
        loop = asyncio.get_running_loop()
        clients = len(self.tokens)
        interval = clients / self.rate
        next_at = loop.time() + interval * n / clients
        k = 0
        drain_until: float | None = None
        while not self._stopping.is_set():
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at += interval
            if self._stopping.is_set():
                break
            event_id = f"{self.prefix}{n}-{k}"
            k += 1
            self.started.append(event_id)
            backoff = 0.05
            while not await self._send(client, event_id):
                if self._stopping.is_set():
                    drain_until = drain_until or loop.time() + self.drain
                    if loop.time() > drain_until:
                        return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)

    async def _send(self, client: httpx.AsyncClient, event_id: str) -> bool:
        body = {
            "query": TRACK,
            "variables": {"input": {"eventType": "click", "appName": "admin-console", "clientEventId": event_id}},
        }
        self.requests += 1
        try:
            response = await client.post("/graphql", json=body)
        except httpx.TransportError as exc:  # refused, reset, timed out: the request may or may not have landed
            self.refusals[type(exc).__name__] += 1
            return False
        if response.status_code != 200:
            label = f"http {response.status_code}"
            self.refusals[label] += 1
            if response.status_code not in RETRYABLE_HTTP:
                self.not_retryable.append(f"{label}: {response.text[:200]}")
            return False
        answer = (response.json().get("data") or {}).get("trackEvent") or {}
        status = answer.get("status")
        if status in ACKNOWLEDGED:
            self.acked.add(event_id)
            if status == "ACCEPTED":
                self.accepted[event_id] += 1
            return True
        label = f"{status} {answer.get('reason')} retryable={answer.get('retryable')}"
        self.refusals[label] += 1
        if answer.get("retryable") is not True:
            self.not_retryable.append(f"{label}: {response.text[:200]}")
        return False
