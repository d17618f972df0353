"""What every service's Flask app shares: errors as JSON, health, readiness, the OpenAPI document."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import redis
from flask import Response, current_app, has_request_context, jsonify, request
from flask_openapi3 import Info, OpenAPI
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from services.common import config, logs, metrics, ratelimits
from services.common.config import Branch, Settings
from services.common.errors import ApiError, BadRequest, ErrorBody, Forbidden, NotFound
from services.common.redis import get_redis, get_stream_redis

MAX_BODY_BYTES = 64 * 1024
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BEARER = {"bearer": {"type": "http", "scheme": "bearer"}}
log = logging.getLogger("lobby")


def create_service_app(import_name: str, service: str, test_config: dict[str, Any] | None = None) -> OpenAPI:
    """Return a Flask app with the conventions of API.md wired in."""
    app = OpenAPI(
        import_name,
        info=Info(title=f"Lobby {service} service", version="1.0.0"),
        security_schemes=BEARER,
        validation_error_status=422,
        validation_error_model=ErrorBody,
        validation_error_callback=_validation_error,
        doc_ui=False,
    )
    app.config.update(SERVICE=service, MAX_CONTENT_LENGTH=MAX_BODY_BYTES, JSON_AS_ASCII=False)
    settings = Settings.from_env()
    app.config["SETTINGS"] = settings
    app.config["BRANCHES"] = config.load_branches(settings.config_path)
    if test_config:
        app.config.update(test_config)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]

    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(redis.ConnectionError, _redis_down)
    app.register_error_handler(redis.TimeoutError, _redis_down)
    app.register_error_handler(Exception, _unexpected)
    if not app.testing:
        logs.setup(service)
    logs.install(app)
    app.before_request(_refuse_cross_site)
    app.before_request(_check_json_body)
    app.after_request(_baseline_headers)
    ratelimits.init_app(app, settings)

    app.add_url_rule("/healthz", "healthz", lambda: {"status": "ok", "service": service})
    app.add_url_rule("/readyz", "readyz", _readyz)
    registry = metrics.registry_for(service, app.config["BRANCHES"], settings.redis_url)
    app.add_url_rule("/metrics", "metrics", lambda: Response(metrics.render(registry), mimetype=METRICS_TYPE))
    app.add_url_rule("/openapi.json", "openapi_json", lambda: jsonify(current_app.api_doc))  # type: ignore
    return app


def app_settings() -> Settings:
    return current_app.config["SETTINGS"]


def redis_client() -> redis.Redis:
    """Return the client of the Redis the request's branch lives on (the default one outside a branch)."""
    return get_redis(_redis_url())


def stream_client() -> redis.Redis:
    return get_stream_redis(_redis_url())


def _redis_url() -> str:
    branch_id = (request.view_args or {}).get("branch") if has_request_context() else None
    branch = branches().get(branch_id) if branch_id else None
    default = app_settings().redis_url
    return branch.lives_on(default) if branch else default


def branches() -> dict[str, Branch]:
    return current_app.config["BRANCHES"]


def branch_or_404(branch_id: str) -> Branch:
    branch = branches().get(branch_id)
    if branch is None:
        raise NotFound(f"unknown branch {branch_id!r}", code="unknown_branch")
    return branch


def _validation_error(exc: ValidationError) -> Response:
    problems = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(part) for part in err.get("loc", ())) or "request"
        problems.append({"field": where, "message": err.get("msg", "invalid")})
    message = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
    body = {"error": {"code": "invalid_request", "message": message or "invalid request", "fields": problems}}
    response = jsonify(body)
    response.status_code = 422
    return response


STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")


def _refuse_cross_site() -> None:
    """Refuse a state change a browser sends on behalf of another site (a cross-site form or fetch).

    Our own pages call their own service, so the browser marks them same-origin; bearer tokens are never
    cookies, and bodies must be JSON (a form cannot send that without a CORS preflight we never grant).
    """
    if request.method not in STATE_CHANGING:
        return
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        raise Forbidden("cross-site requests cannot change anything here", code="cross_site")
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        raise Forbidden("this request comes from another site's page", code="cross_site")
    if origin == "null":
        raise Forbidden("this request comes from an opaque origin", code="cross_site")


def _baseline_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _check_json_body() -> None:
    """Refuse a body that is not a JSON object before any view sees it."""
    if request.method not in ("POST", "PUT", "PATCH") or not request.path.startswith("/api/"):
        return
    raw = request.get_data(cache=True)
    if not raw.strip():
        return
    if not request.is_json:
        raise ApiError("send the body as application/json", code="unsupported_media_type", status=415)
    try:
        request.get_json(force=False, silent=False)
    except Exception as exc:
        raise BadRequest("the body is not valid JSON in UTF-8", code="malformed_json") from exc


def _readyz() -> tuple[dict[str, Any], int]:
    try:
        redis_client().ping()
    except (redis.ConnectionError, redis.TimeoutError):
        return {"status": "unavailable", "redis": "unreachable"}, 503
    return {"status": "ready", "redis": "ok"}, 200


def _json_error(status: int, code: str, message: str, **extra: Any) -> Response:
    response = jsonify({"error": {"code": code, "message": message, **extra}})
    response.status_code = status
    return response


def _api_error(exc: ApiError) -> Response:
    response = jsonify(exc.body())
    response.status_code = exc.status
    response.headers.update(exc.headers)
    return response


def _http_error(exc: HTTPException) -> Response:
    if exc.response is not None and exc.response.status_code == 422:
        return exc.response  # flask-openapi3's validation answer, already in our shape
    code = (exc.name or "error").lower().replace(" ", "_").replace("'", "")
    response = _json_error(exc.code or 500, code, exc.description or exc.name or "error")
    if exc.code == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _redis_down(exc: Exception) -> Response:
    log.warning("redis unavailable: %s", exc)
    response = _json_error(503, "unavailable", "the service's data store is unreachable; try again shortly")
    response.headers["Retry-After"] = "2"
    return response


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return _json_error(500, "internal_error", "something went wrong on our side; it has been logged")


def client_ip() -> str:
    return request.remote_addr or "unknown"
