"""The pager service: the lobby manager's device feed."""

from __future__ import annotations

from typing import Any

from flask_openapi3 import OpenAPI

from services.common import pages as common_pages
from services.common.web import create_service_app
from services.pager.api import api
from services.pager.device import bp as device_page
from services.pager.report_views import api as report_api
from services.pager.report_views import bp as report_page


def create_app(test_config: dict[str, Any] | None = None) -> OpenAPI:
    app = create_service_app(__name__, "pager", test_config)
    app.register_api(api)
    common_pages.register(app, device_page)
    app.register_api(report_api)
    app.register_blueprint(report_page)
    return app
