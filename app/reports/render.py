"""A digest or an alert as a message: plain text, HTML (Jinja2, autoescaped) and
Slack-compatible JSON (`text` plus `blocks`). Every message carries only counts, event
type names, drop reasons and app names; a dashboard link never carries a token (only
`app`, `from` and `to` are added to the configured URL, and any query or fragment the
operator's URL had is dropped)."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

import jinja2

from app.reports.digest import Digest, TypeCount, percent_change


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    html: str
    slack: dict[str, Any]


def dashboard_link(base: str | None, app: str, start: str, end: str) -> str | None:
    if not base:
        return None
    parts = urllib.parse.urlsplit(base)
    query = urllib.parse.urlencode({"app": app, "from": start, "to": end})
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_DIGEST_HTML = _ENV.from_string(
    """<!doctype html><html><body style="font-family:sans-serif;color:#222">
<h2 style="margin:0 0 8px">{{ title }}</h2>
<p style="color:#555;margin:0 0 12px">{{ span }}</p>
<table style="border-collapse:collapse" data-section="totals">
<tr><td style="padding:2px 12px 2px 0">Events</td><td data-number="events"><b>{{ d.events }}</b></td>
<td style="color:#555">{{ pct(d.events, d.previous_events) }} vs {{ d.previous_events }}</td></tr>
<tr><td style="padding:2px 12px 2px 0">Summed daily users (not people)</td>
<td data-number="summed_daily_users"><b>{{ d.summed_daily_users }}</b></td>
<td style="color:#555">{{ pct(d.summed_daily_users, d.previous_summed_daily_users) }}
vs {{ d.previous_summed_daily_users }}</td></tr>
</table>
{% for heading, rows in sections %}<h3 style="margin:16px 0 4px">{{ heading }}</h3>
{% if rows %}<table style="border-collapse:collapse">{% for row in rows %}<tr>{% for cell in row %}
<td style="padding:2px 12px 2px 0">{{ cell }}</td>{% endfor %}</tr>{% endfor %}</table>
{% else %}<p style="color:#555;margin:0">none</p>{% endif %}{% endfor %}
{% if link %}<p><a href="{{ link }}">Open the dashboard</a></p>{% endif %}
</body></html>"""
)


def _type_row(t: TypeCount) -> list[str]:
    return [t.event_type, str(t.events), f"{t.summed_daily_users} summed daily users"]


def _mover_row(t: TypeCount) -> list[str]:
    return [t.event_type, f"{t.change:+d}", f"{t.previous_events} → {t.events}"]


def digest_sections(d: Digest) -> list[tuple[str, list[list[str]]]]:
    drops = sorted(d.drops.keys() | d.previous_drops.keys())
    return [
        ("Top features", [_type_row(t) for t in d.top]),
        ("Biggest movers up", [_mover_row(t) for t in d.movers_up]),
        ("Biggest movers down", [_mover_row(t) for t in d.movers_down]),
        ("Event types seen for the first time", [[name] for name in d.first_seen]),
        ("Event types gone silent", [[name] for name in d.gone_silent]),
        (
            "Drops by reason",
            [[r, str(d.drops.get(r, 0)), f"previous {d.previous_drops.get(r, 0)}"] for r in drops],
        ),
    ]


def render_digest(d: Digest, dashboard_url: str | None = None) -> Message:
    start, end = d.window.start.date().isoformat(), d.window.end.date().isoformat()
    span = f"{start} 00:00 UTC to {end} 00:00 UTC, against the {d.period} before"
    title = f"Signals {'daily' if d.period == 'day' else 'weekly'} digest: {d.app}"
    link = dashboard_link(dashboard_url, d.app, d.window.start.isoformat(), d.window.end.isoformat())
    sections = digest_sections(d)
    lines = [
        title,
        span,
        "",
        f"Events: {d.events} ({percent_change(d.events, d.previous_events)} vs {d.previous_events})",
        f"Summed daily users (not people): {d.summed_daily_users} "
        f"({percent_change(d.summed_daily_users, d.previous_summed_daily_users)} vs {d.previous_summed_daily_users})",
    ]
    for heading, rows in sections:
        lines += ["", f"{heading}:"] + ([f"  {'  '.join(row)}" for row in rows] or ["  none"])
    if link:
        lines += ["", f"Dashboard: {link}"]
    text = "\n".join(lines) + "\n"
    html = _DIGEST_HTML.render(d=d, title=title, span=span, sections=sections, link=link, pct=percent_change)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": span}]},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Events*\n{d.events} ({percent_change(d.events, d.previous_events)})"},
                {
                    "type": "mrkdwn",
                    "text": f"*Summed daily users (not people)*\n{d.summed_daily_users} "
                    f"({percent_change(d.summed_daily_users, d.previous_summed_daily_users)})",
                },
            ],
        },
    ]
    for heading, rows in sections:
        body = "\n".join("  ".join(row) for row in rows) or "none"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*{heading}*\n{body}"}})
    if link:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"<{link}|Open the dashboard>"}})
    return Message(subject=title, text=text, html=html, slack={"text": text, "blocks": blocks})


_ALERT_HTML = _ENV.from_string(
    """<!doctype html><html><body style="font-family:sans-serif;color:#222">
<h2 style="margin:0 0 8px">{{ subject }}</h2>{% for p in paragraphs %}<p>{{ p }}</p>{% endfor %}
{% if link %}<p><a href="{{ link }}">Open the dashboard</a></p>{% endif %}</body></html>"""
)


def render_alert(subject: str, paragraphs: list[str], link: str | None) -> Message:
    text = "\n\n".join([subject, *paragraphs, *([f"Dashboard: {link}"] if link else [])]) + "\n"
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": subject[:150]}}]
    blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": p}} for p in paragraphs]
    if link:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"<{link}|Open the dashboard>"}})
    html = _ALERT_HTML.render(subject=subject, paragraphs=paragraphs, link=link)
    return Message(subject=subject, text=text, html=html, slack={"text": text, "blocks": blocks})
