"""The read side's one error: input the caller must change."""


class QueryInputError(ValueError):
    """Input the caller must change; `str()` says how. The GraphQL layer turns it into BAD_USER_INPUT."""
