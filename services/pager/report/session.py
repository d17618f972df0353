"""Who reads the report, and the reading session a browser keeps so that no address ever carries a token.

Every part of the report needs a manager's device token of the branch, and no page ever puts one in a link or
a form: an address stays in the browser's history, on a printout's margin and in a proxy's log. How each
request is authorised:

- The API (JSON and CSV) takes `Authorization: Bearer <token>`, as every API of ours does, and `?token=` for a
  script that cannot send a header.
- The page, its other days and its CSV and JSON links are read in a browser with a session cookie,
  `lobby_report`: HttpOnly, SameSite=Strict, and scoped by Path to this branch's report, once for the pages
  (`/branches/{branch}/report`) and once for the API (`/api/v1/branches/{branch}/report`). It lives
  SESSION_TTL_S and authorises only GET and HEAD of the report: whatever changes state, the session's own
  creation included, is authorised by a bearer token alone, never by a cookie (the project's stance on
  cross-site requests). Redis keeps the SHA-256 of the cookie under the branch's keys,
  `lobby:{branch}:report-session:<sha256>`, holding the id of the device token it was made from, with the
  same lifetime; every request reads that token back, so revoking it (`lobby tokens revoke`) ends its
  sessions at their next request.
- A session is made by `POST /api/v1/branches/{branch}/report/session` with the device token in the
  Authorization header. The page's script does so with the token the device keeps (localStorage, as the
  device page does) when the page answers that it has no session, or with a token typed into its form.
  The first visit's `?token=` (the address `lobby up` prints) is exchanged by the page as it renders: the
  answer sets the cookie, and the script keeps the token and takes it out of the address bar.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import redis
from flask import Response, g, request, url_for
from pydantic import BaseModel, Field

from services.domain import keys
from services.domain.branch import Branch, Manager
from services.domain.clock import SYSTEM, local_iso
from services.domain.errors import Forbidden, Unauthorized
from services.web import auth
from services.web.app import redis_client

SESSION_COOKIE = "lobby_report"
SESSION_TTL_S = 4 * 3600
# The only methods a session cookie authorises.
READS = ("GET", "HEAD")


class ReportSession(BaseModel):
    manager: str = Field(description="the manager whose device token opened the session")
    expires_at: str
    paths: list[str] = Field(description="where the session cookie is sent: the report's pages and its API")


class ReportSessionEnvelope(BaseModel):
    session: ReportSession


@dataclass(frozen=True)
class Reader:
    """Who reads the report, and how the request proved it: "header", "query" or "cookie"."""

    manager: Manager
    token_id: str
    via: str


def reader_for(branch: Branch, *, allow_query: bool, allow_cookie: bool) -> Reader:
    """Return the manager reading the branch's report (bearer token, ?token=, or session cookie), or raise 401/403.

    A token sent with the request wins over a session cookie; a cookie only ever authorises a read.
    """
    r = redis_client()
    cookie = request.cookies.get(SESSION_COOKIE)
    if allow_cookie and cookie and request.method in READS and not auth.presented_token(allow_query=allow_query):
        principal, via = _session_principal(r, branch, cookie), "cookie"
    else:
        principal = auth.authenticate(r, branch.id, auth.DEVICE, allow_query=allow_query)
        via = "header" if auth.presented_token(allow_query=False) else "query"
    manager = branch.manager(principal.subject)
    if manager is None:
        raise Forbidden("this device's manager is not enrolled in this branch", code="unknown_manager")
    return Reader(manager=manager, token_id=principal.token_id, via=via)


def session_key(branch_id: str, session: str) -> str:
    """Name the Redis key of a report session by the SHA-256 of its cookie, under the branch."""
    return f"{keys.branch(branch_id)}:report-session:{hashlib.sha256(session.encode()).hexdigest()}"


def report_paths(branch: Branch) -> list[str]:
    """Return the two paths a session cookie is scoped to: the report's pages and the report's API."""
    return [url_for("report_pages.report_page", branch=branch.id), url_for("report_api.report_json", branch=branch.id)]


def _session_principal(r: redis.Redis, branch: Branch, session: str) -> auth.Principal:
    """Return the device token behind a session cookie, or raise 401 when the session or its token is gone."""
    key = session_key(branch.id, session) if len(session) <= 128 else None
    token_id = r.get(key) if key else None
    if token_id is None:
        g.report_drop_session = True
        raise Unauthorized("the report's session has ended: open it with the device's token again",
                           code="session_expired")
    raw = r.hgetall(keys.token(branch.id, token_id))
    if not raw:
        r.delete(key)
        g.report_drop_session = True
        raise Unauthorized("the token this session was opened with is revoked", code="invalid_token")
    if raw.get("kind") != auth.DEVICE:
        raise Forbidden(f"this action needs a {auth.DEVICE} token", code="wrong_token_kind")
    return auth.Principal(branch=branch.id, token_id=token_id, kind=raw["kind"], subject=raw["subject"])


def open_session(branch: Branch, reader: Reader) -> tuple[str, ReportSession]:
    """Start a report session for a reader's device token: return its cookie's value and what it is."""
    session = secrets.token_urlsafe(32)
    redis_client().set(session_key(branch.id, session), reader.token_id, ex=SESSION_TTL_S)
    expires = SYSTEM.now() + timedelta(seconds=SESSION_TTL_S)
    return session, ReportSession(manager=reader.manager.id, expires_at=local_iso(branch, expires),
                                  paths=report_paths(branch))


def set_session_cookie(response: Response, branch: Branch, session: str, paths: list[str] | None = None) -> None:
    """Give the browser a session's cookie for each of these paths (default: the report's page and its API)."""
    for path in paths if paths is not None else report_paths(branch):
        response.set_cookie(SESSION_COOKIE, session, max_age=SESSION_TTL_S, path=path, secure=request.is_secure,
                            httponly=True, samesite="Strict")


def dropping_stale_session(paths_of: Callable[[Branch], list[str]]) -> Callable[[Response], Response]:
    """Return an after-request hook that expires the session cookie on a branch's paths_of paths once the server
    has found the session ended or its token revoked."""

    def drop_stale_session(response: Response) -> Response:
        if g.get("report_drop_session") and g.get("branch") is not None:
            for path in paths_of(g.branch):
                response.delete_cookie(SESSION_COOKIE, path=path, secure=request.is_secure, httponly=True,
                                       samesite="Strict")
        return response

    return drop_stale_session


drop_stale_session = dropping_stale_session(report_paths)
