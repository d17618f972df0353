"""What every service's Flask app shares: errors as JSON, health, readiness, metrics, the OpenAPI document, and the
process's context (services/runtime/settings.py), built once when the app is made and kept on it."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import redis
import sqlalchemy.exc
from flask import Response, current_app, has_request_context, jsonify, request
from flask.json.provider import DefaultJSONProvider
from flask_openapi3 import Info, OpenAPI
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from services.domain.branch import Branch
from services.domain.contracts import JobSpec, Payload
from services.domain.errors import ApiError, BadRequest, Forbidden, NotFound
from services.runtime import logs, messages
from services.runtime import redis as clients
from services.runtime.redis import refuses_writes
from services.runtime.settings import Context
from services.web import hub, metrics, sse
from services.web.errors import ErrorBody

MAX_BODY_BYTES = 64 * 1024
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BEARER = {"bearer": {"type": "http", "scheme": "bearer"}}
log = logging.getLogger("lobby")
# How long a client should wait before trying again while Redis is unreachable or refuses writes.
RETRY_AFTER_S = 2
# /readyz writes this key only if it exists, which it never does: Redis refuses a write command (OOM, READONLY,
# MISCONF, LOADING...) before it looks at the key, so the probe tells whether writes pass and stores nothing.
READY_PROBE_KEY = "lobby:readyz-probe"


class Utf8JSONProvider(DefaultJSONProvider):
    """JSON as API.md has it: UTF-8 only, non-ASCII written as is, keys in the order they were put."""

    ensure_ascii = False
    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        # json.loads guesses UTF-16 and UTF-32 from the bytes and skips a UTF-8 BOM; only UTF-8 is accepted
        # (a BOM left in the text is refused by json.loads itself).
        if isinstance(s, (bytes, bytearray)):
            s = s.decode("utf-8")
        return super().loads(s, **kwargs)


def create_service_app(import_name: str, service: str, test_config: dict[str, Any] | None = None) -> OpenAPI:
    """Return a Flask app with the conventions of API.md wired in, on the context test_config["CONTEXT"] gives,
    else the one the environment describes."""
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
    if test_config:
        app.config.update(test_config)
    ctx: Context = app.config.get("CONTEXT") or Context.from_env()
    app.extensions["lobby"] = ctx
    if ctx.settings.trusted_proxies:
        proxies = ctx.settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    app.json = Utf8JSONProvider(app)

    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(redis.ConnectionError, _redis_down)
    app.register_error_handler(redis.TimeoutError, _redis_down)
    app.register_error_handler(redis.ResponseError, _redis_refused)
    app.register_error_handler(sqlalchemy.exc.OperationalError, _records_down)
    app.register_error_handler(Exception, _unexpected)
    if not app.testing:
        logs.setup(service)
        clients.name_process(f"{service}-web")
    app.extensions["lobby.hubs"] = {}
    logs.install(app)
    app.before_request(_refuse_cross_site)
    app.before_request(_check_json_body)
    app.after_request(_baseline_headers)

    app.add_url_rule("/healthz", "healthz", lambda: {"status": "ok", "service": service})
    app.add_url_rule("/readyz", "readyz", _readyz)
    registry = metrics.registry_for(service, ctx)
    app.add_url_rule("/metrics", "metrics", lambda: Response(metrics.render(registry), mimetype=METRICS_TYPE))
    app.add_url_rule("/openapi.json", "openapi_json",
                     lambda: jsonify(sse.document_control_events(current_app.api_doc)))  # type: ignore
    return app


def context() -> Context:
    """Return the app's context: its settings, its branches and its Redis clients."""
    return current_app.extensions["lobby"]


def redis_client() -> redis.Redis:
    """Return the client of the Redis the request's branch lives on (the default one outside a branch)."""
    return context().redis(_redis_url())


def live_streams() -> hub.Hub:
    """Return this process's hub of the live streams of the Redis the request's branch lives on."""
    url, hubs = _redis_url(), current_app.extensions["lobby.hubs"]
    found = hubs.get(url)
    if found is None:
        ctx = context()
        found = hubs.setdefault(url, hub.Hub(
            ctx.redis(url), lambda: clients.dedicated(url, clients.STREAM, ctx.settings.sentinels),
            hub.process_name(current_app.config["SERVICE"])))
    return found


def _redis_url() -> str:
    branch_id = (request.view_args or {}).get("branch") if has_request_context() else None
    return context().url_of(branch_id) if branch_id else context().settings.redis_url


def branches() -> dict[str, Branch]:
    return context().branches


def send(spec: JobSpec, payload: Payload) -> None:
    """Send a job to another service (contracts.py, item 3), on the Redis of the payload's branch."""
    messages.enqueue(context().rq(context().url_of(payload.branch)), spec, payload)


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
    """Refuse a body that is too large or not JSON in UTF-8 before any view sees it."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    raw = _body()
    if not raw.strip() or not request.path.startswith("/api/"):
        return
    if not request.is_json:
        raise ApiError("send the body as application/json", code="unsupported_media_type", status=415)
    if request.mimetype_params.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
        raise ApiError("send the body as JSON in UTF-8", code="unsupported_media_type", status=415)
    try:
        request.get_json(force=False, silent=False)
    except Exception as exc:
        raise BadRequest("the body is not valid JSON in UTF-8", code="malformed_json") from exc


def _body() -> bytes:
    """Return the request's body, refusing one over MAX_CONTENT_LENGTH with 413 however it was sent.

    Werkzeug refuses a Content-Length over the limit, but reads a chunked body only up to the limit and stops
    there without a word: one byte more behind it means the body was too large.
    """
    raw = request.get_data(cache=True)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(raw) >= limit \
            and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()
    return raw


def _readyz() -> tuple[dict[str, Any], int]:
    """Say whether the service can work: Redis reachable and taking writes."""
    try:
        redis_client().set(READY_PROBE_KEY, "1", xx=True, px=1000)
    except (redis.ConnectionError, redis.TimeoutError):
        return {"status": "unavailable", "redis": "unreachable"}, 503
    except redis.ResponseError as exc:
        if not refuses_writes(exc):
            raise
        return {"status": "unavailable", "redis": "refusing_writes"}, 503
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
    return _unavailable("the service's data store is unreachable; try again shortly")


def _records_down(exc: Exception) -> Response:
    log.warning("records database unavailable: %s", str(exc).splitlines()[0])
    return _unavailable("the records database is unreachable; try again shortly")


def _redis_refused(exc: redis.ResponseError) -> Response:
    """Answer 503 while Redis refuses writes (out of memory, read-only, failed snapshot), else 500."""
    if not refuses_writes(exc):
        return _unexpected(exc)
    log.warning("redis refuses writes: %s", exc)
    return _unavailable("the service's data store cannot take changes right now; try again shortly")


def _unavailable(message: str) -> Response:
    response = _json_error(503, "unavailable", message)
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return _json_error(500, "internal_error", "something went wrong on our side; it has been logged")


def client_ip() -> str:
    return request.remote_addr or "unknown"
