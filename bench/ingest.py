"""Ingest benchmark: `trackEvent` against a bare single-INSERT endpoint, same run, same DB.

    .venv/bin/python bench/ingest.py            # needs `wrk`; about 4 minutes, plus filling
        # the 10-million-row table the first time (about 10 minutes; --data-dir keeps it)
    .venv/bin/python bench/ingest.py --data-dir /tmp/ingest-bench   # reuse that table
    .venv/bin/python bench/ingest.py --big-rows 0 --rounds 1        # the quick look
    .venv/bin/python bench/ingest.py --with-schedules   # the app runs its digest and alert
        # schedules meanwhile, against an SMTP server and a webhook that are down

Starts one embedded PostgreSQL (or uses --database-url) and migrates two databases on it:
one empty, one that will hold `--big-rows` events. On both, autovacuum is off for `events`
and its statistics say "empty" (analysed while it was), as on a server with `autovacuum =
off` that never analysed the table. Then it serves, on 127.0.0.1:
  - bench/bare.py: a bare Starlette endpoint doing one asyncpg INSERT of an equivalent row,
  - the app (`signals serve`, 1 worker) and the app with `--workers N`, on the empty database,
  - the app (1 worker) on the big database,
  - bench/noop_graphql.py: the same Strawberry stack with a do-nothing trackEvent (reference).
Every server is warmed up (so the big database's app plans its statements while the table
is empty); then the big table is filled through all its indexes (nothing analyses it).

The compared scenarios (bare, trackEvent, trackEvent with N workers, trackEvent on the big
table) run in `--rounds` alternating rounds (the order reversed every other round) with
the same concurrency from wrk (Debian package `wrk`; without it, a slower asyncio/httpx
load generator in a separate process). It prints each round, the medians, and the ratios
as the median of the per-round ratios; then, once each, the noop reference, the
unique-User-Agent worst case and the batch mutation's events/s. Every scenario's stored
rows are counted afterwards to show nothing acknowledged was lost. Load goes to 127.0.0.1
only and every run is bounded by --duration.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.auth.tokens import issue_token  # noqa: E402
from app.storage.database import EmbeddedPostgres, asyncpg_dsn  # noqa: E402
from app.storage.migrations import migrate  # noqa: E402
from testkit.database import create_database  # noqa: E402
from testkit.processes import clean_env, free_port  # noqa: E402

JWT_SECRET = "bench-jwt-secret-" + uuid.uuid4().hex + uuid.uuid4().hex
SALT_SECRET = "bench-salt-secret-" + uuid.uuid4().hex + uuid.uuid4().hex
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
EVENT = {"eventType": "click", "appName": "admin-console", "route": "/orders/:id", "entityType": "order",
         "entityId": "12345", "sessionId": "s-1", "description": {"button": "export", "rows": 25}}  # fmt: skip
TRACK = "mutation($i: TrackEventInput!) { trackEvent(input: $i) { status eventId } }"
TRACK_MANY = "mutation($i: [TrackEventInput!]!) { trackEvents(inputs: $i) { status eventId } }"


@dataclass
class Result:
    name: str
    requests_per_s: float
    events_per_request: int
    p50_ms: float
    p99_ms: float
    completed: int
    errors: str
    stored: int = 0

    @property
    def events_per_s(self) -> float:
        return self.requests_per_s * self.events_per_request


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"not ready: {url}")


# --- load scenarios as wrk Lua scripts ------------------------------------------------------

LUA = r"""
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
local counter = 0
function request()
  counter = counter + 1
  local id = "%(run)s-" .. tid .. "-" .. counter
  local headers = {["content-type"] = "application/json", ["authorization"] = "%(auth)s",
                   ["user-agent"] = %(ua)s}
  return wrk.format("POST", "%(path)s", headers, %(body)s)
end
"""


def make_body(kind: str, event_id: str) -> dict[str, object]:
    """The request body of a scenario, as a dict (the Python load generator's copy of the Lua)."""
    if kind == "bare":
        return dict(EVENT, clientEventId=event_id)
    if kind == "track":
        return {"query": TRACK, "variables": {"i": dict(EVENT, clientEventId=event_id)}}
    return {"query": TRACK_MANY, "variables": {"i": [dict(EVENT, clientEventId=f"{event_id}-{k}") for k in range(100)]}}


def unique_ua(event_id: str) -> str:
    return UA.replace("Chrome/120.0.0.0", f"Chrome/120.0.{event_id}")


def lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal here (ASCII)


def scenario_lua(run: str, path: str, auth: str, body_kind: str, unique_ua_per_request: bool) -> str:
    head, tail = unique_ua("@N@").split("@N@")
    ua = (
        f'{lua_string(head)} .. tid .. "." .. counter .. {lua_string(tail)}'
        if unique_ua_per_request
        else lua_string(UA)
    )
    if body_kind == "bare":
        event = dict(EVENT, clientEventId="@ID@")
        head, tail = json.dumps(event).split("@ID@")
        body = f"{lua_string(head)} .. id .. {lua_string(tail)}"
    elif body_kind == "track":
        payload = {"query": TRACK, "variables": {"i": dict(EVENT, clientEventId="@ID@")}}
        head, tail = json.dumps(payload).split("@ID@")
        body = f"{lua_string(head)} .. id .. {lua_string(tail)}"
    else:  # batch of 100: ids <id>-0 .. <id>-99
        event_head, event_tail = json.dumps(dict(EVENT, clientEventId="@ID@")).split("@ID@")
        payload_head, payload_tail = json.dumps({"query": TRACK_MANY, "variables": {"i": ["@EVENTS@"]}}).split(
            '"@EVENTS@"'
        )
        body = (
            f"(function() local parts = {{}} "
            f"for k = 0, 99 do parts[#parts + 1] = {lua_string(event_head)} .. id .. "
            f'"-" .. k .. {lua_string(event_tail)} end '
            f'return {lua_string(payload_head)} .. table.concat(parts, ",") .. '
            f"{lua_string(payload_tail)} end)()"
        )
    return LUA % {"run": run, "auth": auth, "ua": ua, "path": path, "body": body}


def parse_wrk(output: str) -> tuple[float, float, float, int, str]:
    def ms(value: str) -> float:
        match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
        if match is None:
            raise SystemExit(f"cannot read wrk's output:\n{output}")
        number, unit = match.groups()
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    completed = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors = "; ".join(re.findall(r"(Socket errors:.*|Non-2xx or 3xx responses:.*)", output)) or "none"
    return rps, p50, p99, completed, errors


def run_wrk(url: str, lua: str, connections: int, duration: float) -> tuple[float, float, float, int, str]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    try:
        cmd = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{duration:g}s", "--latency",
               "--timeout", "10s", "-s", script.name, url]  # fmt: skip
        output = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=duration + 30).stdout
    finally:
        os.unlink(script.name)
    return parse_wrk(output)


def run_python_load(
    url: str, lua_args: dict[str, object], connections: int, duration: float
) -> tuple[float, float, float, int, str]:
    """Fallback without wrk: bench/loadgen.py in its own process."""
    cmd = [
        sys.executable,
        str(ROOT / "bench" / "loadgen.py"),
        url,
        json.dumps(lua_args),
        str(connections),
        str(duration),
    ]
    output = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=duration + 60).stdout
    data = json.loads(output)
    return data["rps"], data["p50"], data["p99"], data["completed"], data["errors"]


async def count_rows(dsn: str, run: str, since: dt.datetime) -> int:
    """The rows of one scenario (its rows are the newest: the created_at index finds them,
    where a scan of a 10-million-row table would also evict what the next scenario needs)."""
    conn = await asyncpg.connect(dsn)
    try:
        sql = "SELECT count(*) FROM events WHERE created_at >= $2 AND client_event_id LIKE $1"
        return int(await conn.fetchval(sql, run + "-%", since))
    finally:
        await conn.close()


# --- the table that already holds millions of rows -----------------------------------------

FILL_SQL = """
INSERT INTO events (created_at, app_name, event_type, route, entity_type, entity_id, user_hash, session_id,
                    device_type, browser_family, os_family, client_event_id, dedup_key, description)
SELECT now() - interval '180 days' + g * (interval '180 days' / $1::int), 'admin-console',
       (ARRAY['click', 'view'])[1 + g % 2], '/orders/:id', 'order', (g % 100000)::text,
       md5((g / 40)::text) || md5((g / 40)::text || 'u'), 's-' || (g / 20), 'desktop', 'Chrome', 'Windows',
       'fill-' || g, md5(g::text) || md5(g::text || 'k'), '{"button": "export", "rows": 25}'::jsonb
FROM generate_series($2::int, $3::int) AS g
"""
FILL_CHUNK = 250_000


async def stale_statistics(dsn: str) -> None:
    """Autovacuum off for `events`, and statistics that say it is empty (analysed now, while
    it is): what a server with `autovacuum = off` believes about a table it never analysed."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("ALTER TABLE events SET (autovacuum_enabled = off, toast.autovacuum_enabled = off)")
        if not await conn.fetchval("SELECT EXISTS (SELECT FROM events)"):
            await conn.execute("ANALYZE events")
    finally:
        await conn.close()


async def fill(dsn: str, rows: int) -> None:
    """Insert `rows` events (in chunks, two connections at a time) through every index, as
    traffic would have; nothing analyses the table afterwards."""
    chunks = [(lo, min(lo + FILL_CHUNK - 1, rows)) for lo in range(1, rows + 1, FILL_CHUNK)]
    conn = await asyncpg.connect(dsn)
    try:  # a chunk is one statement: it is there when its last row is (found by the unique index)
        there = "SELECT EXISTS (SELECT FROM events WHERE dedup_key = md5($1::text) || md5($1::text || 'k'))"
        chunks = [(lo, hi) for lo, hi in chunks if not await conn.fetchval(there, str(hi))]
    finally:
        await conn.close()
    have = rows - sum(hi - lo + 1 for lo, hi in chunks)
    if not chunks:
        print(f"  reusing the {rows:,} events already in the big table", flush=True)
        return
    started, done = time.monotonic(), 0
    todo: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    for chunk in chunks:
        todo.put_nowait(chunk)

    async def loader() -> None:
        nonlocal done
        conn = await asyncpg.connect(dsn)
        try:
            while not todo.empty():
                lo, hi = todo.get_nowait()
                await conn.execute(FILL_SQL, rows, lo, hi)
                done += hi - lo + 1
                print(f"\r  filling: {have + done:,} of {rows:,} rows, {time.monotonic() - started:.0f} s ",
                      end="", flush=True)  # fmt: skip
        finally:
            await conn.close()

    await asyncio.gather(loader(), loader())
    print(flush=True)


# --- servers --------------------------------------------------------------------------------


def app_environment(env: dict[str, str], db_url: str, data_dir: Path, with_schedules: bool) -> dict[str, str]:
    app_env = dict(
        env,
        DATABASE_URL=db_url,
        SIGNALS_DATA_DIR=str(data_dir),
        SIGNALS_JWT_SECRET=JWT_SECRET,
        SIGNALS_SALT_SECRET=SALT_SECRET,
        SIGNALS_RATE_LIMIT="100000000/minute",
        SIGNALS_ANONYMOUS_RATE_LIMIT="100000000/minute",
        SIGNALS_ALLOWED_APPS="admin-console",
        SIGNALS_ALLOWED_EVENT_TYPES="click,view",
        SIGNALS_ALLOWED_ENTITY_TYPES="order",
        SIGNALS_ENTITY_ID_PATTERNS="order=^[0-9]{1,12}$",
        SIGNALS_LOG_LEVEL="WARNING",
    )
    if with_schedules:
        dead = free_port()  # nothing listens there: connections are refused
        app_env.update(
            SIGNALS_DIGEST_SCHEDULE="day,week",
            SIGNALS_ALERTS_INTERVAL_MINUTES="1",
            SIGNALS_DROP_FLUSH_SECONDS="1",
            SIGNALS_SMTP_HOST="127.0.0.1",
            SIGNALS_SMTP_PORT=str(dead),
            SIGNALS_SMTP_TO="team@example.test",
            SIGNALS_WEBHOOK_URL=f"http://127.0.0.1:{dead}/hook",
            SIGNALS_DELIVERY_ATTEMPTS="20",
            SIGNALS_DELIVERY_BACKOFF_SECONDS="0.5",
        )
    return app_env


def serve_app(app_env: dict[str, str], workers: int) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    cmd = [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", str(workers)]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=app_env, stdout=subprocess.DEVNULL, text=True
    ), f"http://127.0.0.1:{port}"


def serve_uvicorn(target: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", target, "--port", str(port), "--workers", "1", "--no-access-log",
           "--log-level", "warning"]  # fmt: skip
    return subprocess.Popen(cmd, cwd=ROOT, env=env, text=True), f"http://127.0.0.1:{port}"


@dataclass(frozen=True)
class Scenario:
    name: str
    base: str
    path: str
    kind: str  # the body: "bare", "track" or "batch"
    unique_ua: bool = False
    dsn: str = ""  # where its rows are counted ("" for the noop reference)

    @property
    def per_request(self) -> int:
        return 100 if self.kind == "batch" else 1


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured scenario (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per server")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (default 16)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the compared scenarios")
    parser.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 8), help="N for 1 vs N workers")
    parser.add_argument("--big-rows", type=int, default=10_000_000,
                        help="rows in the big table (default 10 million; 0 leaves that comparison out)")  # fmt: skip
    parser.add_argument("--data-dir", type=Path,
                        help="keep the embedded server (and the big table) here and reuse it next time")  # fmt: skip
    parser.add_argument("--database-url", help="a PostgreSQL server to use instead of an embedded one")
    parser.add_argument(
        "--with-schedules",
        action="store_true",
        help="run the app with the digest and alert schedules on, delivering to an SMTP server and a webhook "
        "that are down (every delivery fails and is retried during the run)",
    )
    args = parser.parse_args()

    use_wrk = shutil.which("wrk") is not None
    if not use_wrk:
        print("wrk not found (apt-get install wrk): using the slower Python load generator", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="signals-bench-"))
    embedded = None if args.database_url else EmbeddedPostgres(args.data_dir or workdir)
    procs: list[subprocess.Popen[str]] = []
    try:
        server_url = args.database_url or embedded.start()  # type: ignore[union-attr]

        async def prepare() -> tuple[str, str | None]:
            url = await create_database(server_url, "signals_bench")
            await migrate(url)
            await stale_statistics(asyncpg_dsn(url))
            if not args.big_rows:
                return url, None
            big = make_url(server_url).set(database="signals_bench_big").render_as_string(hide_password=False)
            conn = await asyncpg.connect(asyncpg_dsn(server_url))
            try:
                if not await conn.fetchval(
                    "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", "signals_bench_big"
                ):
                    await conn.execute('CREATE DATABASE "signals_bench_big"')
            finally:
                await conn.close()
            await migrate(big)
            await stale_statistics(asyncpg_dsn(big))
            return url, big

        db_url, big_url = asyncio.run(prepare())
        dsn = asyncpg_dsn(db_url)
        env = clean_env()
        app_env = app_environment(env, db_url, workdir / "data", args.with_schedules)
        servers = {
            "bare": serve_uvicorn("bench.bare:app", dict(env, BENCH_DATABASE_URL=dsn)),
            "noop": serve_uvicorn("bench.noop_graphql:app", env),
            "app": serve_app(app_env, 1),
        }
        if args.workers > 1:
            servers["appN"] = serve_app(dict(app_env, SIGNALS_DATA_DIR=str(workdir / "dataN")), args.workers)
        if big_url:
            servers["big"] = serve_app(app_environment(env, big_url, workdir / "big", args.with_schedules), 1)
        procs.extend(proc for proc, _ in servers.values())
        base = {name: url for name, (_, url) in servers.items()}
        for name, url in base.items():
            wait_ready(url + {"bare": "/track", "noop": "/graphql"}.get(name, "/readyz"))
        auth = "Bearer " + issue_token(JWT_SECRET, subject="bench-user", roles=[], ttl_seconds=3600)

        def measure(scenario: Scenario, seconds: float, *, count: bool = True) -> Result:
            run = "r" + uuid.uuid4().hex[:8]
            started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            if use_wrk:
                lua = scenario_lua(run, scenario.path, auth, scenario.kind, scenario.unique_ua)
                measured = run_wrk(scenario.base + scenario.path, lua, args.connections, seconds)
            else:
                load_args = {"run": run, "path": scenario.path, "auth": auth, "kind": scenario.kind,
                             "unique_ua": scenario.unique_ua}  # fmt: skip
                measured = run_python_load(scenario.base + scenario.path, load_args, args.connections, seconds)
            result = Result(scenario.name, measured[0], scenario.per_request, *measured[1:])
            if count and scenario.dsn:
                time.sleep(0.5)  # let in-flight requests finish before counting
                result.stored = asyncio.run(count_rows(scenario.dsn, run, started))
            return result

        def show(result: Result, label: str = "") -> None:
            name = f"{result.name}{label}"
            print(f"  {name:<40} {result.requests_per_s:>9.1f} req/s {result.events_per_s:>10.1f} events/s  "
                  f"p50 {result.p50_ms:>7.2f} ms  p99 {result.p99_ms:>7.2f} ms  "
                  f"completed {result.completed * result.events_per_request:>7}  stored {result.stored:>7}  "
                  f"errors: {result.errors}", flush=True)  # fmt: skip

        bare = Scenario("bare INSERT endpoint", base["bare"], "/track", "bare", dsn=dsn)
        track = Scenario("trackEvent (1 worker)", base["app"], "/graphql", "track", dsn=dsn)
        compared = [bare, track]
        if "appN" in base:
            compared.append(
                Scenario(f"trackEvent ({args.workers} workers)", base["appN"], "/graphql", "track", dsn=dsn)
            )
        if big_url:
            big = Scenario(f"trackEvent (1 worker), {args.big_rows:,}-row table", base["big"], "/graphql", "track",
                           dsn=asyncpg_dsn(big_url))  # fmt: skip
            compared.append(big)
        once = [
            Scenario("GraphQL noop (reference)", base["noop"], "/graphql", "track"),
            Scenario("trackEvent, every UA new", base["app"], "/graphql", "track", unique_ua=True, dsn=dsn),
            Scenario("trackEvents x100 (batch)", base["app"], "/graphql", "batch", dsn=dsn),
        ]

        print(f"load: {'wrk' if use_wrk else 'python'} -c{args.connections}, {args.duration:g}s per scenario, "
              f"one PostgreSQL, {os.cpu_count()} CPUs (shared); {args.rounds} alternating rounds of "
              f"{len(compared)} scenarios, medians below", flush=True)  # fmt: skip
        if args.with_schedules:
            print("app: digest and alert schedules on; SMTP and webhook down (deliveries fail and retry)", flush=True)
        for scenario in [*compared, once[0]]:  # warm-up: plans cached while the big table is still empty
            measure(scenario, args.warmup, count=False)
        if big_url:
            asyncio.run(fill(asyncpg_dsn(big_url), args.big_rows))

        rounds: dict[str, list[Result]] = {s.name: [] for s in compared}
        for number in range(args.rounds):
            order = compared if number % 2 == 0 else compared[::-1]
            print(f"round {number + 1}:", flush=True)
            for scenario in order:
                result = measure(scenario, args.duration)
                rounds[scenario.name].append(result)
                show(result)
        print("once:", flush=True)
        singles = [measure(scenario, args.duration) for scenario in once]
        for result in singles:
            show(result)
        noop, unique, batch = singles

        def ratio(name: str, of: str, field: str) -> float:
            """The median over rounds of (name / of) in each round: both measured side by side."""
            pairs = zip(rounds[name], rounds[of], strict=True)
            return median([getattr(a, field) / getattr(b, field) for a, b in pairs])

        print()
        print("medians of the rounds:")
        for name, results in rounds.items():
            print(f"  {name:<40} {median([r.requests_per_s for r in results]):>9.1f} req/s  "
                  f"p99 {median([r.p99_ms for r in results]):>7.2f} ms")  # fmt: skip
        throughput = ratio(track.name, bare.name, "requests_per_s")
        p99 = ratio(track.name, bare.name, "p99_ms")
        print()
        print(
            f"trackEvent / bare throughput: {throughput:.2f}x   (goal >= 1.0x)  {'OK' if throughput >= 1 else 'MISSED'}"
        )
        print(f"trackEvent / bare p99:        {p99:.2f}x   (goal <= 1.5x)  {'OK' if p99 <= 1.5 else 'MISSED'}")
        if "appN" in base:
            scale = ratio(compared[2].name, track.name, "requests_per_s")
            print(f"{args.workers} workers / 1 worker:        {scale:.2f}x   (one PostgreSQL on the same cores)")
        if big_url:
            held = ratio(big.name, track.name, "requests_per_s")
            print(f"{args.big_rows:,}-row table / empty:  {held:.2f}x   (goal >= 0.9x; autovacuum off, "
                  f"never analysed)  {'OK' if held >= 0.9 else 'MISSED'}")  # fmt: skip
        ceiling = noop.requests_per_s / median([r.requests_per_s for r in rounds[bare.name]])
        print(f"GraphQL noop / bare throughput: {ceiling:.2f}x   (the framework's ceiling, for reference)")
        print(f"batch events/s:               {batch.events_per_s:.0f}   (target >= 10000)  "
              f"{'OK' if batch.events_per_s >= 10_000 else 'MISSED'}")  # fmt: skip
        print(f"unique-UA events/s:           {unique.events_per_s:.0f}   (target >= 1000)  "
              f"{'OK' if unique.events_per_s >= 1_000 else 'MISSED'}")  # fmt: skip
        measured = [r for results in rounds.values() for r in results] + [unique, batch]
        lost = [r.name for r in measured if r.name != bare.name and r.stored < r.completed * r.events_per_request]
        print(f"acknowledged but not stored:  {'none' if not lost else ', '.join(sorted(set(lost)))}")
        return 0
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if embedded is not None:
            embedded.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
