"""Instrumentation alerts, checked on the last closed hours (`SIGNALS_ALERT_WINDOW_HOURS`).

For each (app, event type) and each (app, drop reason), the window's count is compared
with the same hours of the week one and two weeks earlier (their mean is the baseline):

- **silent**: a type with a steady baseline (at least `SIGNALS_ALERT_BASELINE_MIN_PER_DAY`
  events on every one of the 14 days before the window) falls to zero, or under
  `SIGNALS_ALERT_DROP_RATIO` of its baseline: a renamed event or a broken tracker;
- **spike**: a type at `SIGNALS_ALERT_SPIKE_RATIO` times its baseline or more (and at
  least the steady minimum): a loop in a front end, a replayed queue, a bot let through;
- **drops**: a drop reason with at least `SIGNALS_ALERT_DROP_SURGE_MIN` drops in the
  window and the spike ratio over its baseline (`UNKNOWN_EVENT_TYPE`: a front end and the
  allowlist disagree).

A condition opens an incident (`alert_incidents`, one open per key) and is notified once
per channel (`alert_notifications`: a channel that failed is tried again at the next check);
later checks that still see it send nothing; the first check that no longer sees it closes
the incident and sends one recovery. The whole check runs under an advisory lock, so two
replicas checking at once notify each incident once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.config import Settings
from app.logs import get_logger
from app.reports.deliver import Deliveries
from app.reports.render import Message, dashboard_link, render_alert
from app.reports.sending import ALERTS_LOCK_KEY, advisory_lock

log = get_logger("signals.reports")

BASELINE_DAYS = 14
WEEKS = (1, 2)


@dataclass(frozen=True)
class Condition:
    key: str
    kind: str  # silent | spike | drops
    app: str
    subject: str  # event type or drop reason
    since: dt.datetime
    detail: str


@dataclass
class AlertReport:
    opened: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    sent: int = 0
    failed: int = 0
    open_incidents: int = 0

    def summary(self) -> str:
        return (
            f"alerts: {len(self.opened)} opened, {len(self.recovered)} recovered, {self.sent} sent, "
            f"{self.failed} failed, {self.open_incidents} open"
        )

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def closed_window(now: dt.datetime, hours: int) -> tuple[dt.datetime, dt.datetime]:
    end = now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    return end - dt.timedelta(hours=hours), end


def _hhmm(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


async def _event_counts(conn: AsyncConnection, start: dt.datetime, end: dt.datetime) -> dict[tuple[str, str], int]:
    rows = await conn.execute(
        text(
            "SELECT app_name, event_type, count(*) AS n FROM events "
            "WHERE created_at >= :s AND created_at < :e GROUP BY 1, 2"
        ),
        {"s": start, "e": end},
    )
    return {(r.app_name, r.event_type): r.n for r in rows}


async def _drop_counts(conn: AsyncConnection, start: dt.datetime, end: dt.datetime) -> dict[tuple[str, str], int]:
    rows = await conn.execute(
        text(
            "SELECT app_name, reason, sum(count)::bigint AS n FROM drop_counts "
            "WHERE hour >= :s AND hour < :e GROUP BY 1, 2"
        ),
        {"s": start, "e": end},
    )
    return {(r.app_name, r.reason): r.n for r in rows}


async def _steady(conn: AsyncConnection, before: dt.datetime, minimum: int) -> set[tuple[str, str]]:
    """(app, type) with at least `minimum` events on each of the 14 whole days before `before`
    (days counted back from the window's start, so a weekday's dip is within the baseline)."""
    rows = await conn.execute(
        text(
            "SELECT app_name, event_type FROM ("
            "  SELECT app_name, event_type, floor(extract(epoch FROM (:b - created_at)) / 86400) AS d, count(*) AS n"
            "  FROM events WHERE created_at >= :a AND created_at < :b GROUP BY 1, 2, 3) AS days "
            "WHERE n >= :m GROUP BY 1, 2 HAVING count(*) = :days"
        ),
        {"a": before - dt.timedelta(days=BASELINE_DAYS), "b": before, "m": minimum, "days": BASELINE_DAYS},
    )
    return {(r.app_name, r.event_type) for r in rows}


async def _last_event(conn: AsyncConnection, app: str, event_type: str, before: dt.datetime) -> dt.datetime | None:
    value = await conn.scalar(
        text("SELECT max(created_at) FROM events WHERE app_name = :a AND event_type = :t AND created_at < :b"),
        {"a": app, "t": event_type, "b": before},
    )
    return value if isinstance(value, dt.datetime) else None


async def find_conditions(conn: AsyncConnection, settings: Settings, now: dt.datetime) -> list[Condition]:
    start, end = closed_window(now, settings.alert_window_hours)
    hours = settings.alert_window_hours
    current = await _event_counts(conn, start, end)
    earlier = [await _event_counts(conn, start - dt.timedelta(weeks=w), end - dt.timedelta(weeks=w)) for w in WEEKS]
    steady = await _steady(conn, start, settings.alert_baseline_min_per_day)
    found: list[Condition] = []
    for app, event_type in sorted(steady | current.keys()):
        now_n = current.get((app, event_type), 0)
        baseline = sum(counts.get((app, event_type), 0) for counts in earlier) / len(WEEKS)
        where = f"{event_type} in {app}"
        if (app, event_type) in steady and (now_n == 0 or now_n < settings.alert_drop_ratio * baseline):
            last = await _last_event(conn, app, event_type, end)
            since = last if last is not None else start
            what = "no events" if now_n == 0 else f"{now_n} events"
            found.append(
                Condition(
                    f"silent:{app}:{event_type}",
                    "silent",
                    app,
                    event_type,
                    since,
                    f"{where}: {what} in the last {hours} closed hours ({_hhmm(start)} to {_hhmm(end)}), "
                    f"against {baseline:g} in the same hours of the previous weeks. "
                    f"Last event: {_hhmm(last) if last else 'none in retention'}.",
                )
            )
        elif (
            baseline > 0
            and now_n >= settings.alert_spike_ratio * baseline
            and now_n >= settings.alert_baseline_min_per_day
        ):
            found.append(
                Condition(
                    f"spike:{app}:{event_type}",
                    "spike",
                    app,
                    event_type,
                    start,
                    f"{where}: {now_n} events in the last {hours} closed hours ({_hhmm(start)} to {_hhmm(end)}), "
                    f"{now_n / baseline:.1f} times the {baseline:g} of the same hours in the previous weeks.",
                )
            )
    drops = await _drop_counts(conn, start, end)
    drops_before = [await _drop_counts(conn, start - dt.timedelta(weeks=w), end - dt.timedelta(weeks=w)) for w in WEEKS]
    for (app, reason), n in sorted(drops.items()):
        baseline = sum(counts.get((app, reason), 0) for counts in drops_before) / len(WEEKS)
        if n >= settings.alert_drop_surge_min and n >= settings.alert_spike_ratio * baseline:
            found.append(
                Condition(
                    f"drops:{app}:{reason}",
                    "drops",
                    app,
                    reason,
                    start,
                    f"{app}: {n} events dropped as {reason} in the last {hours} closed hours "
                    f"({_hhmm(start)} to {_hhmm(end)}), against {baseline:g} in the same hours of the previous weeks.",
                )
            )
    return found


CHECK = {
    "silent": "Check the latest deploy of this app's front end: was the event renamed or its tracking call "
    "removed? Is the tracker loading (signals.js, the network tab)? Is the type still in "
    "SIGNALS_ALLOWED_EVENT_TYPES (the digest's drops by reason show UNKNOWN_EVENT_TYPE)?",
    "spike": "Check for a loop or a retry storm in the front end (the same event sent per render), a replayed "
    "queue, or automated traffic the bot filter let through.",
    "drops": "UNKNOWN_EVENT_TYPE / UNKNOWN_APP: a front end and the allowlists disagree (SIGNALS_ALLOWED_*). "
    "BOT: automated traffic. RATE_LIMITED: a caller sends more than SIGNALS_RATE_LIMIT. "
    "UNAVAILABLE: the database. INVALID_*: the front end sends values the validation refuses.",
}
TITLE = {"silent": "went silent", "spike": "spiked", "drops": "drops surged"}


def opened_message(c: Condition, dashboard_url: str | None, now: dt.datetime) -> Message:
    subject = f"Signals alert: {c.subject} {TITLE[c.kind]} in {c.app}"
    link = dashboard_link(dashboard_url, c.app, (now - dt.timedelta(days=1)).isoformat(), now.isoformat())
    return render_alert(subject, [c.detail, f"Since: {_hhmm(c.since)}.", f"What to check: {CHECK[c.kind]}"], link)


def recovered_message(kind: str, app: str, subject_name: str, since: dt.datetime, now: dt.datetime) -> Message:
    subject = f"Signals recovered: {subject_name} in {app} is back to normal"
    return render_alert(
        subject,
        [
            f"{subject_name} in {app} no longer {TITLE[kind]}: "
            f"the incident open since {_hhmm(since)} ended by {_hhmm(now)}."
        ],
        None,
    )


async def check_alerts(engine: AsyncEngine, deliveries: Deliveries, now: dt.datetime) -> AlertReport:
    """Open and close incidents for `now`, and notify what is not notified yet."""
    settings = deliveries.settings
    report = AlertReport()
    async with advisory_lock(engine, ALERTS_LOCK_KEY) as conn:
        conditions = {c.key: c for c in await find_conditions(conn, settings, now)}
        open_rows = (await conn.execute(text("SELECT id, key FROM alert_incidents WHERE recovered_at IS NULL"))).all()
        open_keys = {r.key: r.id for r in open_rows}
        for key, c in conditions.items():
            if key not in open_keys:
                await conn.execute(
                    text(
                        "INSERT INTO alert_incidents (key, kind, app_name, subject, opened_at, since, detail) "
                        "VALUES (:key, :kind, :app, :subject, :now, :since, :detail)"
                    ),
                    {
                        "key": key,
                        "kind": c.kind,
                        "app": c.app,
                        "subject": c.subject,
                        "now": now,
                        "since": c.since,
                        "detail": c.detail,
                    },
                )
                report.opened.append(key)
        for key, incident in open_keys.items():
            if key not in conditions:
                await conn.execute(
                    text("UPDATE alert_incidents SET recovered_at = :now WHERE id = :id"), {"now": now, "id": incident}
                )
                report.recovered.append(key)
        await conn.commit()
        pending = (
            await conn.execute(
                text(
                    "SELECT id, key, kind, app_name, subject, since, detail, recovered_at, notified_open, "
                    "notified_recovery FROM alert_incidents "
                    "WHERE NOT notified_open OR (recovered_at IS NOT NULL AND NOT notified_recovery) ORDER BY id"
                )
            )
        ).all()
        for row in pending:
            if not row.notified_open:
                c = Condition(row.key, row.kind, row.app_name, row.subject, row.since, row.detail)
                message, phase = opened_message(c, settings.dashboard_url, now), "open"
            else:
                message = recovered_message(row.kind, row.app_name, row.subject, row.since, row.recovered_at)
                phase = "recovery"
            done = {
                r.channel
                for r in await conn.execute(
                    text("SELECT channel FROM alert_notifications WHERE incident_id = :id AND phase = :phase"),
                    {"id": row.id, "phase": phase},
                )
            }
            if not deliveries.channels:  # no channel configured: the log line is the notification
                log.warning("alert", subject=message.subject, alert=row.kind, app=row.app_name)
            for channel in deliveries.channels:
                if channel in done:
                    continue
                if await deliveries.send(channel, message, message_kind="alert", alert=row.kind, app=row.app_name):
                    await conn.execute(
                        text(
                            "INSERT INTO alert_notifications (incident_id, phase, channel) "
                            "VALUES (:id, :phase, :channel) ON CONFLICT DO NOTHING"
                        ),
                        {"id": row.id, "phase": phase, "channel": channel},
                    )
                    await conn.commit()
                    done.add(channel)
                    report.sent += 1
                else:
                    report.failed += 1
            if done >= set(deliveries.channels):  # every channel took it
                column = "notified_open" if phase == "open" else "notified_recovery"
                await conn.execute(text(f"UPDATE alert_incidents SET {column} = true WHERE id = :id"), {"id": row.id})
                await conn.commit()
        report.open_incidents = len(conditions)
    return report
