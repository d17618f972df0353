"""Counter HTTP API: the teller's terminal. Every call carries that counter's bearer token."""

from __future__ import annotations

from typing import Any, Literal

from flask import g, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import Field, model_validator

from services.common import auth, keys, ratelimits, streams
from services.common.config import ID_PATTERN
from services.common.contracts import PageKind, Priority
from services.common.errors import COMMON_RESPONSES, ErrorBody, Forbidden, NotFound
from services.common.idempotency import idempotent
from services.common.paths import AlertPath, CounterPath, Strict
from services.common.ratelimits import limiter
from services.common.schemas import AlertEnvelope, CounterEnvelope, TicketEnvelope
from services.common.web import branch_or_404, redis_client, stream_client
from services.counter import alerts
from services.counter.desk import Desk

SECURITY = [{"bearer": []}]
api = APIBlueprint(
    "counter_api", __name__, url_prefix="/api/v1/branches/<branch>/counters/<counter>",
    abp_tags=[Tag(name="counter", description="the teller's terminal")], abp_security=SECURITY,
    abp_responses={**COMMON_RESPONSES, "401": ErrorBody, "403": ErrorBody, "404": ErrorBody},
)

NOTE = Field(default=None, max_length=500)


class PauseRequest(Strict):
    reason: str = Field(pattern=ID_PATTERN, max_length=32, examples=["vault_transfer"])
    expected_minutes: int = Field(ge=1, le=240, examples=[15])
    note: str | None = NOTE


class TransferRequest(Strict):
    """Where the current ticket goes: another category's line or one counter's line (exactly one)."""

    category: str | None = Field(default=None, pattern=ID_PATTERN, max_length=32, examples=["personal"])
    counter: str | None = Field(default=None, pattern=ID_PATTERN, max_length=32, examples=["4"])

    @model_validator(mode="after")
    def _one_target(self) -> TransferRequest:
        if (self.category is None) == (self.counter is None):
            raise ValueError("give exactly one of category or counter")
        return self


class AlertRequest(Strict):
    kind: Literal["distress", "ask_supervisor", "help"]
    note: str | None = NOTE


ALERT_PRIORITY = {"distress": Priority.URGENT, "ask_supervisor": Priority.HIGH, "help": Priority.HIGH}


@api.before_request
def _authorize() -> None:
    """Check the branch, then the token, then that the token is this counter's."""
    args = request.view_args or {}
    branch = branch_or_404(args.get("branch", ""))
    principal = auth.authenticate(redis_client(), branch.id, auth.COUNTER,
                                  allow_query=request.path.endswith("/events"))
    counter_id = args.get("counter", "")
    if branch.counter(counter_id) is None:
        raise NotFound(f"unknown counter {counter_id!r}", code="unknown_counter")
    if principal.subject != counter_id:
        raise Forbidden("this token belongs to another counter", code="wrong_counter")
    g.principal = principal


def _caller() -> str:
    return f"token:{g.principal.token_id}"


def _desk(path: CounterPath) -> Desk:
    return Desk(redis_client(), branch_or_404(path.branch), path.counter)


def _ticket(ticket: Any) -> dict[str, Any]:
    return {"ticket": ticket.model_dump(mode="json") if ticket is not None else None}


@api.get("", responses={200: CounterEnvelope})
def get_counter(path: CounterPath) -> dict[str, Any]:
    """Read the counter: status, the ticket it serves, its pause."""
    return {"counter": _desk(path).view().model_dump(mode="json")}


@api.post("/call-next", responses={200: TicketEnvelope, 409: ErrorBody})
@idempotent(_caller)
def call_next(path: CounterPath) -> dict[str, Any]:
    """Call the next ticket for this counter (the current one is done); null when nobody waits."""
    return _ticket(_desk(path).call_next())


@api.post("/recall", responses={200: TicketEnvelope, 409: ErrorBody})
@idempotent(_caller)
def recall(path: CounterPath) -> dict[str, Any]:
    """Call the current ticket again on the screen (at most the branch's recall limit)."""
    return _ticket(_desk(path).recall())


@api.post("/complete", responses={200: TicketEnvelope, 409: ErrorBody})
@idempotent(_caller)
def complete(path: CounterPath) -> dict[str, Any]:
    """Mark the current ticket served."""
    return _ticket(_desk(path).finish("served"))


@api.post("/no-show", responses={200: TicketEnvelope, 409: ErrorBody})
@idempotent(_caller)
def no_show(path: CounterPath) -> dict[str, Any]:
    """Mark the current ticket as not come; it leaves the line."""
    return _ticket(_desk(path).finish("no_show"))


@api.post("/transfer", responses={200: TicketEnvelope, 409: ErrorBody})
@idempotent(_caller)
def transfer(path: CounterPath, body: TransferRequest) -> dict[str, Any]:
    """Send the current ticket to another category or counter; it keeps its place by issue time."""
    return _ticket(_desk(path).transfer(category=body.category, to_counter=body.counter))


@api.post("/open", responses={200: CounterEnvelope, 409: ErrorBody})
@idempotent(_caller)
def open_counter(path: CounterPath) -> dict[str, Any]:
    """Open a closed counter: it takes calls and counts in wait estimates again."""
    return {"counter": _desk(path).open().model_dump(mode="json")}


@api.post("/close", responses={200: CounterEnvelope, 409: ErrorBody})
@idempotent(_caller)
def close_counter(path: CounterPath) -> dict[str, Any]:
    """Close the counter (after its current ticket): no calls, out of the estimates; its redirect applies."""
    return {"counter": _desk(path).close().model_dump(mode="json")}


@api.post("/pause", responses={200: CounterEnvelope, 409: ErrorBody})
@idempotent(_caller)
def pause(path: CounterPath, body: PauseRequest) -> dict[str, Any]:
    """Pause the counter: pages the lobby manager first, and redirects its customers."""
    counter = _desk(path).pause(body.reason, body.expected_minutes, body.note)
    return {"counter": counter.model_dump(mode="json")}


@api.post("/resume", responses={200: CounterEnvelope, 409: ErrorBody})
@idempotent(_caller)
def resume(path: CounterPath) -> dict[str, Any]:
    """Resume the counter: the redirect ends and the manager is told."""
    return {"counter": _desk(path).resume().model_dump(mode="json")}


@api.post("/alerts", responses={202: AlertEnvelope, 429: ErrorBody})
@limiter.limit(ratelimits.alert_limit, key_func=ratelimits.per_terminal, exempt_when=ratelimits.is_distress,
               deduct_when=ratelimits.accepted)
@idempotent(_caller)
def raise_alert(path: CounterPath, body: AlertRequest) -> tuple[dict[str, Any], int]:
    """Call the lobby manager: distress (urgent, discreet), ask_supervisor (with a question) or help."""
    branch = branch_or_404(path.branch)
    r = redis_client()
    counter = branch.counter(path.counter)
    assert counter is not None
    details: dict[str, Any] = {"note": body.note}
    if body.kind == "ask_supervisor":
        details["question"] = body.note
    label = {"distress": "紧急求助", "ask_supervisor": "请示主管", "help": "需要协助"}[body.kind]
    message = f"{counter.window} 窗口{label}" + (f"：{body.note}" if body.note else "")
    req = alerts.page_request(branch, path.counter, PageKind(body.kind), ALERT_PRIORITY[body.kind],
                              message, details)
    return {"alert": alerts.raise_alert(r, req).model_dump(mode="json")}, 202


@api.get("/alerts/<alert_id>", responses={200: AlertEnvelope})
def get_alert(path: AlertPath) -> dict[str, Any]:
    """Read an alert: has the manager acknowledged it, replied?"""
    alert = alerts.load(redis_client(), path.branch, path.alert_id)
    if alert is None or alert.counter != path.counter:
        raise NotFound(f"no alert {path.alert_id} at this counter", code="unknown_alert")
    return {"alert": alert.model_dump(mode="json")}


@api.get("/events", responses={200: {"description": "Server-Sent Events: alert_acknowledged, reply, counter",
                                     "content": {"text/event-stream": {}}}})
def events(path: CounterPath) -> Any:
    """Follow this counter's terminal feed; a fresh connection starts with a `counter` snapshot."""
    desk = _desk(path)
    return streams.sse_response(
        stream_client(), keys.terminal_stream(path.branch, path.counter),
        snapshot=lambda: (alerts.COUNTER_EVENT, {"counter": desk.view().model_dump(mode="json")}),
    )
