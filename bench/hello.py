"""B3's baseline: the kiosk app itself plus a hello-world endpoint, served only by the benchmarks."""

from __future__ import annotations

from typing import Any

from flask_openapi3 import OpenAPI

from services.kiosk.app import create_app as create_kiosk_app

HELLO_PATH = "/bench/hello"


def create_app(test_config: dict[str, Any] | None = None) -> OpenAPI:
    """Return the kiosk app with one more route that touches nothing: what Flask and gunicorn cost alone."""
    app = create_kiosk_app(test_config)
    app.add_url_rule(HELLO_PATH, "bench_hello", lambda: {"hello": "world"}, methods=["GET", "POST"])
    return app
