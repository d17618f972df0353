"""The kiosk service: issues tickets and drives the lobby screen."""

from __future__ import annotations

from typing import Any

from flask_openapi3 import OpenAPI

from services.kiosk.api import api
from services.kiosk.views import bp as pages
from services.web import views as common_pages
from services.web.app import create_service_app


def create_app(test_config: dict[str, Any] | None = None) -> OpenAPI:
    app = create_service_app(__name__, "kiosk", test_config)
    app.register_api(api)
    common_pages.register(app, pages)
    return app
