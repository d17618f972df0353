"""The one JSON shape every API error is answered with, as the OpenAPI document shows it, and the errors the web
layer itself raises (a rate limit)."""

from __future__ import annotations

from pydantic import BaseModel

from services.domain.errors import ApiError
from services.domain.limits import Allowance


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


class TooManyRequests(ApiError):
    status, code = 429, "rate_limited"

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(f"too many requests ({message}); try again in {retry_after_s} s")
        self.headers["Retry-After"] = str(retry_after_s)


def refused(allowance: Allowance, what: str, now_s: float) -> TooManyRequests:
    """Return the 429 for a request refused by an allowance used up."""
    return TooManyRequests(f"{allowance.limit} {what} per {allowance.window_s} s", allowance.retry_after_s(now_s))
