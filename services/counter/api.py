"""Counter HTTP API: the teller's terminal. Every call carries that counter's bearer token."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from flask import g, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import Field, model_validator

from services.domain import alerts, contracts, keys, limits, presence
from services.domain.branch import ID_PATTERN
from services.domain.clock import SYSTEM
from services.domain.contracts import PageKind
from services.domain.desk import Desk
from services.domain.errors import Forbidden, NotFound
from services.domain.limits import RateLimited
from services.domain.schemas import AlertEnvelope, CounterEnvelope, TicketEnvelope
from services.web import auth, sse
from services.web.app import branch_or_404, live_streams, redis_client, send
from services.web.errors import COMMON_RESPONSES, ErrorBody, refused
from services.web.idempotency import current_once, idempotent
from services.web.requests import AlertPath, CounterPath, Note, Strict

SECURITY = [{"bearer": []}]
api = APIBlueprint(
    "counter_api", __name__, url_prefix="/api/v1/branches/<branch>/counters/<counter>",
    abp_tags=[Tag(name="counter", description="the teller's terminal")], abp_security=SECURITY,
    abp_responses={**COMMON_RESPONSES, "401": ErrorBody, "403": ErrorBody, "404": ErrorBody},
)

class PauseRequest(Strict):
    reason: str = Field(pattern=ID_PATTERN, max_length=32, examples=["vault_transfer"])
    expected_minutes: int = Field(ge=1, le=240, examples=[15])
    note: Note | None = None


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
    kind: Literal[tuple(contracts.CALLS)]  # type: ignore[valid-type]
    note: Note | None = None
    test: bool = Field(default=False, description="a drill of the silent call: it goes the whole way (paged, "
                                                   "escalated, acknowledged) marked 演练 TEST, and is counted apart")

    @model_validator(mode="after")
    def _test_is_a_drill_of_distress(self) -> AlertRequest:
        if self.test and self.kind != PageKind.DISTRESS:
            raise ValueError("only the silent call (distress) is drilled: test is for kind distress")
        return self


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


@contextmanager
def _acting(path: CounterPath) -> Iterator[Desk]:
    """Give the view the counter's desk, then send the lobby screen what it must hear of what the desk did."""
    desk = _desk(path)
    yield desk
    for spec, payload in desk.messages:
        send(spec, payload)


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
    with _acting(path) as desk:
        return _ticket(desk.call_next(current_once()))


@api.post("/recall", responses={200: TicketEnvelope, 409: ErrorBody})
@idempotent(_caller)
def recall(path: CounterPath) -> dict[str, Any]:
    """Call the current ticket again on the screen (at most the branch's recall limit)."""
    with _acting(path) as desk:
        return _ticket(desk.recall(current_once()))


@api.post("/complete", responses={200: TicketEnvelope, 409: ErrorBody})
@idempotent(_caller)
def complete(path: CounterPath) -> dict[str, Any]:
    """Mark the current ticket served."""
    with _acting(path) as desk:
        return _ticket(desk.finish("served", current_once()))


@api.post("/no-show", responses={200: TicketEnvelope, 409: ErrorBody})
@idempotent(_caller)
def no_show(path: CounterPath) -> dict[str, Any]:
    """Mark the current ticket as not come; it leaves the line."""
    with _acting(path) as desk:
        return _ticket(desk.finish("no_show", current_once()))


@api.post("/transfer", responses={200: TicketEnvelope, 409: ErrorBody})
@idempotent(_caller)
def transfer(path: CounterPath, body: TransferRequest) -> dict[str, Any]:
    """Send the current ticket to another category or counter; it keeps its place by issue time."""
    with _acting(path) as desk:
        return _ticket(desk.transfer(category=body.category, to_counter=body.counter, once_=current_once()))


@api.post("/open", responses={200: CounterEnvelope, 409: ErrorBody})
@idempotent(_caller)
def open_counter(path: CounterPath) -> dict[str, Any]:
    """Open a closed counter: it takes calls and counts in wait estimates again."""
    with _acting(path) as desk:
        return {"counter": desk.open(current_once()).model_dump(mode="json")}


@api.post("/close", responses={200: CounterEnvelope, 409: ErrorBody})
@idempotent(_caller)
def close_counter(path: CounterPath) -> dict[str, Any]:
    """Close the counter (after its current ticket): no calls, out of the estimates; its redirect applies."""
    with _acting(path) as desk:
        return {"counter": desk.close(current_once()).model_dump(mode="json")}


@api.post("/pause", responses={200: CounterEnvelope, 409: ErrorBody})
@idempotent(_caller)
def pause(path: CounterPath, body: PauseRequest) -> dict[str, Any]:
    """Pause the counter: pages the lobby manager first, and redirects its customers."""
    with _acting(path) as desk:
        return {"counter": desk.pause(body.reason, body.expected_minutes, body.note, current_once()).model_dump(
            mode="json")}


@api.post("/resume", responses={200: CounterEnvelope, 409: ErrorBody})
@idempotent(_caller)
def resume(path: CounterPath) -> dict[str, Any]:
    """Resume the counter: the redirect ends and the manager is told."""
    with _acting(path) as desk:
        return {"counter": desk.resume(current_once()).model_dump(mode="json")}


@api.post("/alerts", responses={202: AlertEnvelope, 429: ErrorBody})
@idempotent(_caller)
def raise_alert(path: CounterPath, body: AlertRequest) -> tuple[dict[str, Any], int]:
    """Call the lobby manager: distress (urgent, discreet), ask_supervisor (with a question) or help; a distress
    with test true is a drill, marked as such end to end and counted apart.

    Presses are limited per terminal (the branch's `rate_limits.alerts`, 429 with Retry-After), a real distress
    call never.
    """
    branch = branch_or_404(path.branch)
    counter = branch.counter(path.counter)
    assert counter is not None
    details: dict[str, Any] = {"note": body.note}
    if body.kind == "ask_supervisor":
        details["question"] = body.note
    if body.test:
        details["test"] = True
    label = contracts.KIND_NAMES[PageKind(body.kind)][0]
    message = ("【演练 TEST】" if body.test else "") + f"{counter.window} 窗口{label}" + (
        f"：{body.note}" if body.note else "")
    moment = SYSTEM.now()
    req = alerts.page_request(branch, path.counter, PageKind(body.kind), contracts.CALLS[body.kind],
                              message, details, moment)
    now_s = moment.timestamp()
    # A real silent call is never refused for presses: a drill is limited like any other call.
    real_distress = body.kind == "distress" and not body.test
    allowances = [] if real_distress else limits.alert_allowances(branch, g.principal.token_id, now_s)
    try:
        alert = alerts.raise_alert(redis_client(), req, allowances, current_once())
    except RateLimited as exc:
        raise refused(allowances[exc.index], "presses from one terminal", now_s) from None
    return {"alert": alert.model_dump(mode="json")}, 202


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
    return sse.sse_response(
        live_streams(), keys.terminal_stream(path.branch, path.counter),
        snapshot=lambda: (alerts.COUNTER_EVENT, {"counter": desk.view().model_dump(mode="json")}),
        token_key=keys.token(path.branch, g.principal.token_id),
        endpoint=(branch_or_404(path.branch), presence.endpoint(presence.TERMINAL, path.counter)),
    )


@api.post("/heartbeat", responses={204: None})
def heartbeat(path: CounterPath) -> tuple[str, int]:
    """Say the terminal's page is running (every `supervision.heartbeat_s`): with its event stream open, it is live."""
    presence.heard(redis_client(), branch_or_404(path.branch), presence.endpoint(presence.TERMINAL, path.counter),
                   SYSTEM.now_ms())
    return "", 204
