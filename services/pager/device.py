"""The pager service's page: the manager's device (a phone). HTML views live here because pages.py is the
page store (the pages a manager is sent), not HTML."""

from __future__ import annotations

from flask import Response

from services.common.pages import known_branch, page_blueprint, render_page

bp = page_blueprint("pager", __name__)


@bp.get("/branches/<branch>/device")
def device(branch: str) -> Response:
    """The manager's device: open pages, most urgent first; its token comes once in the address."""
    b = known_branch(branch)
    return render_page("device.html", b, title=f"呼叫 Pages · {b.name}", page="device")
