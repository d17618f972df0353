"""The kiosk service's pages: the touchscreen, the lobby display, a customer's ticket, its QR code."""

from __future__ import annotations

import io
import re
from functools import lru_cache

import segno
from flask import Response, request, url_for

from services.domain.errors import NotFound
from services.web.requests import TICKET_NUMBER
from services.web.views import known_branch, page_blueprint, public_kiosk_url, render_page, secure

bp = page_blueprint("kiosk", __name__)
NUMBER = re.compile(TICKET_NUMBER)
QR_SCALE = 4
QR_BORDER = 2


def _number_or_404(number: str) -> str:
    if not NUMBER.match(number):
        raise NotFound(f"{number!r} is not a ticket number", code="unknown_ticket")
    return number


@bp.get("/branches/<branch>/kiosk")
def kiosk(branch: str) -> Response:
    """The touchscreen: one button per category; a ticket is shown, then printed."""
    b = known_branch(branch)
    return render_page("kiosk.html", b, title=f"{b.name} · 取号 Take a ticket", page="kiosk")


@bp.get("/branches/<branch>/screen")
def screen(branch: str) -> Response:
    """The lobby display: the call, the last calls, who waits, redirect notices."""
    b = known_branch(branch)
    return render_page("screen.html", b, title=f"{b.name} · 叫号 Now serving", page="screen")


@bp.get("/branches/<branch>/tickets/<number>")
def ticket(branch: str, number: str) -> Response:
    """A customer's own ticket, on their phone: status, place in line, where to go."""
    b = known_branch(branch)
    number = _number_or_404(number)
    return render_page("ticket.html", b, title=f"{number} · {b.name}", page="ticket", data={"number": number},
                       number=number)


@bp.get("/branches/<branch>/tickets/<number>/qr.svg")
def ticket_qr(branch: str, number: str) -> Response:
    """The QR code printed on a ticket: the address of the ticket's page, as SVG made here (no CDN)."""
    b = known_branch(branch)
    number = _number_or_404(number)
    path = url_for("kiosk_pages.ticket", branch=b.id, number=number)
    svg = qr_svg(public_kiosk_url(request.host_url) + path)
    response = Response(svg, mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return secure(response)


@lru_cache(maxsize=256)
def qr_svg(address: str) -> bytes:
    """Return a QR code of an address as a scalable SVG (medium error correction survives a worn print)."""
    out = io.BytesIO()
    segno.make(address, error="m").save(out, kind="svg", scale=QR_SCALE, border=QR_BORDER, xmldecl=False,
                                         omitsize=True, title=address)
    return out.getvalue()
