"""The composition root: builds every long-lived part from `Settings` and wires them into
the ASGI app. The app's lifespan is one sequence: each step starts a part and registers
how to stop it, and shutdown stops them in reverse order (queued events are flushed
before the pool closes, the pool closes before the embedded server stops)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import gc
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.auth.authenticate import Authenticator
from app.auth.tokens import hs_secret
from app.config import Settings
from app.graphql.context import AnonymousLimit, Runtime, Services
from app.graphql.schema import build_schema
from app.graphql.view import SignalsGraphQL
from app.http.app import SignalsApp, build_app
from app.ingest.dropcounts import DropCounter
from app.ingest.pipeline import Ingest
from app.ingest.writer import GroupCommitWriter
from app.logs import configure_logging, get_logger
from app.privacy.rotation import SecretWatcher
from app.privacy.secret import SaltSecret
from app.reports.alerts import check_alerts
from app.reports.deliver import Deliveries
from app.reports.schedule import DIGEST_CHECK_MINUTES, send_due_digests
from app.storage.database import Database, asyncpg_dsn, create_engine
from app.storage.migrations import migrate
from app.storage.replica import ReadRouter
from jobs.schedule import run_every, start_schedules, stop_schedules

log = get_logger("signals.server")


def start_report_schedules(settings: Settings, engine: AsyncEngine) -> list[asyncio.Task[None]]:
    """The opt-in digest (SIGNALS_DIGEST_SCHEDULE) and alert (SIGNALS_ALERTS_INTERVAL_MINUTES)
    schedules: every replica may run them; the sent-once records and locks keep one message."""
    tasks = []
    if settings.digest_schedule:
        digests = functools.partial(send_due_digests, engine, settings)
        tasks.append(asyncio.create_task(run_every("digest", DIGEST_CHECK_MINUTES * 60, digests), name="digest"))
    if settings.alerts_interval_minutes:
        alerts = functools.partial(check_alerts, engine, Deliveries(settings))

        async def check() -> object:
            return await alerts(dt.datetime.now(dt.UTC))

        tasks.append(
            asyncio.create_task(run_every("alerts", settings.alerts_interval_minutes * 60, check), name="alerts")
        )
    for task in tasks:
        log.info("job scheduled", job=task.get_name())
    return tasks


def read_router(settings: Settings, primary: AsyncEngine) -> ReadRouter:
    """Admin reads' router: on DATABASE_READ_URL's replica when set, else all on the primary."""
    replica = None
    if settings.database_read_url is not None:
        replica = create_engine(settings.database_read_url, settings, application_name="signals-reads")
    return ReadRouter(
        primary,
        replica,
        max_lag_seconds=settings.read_replica_max_lag_seconds,
        check_seconds=settings.read_replica_check_seconds,
        check_timeout=settings.db_connect_timeout,
    )


def create_app(settings: Settings, *, run_migrations: bool = True) -> SignalsApp:
    """Build the app. The lifespan starts the database (embedded unless `DATABASE_URL`),
    applies migrations, checks the read replica (`DATABASE_READ_URL`), starts ingest, secret
    rotation and the opt-in job schedules."""
    runtime = Runtime()

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(log.info, "signals stopped")
            stack.callback(runtime.stop)  # last: requests still being drained reach the services
            database = Database(settings)
            url = await asyncio.to_thread(database.start_server)
            stack.push_async_callback(asyncio.to_thread, database.stop_server)
            if run_migrations:
                result = await migrate(url, settings.migrations_dir)
                if result.applied:
                    log.info("migrations applied", applied=result.applied)
            engine = database.connect()
            stack.push_async_callback(database.dispose)
            reads = read_router(settings, engine)
            await reads.start()
            stack.push_async_callback(reads.stop)

            salt_secret = SaltSecret(settings)
            ingest = Ingest(
                settings,
                salt_secret,
                GroupCommitWriter(asyncpg_dsn(url), settings),
                drop_counter=DropCounter(asyncpg_dsn(url), settings.drop_flush_seconds),
            )
            await ingest.start()
            stack.push_async_callback(ingest.stop)  # flush queued events before the pool closes

            authenticator = Authenticator.from_settings(settings, hs_secret(settings))
            runtime.start(
                Services(
                    settings=settings,
                    engine=engine,
                    reads=reads,
                    authenticator=authenticator,
                    salt_secret=salt_secret,
                    ingest=ingest,
                    anonymous_limit=AnonymousLimit(settings, authenticator.subject_key),
                )
            )
            log.info(
                "signals ready",
                env=settings.env,
                embedded_db=database.embedded is not None,
                salt_secret_fingerprint=salt_secret.fingerprint,
            )

            watcher = SecretWatcher(salt_secret, settings.salt_secret_poll_seconds)
            watcher.start()
            stack.push_async_callback(watcher.stop)
            stack.push_async_callback(stop_schedules, start_schedules(settings, url))
            stack.push_async_callback(stop_schedules, start_report_schedules(settings, engine))
            yield

    graphql = SignalsGraphQL(
        build_schema(settings), runtime, graphql_ide="graphiql" if settings.graphiql_enabled else None
    )
    return build_app(settings, graphql, runtime, lifespan)


def freeze_startup_heap() -> None:
    """Move the start-up heap (schema, parsers, modules: ~100k objects) out of the cyclic
    collector's way: a full collection over it pauses every request for ~60 ms."""
    gc.collect()
    gc.freeze()


def worker_app(settings: Settings) -> SignalsApp:
    """The app of one `signals serve --workers N` worker, built in that worker: the parent
    already started the database (`settings.database_url`) and applied the migrations."""
    configure_logging(settings.log_level)
    app = create_app(settings, run_migrations=False)
    freeze_startup_heap()
    return app
