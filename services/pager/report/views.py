"""The branch manager's daily report over HTTP: the page, the same data as JSON, and a CSV file per table.

Each needs a manager's device token of the branch, by header, `?token=` or the reading session's cookie
(`session`); no page ever puts one in a link or a form.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Response, g, jsonify, request, url_for
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from services.domain.branch import Branch, Manager
from services.domain.clock import SYSTEM, business_day
from services.domain.errors import ApiError
from services.pager.report import archived, charts, days, figures
from services.pager.report.csv import TABLES, to_csv
from services.pager.report.display import (
    INFORMATION_NAMES,
    RESUMED_NAMES,
    STATUS_NAMES,
    day_names,
    duration_text,
    overrun,
    wall_clock,
)
from services.pager.report.models import Report, ReportEnvelope
from services.pager.report.session import (
    READS,
    ReportSessionEnvelope,
    drop_stale_session,
    open_session,
    reader_for,
    set_session_cookie,
)
from services.web.app import branch_or_404, redis_client
from services.web.errors import COMMON_RESPONSES, ErrorBody
from services.web.requests import BranchPath
from services.web.views import known_branch, page_blueprint, render_page

api = APIBlueprint(
    "report_api", __name__, url_prefix="/api/v1/branches/<branch>/report",
    abp_tags=[Tag(name="report", description="the branch manager's daily report")],
    abp_security=[{"bearer": []}],
    abp_responses={**COMMON_RESPONSES, "401": ErrorBody, "403": ErrorBody, "404": ErrorBody},
)
# Named after the pager package, whose templates and static folders the report's page shares.
bp = page_blueprint("report", "services.pager")

CSV_CONTENT = {"text/csv": {"schema": {"type": "string"}}}
TABLE_TITLES = {
    "categories": "waiting time and outcome per category",
    "hours": "tickets issued per hour and category",
    "vip_waits": "every VIP wait over the branch's threshold",
    "pauses": "every pause with its reason, expected and actual time",
    "pages": "pages per kind: acknowledged, cleared, time to acknowledge, escalations (last row: all kinds)",
    "supervision": "every incident the system paged by itself: a screen or terminal offline, a long service, a "
                   "long line, with how long it lasted",
    "test_calls": "every drill of the silent call, with who took it and how fast",
}


class ReportQuery(BaseModel):
    date: str | None = Field(default=None, max_length=32, json_schema_extra={"example": "2025-03-14"},
                             description="the business day as YYYY-MM-DD, in the branch's time zone; default today")
    token: str | None = Field(default=None, max_length=512,
                              description="a manager's device token, for a script that cannot send the "
                                          "Authorization header (preferred)")


@api.before_request
def _authorize() -> None:
    branch = branch_or_404((request.view_args or {}).get("branch", ""))
    g.branch = branch
    reading = request.method in READS
    g.reader = reader_for(branch, allow_query=reading, allow_cookie=reading)


api.after_request(drop_stale_session)


def _build(query: ReportQuery) -> Report:
    branch: Branch = g.branch
    day = days.parse_day(query.date, branch, business_day(branch, SYSTEM.now()))
    return figures.build(redis_client(), branch, day, db=archived.app_database())


@api.get("", responses={200: ReportEnvelope})
def report_json(path: BranchPath, query: ReportQuery) -> dict[str, Any]:
    """The day's report: tickets by category and hour, waiting times, VIP waits, pauses, pages."""
    return {"report": _build(query).model_dump(mode="json")}


@api.post("/session", responses={200: ReportSessionEnvelope})
def report_session(path: BranchPath) -> Response:
    """Exchange the device token (Authorization header) for the report's session cookie, which only reads."""
    session, about = open_session(g.branch, g.reader)
    response = jsonify({"session": about.model_dump(mode="json")})
    set_session_cookie(response, g.branch, session)
    return response


def _csv_view(table: str) -> Any:
    def view(path: BranchPath, query: ReportQuery) -> Response:
        built = _build(query)
        response = Response(to_csv(built, table), mimetype="text/csv")
        filename = f"{built.branch}-report-{built.date}-{table}.csv"
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    view.__name__ = f"report_{table}_csv"
    view.__doc__ = (f"CSV: {TABLE_TITLES[table]}. UTF-8 with a byte order mark; each header cell is the "
                    "column's Chinese name and its JSON name.")
    return view


for _table in TABLES:
    api.get(f"/{_table}.csv", responses={200: {"description": TABLE_TITLES[_table], "content": CSV_CONTENT}})(
        _csv_view(_table))


# The page.


@bp.get("/branches/<branch>/report")
def report_page(branch: str) -> Response:
    """The day's report for the branch manager: tables and charts, printable on A4, with CSV downloads."""
    b = known_branch(branch)
    g.branch = b
    try:
        reader = reader_for(b, allow_query=True, allow_cookie=True)
    except ApiError as exc:
        return _gate(b, exc)
    try:
        day = days.parse_day(request.args.get("date"), b, business_day(b, SYSTEM.now()))
    except ApiError as exc:
        response = _gate(b, exc)
    else:
        response = _page(b, day, reader.manager)
    if reader.via == "query":  # the first visit, from the address `lobby up` prints
        set_session_cookie(response, b, open_session(b, reader)[0])
    return response


bp.after_request(drop_stale_session)


def _page(b: Branch, day: str, manager: Manager) -> Response:
    built = figures.build(redis_client(), b, day, db=archived.app_database())
    shown = date.fromisoformat(day)
    response = render_page(
        "report.html", b, title=title(b, day), page="report", data={"date": day},
        **page_context(b, built, manager, {t: url_for("report_api.report_" + t + "_csv", branch=b.id, date=day)
                                           for t in TABLES},
                       json_url=url_for("report_api.report_json", branch=b.id, date=day),
                       prev_url=_page_url(b, shown.toordinal() - 1), next_url=_page_url(b, shown.toordinal() + 1)))
    response.headers["Cache-Control"] = "no-store"
    return response


def title(b: Branch, day: str) -> str:
    return f"{b.name} 营业日报 {day} · Daily report"


def page_context(b: Branch, built: Report, manager: Manager, csv_links: dict[str, str], *, json_url: str,
                 prev_url: str | None = None, next_url: str | None = None, standalone: bool = False) -> dict[str, Any]:
    """Return what report.html draws a day's report from: the report, its charts, its links and the helpers
    that write times (standalone: a copy kept as files, without the served page's date form and script)."""
    day_zh, day_en = day_names(date.fromisoformat(built.date))
    return {
        "report": built, "day": built.date, "manager": manager, "csv": csv_links, "manager_names": {
            m.id: (m.name, m.name_en) for m in b.managers},
        "json_url": json_url, "prev_url": prev_url, "next_url": next_url, "standalone": standalone,
        "day_zh": day_zh,
        "day_en": day_en,
        "charts": {name: (draw(built), draw(built, compact=True)) for name, draw in (
            ("hours", charts.tickets_by_hour), ("waits", charts.waiting_times), ("pages", charts.pages_by_kind))},
        "colours": charts.category_colours(built.categories),
        "dur": duration_text, "hm": lambda iso: wall_clock(b, iso), "status_names": STATUS_NAMES,
        "overrun": overrun, "threshold": duration_text(built.vip_wait_threshold_minutes * 60),
        "information_names": INFORMATION_NAMES, "resumed_names": RESUMED_NAMES,
    }


def _page_url(branch: Branch, ordinal: int) -> str | None:
    try:
        day = date.fromordinal(ordinal)
    except ValueError:
        return None
    if not days.FIRST_DAY <= day <= days.LAST_DAY:
        return None
    return url_for("report_pages.report_page", branch=branch.id, date=day.isoformat())


def _gate(branch: Branch, exc: ApiError) -> Response:
    """Answer a refused or malformed request for the page: what went wrong, and a form to put it right."""
    response = render_page("report_gate.html", branch, title=f"{branch.name} 营业日报 · Daily report", page="report",
                           data={"problem": exc.code, "session_url": url_for("report_api.report_session",
                                                                             branch=branch.id)},
                           problem=exc, auth_problem=exc.status in (401, 403))
    response.status_code = exc.status
    response.headers["Cache-Control"] = "no-store"
    return response
