"""The trends' tables as CSV files, one beside each chart, written as the daily report writes its own
(services/pager/report/csv.py): UTF-8 with a byte order mark, each header cell the column's Chinese name, a
space and its JSON field name (`星期 weekday`), and text a spreadsheet would run as a formula given a leading
quote.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from pydantic import BaseModel

from services.pager.report.csv import CSV_NAMES as REPORT_NAMES
from services.pager.report.csv import csv_cell
from services.pager.report.models import PageKindRow
from services.pager.trends.models import AckWeekRow, HeatCell, PauseReasonRow, Trends, WeekRow

TABLES = ("heatmap", "weeks", "ack_weeks", "ack_kinds", "pauses", "days")
# The Chinese name of every column the report's tables do not have already (a category's column in `days` is
# named by the category).
CSV_NAMES = {
    **REPORT_NAMES,
    "weekday": "星期（0 周一）", "tickets": "取号", "week": "周", "start": "开始", "end": "结束", "days": "天数",
    "archived_days": "已归档天数", "vip_called": "贵宾已叫号", "vip_over": "贵宾超时",
    "vip_over_share": "贵宾超时占比", "vip_not_called": "贵宾未叫号", "pages": "需确认呼叫", "pauses": "暂停次数",
    "pause_s": "暂停（秒）", "pause_overruns": "暂停超时次数", "expected_s": "预计（秒）", "overruns": "超时次数",
    "over_s": "超出（秒）", "day": "日期", "archived": "已归档",
}
# The page-kind table is the daily report's: there, `pages` counts every page of the kind.
KIND_NAMES = {**CSV_NAMES, "pages": REPORT_NAMES["pages"]}
MODELS: dict[str, type[BaseModel]] = {"heatmap": HeatCell, "weeks": WeekRow, "ack_weeks": AckWeekRow,
                                      "ack_kinds": PageKindRow, "pauses": PauseReasonRow}


def table_rows(trends: Trends, table: str) -> tuple[list[str], list[list[Any]]]:
    """Return a table of the trends as its JSON field names and rows of plain values."""
    if table == "days":
        ids = [c.category for c in trends.categories]
        header = ["day", "weekday", "archived", *ids, "total"]
        return header, [[d.day, d.weekday, d.archived, *(d.counts.get(i, 0) for i in ids), d.total]
                        for d in trends.daily]
    rows: list[BaseModel] = {
        "heatmap": trends.heatmap, "weeks": trends.weeks, "ack_weeks": trends.ack_weeks,
        "ack_kinds": [*trends.kinds, trends.kinds_all], "pauses": trends.pauses,
    }[table]  # type: ignore[assignment]
    header = list(MODELS[table].model_fields)
    return header, [[getattr(row, field) for field in header] for row in rows]


def to_csv(trends: Trends, table: str) -> str:
    """Return one table of the trends as CSV text, with a byte order mark so Excel reads the Chinese."""
    header, rows = table_rows(trends, table)
    names = KIND_NAMES if table == "ack_kinds" else CSV_NAMES
    if table == "days":
        names = {**names, **{c.category: c.name for c in trends.categories}}
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(csv_cell(f"{names[field]} {field}") for field in header)
    writer.writerows([csv_cell(v) for v in row] for row in rows)
    return out.getvalue()
