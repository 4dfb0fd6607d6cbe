"""The `signals` command: serve, migrate, prisma, token (+ retention, anonymise, secret: app/cli/ops.py;
codegen: app/cli/codegen.py; digest, alerts, report: app/cli/reports.py)."""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

from app.auth.tokens import hs_secret, issue_token
from app.cli.codegen import add_codegen_command
from app.cli.ops import add_ops_commands
from app.cli.reports import add_report_commands
from app.config import PROJECT_ROOT, ConfigError, Settings, auto_workers, load_settings
from app.logs import configure_logging, get_logger
from app.privacy.secret import SaltSecret
from app.storage.database import Database, unavailable_reason
from app.storage.migrations import MigrationError, migrate

Command = Callable[[argparse.Namespace, Settings], int]

log = get_logger("signals.server")


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app.cli.serve import create_app, freeze_startup_heap
    from app.http.uvicorn_compat import guarded_http_protocol

    host = args.host or settings.host
    port = args.port or settings.port
    base = f"http://{host}:{port}"
    print(f"Signals ({settings.env}) listening on {base}", flush=True)
    print(
        f"  GraphQL:  {base}/graphql" + ("   (GraphiQL in a browser)" if settings.graphiql_enabled else ""), flush=True
    )
    print(f"  health:   {base}/healthz   ready: {base}/readyz   metrics: {base}/metrics", flush=True)
    print(f"  browser:  {base}/dashboard/   tracker: {base}/signals.js   demo: {base}/demo/", flush=True)
    if settings.jwt_secret is None and not settings.jwt_jwks_url and not settings.is_production:
        secret = hs_secret(settings)
        assert secret is not None
        token = issue_token(secret, subject="dev-admin", roles=["admin"], ttl_seconds=7 * 86_400)
        print("  development JWT secret generated in .data/ (set SIGNALS_JWT_SECRET to use your own)", flush=True)
        print(f"  sample admin token (7 days): {token}", flush=True)
        print(f"  dashboard: {base}/dashboard/#token={token}", flush=True)
        print(
            f"  try: curl -s {base}/graphql -H 'content-type: application/json' "
            f"-H 'authorization: Bearer {token}' -d '{{\"query\":\"{{ _service {{ sdl }} }}\"}}'",
            flush=True,
        )
    limit_concurrency = settings.limit_concurrency if args.limit_concurrency is None else args.limit_concurrency
    options = _uvicorn_options(settings, host, port, limit_concurrency)
    workers = settings.worker_count if args.workers is None else args.workers or auto_workers()
    if workers > 1:
        return _serve_workers(settings, workers, options)
    app = create_app(settings, run_migrations=True)
    freeze_startup_heap()
    uvicorn.run(app, http=guarded_http_protocol(settings), **options)
    return 0


def _uvicorn_options(settings: Settings, host: str, port: int, limit_concurrency: int) -> dict[str, Any]:
    """What every `signals serve` process hands uvicorn, one worker or several."""
    return {
        "host": host,
        "port": port,
        "access_log": False,  # it would log client IPs
        "proxy_headers": False,  # the client IP is resolved by app code from trusted proxies only
        "server_header": False,
        "log_config": None,
        "timeout_graceful_shutdown": 10,
        # slow and greedy clients: the `http` protocol (app/http/uvicorn_compat.py) and these
        "ws": "none",  # no WebSocket routes: upgrade requests are plain HTTP requests
        "timeout_keep_alive": settings.keep_alive_timeout,  # uvicorn compares and sleeps with it: sub-second works
        "h11_max_incomplete_event_size": settings.max_header_bytes,  # (h11 only; the guard counts for httptools)
        "limit_concurrency": limit_concurrency or None,
        "backlog": settings.backlog,
    }


def _serve_workers(settings: Settings, workers: int, options: dict[str, Any]) -> int:
    """Several uvicorn workers on one listening socket, under uvicorn's supervisor.

    This parent process starts the embedded PostgreSQL (unless DATABASE_URL) and applies the
    migrations once, then spawns the workers with that server's URL and no migrating of
    their own; it stops the server after every worker has exited. SIGTERM/SIGINT: each
    worker stops accepting, finishes its requests and flushes its queued events (the
    lifespan's shutdown) before it exits. Scheduled jobs run in every worker and rely on
    their advisory locks and sent-once records, as across replicas (jobs/schedule.py)."""
    from uvicorn.config import STARTUP_FAILURE

    from app.cli.serve import worker_app
    from app.http.uvicorn_compat import WorkerConfig, WorkerSupervisor

    try:
        # development secrets are generated here, before the workers start: two workers
        # creating the same file at once would each write (and hash with) their own
        SaltSecret(settings)
        hs_secret(settings)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if not settings.redis_url:
        log.warning(
            "several workers without REDIS_URL: each keeps its own rate limits, so a caller may get up to "
            "workers x SIGNALS_RATE_LIMIT; set REDIS_URL to share them",
            workers=workers,
        )
    database = Database(settings)
    try:
        url = database.start_server()
        result = asyncio.run(migrate(url, settings.migrations_dir))
        if result.applied:
            log.info("migrations applied", applied=result.applied)
        worker_settings = settings.model_copy(update={"database_url": url})
        config = WorkerConfig(
            worker_settings, functools.partial(worker_app, worker_settings), workers=workers, **options
        )
        sock = config.bind_socket()
        supervisor = WorkerSupervisor(config, sockets=[sock])
        log.info("starting workers", workers=workers, parent_pid=os.getpid())
        supervisor.run()
        sock.close()
    except MigrationError as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if (reason := unavailable_reason(exc)) is None:
            raise
        print(f"serve: cannot migrate: {reason} ({type(exc).__name__})", file=sys.stderr)
        return 1
    finally:
        database.stop_server()
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        log.error("a worker could not start; see its log lines above")
        return STARTUP_FAILURE
    log.info("all workers stopped", workers=workers)
    return 0


def _migrate(_: argparse.Namespace, settings: Settings) -> int:
    database = Database(settings)
    try:
        url = database.start_server()
        result = asyncio.run(migrate(url, settings.migrations_dir))
    except MigrationError as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    finally:
        database.stop_server()
    for name in result.applied:
        print(f"applied {name}")
    print(f"{len(result.applied)} applied, {len(result.already_applied)} already applied")
    return 0


def _prisma(args: argparse.Namespace, settings: Settings) -> int:
    """Run the Prisma CLI offline with DATABASE_URL set (embedded server when unset)."""
    database = Database(settings)
    try:
        env = dict(os.environ, DATABASE_URL=database.start_server())
        return subprocess.call([str(PROJECT_ROOT / "scripts" / "prisma"), *args.prisma_args], env=env)
    finally:
        database.stop_server()


def _token(args: argparse.Namespace, settings: Settings) -> int:
    secret = hs_secret(settings)
    if secret is None:
        print("token: no HS256 secret configured (SIGNALS_JWT_SECRET)", file=sys.stderr)
        return 1
    print(issue_token(secret, subject=args.subject, roles=args.role or [], ttl_seconds=args.ttl))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="signals", description="Privacy-first product analytics subgraph")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="apply migrations, then serve GraphQL over HTTP")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--limit-concurrency",
        type=int,
        default=None,
        help=(
            "answer 503 past this many open connections + running requests "
            "(default SIGNALS_LIMIT_CONCURRENCY; 0 = no limit)"
        ),
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes sharing the socket (default SIGNALS_WORKERS; 0 there = one per core, at most 8)",
    )
    serve.set_defaults(func=_serve)

    sub.add_parser("migrate", help="apply pending migrations/ (Prisma-compatible ledger)").set_defaults(func=_migrate)

    prisma = sub.add_parser("prisma", help="run the Prisma CLI offline, e.g. `signals prisma validate`")
    prisma.add_argument("prisma_args", nargs=argparse.REMAINDER)
    prisma.set_defaults(func=_prisma)

    token = sub.add_parser("token", help="print an HS256 JWT signed with the configured secret")
    token.add_argument("--subject", default="dev-user")
    token.add_argument("--role", action="append", help="a role to grant (repeatable), e.g. --role admin")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    token.set_defaults(func=_token)

    add_ops_commands(sub)
    add_codegen_command(sub)
    add_report_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    return int(args.func(args, settings))


if __name__ == "__main__":
    sys.exit(main())
