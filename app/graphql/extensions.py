"""The Strawberry schema extensions of every operation: authentication, limits on what one
document may ask (tokens, depth, aliases, introspection), parse and validation caches, and
errors written for the caller (codes on parse and validation errors, database outages as
UNAVAILABLE, no internal error text).

Settings (env prefix SIGNALS_): GRAPHQL_MAX_DEPTH, GRAPHQL_MAX_ALIASES, GRAPHQL_MAX_TOKENS,
INTROSPECTION (off in production unless set). Limits on the HTTP request itself are in
app/http/.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from graphql import GraphQLError
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)

from app.config import Settings
from app.graphql.context import Authenticate
from app.graphql.errors import label_errors
from app.graphql.strawberry_compat import CodedParserCache
from app.storage.database import unavailable_reason

MASKED_MESSAGE = "Unexpected error; it has been logged."


def should_mask(error: GraphQLError) -> bool:
    """Hide every error that carries no `extensions.code` (ours are written for the caller)
    and was raised while resolving or by an exception that is not graphql-core's own. Parse,
    validation and variable errors come from graphql-core, have no path, and stay."""
    if (error.extensions or {}).get("code"):
        return False
    original = error.original_error
    return error.path is not None or (original is not None and not isinstance(original, GraphQLError))


class ErrorCodes(SchemaExtension):
    """Give parse and validation errors an `extensions.code` (Apollo's names), so a caller
    can tell "fix the document" from other errors: GRAPHQL_PARSE_FAILED (syntax, too many
    tokens, nested too deeply) and GRAPHQL_VALIDATION_FAILED (unknown fields, too deep,
    too many aliases, introspection off). Codes already present are kept."""

    def on_validate(self) -> Iterator[None]:
        yield
        label_errors(self.execution_context.pre_execution_errors or (), "GRAPHQL_VALIDATION_FAILED")


class DatabaseUnavailable(SchemaExtension):
    """An error raised because the database could not answer (down, unreachable, out of
    pooled connections, past the statement timeout) reaches the caller as what it is:
    `extensions.code` UNAVAILABLE, `retryable: true`, and a message saying what to do,
    instead of the masked "Unexpected error". Listed after MaskErrors so it runs first on
    the way out; the original error is still logged by Strawberry."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        result.errors = [self._rewrite(error) for error in result.errors]

    @staticmethod
    def _rewrite(error: GraphQLError) -> GraphQLError:
        reason = unavailable_reason(error.original_error)
        if reason is None or (error.extensions or {}).get("code"):
            return error
        return GraphQLError(
            reason, nodes=error.nodes, path=error.path, extensions={"code": "UNAVAILABLE", "retryable": True}
        )


def schema_extensions(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """Extension factories (one fresh instance per request: no state shared between requests),
    in the order they run on the way in. Each is named; one that is off is None."""
    named: dict[str, Callable[[], SchemaExtension] | None] = {
        "authenticate": Authenticate,  # first: every later step may refuse by role
        "error_codes": ErrorCodes,
        "max_tokens": lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
        "parser_cache": lambda: CodedParserCache(maxsize=256),
        "max_depth": lambda: QueryDepthLimiter(max_depth=settings.graphql_max_depth),
        "no_introspection": None if settings.introspection_enabled else DisableIntrospection,
        "max_aliases": lambda: MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases),
        "validation_cache": lambda: ValidationCache(maxsize=256),  # after every validation rule above
        "mask_errors": lambda: MaskErrors(should_mask_error=should_mask, error_message=MASKED_MESSAGE),
        "database_unavailable": DatabaseUnavailable,  # after MaskErrors: runs before it on the way out
    }
    return [factory for factory in named.values() if factory is not None]
