"""Errors a client caused or must hear about: a status, a snake_case code, a human message.

The domain raises them (an unknown page, a counter that is not open, a page taken by another manager); the web
layer (services/web/app.py) answers each with its status and the one JSON shape of API.md.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error a client caused or must hear about: status, snake_case code, human message."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None, **extra: Any):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        self.extra = extra
        self.headers: dict[str, str] = {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class Unprocessable(ApiError):
    status, code = 422, "invalid_request"


class Unavailable(ApiError):
    status, code = 503, "unavailable"
