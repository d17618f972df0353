"""API errors and the one JSON shape every service answers them with."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


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


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """The body of every 4xx/5xx answer."""

    error: ErrorDetail


# What any API operation may answer besides its own results: bad JSON (400), a body too large (413) or not
# JSON (415), invalid input (422), and Redis unreachable (503). Blueprints add their own (401, 403, 404...).
COMMON_RESPONSES: dict[str, type[BaseModel]] = {
    "400": ErrorBody, "413": ErrorBody, "415": ErrorBody, "422": ErrorBody, "503": ErrorBody,
}
