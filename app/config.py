"""Settings: read once from the environment (and `.env`), validated, with clear errors.

Every setting is documented in `.env.example`. `load_settings()` turns a validation
failure into `ConfigError` whose message is one line naming the setting and the problem;
the CLI prints that line and exits non-zero.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIN_SECRET_BYTES = 32

CommaList = Annotated[list[str], NoDecode]

# The syntax of configured values, shared with the code that applies them (app/ingest/):
# names in allowlists, entity id formats, trusted-proxy hop counts.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
ENTITY_ID_ALIASES = {
    "uuid": r"(?i:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})",
    "int": r"[0-9]{1,19}",
    "slug": r"[a-z0-9][a-z0-9-]{0,127}",
}
# "a=x,b=y" where x may itself hold commas ("{1,12}"): split only before "name=".
_PATTERN_ENTRY_SPLIT = re.compile(r",\s*(?=[A-Za-z0-9][A-Za-z0-9._:-]*\s*=)")


def parse_entity_id_patterns(value: str) -> dict[str, re.Pattern[str]]:
    """`"order=^[0-9]{1,12}$,customer=uuid"` -> {type: compiled full-match pattern}.

    Raises `ValueError` naming the entry that is not `type=regex` or whose regex is invalid.
    """
    patterns: dict[str, re.Pattern[str]] = {}
    for entry in _PATTERN_ENTRY_SPLIT.split(value.strip()) if value.strip() else []:
        entity_type, sep, pattern = (part.strip() for part in entry.partition("="))
        if not sep or not NAME.fullmatch(entity_type) or not pattern:
            raise ValueError(f"{entry!r} is not 'entityType=regex' (or =uuid, =int, =slug)")
        source = ENTITY_ID_ALIASES.get(pattern.lower(), pattern)
        try:
            patterns[entity_type] = re.compile(source)
        except (re.error, OverflowError, RecursionError) as exc:  # `a{4294967296}`, 2,000 nested groups
            raise ValueError(f"{entity_type}: {pattern!r} is not a valid regular expression ({exc})") from None
    return patterns


# The classes of bots the ingest pipeline tells apart (app/ingest/useragents.py `BotClass`).
BOT_CLASSES = ("crawler", "automation", "monitor", "library", "ai-agent")
_CLASS_PREFIX = re.compile(r"([a-z][a-z-]*)=")


def split_patterns(value: str) -> list[str]:
    """Comma-separated regexes; a comma inside `{}`, `[]` or `()` or after a backslash
    belongs to its regex (`a{1,3}` stays whole)."""
    entries: list[str] = []
    current: list[str] = []
    depth, escaped = 0, False
    for ch in value:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth = max(depth - 1, 0)
        elif ch == "," and depth == 0:
            entries.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    entries.append("".join(current).strip())
    return [entry for entry in entries if entry]


def _compile_pattern(entry: str) -> re.Pattern[str]:
    try:
        return re.compile(entry)
    except (re.error, OverflowError, RecursionError) as exc:
        raise ValueError(f"{entry!r} is not a valid regular expression ({exc})") from None


@functools.lru_cache(maxsize=16)  # pure, and read per request: compiled once per value
def parse_bot_allow_patterns(value: str) -> tuple[re.Pattern[str], ...]:
    """`"^AcmeKiosk/,InternalBrowser"` -> compiled patterns (searched in the User-Agent)."""
    return tuple(_compile_pattern(entry) for entry in split_patterns(value))


@functools.lru_cache(maxsize=16)
def parse_bot_deny_patterns(value: str) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """`"monitor=^AcmeProbe/,crawler=InternalSpider,LoadTester"` -> ((class, pattern), ...);
    an entry without a class prefix is a monitor. A lower-case word and "=" that starts an
    entry must be one of `BOT_CLASSES` (so a misspelt class is an error, not a pattern)."""
    parsed = []
    for entry in split_patterns(value):
        prefix = _CLASS_PREFIX.match(entry)
        klass, pattern = (prefix.group(1), entry[prefix.end() :]) if prefix else ("monitor", entry)
        if klass not in BOT_CLASSES:
            raise ValueError(f"{entry!r}: {klass!r} is not a bot class (use one of {', '.join(BOT_CLASSES)})")
        if not pattern:
            raise ValueError(f"{entry!r} has no pattern after its class")
        parsed.append((klass, _compile_pattern(pattern)))
    return tuple(parsed)


def is_hop_count(item: str) -> bool:
    """`2` is a number of trusted hops; `²` or `٢` are not (str.isdigit() says they are)."""
    return item.isascii() and item.isdigit()


class ConfigError(Exception):
    """A setting is missing or wrong. `str()` is one line naming the setting."""


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SIGNALS_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # --- runtime -----------------------------------------------------------------
    env: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=4001, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    data_dir: Path = PROJECT_ROOT / ".data"

    # --- HTTP server: slow and greedy clients (app/http/, `signals serve`) ----------
    # seconds from connecting (or from a request's first byte) to its complete headers; then 408
    header_timeout: float = Field(default=10.0, gt=0, le=300)
    # seconds from a request's headers to its complete body; then 408 REQUEST_TIMEOUT
    body_timeout: float = Field(default=15.0, gt=0, le=600)
    # seconds an idle keep-alive connection stays open between requests (uvicorn timeout_keep_alive)
    keep_alive_timeout: float = Field(default=5.0, gt=0, le=3600)
    # bytes of request line + headers: still incomplete after this many, 431 (also h11_max_incomplete_event_size)
    max_header_bytes: int = Field(default=32_768, ge=4_096, le=1_048_576)
    # open connections + running requests past which new requests get 503 (0 = no limit)
    limit_concurrency: int = Field(default=1_000, ge=0, le=1_000_000)
    # listen(2) backlog: connections the kernel queues before the server accepts them
    backlog: int = Field(default=2_048, ge=1, le=65_535)
    # worker processes of `signals serve` sharing its socket (0 = one per usable core, at most MAX_AUTO_WORKERS)
    workers: int = Field(default=0, ge=0, le=64)

    # --- database ----------------------------------------------------------------
    database_url: str | None = Field(default=None, validation_alias=AliasChoices("DATABASE_URL"))
    # a streaming replica of DATABASE_URL for admin reads (app/storage/replica.py); unset = the primary
    database_read_url: str | None = Field(default=None, validation_alias=AliasChoices("DATABASE_READ_URL"))
    # seconds the replica may lag before admin reads go back to the primary; below the hour
    # after which a UTC day counts as closed, so an answer stored from the replica stays exact
    read_replica_max_lag_seconds: float = Field(default=30.0, gt=0, le=600)
    # seconds between checks of the replica's state and lag
    read_replica_check_seconds: float = Field(default=2.0, gt=0, le=60)
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=5, ge=0, le=200)
    db_pool_timeout: float = Field(default=5.0, gt=0)
    db_connect_timeout: float = Field(default=5.0, gt=0)
    db_statement_timeout_ms: int = Field(default=10_000, ge=0)
    migrations_dir: Path = PROJECT_ROOT / "migrations"

    # --- redis (shared rate limits) ------------------------------------------------
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL"))

    # --- privacy hashing ----------------------------------------------------------
    salt_secret: SecretStr | None = None
    salt_secret_file: Path | None = None
    # seconds between checks of SIGNALS_SALT_SECRET_FILE for a rotated secret (0 = SIGHUP only)
    salt_secret_poll_seconds: float = Field(default=1.0, ge=0, le=3600)

    # --- auth ----------------------------------------------------------------------
    jwt_secret: SecretStr | None = None
    jwt_jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_roles_claim: str = "roles"
    jwt_algorithms: CommaList = ["HS256", "RS256", "ES256"]
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=600)
    gateway_hmac_secret: SecretStr | None = None
    # what a signed gateway request is trusted for: "token" (the gateway forwards the caller's
    # JWT, verified here like a bearer token) or "payload" (its claims, as the gateway verified them)
    gateway_trust: Literal["token", "payload"] = "token"
    jwt_jwks_cache_seconds: float = Field(default=300.0, gt=0)
    jwt_jwks_min_refresh_seconds: float = Field(default=30.0, ge=0)

    # --- ingest allowlists ----------------------------------------------------------
    allowed_apps: CommaList = []
    allowed_event_types: CommaList = []
    allowed_entity_types: CommaList = []
    trusted_proxies: CommaList = []
    # per entity type: "order=^[0-9]{1,12}$,customer=uuid" (regex or uuid/int/slug); others: a default format
    entity_id_patterns: str = ""

    # --- ingest pipeline ----------------------------------------------------------------
    ua_cache_size: int = Field(default=10_000, ge=0, le=1_000_000)
    # bot filter: comma-separated regexes searched in the User-Agent. Allow: people whatever the
    # built-in rules say (your kiosk app); deny: bots ("class=regex", class one of BOT_CLASSES,
    # default monitor; e.g. your own synthetic checks)
    bot_allow_patterns: str = ""
    bot_deny_patterns: str = ""
    write_timeout: float = Field(default=5.0, gt=0, le=120)
    write_batch_max: int = Field(default=500, ge=1, le=10_000)
    write_queue_max: int = Field(default=20_000, ge=1, le=1_000_000)
    fast_track: bool = True  # answer plain trackEvent documents without Strawberry (app/graphql/fastpath.py)

    # --- limits & lifecycle -----------------------------------------------------------
    rate_limit: str = "60/minute"
    # operations without valid credentials, per client address (they are refused anyway; this
    # bounds what an anonymous flood costs)
    anonymous_rate_limit: str = "120/minute"
    retention_days: int = Field(default=180, ge=1, le=36500)
    retention_batch_size: int = Field(default=5000, ge=1, le=1_000_000)
    # opt-in schedules inside `signals serve` (0 = off; use cron with the CLI instead)
    retention_interval_minutes: int = Field(default=0, ge=0, le=525_600)
    anonymise_interval_minutes: int = Field(default=0, ge=0, le=525_600)
    # a UTC day counts as closed (and is anonymised) only this long after its midnight
    anonymise_grace_minutes: int = Field(default=60, ge=0, le=1440)

    # --- exposure -------------------------------------------------------------------
    # /metrics: with a token, only `Authorization: Bearer <token>` reads it; without one it is
    # open in development and not served in production unless SIGNALS_METRICS_PUBLIC=true
    metrics_token: SecretStr | None = None
    metrics_public: bool | None = None
    # /demo/ (the tracker demo page): on in development, off in production unless set
    demo: bool | None = None

    # --- GraphQL --------------------------------------------------------------------
    graphiql: bool | None = None
    introspection: bool | None = None
    graphql_max_depth: int = Field(default=12, ge=1, le=100)
    graphql_max_aliases: int = Field(default=30, ge=1, le=10_000)
    graphql_max_tokens: int = Field(default=2_000, ge=10, le=1_000_000)
    max_body_bytes: int = Field(default=65_536, ge=1_024, le=64 * 1024 * 1024)
    stats_parallelism: int = Field(default=2, ge=1, le=16)
    # description key paths (dot paths, e.g. `lang,source.kind`) the read side may filter, break
    # down and aggregate by; each entry allows itself and every path under it; empty = all
    queryable_properties: CommaList = []

    # --- reports and alerts (app/reports/) -----------------------------------------------
    # seconds between flushes of the drop counts (drops per hour, app and reason) to the database
    drop_flush_seconds: float = Field(default=10.0, gt=0, le=3600)
    # apps the scheduled digest covers (default: SIGNALS_ALLOWED_APPS)
    digest_apps: CommaList = []
    # opt-in schedules inside `signals serve`: "day", "week" or "day,week" (empty = off)
    digest_schedule: CommaList = []
    # minutes between instrumentation alert checks inside `signals serve` (0 = off)
    alerts_interval_minutes: int = Field(default=0, ge=0, le=1440)
    # a type has a steady baseline with at least this many events on each of the previous 14 days
    alert_baseline_min_per_day: int = Field(default=50, ge=1)
    # closed hours an alert check looks at (the last ones before now)
    alert_window_hours: int = Field(default=3, ge=1, le=48)
    # "far below": the window's count under this fraction of the same hours' weekly baseline
    alert_drop_ratio: float = Field(default=0.2, gt=0, lt=1)
    # a spike: at least this many times the baseline (and at least alert_baseline_min_per_day events)
    alert_spike_ratio: float = Field(default=5.0, gt=1)
    # a drop surge: at least this many drops of one reason in the window, and this many times its baseline
    alert_drop_surge_min: int = Field(default=20, ge=1)
    # link to the dashboard in digests and alerts (never carries a token)
    dashboard_url: str | None = None
    # email (SMTP): all optional; without a host no email is sent
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_starttls: bool = True
    smtp_tls: bool = False  # implicit TLS (port 465)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "signals@localhost"
    smtp_to: CommaList = []
    smtp_timeout: float = Field(default=10.0, gt=0, le=300)
    # Slack-compatible incoming webhook (JSON with text and blocks); without one none is sent
    webhook_url: SecretStr | None = None
    webhook_timeout: float = Field(default=10.0, gt=0, le=300)
    # delivery attempts per message (exponential backoff between them)
    delivery_attempts: int = Field(default=4, ge=1, le=20)
    delivery_backoff_seconds: float = Field(default=1.0, ge=0, le=600)

    @field_validator(
        "jwt_algorithms",
        "allowed_apps",
        "allowed_event_types",
        "allowed_entity_types",
        "trusted_proxies",
        "queryable_properties",
        "digest_apps",
        "digest_schedule",
        "smtp_to",
        mode="before",
    )
    @classmethod
    def _comma_lists(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("queryable_properties")
    @classmethod
    def _check_property_paths(cls, value: list[str]) -> list[str]:
        for entry in value:
            if any(not key for key in entry.split(".")):
                raise ValueError(f"{entry!r} is not a dot path of description keys (e.g. lang or source.kind)")
        return value

    @field_validator("digest_schedule")
    @classmethod
    def _check_digest_schedule(cls, value: list[str]) -> list[str]:
        bad = [item for item in value if item not in ("day", "week")]
        if bad:
            raise ValueError(f"{bad} is not a period: use day, week or day,week")
        return value

    @field_validator("database_url", "database_read_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("is not a valid URL (expected postgresql://user:pass@host:port/db)") from None
        if not url.drivername.startswith("postgres"):
            raise ValueError(f"scheme {url.drivername!r} is not PostgreSQL (expected postgresql://...)")
        if not url.database:
            raise ValueError("names no database (expected postgresql://user:pass@host:port/db)")
        return value

    @field_validator("jwt_algorithms")
    @classmethod
    def _check_algorithms(cls, value: list[str]) -> list[str]:
        allowed = {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"}
        bad = [alg for alg in value if alg not in allowed]
        if bad:
            raise ValueError(f"unsupported algorithm(s) {bad}; choose from {sorted(allowed)} ('none' is never allowed)")
        if not value:
            raise ValueError("must name at least one algorithm")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for item in value:
            if is_hop_count(item):
                continue  # a number of trusted hops
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is neither a CIDR/IP nor a number of hops") from None
        return value

    @field_validator("entity_id_patterns")
    @classmethod
    def _check_entity_id_patterns(cls, value: str) -> str:
        parse_entity_id_patterns(value)  # raises ValueError naming the bad entry
        return value

    @field_validator("bot_allow_patterns")
    @classmethod
    def _check_bot_allow_patterns(cls, value: str) -> str:
        parse_bot_allow_patterns(value)  # raises ValueError naming the bad entry
        return value

    @field_validator("bot_deny_patterns")
    @classmethod
    def _check_bot_deny_patterns(cls, value: str) -> str:
        parse_bot_deny_patterns(value)
        return value

    @field_validator("rate_limit", "anonymous_rate_limit")
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate limit (e.g. '60/minute' or '10/second;500/hour')") from None
        return value

    @model_validator(mode="after")
    def _production_is_strict(self) -> Settings:
        if self.salt_secret is not None and self.salt_secret_file is not None:
            raise _SettingProblem("SIGNALS_SALT_SECRET", "set it or SIGNALS_SALT_SECRET_FILE, not both")
        if self.salt_secret_file is not None and not self.salt_secret_file.is_file():
            raise _SettingProblem("SIGNALS_SALT_SECRET_FILE", f"{self.salt_secret_file} is not a readable file")
        if self.salt_secret_file is not None:
            check_secret_file(self.salt_secret_file, strict=self.env == "production")
        if self.database_read_url is not None and self.database_url is None:
            raise _SettingProblem(
                "DATABASE_READ_URL", "needs DATABASE_URL: the replica streams from that server, not the embedded one"
            )
        if self.env != "production":
            return self
        if self.salt_secret is None and self.salt_secret_file is None:
            raise _SettingProblem(
                "SIGNALS_SALT_SECRET",
                "production needs a secret (or SIGNALS_SALT_SECRET_FILE); make one with `signals secret generate`",
            )
        if self.salt_secret is not None:
            check_secret_strength(self.salt_secret.get_secret_value(), "SIGNALS_SALT_SECRET")
        if self.jwt_secret is None and self.jwt_jwks_url is None:
            raise _SettingProblem("SIGNALS_JWT_SECRET", "production needs SIGNALS_JWT_SECRET or SIGNALS_JWT_JWKS_URL")
        if self.jwt_secret is not None:
            check_secret_strength(self.jwt_secret.get_secret_value(), "SIGNALS_JWT_SECRET")
        if self.database_url is None:
            raise _SettingProblem(
                "DATABASE_URL", "production needs an external PostgreSQL (the embedded one is for development)"
            )
        return self

    # --- derived ---------------------------------------------------------------------
    @property
    def worker_count(self) -> int:
        """`workers`, with 0 resolved to one per core this process may run on, capped."""
        return self.workers or auto_workers()

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def graphiql_enabled(self) -> bool:
        return (not self.is_production) if self.graphiql is None else self.graphiql

    @property
    def metrics_open(self) -> bool:
        """Whether /metrics answers without a token."""
        return (not self.is_production) if self.metrics_public is None else self.metrics_public

    @property
    def demo_enabled(self) -> bool:
        return (not self.is_production) if self.demo is None else self.demo

    @property
    def bot_allow(self) -> tuple[re.Pattern[str], ...]:
        """SIGNALS_BOT_ALLOW_PATTERNS, compiled (once per value)."""
        return parse_bot_allow_patterns(self.bot_allow_patterns)

    @property
    def bot_deny(self) -> tuple[tuple[str, re.Pattern[str]], ...]:
        """SIGNALS_BOT_DENY_PATTERNS as (class, pattern), compiled (once per value)."""
        return parse_bot_deny_patterns(self.bot_deny_patterns)

    @property
    def introspection_enabled(self) -> bool:
        return (not self.is_production) if self.introspection is None else self.introspection


class _SettingProblem(ValueError):
    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


def check_secret_strength(secret: str, setting: str) -> None:
    """Refuse secrets shorter than 32 bytes or made of one repeated character."""
    raw = secret.encode("utf-8")
    if len(raw) < MIN_SECRET_BYTES:
        raise _SettingProblem(
            setting, f"too weak: {len(raw)} bytes, need at least {MIN_SECRET_BYTES} (`signals secret generate`)"
        )
    if len(set(raw)) < 8:
        raise _SettingProblem(setting, "too weak: too few distinct characters (`signals secret generate`)")


def read_secret_file(path: Path) -> str:
    """The secret in `path`, surrounding whitespace removed; a clear error when unreadable or empty."""
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise _SettingProblem("SIGNALS_SALT_SECRET_FILE", f"cannot read {path}: {exc.__class__.__name__}") from None
    if not value:
        raise _SettingProblem("SIGNALS_SALT_SECRET_FILE", f"{path} is empty")
    return value


def check_secret_file(path: Path, *, strict: bool) -> str:
    """Read the secret file; with `strict` (production) also refuse a weak secret."""
    value = read_secret_file(path)
    if strict:
        check_secret_strength(value, "SIGNALS_SALT_SECRET_FILE")
    return value


def _env_name(field: str) -> str:
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"SIGNALS_{field.upper()}"


MAX_AUTO_WORKERS = 8  # past this, the database's connections, not the cores, run out first


def auto_workers() -> int:
    """One worker per core this process may run on (its CPU affinity), at most MAX_AUTO_WORKERS."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_AUTO_WORKERS))


def load_settings(**overrides: Any) -> Settings:
    """Build settings from env/.env (plus keyword overrides); raise `ConfigError` with one line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        ctx_error = (first.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _SettingProblem):
            raise ConfigError(f"configuration error: {ctx_error}") from None
        field = str(first["loc"][0]) if first.get("loc") else ""
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        name = _env_name(field) if field else "settings"
        raise ConfigError(f"configuration error: {name}: {message}") from None


def generate_secret() -> str:
    """A new salt/JWT secret: 48 random bytes, URL-safe base64 (64 characters)."""
    return secrets.token_urlsafe(48)


def dev_secret(settings: Settings, name: str) -> str:
    """A development-only secret kept in the git-ignored data dir, created on first use."""
    if settings.is_production:
        raise ConfigError(f"configuration error: {name}: never generated in production")
    path = settings.data_dir / f"dev-{name}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(generate_secret())
        path.chmod(0o600)
    return path.read_text().strip()
