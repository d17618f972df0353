"""Pager HTTP API: the managers' devices. Every call carries a device token of that branch."""

from __future__ import annotations

from typing import Any, Literal

from flask import g, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field, model_validator

from services.domain import contracts, floor, keys, pages, presence
from services.domain.branch import Manager
from services.domain.clock import SYSTEM
from services.domain.errors import Forbidden
from services.domain.schemas import DeviceEnvelope, Floor, PageEnvelope, PageList
from services.web import auth, sse
from services.web.app import branch_or_404, live_streams, redis_client
from services.web.errors import COMMON_RESPONSES, ErrorBody
from services.web.idempotency import current_once, idempotent
from services.web.requests import BranchPath, Note, PagePath, Strict

api = APIBlueprint(
    "pager_api", __name__, url_prefix="/api/v1/branches/<branch>/pages",
    abp_tags=[Tag(name="pager", description="the managers' devices")], abp_security=[{"bearer": []}],
    abp_responses={**COMMON_RESPONSES, "401": ErrorBody, "403": ErrorBody, "404": ErrorBody},
)


class PageQuery(BaseModel):
    status: Literal["open", "acknowledged", "resolved", "all"] = "open"


class ResolveRequest(Strict):
    note: Note | None = None


class ReplyRequest(Strict):
    """Free text, or one of the discreet replies (the only answer a distress call's terminal gets)."""

    message: Note | None = Field(default=None, examples=["可以办理，按流程走"])
    preset: Literal[tuple(contracts.REPLY_PRESETS)] | None = Field(  # type: ignore[valid-type]
        default=None, description="a discreet reply: " + ", ".join(
            f"{k} ({zh} · {en})" for k, (zh, en) in contracts.REPLY_PRESETS.items()))

    @model_validator(mode="after")
    def _one(self) -> ReplyRequest:
        if (self.message is None) == (self.preset is None):
            raise ValueError("give exactly one of message or preset")
        return self


@api.before_request
def _authorize() -> None:
    branch = branch_or_404((request.view_args or {}).get("branch", ""))
    principal = auth.authenticate(redis_client(), branch.id, auth.DEVICE,
                                  allow_query=request.path.endswith("/events"))
    manager = branch.manager(principal.subject)
    if manager is None:
        raise Forbidden("this device's manager is not enrolled in this branch", code="unknown_manager")
    g.principal, g.manager = principal, manager


def _manager() -> Manager:
    return g.manager


def _caller() -> str:
    return f"token:{g.principal.token_id}"


def _page(page: Any) -> dict[str, Any]:
    return {"page": page.model_dump(mode="json")}


@api.get("", responses={200: PageList})
def list_pages(path: BranchPath, query: PageQuery) -> dict[str, Any]:
    """List pages by status, most urgent first, then oldest."""
    found = pages.list_pages(redis_client(), path.branch, query.status)
    return {"pages": [p.model_dump(mode="json") for p in found]}


@api.get("/events", responses={200: {"description": "Server-Sent Events: page, page_updated",
                                     "content": {"text/event-stream": {}}}})
def events(path: BranchPath) -> Any:
    """Follow the branch's pages; reconnect with Last-Event-ID (or ?since=) to miss nothing."""
    return sse.sse_response(live_streams(), keys.stream(path.branch, keys.DEVICE),
                            token_key=keys.token(path.branch, g.principal.token_id),
                            endpoint=(branch_or_404(path.branch), presence.endpoint(presence.DEVICE, _manager().id)))


@api.get("/<page_id>", responses={200: PageEnvelope})
def get_page(path: PagePath) -> dict[str, Any]:
    """Read one page with its audit trail."""
    return _page(pages.get(redis_client(), path.branch, path.page_id))


@api.post("/<page_id>/ack", responses={200: PageEnvelope, 409: ErrorBody})
@idempotent(_caller)
def acknowledge(path: PagePath) -> dict[str, Any]:
    """Acknowledge: this manager is coming; repeats and escalation stop."""
    return _page(pages.acknowledge(redis_client(), branch_or_404(path.branch), path.page_id, _manager(),
                                    current_once()))


@api.post("/<page_id>/resolve", responses={200: PageEnvelope})
@idempotent(_caller)
def resolve(path: PagePath, body: ResolveRequest) -> dict[str, Any]:
    """Close the page, with an optional note."""
    return _page(pages.resolve(redis_client(), branch_or_404(path.branch), path.page_id, _manager(),
                                body.note, current_once()))


@api.post("/<page_id>/reply", responses={200: PageEnvelope, 409: ErrorBody})
@idempotent(_caller)
def reply(path: PagePath, body: ReplyRequest) -> dict[str, Any]:
    """Answer the counter; the answer appears on its terminal. A distress page takes only a discreet preset."""
    return _page(pages.reply(redis_client(), branch_or_404(path.branch), path.page_id, _manager(),
                              body.message, body.preset, current_once()))


device_api = APIBlueprint(
    "device_api", __name__, url_prefix="/api/v1/branches/<branch>/device",
    abp_tags=[Tag(name="pager")], abp_security=[{"bearer": []}],
    abp_responses={**COMMON_RESPONSES, "401": ErrorBody, "403": ErrorBody, "404": ErrorBody},
)
device_api.before_request(_authorize)


@device_api.get("", responses={200: DeviceEnvelope})
def whoami(path: BranchPath) -> dict[str, Any]:
    """Say whose device this is, and where its manager stands in the branch's escalation order."""
    branch = branch_or_404(path.branch)
    manager = _manager()
    rank = [m.id for m in branch.managers].index(manager.id)
    return {"device": {"manager": {"id": manager.id, "name": manager.name, "name_en": manager.name_en},
                       "rank": rank}}


@device_api.post("/heartbeat", responses={204: None})
def heartbeat(path: BranchPath) -> tuple[str, int]:
    """Say the device's page is running (every `supervision.heartbeat_s`): with its event stream open, the
    device is live, and new pages go to its manager rather than past them."""
    presence.heard(redis_client(), branch_or_404(path.branch), presence.endpoint(presence.DEVICE, _manager().id),
                   SYSTEM.now_ms())
    return "", 204


floor_api = APIBlueprint(
    "floor_api", __name__, url_prefix="/api/v1/branches/<branch>/floor",
    abp_tags=[Tag(name="pager")], abp_security=[{"bearer": []}],
    abp_responses={**COMMON_RESPONSES, "401": ErrorBody, "403": ErrorBody, "404": ErrorBody},
)
floor_api.before_request(_authorize)
# How often the floor's stream looks again when nothing happened: pauses count down, services and waits grow,
# and screens and terminals come and go without a stream entry.
FLOOR_REFRESH_S = 5.0


@floor_api.get("", responses={200: Floor})
def read_floor(path: BranchPath) -> dict[str, Any]:
    """Read the whole floor: every counter, line and redirect, and every screen, terminal and device."""
    return floor.snapshot(redis_client(), branch_or_404(path.branch)).model_dump(mode="json")


@floor_api.get("/events", responses={200: {"description": "Server-Sent Events: floor (the whole floor, as GET "
                                                           "answers it), at once and whenever it changes",
                                           "content": {"text/event-stream": {}}}})
def floor_events(path: BranchPath) -> Any:
    """Follow the floor: the whole of it at once, then again whenever it changed (a call, a pause, a ticket; and
    every few seconds for what time alone changes). A reconnection gets it anew: there is nothing to replay."""
    branch = branch_or_404(path.branch)
    r = redis_client()
    watched = [keys.stream(branch.id, keys.SCREEN)] + [keys.terminal_stream(branch.id, c.id) for c in branch.counters]
    return sse.views_response(live_streams(), watched, "floor",
                              lambda: floor.snapshot(r, branch).model_dump(mode="json"),
                              token_key=keys.token(branch.id, g.principal.token_id), refresh_s=FLOOR_REFRESH_S)
