"""Prometheus metrics (prometheus-client), served at `/metrics` (app/http/app.py)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_ACCEPTED = Counter("signals_events_accepted", "Events accepted and stored", ["app"])
EVENTS_DROPPED = Counter("signals_events_dropped", "Events dropped before storage, by reason", ["reason"])
BOTS_DROPPED = Counter("signals_bots_dropped", "Events dropped as bots (reason BOT), by bot class", ["class"])
EVENTS_DUPLICATE = Counter("signals_events_duplicate", "Events whose clientEventId was already stored", ["app"])
WRITE_BATCH_SIZE = Histogram(
    "signals_write_batch_size", "Events per group-commit INSERT", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
)

WRITE_BATCH_FAILURES = Counter(
    "signals_write_batch_failures", "Group-commit batches the database did not take, by error", ["error"]
)

READ_FALLBACKS = Counter(
    "signals_read_fallbacks",
    "Admin reads run on the primary although DATABASE_READ_URL is set, by reason: down, lagging, not_standby, "
    "recovery_conflict (the replica cancelled the read for replay; it ran again on the primary)",
    ["reason"],
)
READ_REPLICA_LAG = Gauge(
    "signals_read_replica_lag_seconds", "How far the read replica's replay was behind the primary at the last check"
)
READ_REPLICA_SERVING = Gauge("signals_read_replica_serving", "1 while admin reads go to the read replica, else 0")
