"""The branch manager's daily report over HTTP: the page, the same data as JSON, and a CSV file per table.

Each needs a manager's device token of the branch: `Authorization: Bearer …`, or `?token=` because the
page is opened from a link and its download links must work on their own (the pages' Referrer-Policy is
no-referrer, and the page's script takes the token out of the address bar once it has loaded).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Response, g, request, url_for
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from services.common import auth, clock
from services.common.config import Branch, Manager
from services.common.errors import COMMON_RESPONSES, ApiError, ErrorBody, Forbidden
from services.common.pages import known_branch, page_blueprint, render_page
from services.common.paths import BranchPath
from services.common.web import branch_or_404, redis_client
from services.pager import report, report_charts
from services.pager.report import TABLES, Report, ReportEnvelope

api = APIBlueprint(
    "report_api", __name__, url_prefix="/api/v1/branches/<branch>/report",
    abp_tags=[Tag(name="report", description="the branch manager's daily report")],
    abp_security=[{"bearer": []}],
    abp_responses={**COMMON_RESPONSES, "401": ErrorBody, "403": ErrorBody, "404": ErrorBody},
)
bp = page_blueprint("report", __name__)

CSV_CONTENT = {"text/csv": {"schema": {"type": "string"}}}
TABLE_TITLES = {
    "categories": "waiting time and outcome per category",
    "hours": "tickets issued per hour and category",
    "vip_waits": "every VIP wait over the branch's threshold",
    "pauses": "every pause with its reason, expected and actual minutes",
    "pages": "pages per kind: time to acknowledge, escalations (last row: all kinds)",
}
STATUS_NAMES = {
    "served": ("已办结", "Served"), "called": ("办理中", "Being served"), "no_show": ("过号", "No-show"),
    "waiting": ("等候中", "Waiting"), "expired": ("未叫号", "Never called"),
}
WEEKDAYS = "一二三四五六日"


class ReportQuery(BaseModel):
    date: str | None = Field(default=None, max_length=32, json_schema_extra={"example": "2025-03-14"},
                             description="the business day as YYYY-MM-DD, in the branch's time zone; default today")
    token: str | None = Field(default=None, max_length=512,
                              description="a manager's device token, for links; the Authorization header is "
                                          "preferred")


def manager_for(branch: Branch) -> Manager:
    """Return the manager whose device token this request carries (header or ?token=), or raise 401/403."""
    principal = auth.authenticate(redis_client(), branch.id, auth.DEVICE, allow_query=True)
    manager = branch.manager(principal.subject)
    if manager is None:
        raise Forbidden("this device's manager is not enrolled in this branch", code="unknown_manager")
    return manager


@api.before_request
def _authorize() -> None:
    branch = branch_or_404((request.view_args or {}).get("branch", ""))
    g.branch, g.manager = branch, manager_for(branch)


def _build(query: ReportQuery) -> Report:
    branch: Branch = g.branch
    return report.build(redis_client(), branch, report.parse_day(query.date, branch))


@api.get("", responses={200: ReportEnvelope})
def report_json(path: BranchPath, query: ReportQuery) -> dict[str, Any]:
    """The day's report: tickets by category and hour, waiting times, VIP waits, pauses, pages."""
    return {"report": _build(query).model_dump(mode="json")}


def _csv_view(table: str) -> Any:
    def view(path: BranchPath, query: ReportQuery) -> Response:
        built = _build(query)
        response = Response(report.to_csv(built, table), mimetype="text/csv")
        filename = f"{built.branch}-report-{built.date}-{table}.csv"
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    view.__name__ = f"report_{table}_csv"
    view.__doc__ = f"CSV: {TABLE_TITLES[table]}. UTF-8 with a byte order mark; the header row has the JSON names."
    return view


for _table in TABLES:
    api.get(f"/{_table}.csv", responses={200: {"description": TABLE_TITLES[_table], "content": CSV_CONTENT}})(
        _csv_view(_table))


# The page.


@bp.get("/branches/<branch>/report")
def report_page(branch: str) -> Response:
    """The day's report for the branch manager: tables and charts, printable on A4, with CSV downloads."""
    b = known_branch(branch)
    token = request.args.get("token") or None
    try:
        manager = manager_for(b)
    except ApiError as exc:
        return _gate(b, exc, request.args.get("date"))
    try:
        day = report.parse_day(request.args.get("date"), b)
    except ApiError as exc:
        return _gate(b, exc, None, token=token)
    built = report.build(redis_client(), b, day)
    links = {t: url_for("report_api.report_" + t + "_csv", branch=b.id, date=day, token=token) for t in TABLES}
    shown = date.fromisoformat(day)
    context = {
        "report": built, "day": day, "token": token, "manager": manager, "csv": links,
        "json_url": url_for("report_api.report_json", branch=b.id, date=day, token=token),
        "prev_url": _page_url(b, shown.toordinal() - 1, token),
        "next_url": _page_url(b, shown.toordinal() + 1, token),
        "today": clock.business_day(b),
        "day_zh": f"{shown.year}年{shown.month}月{shown.day}日 星期{WEEKDAYS[shown.weekday()]}",
        "day_en": shown.strftime("%a %d %b %Y"),
        "charts": {"hours": report_charts.tickets_by_hour(built), "waits": report_charts.waiting_times(built),
                   "pages": report_charts.pages_by_kind(built)},
        "colours": report_charts.category_colours(built),
        "dur": report.duration_text, "hm": lambda iso: _hm(b, iso), "status_names": STATUS_NAMES,
    }
    response = render_page("report.html", b, title=f"{b.name} 营业日报 {day} · Daily report", page="report",
                           data={"date": day}, **context)
    response.headers["Cache-Control"] = "no-store"
    return response


def _page_url(branch: Branch, ordinal: int, token: str | None) -> str | None:
    try:
        day = date.fromordinal(ordinal)
    except ValueError:
        return None
    if not report.FIRST_DAY <= day <= report.LAST_DAY:
        return None
    return url_for("report_pages.report_page", branch=branch.id, date=day.isoformat(), token=token)


def _hm(branch: Branch, iso: str | None) -> str:
    """Write an ISO time as the branch's wall clock, HH:MM:SS."""
    if not iso:
        return "—"
    return clock.parse_iso(iso).astimezone(branch.zone).strftime("%H:%M:%S")


def _gate(branch: Branch, exc: ApiError, day: str | None, *, token: str | None = None) -> Response:
    """Answer a refused or malformed request for the page: what went wrong, and a form to put it right."""
    response = render_page("report_gate.html", branch, title=f"{branch.name} 营业日报 · Daily report", page="report",
                           data={"problem": exc.code}, problem=exc, day=day or "", token=token,
                           auth_problem=exc.status in (401, 403))
    response.status_code = exc.status
    response.headers["Cache-Control"] = "no-store"
    return response
