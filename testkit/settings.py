"""The test secrets and the settings the suite's app runs with."""

from __future__ import annotations

from pathlib import Path

from app.config import Settings, load_settings

TEST_JWT_SECRET = "test-jwt-secret-" + "x9Y2kQ7vL4mN8pR3" * 3
TEST_SALT_SECRET = "test-salt-secret-" + "a1B2c3D4e5F6g7H8" * 3


def make_settings(database_url: str, tmp_path: Path, **overrides: object) -> Settings:
    """Settings for `database_url` with the test secrets, data under `tmp_path`, allowlists
    for the apps, event and entity types the tests send, and a rate limit no test reaches
    unless it sets its own; `overrides` win."""
    values: dict[str, object] = {
        "database_url": database_url,
        "jwt_secret": TEST_JWT_SECRET,
        "salt_secret": TEST_SALT_SECRET,
        "data_dir": tmp_path,
        "allowed_apps": ["admin-console", "billing-admin"],
        "allowed_event_types": ["click", "view", "export", "search"],
        "allowed_entity_types": ["order", "customer", "invoice"],
        "rate_limit": "10000/minute",
        "anonymous_rate_limit": "100000/minute",
    }
    values.update(overrides)
    return load_settings(**values)
