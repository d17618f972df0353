"""The pager service's page: the manager's device (a phone)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from flask import Response, url_for

from services.domain import contracts
from services.web.views import known_branch, page_blueprint, render_page, secure

bp = page_blueprint("pager", __name__)


@bp.get("/branches/<branch>/device")
def device(branch: str) -> Response:
    """The manager's device: open pages, most urgent first; its token comes once in the address."""
    b = known_branch(branch)
    return render_page("device.html", b, title=f"呼叫 Pages · {b.name}", page="device",
                       data=contracts.vocabulary())


@bp.get("/branches/<branch>/device.webmanifest")
def device_manifest(branch: str) -> Response:
    """The device page as an installable app: its name, where it starts, its icon."""
    b = known_branch(branch)
    manifest = {
        "name": f"{b.name} 呼叫 · Pages", "short_name": "呼叫 Pages", "lang": "zh-CN",
        "start_url": url_for("pager_pages.device", branch=b.id), "scope": f"/branches/{b.id}/",
        "display": "standalone", "background_color": "#f4f6f9", "theme_color": "#12305a",
        "icons": [{"src": url_for("lobby_common.static", filename="favicon.svg"), "sizes": "any",
                   "type": "image/svg+xml", "purpose": "any"}],
    }
    return secure(Response(json.dumps(manifest, ensure_ascii=False), mimetype="application/manifest+json"))


@bp.get("/branches/<branch>/device-sw.js")
def device_worker(branch: str) -> Response:
    """The device's service worker, with the shell it keeps for when the network is gone."""
    b = known_branch(branch)
    shell = [url_for("pager_pages.device", branch=b.id),
             url_for("lobby_common.static", filename="lobby.css"), url_for("lobby_common.static", filename="lobby.js"),
             url_for("lobby_common.static", filename="favicon.svg"),
             url_for("pager_pages.static", filename="device.css"), url_for("pager_pages.static", filename="device.js")]
    body = f"const SHELL = {json.dumps(shell)};\n{_worker_source()}"
    response = Response(body, mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"  # a new release reaches the phone at its next visit
    return secure(response)


@cache
def _worker_source() -> str:
    return (Path(__file__).parent / "static" / "device-sw.js").read_text(encoding="utf-8")
