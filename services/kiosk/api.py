"""Kiosk HTTP API: take a ticket, read a ticket, read and follow the lobby screen (public), and the heartbeat of a
supervised screen (a screen token)."""

from __future__ import annotations

import time
from typing import Any

from flask import request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import Field

from services.domain import keys, limits, presence, tickets
from services.domain.branch import ID_PATTERN, Branch
from services.domain.branch import Screen as BranchScreen
from services.domain.clock import SYSTEM
from services.domain.errors import Forbidden, NotFound, Unprocessable
from services.domain.limits import RateLimited
from services.domain.schemas import Screen, TicketEnvelope
from services.kiosk import screen
from services.web import auth, sse
from services.web.app import branch_or_404, client_ip, live_streams, redis_client
from services.web.errors import COMMON_RESPONSES, ErrorBody, refused
from services.web.idempotency import current_once, idempotent
from services.web.requests import BranchPath, Strict, TicketPath

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
    allowances = limits.ticket_allowances(branch, client_ip(), now_s)
    try:
        ticket = tickets.take(redis_client(), branch, category, allowances, current_once())
    except RateLimited as exc:
        raise refused(allowances[exc.index], "tickets from one kiosk", now_s) from None
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
    """Follow the lobby screen; a fresh connection starts with a `screen` snapshot.

    With a screen token (?token=), the stream says that screen is connected: it is supervised, and ends with
    `revoked` when the token is revoked. Without one, or with one not valid here, the screen is served the same,
    unsupervised.
    """
    branch = branch_or_404(path.branch)
    r = redis_client()
    enrolled = _enrolled_screen(branch, auth.presented_token(allow_query=True))
    return sse.sse_response(
        live_streams(), keys.stream(branch.id, keys.SCREEN),
        snapshot=lambda: (screen.SCREEN, screen.snapshot(r, branch).model_dump(mode="json")),
        token_key=keys.token(branch.id, enrolled[0].token_id) if enrolled else None,
        endpoint=(branch, presence.endpoint(enrolled[1].kind, enrolled[1].id)) if enrolled else None,
    )


def _enrolled_screen(branch: Branch, token: str | None) -> tuple[auth.Principal, BranchScreen] | None:
    """Return the screen a token enrols in this branch, or None."""
    principal = auth.verify(redis_client(), token) if token else None
    if principal is None or principal.branch != branch.id or principal.kind != auth.SCREEN:
        return None
    found = branch.screen(principal.subject)
    return (principal, found) if found else None


@api.post("/screens/heartbeat", responses={204: None, 401: ErrorBody, 403: ErrorBody},
          security=[{"bearer": []}])
def screen_heartbeat(path: BranchPath) -> tuple[str, int]:
    """Say a supervised screen's page is running (every `supervision.heartbeat_s`), with its screen token: with its
    stream open, the screen is live; offline for `supervision.offline_after_s`, it pages the manager."""
    branch = branch_or_404(path.branch)
    principal = auth.authenticate(redis_client(), branch.id, auth.SCREEN)
    found = branch.screen(principal.subject)
    if found is None:
        raise Forbidden("this token's screen is not in this branch's config", code="unknown_screen")
    presence.heard(redis_client(), branch, presence.endpoint(found.kind, found.id), SYSTEM.now_ms())
    return "", 204
