"""Kiosk HTTP API: take a ticket, read a ticket, read and follow the lobby screen. Public."""

from __future__ import annotations

import time
from typing import Any

from flask import request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import Field

from services.common import keys, ratelimits, streams, tickets
from services.common.config import ID_PATTERN
from services.common.errors import COMMON_RESPONSES, ErrorBody, NotFound, Unprocessable
from services.common.idempotency import idempotent
from services.common.lines import RateLimited
from services.common.paths import BranchPath, Strict, TicketPath
from services.common.schemas import Screen, TicketEnvelope
from services.common.web import branch_or_404, client_ip, redis_client, stream_client
from services.kiosk import screen

api = APIBlueprint("kiosk_api", __name__, url_prefix="/api/v1/branches/<branch>",
                   abp_tags=[Tag(name="kiosk", description="tickets and the lobby screen")],
                   abp_responses={**COMMON_RESPONSES, "404": ErrorBody})


class TicketRequest(Strict):
    category: str = Field(pattern=ID_PATTERN, max_length=32, examples=["vip"])


@api.before_request
def _known_branch() -> None:
    branch_or_404((request.view_args or {}).get("branch", ""))


@api.post("/tickets", responses={201: TicketEnvelope, 400: ErrorBody, 429: ErrorBody})
@idempotent(caller=lambda: f"ip:{client_ip()}")
def take_ticket(path: BranchPath, body: TicketRequest) -> tuple[dict[str, Any], int]:
    """Take a ticket in a category; it joins the end of that category's line."""
    branch = branch_or_404(path.branch)
    category = branch.category(body.category)
    if category is None:
        raise Unprocessable(f"unknown category {body.category!r}; this branch has "
                            f"{', '.join(c.id for c in branch.categories)}", code="unknown_category")
    now_s = time.time()
    allowances = ratelimits.ticket_allowances(branch, client_ip(), now_s)
    try:
        ticket = tickets.take(redis_client(), branch, category, allowances)
    except RateLimited as exc:
        used_up = allowances[exc.index]
        raise ratelimits.TooManyRequests(f"{used_up.limit} tickets per {used_up.window_s} s from one kiosk",
                                         ratelimits.retry_after_s(used_up, now_s)) from None
    # The lobby screen's waiting counts are redrawn off the request, once for a burst (kiosk worker).
    return {"ticket": ticket.model_dump(mode="json")}, 201


@api.get("/tickets/<number>", responses={200: TicketEnvelope})
def get_ticket(path: TicketPath) -> dict[str, Any]:
    """Read today's ticket by its number: status, position, estimated wait, window, redirect."""
    ticket = tickets.TicketReader(redis_client(), branch_or_404(path.branch)).get(path.number)
    if ticket is None:
        raise NotFound(f"no ticket {path.number} today", code="unknown_ticket")
    return {"ticket": ticket.model_dump(mode="json")}


@api.get("/screen", responses={200: Screen})
def get_screen(path: BranchPath) -> dict[str, Any]:
    """Read the lobby screen: now serving, waiting per category, notices."""
    return screen.snapshot(redis_client(), branch_or_404(path.branch)).model_dump(mode="json")


@api.get("/screen/events", responses={200: {"description": "Server-Sent Events: ticket_called, notice, "
                                                             "waiting, screen",
                                              "content": {"text/event-stream": {}}}})
def screen_events(path: BranchPath) -> Any:
    """Follow the lobby screen; a fresh connection starts with a `screen` snapshot."""
    branch = branch_or_404(path.branch)
    r = redis_client()
    return streams.sse_response(
        stream_client(), keys.stream(branch.id, keys.SCREEN),
        snapshot=lambda: (screen.SCREEN, screen.snapshot(r, branch).model_dump(mode="json")),
    )
