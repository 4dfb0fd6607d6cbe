"""Ingest benchmark: `trackEvent` against a bare single-INSERT endpoint, same run, same DB.

    .venv/bin/python bench/ingest.py            # about a minute and a half; needs `wrk`
    .venv/bin/python bench/ingest.py --with-schedules   # the app runs its digest and alert
        # schedules meanwhile, against an SMTP server and a webhook that are down

Starts one embedded PostgreSQL (or uses --database-url), migrates a fresh database on it,
then serves, each under one uvicorn worker on 127.0.0.1:
  - the app (`signals serve`),
  - bench/bare.py: a bare Starlette endpoint doing one asyncpg INSERT of an equivalent row,
  - bench/noop_graphql.py: the same Strawberry stack with a do-nothing trackEvent (reference).
It drives them with the same concurrency from wrk (Debian package `wrk`; without it, a
slower asyncio/httpx load generator in a separate process), and prints req/s, p50/p99 and
the ratios, plus the unique-User-Agent worst case and the batch mutation's events/s. Every
scenario's stored rows are counted afterwards to show nothing acknowledged was lost.
Load goes to 127.0.0.1 only and every run is bounded by --duration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

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


async def count_rows(dsn: str, run: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM events WHERE client_event_id LIKE $1", run + "-%"))
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured scenario (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per server")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (default 16)")
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
    embedded = None if args.database_url else EmbeddedPostgres(workdir)
    procs: list[subprocess.Popen[str]] = []
    try:
        server_url = args.database_url or embedded.start()  # type: ignore[union-attr]

        async def create() -> str:
            url = await create_database(server_url, "signals_bench")
            await migrate(url)
            return url

        db_url = asyncio.run(create())
        dsn = asyncpg_dsn(db_url)
        env = clean_env()
        app_port, bare_port, noop_port = free_port(), free_port(), free_port()
        app_env = dict(
            env,
            DATABASE_URL=db_url,
            SIGNALS_DATA_DIR=str(workdir / "data"),
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
        if args.with_schedules:
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
        procs.append(subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(app_port)],
                                      cwd=ROOT, env=app_env, stdout=subprocess.DEVNULL, text=True))  # fmt: skip
        procs.append(subprocess.Popen([sys.executable, "-m", "uvicorn", "bench.bare:app", "--port", str(bare_port),
                                       "--workers", "1", "--no-access-log", "--log-level", "warning"],
                                      cwd=ROOT, env=dict(env, BENCH_DATABASE_URL=dsn), text=True))  # fmt: skip
        procs.append(subprocess.Popen([sys.executable, "-m", "uvicorn", "bench.noop_graphql:app",
                                       "--port", str(noop_port),
                                       "--workers", "1", "--no-access-log", "--log-level", "warning"],
                                      cwd=ROOT, env=env, text=True))  # fmt: skip
        app_base, bare_base = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{bare_port}"
        noop_base = f"http://127.0.0.1:{noop_port}"
        wait_ready(app_base + "/readyz")
        wait_ready(bare_base + "/track")
        wait_ready(noop_base + "/graphql")
        auth = "Bearer " + issue_token(JWT_SECRET, subject="bench-user", roles=[], ttl_seconds=3600)

        scenarios = [  # name, base, path, body kind, unique UA, events per request
            ("bare INSERT endpoint", bare_base, "/track", "bare", False, 1),
            ("GraphQL noop (reference)", noop_base, "/graphql", "track", False, 1),
            ("trackEvent", app_base, "/graphql", "track", False, 1),
            ("trackEvent, every UA new", app_base, "/graphql", "track", True, 1),
            ("trackEvents x100 (batch)", app_base, "/graphql", "batch", False, 100),
        ]
        print(f"load: {'wrk' if use_wrk else 'python'} -c{args.connections}, {args.duration:g}s per scenario, "
              f"one uvicorn worker per server, one PostgreSQL, {os.cpu_count()} CPUs (shared)", flush=True)  # fmt: skip
        if args.with_schedules:
            print("app: digest and alert schedules on; SMTP and webhook down (deliveries fail and retry)", flush=True)
        for base, path, kind in (
            (bare_base, "/track", "bare"),
            (noop_base, "/graphql", "track"),
            (app_base, "/graphql", "track"),
        ):
            lua = scenario_lua(f"warm{uuid.uuid4().hex[:6]}", path, auth, kind, False)
            load_args = {
                "run": "warm" + uuid.uuid4().hex[:6],
                "path": path,
                "auth": auth,
                "kind": kind,
                "unique_ua": False,
            }
            if use_wrk:
                run_wrk(base + path, lua, args.connections, args.warmup)
            else:
                run_python_load(base + path, load_args, args.connections, args.warmup)
        results: list[Result] = []
        for name, base, path, kind, unique_ua, per_request in scenarios:
            run = "r" + uuid.uuid4().hex[:8]
            if use_wrk:
                measured = run_wrk(
                    base + path, scenario_lua(run, path, auth, kind, unique_ua), args.connections, args.duration
                )
            else:
                load_args = {"run": run, "path": path, "auth": auth, "kind": kind, "unique_ua": unique_ua}
                measured = run_python_load(base + path, load_args, args.connections, args.duration)
            result = Result(name, measured[0], per_request, measured[1], measured[2], measured[3], measured[4])
            time.sleep(0.5)  # let in-flight requests finish before counting
            result.stored = asyncio.run(count_rows(dsn, run))
            results.append(result)
            print(f"  {name:<28} {result.requests_per_s:>9.1f} req/s {result.events_per_s:>10.1f} events/s  "
                  f"p50 {result.p50_ms:>7.2f} ms  p99 {result.p99_ms:>7.2f} ms  "
                  f"completed {result.completed * per_request:>7}  stored {result.stored:>7}  errors: {result.errors}",
                  flush=True)  # fmt: skip

        bare, noop, track, unique, batch = results
        throughput = track.requests_per_s / bare.requests_per_s
        p99 = track.p99_ms / bare.p99_ms
        print()
        print(f"trackEvent / bare throughput: {throughput:.2f}x   (target >= 0.6x, goal 1.0x)  "
              f"{'OK' if throughput >= 0.6 else 'MISSED'}")  # fmt: skip
        print(
            f"GraphQL noop / bare throughput: {noop.requests_per_s / bare.requests_per_s:.2f}x   "
            "(the framework's ceiling, for reference)"
        )
        print(f"trackEvent / bare p99:        {p99:.2f}x   (target <= 2x)  {'OK' if p99 <= 2 else 'MISSED'}")
        print(f"batch events/s:               {batch.events_per_s:.0f}   (target >= 10000)  "
              f"{'OK' if batch.events_per_s >= 10_000 else 'MISSED'}")  # fmt: skip
        print(f"unique-UA events/s:           {unique.events_per_s:.0f}   (target >= 1000)  "
              f"{'OK' if unique.events_per_s >= 1_000 else 'MISSED'}")  # fmt: skip
        lost = [r.name for r in (track, unique, batch) if r.stored < r.completed * r.events_per_request]
        print(f"acknowledged but not stored:  {'none' if not lost else ', '.join(lost)}")
        return 0
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if embedded is not None:
            embedded.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
