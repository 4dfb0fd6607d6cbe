"""Bearer tokens for the suite's callers, signed with the test secret unless told otherwise."""

from __future__ import annotations

from app.auth.tokens import issue_token
from testkit.settings import TEST_JWT_SECRET


def token(
    *, roles: list[str] | None = None, subject: str = "user-42", secret: str = TEST_JWT_SECRET, **claims: object
) -> str:
    return issue_token(secret, subject=subject, roles=roles or [], **claims)
