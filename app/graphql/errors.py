"""GraphQL errors written for the caller (a message saying what to do, and `extensions.code`),
and how errors are logged: by class and code, never by content.

A GraphQL error's message often quotes the caller's input (graphql-core's variable coercion
prints the whole value; a syntax error prints the document's line), so the log gets the
code, the field path and the operation name, and for an unexpected exception its type and
frames (app/logs.py), never a message, a document or a variable value."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from graphql import GraphQLError
from strawberry.exceptions import StrawberryGraphQLError

from app.ingest.pipeline import Refused
from app.logs import exception_summary, get_logger

log = get_logger("signals.graphql")
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")  # a GraphQL name, at most 64 characters


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


def error_code(error: GraphQLError) -> str | None:
    code = (error.extensions or {}).get("code")
    return code if isinstance(code, str) else None


def log_error(error: GraphQLError, operation_name: str | None) -> None:
    """One line for one error of an operation (see the module docstring)."""
    fields: dict[str, Any] = {
        "code": error_code(error),
        "path": ".".join(str(part) for part in error.path) if error.path else None,
        "operation": operation_name if operation_name and _NAME.fullmatch(operation_name) else None,
    }
    original = error.original_error
    if original is None or isinstance(original, GraphQLError) or fields["code"] is not None:
        log.info("graphql error", **fields)  # the caller's to fix; the answer says how
    else:
        log.error("unexpected error", **fields, error=exception_summary(original))
