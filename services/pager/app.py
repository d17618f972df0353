"""The pager service: the lobby manager's device feed."""

from __future__ import annotations

from typing import Any

from flask_openapi3 import OpenAPI

from services.pager.api import api, device_api, floor_api
from services.pager.report.views import api as report_api
from services.pager.report.views import bp as report_page
from services.pager.trends.views import api as trends_api
from services.pager.trends.views import bp as trends_page
from services.pager.views import bp as device_page
from services.web import views as common_pages
from services.web.app import create_service_app


def create_app(test_config: dict[str, Any] | None = None) -> OpenAPI:
    app = create_service_app(__name__, "pager", test_config)
    app.register_api(api)
    app.register_api(device_api)
    app.register_api(floor_api)
    common_pages.register(app, device_page)
    app.register_api(report_api)
    app.register_blueprint(report_page)
    app.register_api(trends_api)
    app.register_blueprint(trends_page)
    return app
