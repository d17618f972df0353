"""The counter service: the tellers' terminals."""

from __future__ import annotations

from typing import Any

from flask_openapi3 import OpenAPI

from services.common import pages as common_pages
from services.common.web import create_service_app
from services.counter.api import api
from services.counter.pages import bp as pages


def create_app(test_config: dict[str, Any] | None = None) -> OpenAPI:
    app = create_service_app(__name__, "counter", test_config)
    app.register_api(api)
    common_pages.register(app, pages)
    return app
