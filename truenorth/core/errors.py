"""Domain errors raised by services; views, the API and the CLI translate them.

- ValidationFailed -> form error / HTTP 422 / CLI exit 2, naming the field.
- Conflict         -> HTTP 409 (e.g. a stale version, a duplicate).
- Forbidden        -> HTTP 403 (a known organisation, but the role is too low).
- NotFound         -> HTTP 404 (absent, or in an organisation the user cannot see).
- TooLarge         -> HTTP 413 (an upload or body over a documented size limit); a ValidationFailed, so
                      forms and the CLI treat it like any other input error.
"""

from __future__ import annotations


class DomainError(Exception):
    status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def as_dict(self) -> dict[str, object]:
        errors = [{"field": self.field, "message": self.message}] if self.field else []
        return {"detail": self.message, "errors": errors}


class ValidationFailed(DomainError):
    status = 422

    def __init__(self, message: str, field: str | None = None, errors: dict[str, str] | None = None) -> None:
        super().__init__(message, field)
        self.errors = errors or ({field: message} if field else {})

    def as_dict(self) -> dict[str, object]:
        return {
            "detail": self.message,
            "errors": [{"field": f, "message": m} for f, m in self.errors.items()],
        }


class TooLarge(ValidationFailed):
    status = 413


class Conflict(DomainError):
    status = 409


class Forbidden(DomainError):
    status = 403


class NotFound(DomainError):
    status = 404

    def __init__(self, message: str = "Not found.", field: str | None = None) -> None:
        super().__init__(message, field)


class TooManyRequests(DomainError):
    status = 429
