"""Errors the engine raises; each carries a message in the user's language (Chinese)."""
from typing import Any


class GrantError(Exception):
    """Base class: a refused action. Nothing was changed when one of these is raised."""

    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(GrantError):
    status = 404


class Forbidden(GrantError):
    status = 403


class Conflict(GrantError):
    """Someone else changed the application first (optimistic lock lost)."""

    status = 409


class WrongState(GrantError):
    """The action does not fit the application's current step."""

    status = 409


class ValidationFailed(GrantError):
    """Form data or a policy rule refused the input; `errors` lists every failing field."""

    status = 422

    def __init__(self, errors: list[dict[str, Any]]):
        self.errors = errors
        super().__init__("；".join(f"{e['message']}" for e in errors))


class TamperedDocument(GrantError):
    """A stored document's bytes no longer hash to the SHA-256 recorded when it was made."""

    status = 500


def unwrap(exc: Exception) -> Exception:
    """A refusal raised inside a service task reaches the person as itself, not as a crash."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, GrantError):
            return seen
        seen = getattr(seen, "exception", None) or seen.__cause__
    return exc
