"""Settings: validation with one clear line naming the setting, production strictness."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.config import ConfigError, load_settings
from testkit.processes import clean_env

STRONG = "Zq8s7DkE2vX9pL1mN4bR6tY3wU5iO0aQcFgHjK"


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], env=clean_env(**env), capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("env", "setting", "words"),
    [
        ({"DATABASE_URL": "not a url at all"}, "DATABASE_URL", "not a valid URL"),
        ({"DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL", "not PostgreSQL"),
        ({"DATABASE_READ_URL": "mysql://u@h/db"}, "DATABASE_READ_URL", "not PostgreSQL"),
        ({"DATABASE_READ_URL": "postgresql://u@h/db"}, "DATABASE_READ_URL", "needs DATABASE_URL"),
        ({"SIGNALS_READ_REPLICA_MAX_LAG_SECONDS": "0"}, "SIGNALS_READ_REPLICA_MAX_LAG_SECONDS", "greater than"),
        ({"SIGNALS_ENV": "production"}, "SIGNALS_SALT_SECRET", "production needs a secret"),
        ({"SIGNALS_ENV": "production", "SIGNALS_SALT_SECRET": "short"}, "SIGNALS_SALT_SECRET", "too weak"),
        ({"SIGNALS_ENV": "staging"}, "SIGNALS_ENV", "development"),
        ({"SIGNALS_RETENTION_DAYS": "-3"}, "SIGNALS_RETENTION_DAYS", "greater than or equal"),
        ({"SIGNALS_RATE_LIMIT": "lots"}, "SIGNALS_RATE_LIMIT", "not a rate limit"),
        ({"SIGNALS_TRUSTED_PROXIES": "10.0.0.0/8,banana"}, "SIGNALS_TRUSTED_PROXIES", "banana"),
        ({"SIGNALS_TRUSTED_PROXIES": "\u00b2"}, "SIGNALS_TRUSTED_PROXIES", "neither a CIDR"),  # isdigit() but no number
        ({"SIGNALS_JWT_ALGORITHMS": "none"}, "SIGNALS_JWT_ALGORITHMS", "never allowed"),
        ({"SIGNALS_SALT_SECRET_FILE": "/nonexistent/secret"}, "SIGNALS_SALT_SECRET_FILE", "not a readable file"),
        ({"SIGNALS_BOT_ALLOW_PATTERNS": "^AcmeKiosk/,(unclosed"}, "SIGNALS_BOT_ALLOW_PATTERNS", "'(unclosed'"),
        ({"SIGNALS_BOT_DENY_PATTERNS": "monitor=Acme[Probe"}, "SIGNALS_BOT_DENY_PATTERNS", "not a valid regular"),
        ({"SIGNALS_BOT_DENY_PATTERNS": "monitr=^AcmeProbe/"}, "SIGNALS_BOT_DENY_PATTERNS", "is not a bot class"),
        ({"SIGNALS_BOT_DENY_PATTERNS": "crawler="}, "SIGNALS_BOT_DENY_PATTERNS", "no pattern"),
    ],
)
def test_bad_setting_exits_nonzero_with_one_line(env: dict[str, str], setting: str, words: str) -> None:
    result = cli("serve", **env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert setting in lines[0] and words in lines[0], lines[0]


def test_bot_patterns_split_on_commas_outside_their_regexes() -> None:
    settings = load_settings(
        bot_allow_patterns=r"^AcmeKiosk/\d{1,3}, Intranet\,Browser",
        bot_deny_patterns="monitor=^AcmeProbe/[0-9]{1,2}(?:,x)?,automation=AcmeE2E,LoadTester",
    )
    assert [p.pattern for p in settings.bot_allow] == [r"^AcmeKiosk/\d{1,3}", r"Intranet\,Browser"]
    assert [(c, p.pattern) for c, p in settings.bot_deny] == [
        ("monitor", "^AcmeProbe/[0-9]{1,2}(?:,x)?"),
        ("automation", "AcmeE2E"),
        ("monitor", "LoadTester"),
    ]


def test_production_with_everything_set_is_accepted() -> None:
    settings = load_settings(
        env="production",
        salt_secret=STRONG,
        jwt_secret=STRONG[::-1],
        database_url="postgresql://u:p@db.internal:5432/signals",
    )
    assert settings.is_production
    assert not settings.graphiql_enabled and not settings.introspection_enabled


def test_production_refuses_embedded_database() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_settings(env="production", salt_secret=STRONG, jwt_secret=STRONG[::-1], database_url=None)


def test_comma_separated_lists() -> None:
    settings = load_settings(allowed_apps=" a , b,,c ", trusted_proxies="10.0.0.0/8, 2")
    assert settings.allowed_apps == ["a", "b", "c"]
    assert settings.trusted_proxies == ["10.0.0.0/8", "2"]


def test_queryable_properties_are_dot_paths() -> None:
    assert load_settings(queryable_properties="lang, source.kind").queryable_properties == ["lang", "source.kind"]
    assert load_settings().queryable_properties == []
    with pytest.raises(ConfigError, match=r"(?i)queryable_properties"):
        load_settings(queryable_properties="lang,source..kind")
