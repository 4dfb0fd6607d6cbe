"""Fixtures of the data-lifecycle tests."""

from __future__ import annotations

import pytest

from app.storage.migrations import migrate


@pytest.fixture
async def fresh_db(empty_db: str) -> str:
    """A migrated database of this test's own (so row counts are exact)."""
    await migrate(empty_db)
    return empty_db
