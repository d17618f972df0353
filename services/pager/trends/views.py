"""The trends over HTTP: the page, the same data as JSON, and a CSV file per table; `render_trends` draws the page
outside any request (bench/ times it).

Each needs a manager's device token of the branch, as the daily report does (services/pager/report/session.py):
by header, `?token=` once, or the reading session's cookie. The session is the report's (`lobby_report`, the
same Redis record), its cookie scoped to the trends' two paths as well: the first `?token=` visit here sets it,
and a visit from the report without it exchanges the device's token for it (`POST …/trends/session`, as the
report's page does). Without a records database, nothing is archived: the API answers 503
`no_records_database`, and the page says so.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import cache
from typing import Any

from flask import Flask, Response, g, jsonify, render_template, request, url_for
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from services.domain.branch import Branch, Manager
from services.domain.clock import SYSTEM, business_day
from services.domain.errors import ApiError, Unavailable
from services.pager.report import archived
from services.pager.report import session as report_session
from services.pager.report import views as report_views
from services.pager.report.display import INFORMATION_NAMES, duration_text
from services.pager.report.session import READS, ReportSessionEnvelope, open_session, reader_for
from services.pager.trends import charts, figures, spans
from services.pager.trends.csv import TABLES, to_csv
from services.pager.trends.models import Trends, TrendsEnvelope
from services.web import views as common_pages
from services.web.app import branch_or_404
from services.web.errors import COMMON_RESPONSES, ErrorBody
from services.web.requests import BranchPath
from services.web.views import known_branch, page_blueprint, secure

api = APIBlueprint(
    "trends_api", __name__, url_prefix="/api/v1/branches/<branch>/trends",
    abp_tags=[Tag(name="trends", description="the branch manager's trends over archived days")],
    abp_security=[{"bearer": []}],
    abp_responses={**COMMON_RESPONSES, "401": ErrorBody, "403": ErrorBody, "404": ErrorBody},
)
# Named after the pager package, whose templates and static folders the trends' page shares with the report's.
bp = page_blueprint("trends", "services.pager")

CSV_CONTENT = {"text/csv": {"schema": {"type": "string"}}}
TABLE_TITLES = {
    "heatmap": "waiting time p50 and p90 per category, weekday and hour",
    "weeks": "each week: tickets, VIP waits over the threshold and their share, pages, escalations, pauses",
    "ack_weeks": "time to acknowledge and escalations per week and page kind (and `all`)",
    "ack_kinds": "pages per kind over the range: acknowledged, cleared, time to acknowledge, escalations "
                 "(last row: all kinds)",
    "pauses": "pauses per reason: time paused, time expected, overruns",
    "days": "tickets issued per day and category (a day not archived counts none)",
}
NO_DATABASE = ("this service has no records database (DATABASE_URL): the trends count archived days only",
               "no_records_database")
# How the page's script (report.js) names what it opens, in its messages.
READING = {"zh": "趋势", "en": "trends"}
MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class TrendsQuery(BaseModel):
    range: str | None = Field(default=None, max_length=16, json_schema_extra={"example": "quarter"},
                              description="4w (the last 28 days), quarter (13 weeks: 91 days) or 12m (365 days), "
                                          "each ending yesterday in the branch's time zone; default 4w")
    token: str | None = Field(default=None, max_length=512,
                              description="a manager's device token, for a script that cannot send the "
                                          "Authorization header (preferred)")


@api.before_request
def _authorize() -> None:
    branch = branch_or_404((request.view_args or {}).get("branch", ""))
    g.branch = branch
    reading = request.method in READS
    g.reader = reader_for(branch, allow_query=reading, allow_cookie=reading)


def records_database() -> Engine:
    """Return the app's records database, or raise 503 `no_records_database`."""
    db = archived.app_database()
    if db is None:
        raise Unavailable(NO_DATABASE[0], code=NO_DATABASE[1])
    return db


def _build(query: TrendsQuery) -> Trends:
    branch: Branch = g.branch
    key = spans.parse_range(query.range)
    return figures.build(records_database(), branch, key, business_day(branch, SYSTEM.now()))


@api.get("", responses={200: TrendsEnvelope}, description=(
    "Only the days the records database holds count, up to yesterday. A service without a records database "
    "(DATABASE_URL) answers 503 `no_records_database`; a range that is none of 4w, quarter, 12m answers 422 "
    "`invalid_range`."))
def trends_json(path: BranchPath, query: TrendsQuery) -> dict[str, Any]:
    """The trends over archived days: waits by weekday and hour, VIP waits by week, pages, pauses, tickets."""
    return {"trends": _build(query).model_dump(mode="json")}


@api.post("/session", responses={200: ReportSessionEnvelope})
def trends_session(path: BranchPath) -> Response:
    """Exchange the device token (Authorization header) for the reading session's cookie on the trends' paths."""
    session, about = open_session(g.branch, g.reader)
    response = jsonify({"session": about.model_copy(update={"paths": trends_paths(g.branch)}).model_dump(mode="json")})
    set_session_cookie(response, g.branch, session)
    return response


def _csv_view(table: str) -> Any:
    def view(path: BranchPath, query: TrendsQuery) -> Response:
        built = _build(query)
        response = Response(to_csv(built, table), mimetype="text/csv")
        filename = f"{built.branch}-trends-{built.range}-{built.end}-{table}.csv"
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    view.__name__ = f"trends_{table}_csv"
    view.__doc__ = (f"CSV: {TABLE_TITLES[table]}. UTF-8 with a byte order mark; each header cell is the "
                    "column's Chinese name and its JSON name.")
    return view


for _table in TABLES:
    api.get(f"/{_table}.csv", responses={200: {"description": TABLE_TITLES[_table], "content": CSV_CONTENT}})(
        _csv_view(_table))


# The reading session's cookie, on the trends' paths.


def trends_paths(branch: Branch) -> list[str]:
    """Return the two paths the session cookie is sent to here: the trends' page and the trends' API."""
    return [url_for("trends_pages.trends_page", branch=branch.id), url_for("trends_api.trends_json", branch=branch.id)]


def set_session_cookie(response: Response, branch: Branch, session: str) -> None:
    """Give the browser a session's cookie for the trends' page and API (the report's has its own paths)."""
    report_session.set_session_cookie(response, branch, session, trends_paths(branch))


drop_stale_session = report_session.dropping_stale_session(trends_paths)


api.after_request(drop_stale_session)
bp.after_request(drop_stale_session)


# The page.


@bp.get("/branches/<branch>/trends")
def trends_page(branch: str) -> Response:
    """The trends for the branch manager: charts of 4 weeks, a quarter or 12 months, printable, with CSV files."""
    b = known_branch(branch)
    g.branch = b
    try:
        reader = reader_for(b, allow_query=True, allow_cookie=True)
    except ApiError as exc:
        return _gate(b, exc)
    try:
        key = spans.parse_range(request.args.get("range"))
    except ApiError as exc:
        response = _gate(b, exc)
    else:
        db = archived.app_database()
        built = figures.build(db, b, key, business_day(b, SYSTEM.now())) if db is not None else None
        response = secure(Response(page_html(b, key, built, reader.manager), mimetype="text/html",
                                   status=200 if built is not None else 503))
    if reader.via == "query":  # the first visit, with the token in the address: the session starts here
        set_session_cookie(response, b, open_session(b, reader)[0])
    response.headers["Cache-Control"] = "no-store"
    return response


def title(b: Branch) -> str:
    return f"{b.name} 趋势 · Trends"


def page_html(b: Branch, key: str, built: Trends | None, manager: Manager) -> str:
    """Render the trends page of a range (built None: the service has no records database) in a request."""
    return render_template("trends.html", branch=b, title=title(b), page="report",
                           page_data={"branch": common_pages.branch_data(b), "range": key, "reading": READING},
                           **page_context(b, key, built, manager))


def page_context(b: Branch, key: str, built: Trends | None, manager: Manager) -> dict[str, Any]:
    """Return what trends.html draws the trends from: the document, its charts, its links and the helpers that
    write numbers."""
    context: dict[str, Any] = {
        "trends": built, "range": key, "manager": manager, "no_database": built is None,
        "ranges": [(k, spans.RANGE_NAMES[k], url_for("trends_pages.trends_page", branch=b.id, range=k))
                   for k in spans.RANGES],
        "report_url": url_for("report_pages.report_page", branch=b.id),
        "dur": duration_text, "pct": lambda share: "—" if share is None else f"{share * 100:.1f}%",
        "information_names": INFORMATION_NAMES, "threshold": duration_text(b.vip_wait_threshold_minutes * 60),
    }
    if built is None:
        return context
    context.update({
        "span_zh": span_zh(built), "span_en": span_en(built),
        "csv": {t: url_for(f"trends_api.trends_{t}_csv", branch=b.id, range=key) for t in TABLES},
        "json_url": url_for("trends_api.trends_json", branch=b.id, range=key),
        "charts": {
            "heat": [(c, charts.heatmap(built, c), charts.heatmap(built, c, compact=True))
                     for c in built.categories],
            **{name: (draw(built), draw(built, compact=True)) for name, draw in (
                ("vip", charts.vip_share), ("acks", charts.acks_by_week), ("kinds", charts.acks_by_kind),
                ("pauses", charts.pauses_by_reason), ("days", charts.tickets_per_day))},
        },
        "colours": charts.category_colours(built.categories),
    })
    return context


def span_zh(built: Trends) -> str:
    """Write a range's days in Chinese: 2025年3月3日 至 2025年3月30日."""
    start, end = date.fromisoformat(built.start), date.fromisoformat(built.end)
    return f"{start.year}年{start.month}月{start.day}日 至 {end.year}年{end.month}月{end.day}日"


def span_en(built: Trends) -> str:
    """Write a range's days in English: 3 Mar 2025 – 30 Mar 2025."""
    start, end = date.fromisoformat(built.start), date.fromisoformat(built.end)
    return f"{start.day} {MONTHS_EN[start.month - 1]} {start.year} – {end.day} {MONTHS_EN[end.month - 1]} {end.year}"


def _gate(branch: Branch, exc: ApiError) -> Response:
    """Answer a refused or malformed request for the page: what went wrong, and a form to put it right."""
    html = render_template(
        "trends_gate.html", branch=branch, title=title(branch), page="report",
        page_data={"branch": common_pages.branch_data(branch), "problem": exc.code, "reading": READING,
                   "session_url": url_for("trends_api.trends_session", branch=branch.id)},
        problem=exc, auth_problem=exc.status in (401, 403),
        ranges=[(k, spans.RANGE_NAMES[k]) for k in spans.RANGES])
    response = secure(Response(html, status=exc.status, mimetype="text/html"))
    response.headers["Cache-Control"] = "no-store"
    return response


# Outside a request.


@cache
def _drawing_app() -> Flask:
    """Return an app that only draws the page: its blueprints, for the templates and the links they write."""
    app = Flask(__name__)
    common_pages.register(app, bp)
    app.register_blueprint(report_views.bp)
    app.register_blueprint(api)
    return app


def render_trends(db: Engine, branch: Branch, range_key: str, today: str, *, reader: Manager | None = None,
                  now: datetime | None = None) -> str:
    """Return the whole trends page (HTML) of a branch over a range ending the day before `today`, as the service
    draws it for a reader (default: the branch's first manager), from the records database `db`, without a
    request: the work a page request does but for its authorisation."""
    built = figures.build(db, branch, spans.parse_range(range_key), today, now)
    with _drawing_app().test_request_context():
        return page_html(branch, built.range, built, reader or branch.managers[0])
