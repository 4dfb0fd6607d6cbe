"""`signals report`: one self-contained HTML file for an app and a window of UTC days.

Inline styles, inline script and inline data (a JSON block), inline SVG charts; no link,
font, image or script from anywhere else, so it opens offline, attached to an email or
hosted on any static site. The numbers are the read side's statistics: per UTC day events
and distinct users (`eventStats(interval: DAY)`), per event type events and summed daily
users (`totals`), plus drops by reason from `drop_counts`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import jinja2
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncConnection

from app.read.queries import BucketUnit, EventFilterSpec, StatsRequest, fetch_stats_buckets
from app.reports.digest import Window, drops_by_reason, per_type, totals

MAX_DAYS = 400

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_PAGE = _ENV.from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:24px;color:#1f2328;max-width:960px}
h1{font-size:22px;margin:0 0 4px} .muted{color:#59636e} .cards{display:flex;gap:16px;margin:16px 0}
.card{border:1px solid #d1d9e0;border-radius:6px;padding:12px 16px;min-width:180px}
.card b{display:block;font-size:26px} table{border-collapse:collapse;margin:8px 0 24px}
td,th{padding:4px 14px 4px 0;text-align:left;border-bottom:1px solid #eef1f4} th{cursor:pointer}
td.n{text-align:right;font-variant-numeric:tabular-nums} svg text{font-size:10px;fill:#59636e}
</style></head><body>
<h1>{{ title }}</h1>
<p class="muted">{{ span }}. Summed daily users add each UTC day's distinct users:
a person active on three days counts three times (not people).</p>
<div class="cards">
<div class="card">Events<b id="total-events">{{ events }}</b></div>
<div class="card">Summed daily users<b id="total-users">{{ users }}</b></div>
</div>
<h2>Events per day</h2>
{{ chart }}
<h2>Per day</h2>
<table id="days"><thead><tr><th>Day (UTC)</th><th>Events</th><th>Distinct users</th></tr></thead><tbody>
{% for d in days %}<tr data-day="{{ d.day }}"><td>{{ d.day }}</td>
<td class="n">{{ d.events }}</td><td class="n">{{ d.users }}</td></tr>
{% endfor %}</tbody></table>
<h2>Event types</h2>
<table id="types" class="sortable"><thead><tr><th>Event type</th><th>Events</th><th>Summed daily users</th></tr>
</thead><tbody>
{% for t in types %}<tr data-type="{{ t.type }}"><td>{{ t.type }}</td>
<td class="n">{{ t.events }}</td><td class="n">{{ t.users }}</td></tr>
{% endfor %}</tbody></table>
<h2>Drops by reason</h2>
{% if drops %}<table id="drops"><thead><tr><th>Reason</th><th>Dropped</th></tr></thead><tbody>
{% for reason, n in drops %}<tr><td>{{ reason }}</td><td class="n">{{ n }}</td></tr>{% endfor %}</tbody></table>
{% else %}<p class="muted">No drops recorded.</p>{% endif %}
<script type="application/json" id="report-data">{{ data }}</script>
<script>
// Sort a table by a header click; the data above is the report's numbers, for reuse.
document.querySelectorAll("table.sortable th").forEach(function (th, col) {
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].textContent, y = b.cells[col].textContent;
      return col ? Number(y) - Number(x) : x.localeCompare(y);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
document.documentElement.dataset.ready = "1";
</script>
</body></html>
"""
)


def bar_chart(days: list[dict[str, Any]]) -> str:
    """Inline SVG bars of events per day (escaped: only numbers and ISO days go in)."""
    width, height, pad = 900, 180, 24
    top = max((d["events"] for d in days), default=0) or 1
    step = (width - pad) / max(len(days), 1)
    bars = []
    for i, d in enumerate(days):
        h = (height - 2 * pad) * d["events"] / top
        x, y = pad + i * step, height - pad - h
        bars.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(step - 2, 1):.1f}" height="{h:.1f}" fill="#0969da">'
            f"<title>{d['day']}: {d['events']}</title></rect>"
        )
        if len(days) <= 31 or i % 7 == 0:
            bars.append(f'<text x="{x:.1f}" y="{height - 8}">{d["day"][5:]}</text>')
    return (
        f'<svg id="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="events per day">'
        f'<text x="0" y="12">{top}</text>{"".join(bars)}</svg>'
    )


async def build_report(conn: AsyncConnection, app: str, first: dt.date, last: dt.date) -> str:
    """The HTML for UTC days `first` .. `last` inclusive."""
    start = dt.datetime.combine(first, dt.time(), dt.UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC)
    window = Window(start, end)
    spec = EventFilterSpec(app_name=app, start=start, end=end)
    buckets = await fetch_stats_buckets(conn, StatsRequest(spec, (), BucketUnit.DAY, users=True), MAX_DAYS)
    counted = {row.bucket: row for row in buckets if row.bucket is not None}
    days = []
    at = start
    while at < end:
        row = counted.get(at)
        days.append(
            {
                "day": at.date().isoformat(),
                "events": row.events if row else 0,
                "users": row.distinct_users or 0 if row else 0,
            }
        )
        at += dt.timedelta(days=1)
    types = [
        {"type": name, "events": n, "users": u}
        for name, (n, u) in sorted((await per_type(conn, app, window)).items(), key=lambda kv: (-kv[1][0], kv[0]))
    ]
    events, users = await totals(conn, app, window)
    drops = sorted((await drops_by_reason(conn, app, window)).items())
    data = {
        "app": app,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "events": events,
        "summedDailyUsers": users,
        "days": days,
        "types": types,
        "drops": dict(drops),
    }
    # </script> cannot end the JSON block early: "<" is written as \u003c
    blob = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
    return _PAGE.render(
        title=f"Signals report: {app}",
        span=f"{first.isoformat()} to {last.isoformat()} (UTC days, inclusive)",
        events=events,
        users=users,
        chart=Markup(bar_chart(days)),
        days=days,
        types=types,
        drops=drops,
        data=Markup(blob),
    )
