"""Soak with faults: a real `signals serve`, clients that retry, and a database that goes away.

    .venv/bin/python bench/soak.py                          # 60 s, database down 6 s at 27 s
    .venv/bin/python bench/soak.py --fault stall --duration 30 --outage 5
    bench/report                                            # the scenarios, as one table

One run: an embedded PostgreSQL (or --database-url) with a fresh migrated database; the
service (`python -m app.cli serve`, one uvicorn worker on 127.0.0.1) reaches it through
testkit/faultproxy.py. `--clients` tasks send `trackEvent` with unique clientEventIds at a
paced total `--rate` and, as signals.js does, retry a refused event with the same id
(backoff 50 ms doubling to 1 s) until it is acknowledged (ACCEPTED or DUPLICATE). In the
middle, for `--outage` seconds, the fault:
- `cut`: the proxy drops the database's connections and refuses new ones;
- `stall`: the proxy passes nothing (a partition);
- `kill9`: the service is SIGKILLed (its write queue and open answers die with it), then
  started again on the same port, as a supervisor would;
- `pg-kill`: PostgreSQL is SIGKILLed (postmaster and backends), `pg-immediate`: stopped
  with `pg_ctl stop -m immediate`; then started again on the same data directory (crash
  recovery from the WAL). Only with the embedded server: a --database-url server is not
  this script's to kill, so these are skipped there.
`--synchronous-commit off` gives the test database that default (ALTER DATABASE), which
the writer's session must not inherit: a crash would lose acknowledged rows. After
`--duration` seconds no new ids are started; ids still unacknowledged keep being retried
for at most `--drain` seconds. Then the database is read directly.

Counted: requests sent; ids acknowledged; rows stored; lost (acknowledged, not stored);
duplicated (rows beyond one per id, or an id reported ACCEPTED twice); phantom (stored,
never acknowledged; a row committed whose answer died with a killed service is answered
DUPLICATE on the retry, so it counts as acknowledged); error rate (requests not
acknowledged / requests); p99 and the slowest answer during the outage; whether /readyz
went down (503, or no answer while the service is dead) and back to 200; the server
process's peak RSS (psutil, sampled every 100 ms; the largest of its runs after a kill9).
Load targets 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import asyncpg
import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.auth.tokens import issue_token  # noqa: E402
from app.storage.database import asyncpg_dsn  # noqa: E402
from app.storage.migrations import migrate  # noqa: E402
from testkit.database import count_rows, create_database, drop_database  # noqa: E402
from testkit.faultproxy import FaultProxy  # noqa: E402
from testkit.postgres import CrashablePostgres  # noqa: E402
from testkit.processes import PeakRss, clean_env, free_port  # noqa: E402

JWT_SECRET = "soak-jwt-secret-" + uuid.uuid4().hex + uuid.uuid4().hex
SALT_SECRET = "soak-salt-secret-" + uuid.uuid4().hex + uuid.uuid4().hex
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
TRACK = "mutation($input: TrackEventInput!) { trackEvent(input: $input) { status reason retryable } }"
ACKNOWLEDGED = ("ACCEPTED", "DUPLICATE")


class KeepAliveClient:
    """A minimal HTTP/1.1 keep-alive client for one connection: httpx spends milliseconds of
    CPU per request, and with the server on the same two cores the load generator, not the
    service, would set the pace."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post_json(self, path: str, payload: object, headers: dict[str, str]) -> tuple[int, dict]:
        """(status, parsed JSON body); raises OSError/TimeoutError/ValueError on a broken exchange."""
        body = json.dumps(payload).encode()
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        request = (
            f"POST {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n{head}\r\n"
        ).encode() + body
        try:
            return await asyncio.wait_for(self._exchange(request), self.timeout)
        except BaseException:
            self.close()
            raise

    async def _exchange(self, request: bytes) -> tuple[int, dict]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        self._writer.write(request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = next(int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:"))
        return status, json.loads(await self._reader.readexactly(length))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.transport.abort()
        self._reader = self._writer = None


@dataclass
class Result:
    scenario: str
    duration_s: float
    outage_s: float
    requests: int = 0
    acknowledged: int = 0
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    phantom: int = 0
    unacknowledged_at_end: int = 0
    refused_retryable: int = 0
    transport_errors: int = 0
    server_errors: int = 0
    error_rate: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    slowest_in_outage_ms: float | None = None
    readyz_503_seen: bool = False
    readyz_200_after_s: float | None = None
    peak_rss_mb: float = 0.0
    latencies: list[float] = field(default_factory=list, repr=False)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start_server(database_url: str, port: int, data_dir: Path, write_timeout: float) -> subprocess.Popen[bytes]:
    env = clean_env(
        DATABASE_URL=database_url,
        SIGNALS_DATA_DIR=str(data_dir),
        SIGNALS_JWT_SECRET=JWT_SECRET,
        SIGNALS_SALT_SECRET=SALT_SECRET,
        SIGNALS_ALLOWED_APPS="admin-console",
        SIGNALS_ALLOWED_EVENT_TYPES="click,view",
        SIGNALS_RATE_LIMIT="1000000/minute",
        SIGNALS_ANONYMOUS_RATE_LIMIT="1000000/minute",
        SIGNALS_WRITE_TIMEOUT=str(write_timeout),
        SIGNALS_DB_CONNECT_TIMEOUT="1",
        SIGNALS_LOG_LEVEL="WARNING",
    )
    log = open(data_dir / "server.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        # one worker: the peak RSS sampled is the whole server's
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=log,
        stderr=log,
        cwd=ROOT,
    )


class Service:
    """The `signals serve` process under test; `kill()` is a SIGKILL (nothing flushed, no
    shutdown), `restart()` serves again on the same port, as a supervisor would."""

    def __init__(self, database_url: str, port: int, data_dir: Path, write_timeout: float) -> None:
        self.launch = (database_url, port, data_dir, write_timeout)
        self.process = start_server(*self.launch)
        self.memory: PeakRss | None = None
        self.peak = 0

    def watch_memory(self) -> None:
        self.memory = PeakRss(self.process.pid, interval=0.1)
        self.memory.start()

    def kill(self) -> None:
        self._stop_watching()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def restart(self) -> None:
        self.process = start_server(*self.launch)
        self.watch_memory()

    def stop(self) -> None:
        self._stop_watching()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def _stop_watching(self) -> None:
        if self.memory is not None:
            self.memory.stop()
            self.peak = max(self.peak, self.memory.peak)
            self.memory = None


async def wait_ready(base: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{base}/readyz", timeout=2)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the server did not become ready")


class Outcome(NamedTuple):
    prefix: str  # of every clientEventId of the run
    acked: set[str]  # ids answered ACCEPTED or DUPLICATE
    inserted: dict[str, int]  # id -> times answered ACCEPTED (more than once would be a duplicate)


async def drive(port: int, faults: Faults, args: argparse.Namespace, result: Result) -> Outcome:
    """Run the load and the fault against the server on `port`."""
    auth = {
        "authorization": "Bearer " + issue_token(JWT_SECRET, subject="soak", roles=["member"], ttl_seconds=3600),
        "user-agent": UA,
    }
    prefix = f"soak-{uuid.uuid4().hex[:8]}-"
    inserted: dict[str, int] = {}
    acked: set[str] = set()
    started_ids: list[str] = []
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    outage_start = t0 + (args.duration - args.outage) / 2
    outage_end = outage_start + args.outage
    load_end = t0 + args.duration
    hard_end = load_end + args.drain
    interval = args.clients / args.rate  # seconds between one client's new events
    slowest_in_outage = 0.0

    async def send(client: KeepAliveClient, event_id: str) -> bool:
        nonlocal slowest_in_outage
        body = {
            "query": TRACK,
            "variables": {"input": {"eventType": "click", "appName": "admin-console", "clientEventId": event_id}},
        }
        sent = loop.time()
        result.requests += 1
        try:
            status, answer_body = await client.post_json("/graphql", body, auth)
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
            result.transport_errors += 1
            return False
        finally:
            took = loop.time() - sent
            result.latencies.append(took)
            if args.outage > 0 and outage_start <= sent < outage_end + 0.5:
                slowest_in_outage = max(slowest_in_outage, took)
        if status >= 500:
            result.server_errors += 1
            return False
        answer = answer_body.get("data", {}) or {}
        outcome = (answer.get("trackEvent") or {}).get("status")
        if outcome in ACKNOWLEDGED:
            if outcome == "ACCEPTED":
                inserted[event_id] = inserted.get(event_id, 0) + 1
            acked.add(event_id)
            return True
        result.refused_retryable += 1
        return False

    async def client_task(n: int) -> None:
        client = KeepAliveClient("127.0.0.1", port, args.client_timeout)
        k = 0
        next_at = t0 + interval * n / args.clients
        while loop.time() < load_end:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at += interval
            event_id = f"{prefix}{n}-{k}"
            k += 1
            started_ids.append(event_id)
            backoff = 0.05
            while not await send(client, event_id):
                if loop.time() > hard_end:
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
        client.close()

    async def fault_task() -> None:
        await asyncio.sleep(max(0.0, outage_start - loop.time()))
        await asyncio.to_thread(faults.begin, args.fault)
        await asyncio.sleep(max(0.0, outage_end - loop.time()))
        await asyncio.to_thread(faults.end, args.fault)

    async def watch_readyz() -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            while loop.time() < hard_end and (result.readyz_200_after_s is None or loop.time() < outage_end):
                try:
                    status = (await client.get("/readyz", timeout=3)).status_code
                except httpx.TransportError:
                    status = 0
                now = loop.time()
                # 503, or no answer at all while the service itself is dead
                if status in (503, 0) and outage_start <= now:
                    result.readyz_503_seen = True
                if status == 200 and result.readyz_503_seen and now >= outage_end and result.readyz_200_after_s is None:
                    result.readyz_200_after_s = round(now - outage_end, 2)
                await asyncio.sleep(0.25)

    readyz = asyncio.create_task(watch_readyz())
    outages = [asyncio.create_task(fault_task())] if args.outage > 0 else []
    await asyncio.gather(*(client_task(n) for n in range(args.clients)), *outages)
    readyz.cancel()
    await asyncio.gather(readyz, return_exceptions=True)
    result.slowest_in_outage_ms = round(slowest_in_outage * 1000, 1) if args.outage > 0 else None
    result.acknowledged = len(acked)
    result.unacknowledged_at_end = len(set(started_ids) - acked)
    return Outcome(prefix, acked, inserted)


async def set_database_default(database_url: str, name: str, value: str) -> None:
    """ALTER DATABASE ... SET: what every new session of the database starts with."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute(f'ALTER DATABASE "{make_url(database_url).database}" SET {name} = {value}')
    finally:
        await conn.close()


PROXY_FAULTS = ("cut", "stall")
SERVER_FAULTS = {"pg-kill": "sigkill", "pg-immediate": "immediate"}  # fault -> CrashablePostgres.crash
FAULTS = (*PROXY_FAULTS, "kill9", *SERVER_FAULTS)


class Faults:
    """What `--fault` does at the outage's start (`begin`) and end (`end`): the proxy cuts
    or stalls the database; `kill9` SIGKILLs the service and starts it again; `pg-kill`
    SIGKILLs PostgreSQL (postmaster and backends), `pg-immediate` is `pg_ctl stop -m
    immediate`, and both start it again on the same data directory (crash recovery)."""

    def __init__(self, proxy: FaultProxy, service: Service, postgres: CrashablePostgres | None) -> None:
        self.proxy, self.service, self.postgres = proxy, service, postgres

    def begin(self, fault: str) -> None:
        if fault in PROXY_FAULTS:
            getattr(self.proxy, fault)()
        elif fault == "kill9":
            self.service.kill()
        else:
            assert self.postgres is not None
            self.postgres.crash(SERVER_FAULTS[fault])  # type: ignore[arg-type]

    def end(self, fault: str) -> None:
        if fault in PROXY_FAULTS:
            self.proxy.restore()
        elif fault == "kill9":
            self.service.restart()
        else:
            assert self.postgres is not None
            self.postgres.restart()


async def run(
    args: argparse.Namespace, server_url: str, workdir: Path, postgres: CrashablePostgres | None = None
) -> Result:
    label = f"{args.fault} {args.outage:g}s" if args.outage > 0 else "no fault"
    if args.synchronous_commit:
        label += f" (db sync_commit={args.synchronous_commit})"
    result = Result(scenario=label, duration_s=args.duration, outage_s=args.outage)
    database_url = await create_database(server_url, "signals_soak")
    try:
        await migrate(database_url)
        if args.synchronous_commit:
            await set_database_default(database_url, "synchronous_commit", args.synchronous_commit)
        with FaultProxy(database_url) as proxy:
            port = free_port()
            data_dir = workdir / uuid.uuid4().hex[:8]
            data_dir.mkdir()
            service = Service(proxy.url, port, data_dir, args.write_timeout)
            try:
                await wait_ready(f"http://127.0.0.1:{port}")
                service.watch_memory()
                outcome = await drive(port, Faults(proxy, service, postgres), args, result)
            finally:
                service.stop()
                result.peak_rss_mb = round(service.peak / 2**20, 1)
        stored = await count_rows(database_url, outcome.prefix)
    finally:
        await drop_database(server_url, database_url)
    acked, inserted = outcome.acked, outcome.inserted
    result.stored = len(stored)
    result.lost = len(acked - set(stored))
    result.duplicated = sum(n - 1 for n in stored.values()) + sum(n - 1 for n in inserted.values() if n > 1)
    result.phantom = len(set(stored) - acked)
    result.error_rate = round(1 - result.acknowledged / result.requests, 4) if result.requests else 0.0
    result.p50_ms = round(percentile(result.latencies, 0.50) * 1000, 1)
    result.p99_ms = round(percentile(result.latencies, 0.99) * 1000, 1)
    return result


COLUMNS = [
    ("scenario", "scenario"), ("requests", "requests"), ("acknowledged", "acked"), ("stored", "stored"),
    ("lost", "lost"), ("duplicated", "dup"), ("phantom", "phantom"), ("error_rate", "err rate"),
    ("p99_ms", "p99 ms"), ("slowest_in_outage_ms", "max in outage ms"), ("readyz_503_seen", "readyz down"),
    ("readyz_200_after_s", "200 after s"), ("peak_rss_mb", "peak RSS MB"),
]  # fmt: skip


def table(results: list[Result]) -> str:
    rows = [[label for _, label in COLUMNS]]
    for r in results:
        values = asdict(r)
        rows.append(
            [
                ("-" if values[key] is None else f"{values[key]:.2%}" if key == "error_rate" else str(values[key]))
                for key, _ in COLUMNS
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (new ids)")
    parser.add_argument("--outage", type=float, default=6.0, help="seconds the database is away, centred (0 = none)")
    parser.add_argument("--fault", choices=FAULTS, default="cut")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rate", type=float, default=400.0, help="new events per second, all clients together")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to finish retrying after the load")
    parser.add_argument("--write-timeout", type=float, default=2.0, help="SIGNALS_WRITE_TIMEOUT of the server")
    parser.add_argument("--client-timeout", type=float, default=10.0)
    parser.add_argument(
        "--synchronous-commit",
        choices=["off", "local", "remote_write", "on", "remote_apply"],
        help="the test database's default synchronous_commit (ALTER DATABASE; the writer turns off back on)",
    )
    parser.add_argument("--database-url", help="a PostgreSQL server to use instead of an embedded one")
    parser.add_argument("--json", action="store_true", help="print the result as JSON too")
    parser.add_argument(
        "--report", action="store_true", help="run REPORT_SCENARIOS (bench/report) instead of one scenario"
    )
    return parser.parse_args(argv)


def with_server(body):  # type: ignore[no-untyped-def]
    """Run `body(server_url, workdir, postgres)` with a PostgreSQL server: --database-url
    (`postgres` None: this process cannot crash it) or an embedded one it can crash."""

    def runner(args: argparse.Namespace) -> object:
        with tempfile.TemporaryDirectory(prefix="signals-soak-") as tmp:
            workdir = Path(tmp)
            if args.database_url:
                return body(args.database_url, workdir, None)
            postgres = CrashablePostgres(workdir / "pg").start()
            try:
                return body(postgres.url, workdir, postgres)
            finally:
                postgres.stop()

    return runner


# bench/report: a steady baseline, the database cut off, partitioned, then the crashes: the
# service SIGKILLed (back 2 s later), PostgreSQL SIGKILLed and stopped -m immediate (back
# 3 s later, after crash recovery) with the database's default synchronous_commit = off,
# which would lose acknowledged rows if the writer kept it - about 7 min
REPORT_SCENARIOS = (
    {"outage": 0.0, "duration": 30.0},
    {"outage": 6.0, "fault": "cut"},
    {"outage": 6.0, "fault": "stall"},
    {"outage": 2.0, "fault": "kill9"},
    {"outage": 3.0, "fault": "pg-kill", "synchronous_commit": "off"},
    {"outage": 3.0, "fault": "pg-immediate", "synchronous_commit": "off"},
)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    variants = (
        [argparse.Namespace(**{**vars(args), **scenario}) for scenario in REPORT_SCENARIOS] if args.report else [args]
    )

    def run_all(url: str, workdir: Path, postgres: CrashablePostgres | None) -> list[Result]:
        results = []
        for variant in variants:
            if variant.outage > 0 and variant.fault in SERVER_FAULTS and postgres is None:
                print(f"skipped: {variant.fault} stops and restarts PostgreSQL itself, so it runs only on the "
                      "embedded server (without --database-url)", flush=True)  # fmt: skip
                continue
            print(f"running: {variant.duration:g}s at {variant.rate:g} events/s, {variant.clients} clients, "
                  f"outage {variant.outage:g}s ({variant.fault if variant.outage else 'none'})",
                  flush=True)  # fmt: skip
            results.append(asyncio.run(run(variant, url, workdir, postgres)))
        return results

    results: list[Result] = with_server(run_all)(args)
    if not results:
        return 2  # the one scenario asked for was skipped
    print()
    print(table(results))
    if args.json:
        for result in results:
            print(json.dumps({k: v for k, v in asdict(result).items() if k != "latencies"}))
    return 0 if all(r.lost == 0 and r.duplicated == 0 and r.phantom == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
