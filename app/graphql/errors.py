"""GraphQL errors written for the caller: a message saying what to do, and `extensions.code`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from graphql import GraphQLError
from strawberry.exceptions import StrawberryGraphQLError

from app.ingest.pipeline import Refused


def graphql_error(message: str, code: str, **extensions: Any) -> StrawberryGraphQLError:
    return StrawberryGraphQLError(message, extensions={"code": code, **extensions})


def bad_input(message: str) -> StrawberryGraphQLError:
    return graphql_error(message, "BAD_USER_INPUT")


def refused(exc: Refused) -> StrawberryGraphQLError:
    """The GraphQL error for a request the ingest pipeline refused as a whole."""
    return graphql_error(exc.message, exc.code)


def label_errors(errors: Iterable[GraphQLError], code: str) -> None:
    """Give each error `extensions.code` = `code` unless it has a code already."""
    for error in errors:
        if not (error.extensions or {}).get("code"):
            error.extensions = {**(error.extensions or {}), "code": code}
