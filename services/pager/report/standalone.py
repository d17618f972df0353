"""A day's report kept as files, as the page draws it: report.html with its stylesheets beside it, report.json,
and one CSV per table, linked from the page. For a report read away from the pager service, such as a simulated
day's (`lobby simulate`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from flask import Flask, render_template

from services.domain.branch import Branch, Manager
from services.pager.report import views
from services.pager.report.csv import TABLES, to_csv
from services.pager.report.models import Report
from services.web import views as common_pages

# What the page links to, as files beside it: (blueprint, file) → where it is kept.
ASSETS = {("lobby_common", "lobby.css"): "assets/lobby.css", ("lobby_common", "lobby.js"): "assets/lobby.js",
          ("lobby_common", "favicon.svg"): "assets/favicon.svg", ("report_pages", "report.css"): "assets/report.css"}


def write(folder: Path, branch: Branch, report: Report, reader: Manager, note: str | None = None) -> Path:
    """Write the report into a folder (made if missing); return the page's path. The note says on the page what
    the day is, when it is not a record of a real one."""
    folder.mkdir(parents=True, exist_ok=True)
    for table in TABLES:
        (folder / f"{table}.csv").write_text(to_csv(report, table), encoding="utf-8")
    (folder / "report.json").write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    app = Flask(__name__)
    common_pages.register(app, views.bp)
    with app.test_request_context():
        html = render_template(
            "report.html", branch=branch, title=views.title(branch, report.date), page="report",
            page_data={"branch": common_pages.branch_data(branch), "date": report.date}, simulation=note,
            **views.page_context(branch, report, reader, {t: f"{t}.csv" for t in TABLES}, json_url="report.json",
                                 standalone=True))
        for (blueprint, name), kept in ASSETS.items():
            source = Path(app.blueprints[blueprint].static_folder or "") / name
            (folder / kept).parent.mkdir(exist_ok=True)
            shutil.copyfile(source, folder / kept)
            html = html.replace(f'"{app.url_for(f"{blueprint}.static", filename=name)}"', f'"{kept}"')
    page = folder / "report.html"
    page.write_text(html, encoding="utf-8")
    return page
