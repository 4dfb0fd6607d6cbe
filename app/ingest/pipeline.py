"""The `trackEvent` pipeline: an ordered list of small steps, read top to bottom.

Modelled on Plausible's ingestion pipeline: every step looks at the events of one request
that are still live and may drop some (or all) of them with a named reason; a dropped
event is never stored and is counted by reason; each request's drops make one log line of
counts, without personal data.

    authenticate             any signed-in caller (else `Refused`, code UNAUTHENTICATED)
    rate_limit               per caller, SIGNALS_RATE_LIMIT              RATE_LIMITED
    validate_allowlists      apps / event types / entity types, entity id format, fields
                             UNKNOWN_APP, UNKNOWN_EVENT_TYPE, UNKNOWN_ENTITY_TYPE, INVALID_ENTITY, INVALID_INPUT
    validate_description     JSON object, <= 2 KiB, no PII keys       DESCRIPTION_TOO_LARGE, PII_KEY, INVALID_INPUT
    parse_user_agent         browser, major version, OS, device class
    require_client_identity  from a trusted proxy: the client's address and UA are forwarded
                             NO_CLIENT_IDENTITY
    drop_bots                crawlers, automation, monitors, HTTP libraries, AI agents, no UA   BOT
    resolve_client_ip        peer, or X-Forwarded-For from trusted proxies
    hash_user                daily salt + HMAC of host, IP and normalised UA
    write                    group commit; DUPLICATE for a known clientEventId    UNAVAILABLE

The steps see the request only as `RequestFacts` (app/ingest/request.py), plain values the
edge copied out of the transport. The request's host, IP and User-Agent string live only in
memory for the length of the request; what is stored is the user hash and the parsed
browser/OS/device class.
"""

from __future__ import annotations

import collections
import datetime as dt
import enum
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter

from app.config import Settings
from app.ingest.client_ip import ClientIpResolver
from app.ingest.dropcounts import DropCounter
from app.ingest.identity import advice, missing_client_identity
from app.ingest.ratelimit import RateLimiter
from app.ingest.request import RequestFacts
from app.ingest.useragents import ClientAgent, UserAgentInspector
from app.ingest.validation import EventValidator, check_description
from app.ingest.writer import GroupCommitWriter, WriteUnavailable
from app.logs import get_logger
from app.metrics import BOTS_DROPPED, EVENTS_ACCEPTED, EVENTS_DROPPED, EVENTS_DUPLICATE
from app.privacy.hashing import caller_event_key, daily_salt, user_hash
from app.privacy.secret import SaltSecret
from app.storage.events import EventRow

log = get_logger("signals.ingest")

MAX_BATCH = 100


class TrackStatus(enum.Enum):
    ACCEPTED = "ACCEPTED"
    DUPLICATE = "DUPLICATE"
    DROPPED = "DROPPED"


class DropReason(enum.Enum):
    BOT = "BOT"
    RATE_LIMITED = "RATE_LIMITED"
    UNKNOWN_EVENT_TYPE = "UNKNOWN_EVENT_TYPE"
    UNKNOWN_APP = "UNKNOWN_APP"
    UNKNOWN_ENTITY_TYPE = "UNKNOWN_ENTITY_TYPE"
    INVALID_ENTITY = "INVALID_ENTITY"
    INVALID_INPUT = "INVALID_INPUT"
    DESCRIPTION_TOO_LARGE = "DESCRIPTION_TOO_LARGE"
    PII_KEY = "PII_KEY"
    NO_CLIENT_IDENTITY = "NO_CLIENT_IDENTITY"
    UNAVAILABLE = "UNAVAILABLE"


RETRYABLE = frozenset({DropReason.RATE_LIMITED, DropReason.UNAVAILABLE})


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(slots=True)
class EventInput:
    """What the caller sent for one event (GraphQL `TrackEventInput`); omitted fields are None."""

    event_type: str
    app_name: str
    route: str | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    session_id: str | None = None
    description: Any = None  # decoded JSON; `validate_description` checks it is an object
    client_event_id: str | None = None


class Refused(Exception):
    """The whole request is refused before any event is looked at; nothing was recorded.
    `code` is the error code the caller sees (UNAUTHENTICATED, BAD_USER_INPUT)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(slots=True)
class TrackResult:
    status: TrackStatus
    client_event_id: str
    event_id: str | None = None
    reason: DropReason | None = None
    message: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status is not TrackStatus.DROPPED

    @property
    def retryable(self) -> bool:
        return self.reason in RETRYABLE


@dataclass(slots=True)
class Draft:
    """One event on its way through the pipeline; `result` is set once it is decided."""

    input: EventInput
    client_event_id: str
    description_json: str | None = None  # the stored form, set by validate_description
    result: TrackResult | None = None

    def drop(self, reason: DropReason | str, message: str) -> None:
        reason = DropReason(reason)
        self.result = TrackResult(TrackStatus.DROPPED, self.client_event_id, reason=reason, message=message)


@dataclass(slots=True)
class Batch:
    """The events of one request, and what the steps learn about the request."""

    request: RequestFacts
    events: list[Draft]
    user_agent: str = ""
    agent: ClientAgent | None = None
    ip: str = ""
    host: str = ""
    now: dt.datetime = field(default_factory=utc_now)
    user_hash: str = ""
    caller_key: str = ""  # Principal.key: a hash of the subject, never the subject

    def live(self) -> list[Draft]:
        return [event for event in self.events if event.result is None]

    def drop_all(self, reason: DropReason, message: str) -> None:
        for event in self.live():
            event.drop(reason, message)


# --- the steps ----------------------------------------------------------------------------


def require_caller(request: RequestFacts) -> str:
    """The caller's rate-limit key (a hash, never the subject), or `Refused`."""
    principal = request.auth.principal
    if principal is None:
        raise Refused(request.auth.refusal, "UNAUTHENTICATED")
    return principal.key


async def authenticate(ingest: Ingest, batch: Batch) -> None:
    batch.caller_key = require_caller(batch.request)


async def rate_limit(ingest: Ingest, batch: Batch) -> None:
    live = batch.live()
    allowed = await ingest.limiter.allow(batch.caller_key, len(live))
    for event in live[allowed:]:
        event.drop(
            DropReason.RATE_LIMITED,
            f"more than {ingest.settings.rate_limit} events from this caller; retry later with the same clientEventId",
        )


async def validate_allowlists(ingest: Ingest, batch: Batch) -> None:
    check = ingest.validator
    for event in batch.live():
        given = event.input
        problem = (
            check.app(given.app_name)
            or check.event_type(given.event_type)
            or check.entity(given.entity_type, given.entity_id)
            or check.fields(given.route, given.session_id, event.client_event_id)
        )
        if problem is not None:
            event.drop(problem.reason, problem.message)


async def validate_description(ingest: Ingest, batch: Batch) -> None:
    for event in batch.live():
        event.description_json, problem = check_description(event.input.description)
        if problem is not None:
            event.drop(problem.reason, problem.message)


async def parse_user_agent(ingest: Ingest, batch: Batch) -> None:
    batch.user_agent = batch.request.user_agent
    batch.agent = ingest.agents.parse(batch.user_agent)


async def require_client_identity(ingest: Ingest, batch: Batch) -> None:
    missing = missing_client_identity(ingest.client_ip, batch.request)
    if missing is not None:
        if missing not in ingest.identity_warned:  # once per process and header, not per request
            ingest.identity_warned.add(missing)
            log.warning("events dropped: client identity not forwarded", header=missing, fix=advice(missing))
        batch.drop_all(DropReason.NO_CLIENT_IDENTITY, f"{advice(missing)}. Nothing was recorded.")


async def drop_bots(ingest: Ingest, batch: Batch) -> None:
    """Bots are dropped (reason BOT) and counted by class in `signals_bots_dropped_total`."""
    settings = ingest.settings
    klass = ingest.agents.bot_class(batch.user_agent, settings.bot_allow, settings.bot_deny)
    if klass is not None:
        dropped = len(batch.live())
        batch.drop_all(DropReason.BOT, f"automated clients ({klass.value}) are not recorded")
        BOTS_DROPPED.labels(klass.value).inc(dropped)


async def resolve_client_ip(ingest: Ingest, batch: Batch) -> None:
    request, resolver = batch.request, ingest.client_ip
    # the resolver believes the forwarded headers only from a trusted peer
    batch.ip = resolver.client_ip(request.peer, request.forwarded_for)
    batch.host = resolver.host(request.peer, request.host, request.forwarded_host)


async def hash_user(ingest: Ingest, batch: Batch) -> None:
    assert batch.agent is not None
    batch.now = ingest.now()
    salt = daily_salt(ingest.salt_secret.current(), batch.now)  # read per batch: rotation applies at once
    batch.user_hash = user_hash(salt, batch.host, batch.ip, batch.agent.normalised)


async def write(ingest: Ingest, batch: Batch) -> None:
    live, agent = batch.live(), batch.agent
    assert agent is not None
    rows = [
        EventRow(
            created_at=batch.now,
            app_name=event.input.app_name,
            event_type=event.input.event_type,
            route=event.input.route,
            entity_type=event.input.entity_type,
            entity_id=event.input.entity_id,
            user_hash=batch.user_hash,
            session_id=event.input.session_id,
            device_type=agent.device_type,
            browser_family=agent.browser_family,
            os_family=agent.os_family,
            client_event_id=event.client_event_id,
            dedup_key=caller_event_key(batch.caller_key, event.client_event_id),
            description=event.description_json,
        )
        for event in live
    ]
    for event, outcome in zip(live, await ingest.writer.write(rows), strict=True):
        if isinstance(outcome, WriteUnavailable):
            event.drop(DropReason.UNAVAILABLE, f"{outcome}; retry later with the same clientEventId")
        else:
            status = TrackStatus.ACCEPTED if outcome.inserted else TrackStatus.DUPLICATE
            event.result = TrackResult(status, event.client_event_id, event_id=outcome.event_id)


Step = Callable[["Ingest", Batch], Awaitable[None]]

PIPELINE: tuple[Step, ...] = (
    authenticate,
    rate_limit,
    validate_allowlists,
    validate_description,
    parse_user_agent,
    require_client_identity,
    drop_bots,
    resolve_client_ip,
    hash_user,
    write,
)


# --- the runner ---------------------------------------------------------------------------


class Ingest:
    """The pipeline's long-lived parts. `now` is the clock (tests replace it)."""

    def __init__(
        self,
        settings: Settings,
        salt_secret: SaltSecret,
        writer: GroupCommitWriter,
        now: Callable[[], dt.datetime] = utc_now,
        drop_counter: DropCounter | None = None,
    ) -> None:
        self.settings = settings
        self.drop_counter = drop_counter  # drops per hour, app and reason for reports
        self.salt_secret = salt_secret
        self.writer = writer
        self.now = now
        self.validator = EventValidator(settings)
        self.agents = UserAgentInspector(settings.ua_cache_size)
        self.client_ip = ClientIpResolver(settings.trusted_proxies)
        self.identity_warned: set[str] = set()
        self.limiter = RateLimiter(settings.rate_limit, settings.redis_url)
        self._counters: dict[tuple[Counter, str], Any] = {}

    async def start(self) -> None:
        self.writer.start()
        if self.drop_counter is not None:
            self.drop_counter.start()

    async def stop(self) -> None:
        """Write what is queued, then stop accepting."""
        await self.writer.stop()
        if self.drop_counter is not None:
            await self.drop_counter.stop()

    async def track(
        self, request: RequestFacts, inputs: list[EventInput], drops: DropTally | None = None
    ) -> list[TrackResult]:
        """One result per input, in order; `Refused` when the request as a whole is refused.
        Drops are added to `drops`, which the caller logs once per request; without one they
        are logged here, once for this call."""
        if len(inputs) > MAX_BATCH:
            require_caller(request)
            raise Refused(
                f"trackEvents takes at most {MAX_BATCH} inputs per call; got {len(inputs)}. Nothing was recorded.",
                "BAD_USER_INPUT",
            )
        batch = Batch(request, [Draft(given, given.client_event_id or str(uuid.uuid4())) for given in inputs])
        for step in PIPELINE:
            await step(self, batch)
            if all(event.result is not None for event in batch.events):
                break
        for event in batch.live():  # cannot happen: `write` decides every live event
            event.drop(DropReason.UNAVAILABLE, "the event was not written; retry later with the same clientEventId")
        tally = DropTally() if drops is None else drops
        self._record(batch, tally)
        if drops is None:
            tally.log()
        return [event.result for event in batch.events if event.result is not None]

    # --- counting and logging, without personal data ----------------------------------------
    def _listed(self, value: str, allowed: list[str]) -> str:
        """`value` when the operator listed it, else "<unlisted>": a caller never picks a
        metric label or a logged name of its own."""
        return value if value in allowed else UNLISTED

    def _count(self, counter: Counter, app: str) -> None:
        """Increment `counter{app}`; label children are cached (`labels()` takes a lock)."""
        child = self._counters.get((counter, app))
        if child is None:
            child = self._counters[(counter, app)] = counter.labels(app=app)
        child.inc()

    def _record(self, batch: Batch, drops: DropTally) -> None:
        settings = self.settings
        for event in batch.events:
            result = event.result
            assert result is not None
            app = self._listed(event.input.app_name, settings.allowed_apps)
            if result.status is TrackStatus.ACCEPTED:
                self._count(EVENTS_ACCEPTED, app)
            elif result.status is TrackStatus.DUPLICATE:
                self._count(EVENTS_DUPLICATE, app)
            elif result.reason is not None:
                EVENTS_DROPPED.labels(reason=result.reason.value).inc()
                if self.drop_counter is not None:
                    self.drop_counter.add(self.now(), app, result.reason.value)
                drops.add(result.reason, app, self._listed(event.input.event_type, settings.allowed_event_types))


UNLISTED = "<unlisted>"
NAMES_LOGGED = 20  # apps and event types named in one "events dropped" line, at most


class DropTally:
    """The drops of one request, logged as one line of counts however many events it held
    (a line per event would let one request write thousands). Metrics count every event."""

    def __init__(self) -> None:
        self.counts: collections.Counter[tuple[DropReason, str, str]] = collections.Counter()

    def add(self, reason: DropReason, app: str, event_type: str) -> None:
        self.counts[(reason, app, event_type)] += 1

    def log(self) -> None:
        if not self.counts:
            return
        reasons: collections.Counter[str] = collections.Counter()
        for (reason, _, _), count in self.counts.items():
            reasons[reason.value] += count
        log.info(
            "events dropped",
            dropped=sum(reasons.values()),
            reasons=dict(sorted(reasons.items())),
            apps=sorted({app for _, app, _ in self.counts})[:NAMES_LOGGED],
            event_types=sorted({event_type for _, _, event_type in self.counts})[:NAMES_LOGGED],
        )
        self.counts.clear()
