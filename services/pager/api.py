"""Pager HTTP API: the managers' devices. Every call carries a device token of that branch."""

from __future__ import annotations

from typing import Any, Literal

from flask import g, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from services.common import auth, keys, streams
from services.common.config import Manager
from services.common.errors import COMMON_RESPONSES, ErrorBody, Forbidden
from services.common.idempotency import idempotent
from services.common.paths import BranchPath, PagePath, Strict
from services.common.schemas import PageEnvelope, PageList
from services.common.web import branch_or_404, redis_client, stream_client
from services.pager import pages

api = APIBlueprint(
    "pager_api", __name__, url_prefix="/api/v1/branches/<branch>/pages",
    abp_tags=[Tag(name="pager", description="the managers' devices")], abp_security=[{"bearer": []}],
    abp_responses={**COMMON_RESPONSES, "401": ErrorBody, "403": ErrorBody, "404": ErrorBody},
)


class PageQuery(BaseModel):
    status: Literal["open", "acknowledged", "resolved", "all"] = "open"


class ResolveRequest(Strict):
    note: str | None = Field(default=None, max_length=500)


class ReplyRequest(Strict):
    message: str = Field(min_length=1, max_length=500)


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
    return streams.sse_response(stream_client(), keys.stream(path.branch, keys.DEVICE))


@api.get("/<page_id>", responses={200: PageEnvelope})
def get_page(path: PagePath) -> dict[str, Any]:
    """Read one page with its audit trail."""
    return _page(pages.get(redis_client(), path.branch, path.page_id))


@api.post("/<page_id>/ack", responses={200: PageEnvelope, 409: ErrorBody})
@idempotent(_caller)
def acknowledge(path: PagePath) -> dict[str, Any]:
    """Acknowledge: this manager is coming; repeats and escalation stop."""
    return _page(pages.acknowledge(redis_client(), branch_or_404(path.branch), path.page_id, _manager()))


@api.post("/<page_id>/resolve", responses={200: PageEnvelope})
@idempotent(_caller)
def resolve(path: PagePath, body: ResolveRequest) -> dict[str, Any]:
    """Close the page, with an optional note."""
    return _page(pages.resolve(redis_client(), branch_or_404(path.branch), path.page_id, _manager(),
                               body.note))


@api.post("/<page_id>/reply", responses={200: PageEnvelope, 409: ErrorBody})
@idempotent(_caller)
def reply(path: PagePath, body: ReplyRequest) -> dict[str, Any]:
    """Answer the counter; the message appears on its terminal."""
    return _page(pages.reply(redis_client(), branch_or_404(path.branch), path.page_id, _manager(),
                             body.message))
