"""What every service's HTML pages share: security headers, the shared assets, the branch as page data.

Pages are plain HTML rendered by Flask with plain CSS and JavaScript files beside them: no build step,
no CDN. Data reaches the page as JSON (in a `<script type="application/json">` block, which never runs)
and the scripts put it on screen with textContent only, so a note containing markup shows as text.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Blueprint, Flask, Response, render_template
from werkzeug.exceptions import HTTPException

from services.domain.branch import Branch
from services.domain.errors import ApiError
from services.web.app import branches

# No inline script or style, nothing from another origin, never inside a frame.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "media-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Terminal and device URLs may carry a token once: never send the address anywhere.
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
# Where a phone reaches the kiosk service (the ticket's QR code), when the kiosk's own browser uses another
# address (a kiosk often opens http://localhost:5001). Unset: the address the request came to.
PUBLIC_URL_ENV = "LOBBY_PUBLIC_KIOSK_URL"


def secure(response: Response) -> Response:
    """Add the pages' security headers to a response."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


common = Blueprint("lobby_common", __name__, template_folder="templates", static_folder="static",
                   static_url_path="/assets/common")
common.after_request(secure)


def page_blueprint(service: str, import_name: str) -> Blueprint:
    """Return a blueprint for a service's pages: its templates, its assets under /assets/<service>/."""
    bp = Blueprint(f"{service}_pages", import_name, template_folder="templates", static_folder="static",
                   static_url_path=f"/assets/{service}")
    bp.after_request(secure)
    bp.register_error_handler(ApiError, _error_page)
    bp.register_error_handler(HTTPException, _error_page)
    return bp


def register(app: Flask, blueprint: Blueprint) -> None:
    """Register a service's page blueprint and the shared assets on its app."""
    app.register_blueprint(common)
    app.register_blueprint(blueprint)


def known_branch(branch_id: str) -> Branch:
    """Return the branch, or answer the page request with a 404 page."""
    branch = branches().get(branch_id)
    if branch is None:
        raise ApiError(f"unknown branch {branch_id!r}", code="unknown_branch", status=404)
    return branch


def branch_data(branch: Branch) -> dict[str, Any]:
    """Return what a page needs to know of its branch (names, categories, counters, managers, reasons, screens, and
    its heartbeat)."""
    return {
        "id": branch.id,
        "name": branch.name,
        "name_en": branch.name_en,
        "timezone": branch.timezone,
        "categories": [{"id": c.id, "prefix": c.prefix, "name": c.name, "name_en": c.name_en, "vip": c.vip}
                       for c in branch.categories],
        "counters": [{"id": c.id, "window": c.window, "serves": list(c.serves)} for c in branch.counters],
        "managers": [{"id": m.id, "name": m.name, "name_en": m.name_en} for m in branch.managers],
        "pause_reasons": [{"id": r.id, "name": r.name, "name_en": r.name_en} for r in branch.pause_reasons],
        "screens": [{"id": s.id, "kind": s.kind, "name": s.name, "name_en": s.name_en} for s in branch.screens],
        # How often a supervised page (screen, terminal, device) says it is running.
        "heartbeat_s": branch.supervision.heartbeat_s,
    }


def render_page(template: str, branch: Branch, *, title: str, page: str, data: dict[str, Any] | None = None,
                **context: Any) -> Response:
    """Render a page with its branch and extra data as the page's JSON, with the security headers."""
    payload = {"branch": branch_data(branch), **(data or {})}
    html = render_template(template, branch=branch, title=title, page=page, page_data=payload, **context)
    return secure(Response(html, mimetype="text/html"))


def public_kiosk_url(fallback: str) -> str:
    """Return the kiosk service's address as a customer's phone reaches it."""
    return (os.environ.get(PUBLIC_URL_ENV) or fallback).rstrip("/")


def _error_page(exc: Exception) -> Response:
    status = exc.status if isinstance(exc, ApiError) else (getattr(exc, "code", None) or 500)
    message = exc.message if isinstance(exc, ApiError) else (getattr(exc, "description", None) or "error")
    response = Response(render_template("error.html", status=status, message=message), status=status,
                        mimetype="text/html")
    return secure(response)
