"""The report's tables as CSV files: one per table, UTF-8 with a byte order mark so Excel reads the Chinese.

Each header cell names its column in Chinese, a space, then by its JSON field name (`类别 category`): a script
finds its column by the cell's last word. A text cell that a spreadsheet would run as a formula gets a leading
quote.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from pydantic import BaseModel

from services.pager.report.display import INFORMATION_NAMES
from services.pager.report.models import (
    CategoryRow,
    PageKindRow,
    PauseRow,
    Report,
    SupervisionRow,
    TestCallRow,
    VipWaitRow,
)
from services.records.export import csv_cell

TABLES = ("categories", "hours", "vip_waits", "pauses", "pages", "supervision", "test_calls")
# The Chinese name of every column of every table (a category's column in `hours` is named by the category;
# the count of information pages by the contract's name of their priority).
CSV_NAMES = {
    "category": "类别", "name": "名称", "name_en": "英文名称", "vip": "贵宾", "issued": "取号", "called": "已叫号",
    "served": "办结", "no_show": "过号", "waiting": "等候中", "expired": "未叫号作废",
    "wait_p50_s": "等候中位数（秒）", "wait_p90_s": "等候p90（秒）", "wait_max_s": "最长等候（秒）",
    "hour": "时", "label": "时段", "total": "合计",
    "number": "号码", "status": "状态", "issued_at": "取号时间", "called_at": "叫号时间", "window": "窗口",
    "waited_s": "等候（秒）", "over_s": "超出（秒）", "still_waiting": "仍在等候",
    "counter": "柜台", "reason": "原因", "reason_name": "原因名称", "reason_name_en": "原因英文名称", "note": "备注",
    "since": "开始", "resumed_at": "恢复", "expected_minutes": "预计（分钟）", "actual_s": "实际（秒）",
    "actual_minutes": "实际（分钟）", "over_minutes": "超出（分钟）", "overran": "超时", "running": "进行中",
    "kind": "类型", "pages": "呼叫", "information": INFORMATION_NAMES[0], "acknowledged": "已确认",
    "cleared": "系统解除", "unacknowledged": "未确认", "ack_p50_s": "确认中位数（秒）", "ack_p90_s": "确认p90（秒）",
    "ack_max_s": "最长确认（秒）", "escalated": "升级",
    "subject": "对象", "subject_name": "对象名称", "ended_at": "结束", "lasted_s": "持续（秒）",
    "acknowledged_by": "确认人", "created_at": "呼叫时间", "ack_s": "确认（秒）", "paged": "已呼叫",
}
def table_rows(report: Report, table: str) -> tuple[list[str], list[list[Any]]]:
    """Return a table of the report as its JSON field names and rows of plain values."""
    if table == "hours":
        ids = [c.category for c in report.categories]
        header = ["hour", "label", *ids, "total"]
        return header, [[h.hour, h.label, *(h.counts.get(i, 0) for i in ids), h.total] for h in report.hours]
    models: list[BaseModel] = {
        "categories": report.categories, "vip_waits": report.vip_waits, "pauses": report.pauses,
        "pages": [*report.pages, report.pages_all], "supervision": report.supervision,
        "test_calls": report.test_calls,
    }[table]  # type: ignore[assignment]
    model = {"categories": CategoryRow, "vip_waits": VipWaitRow, "pauses": PauseRow, "pages": PageKindRow,
             "supervision": SupervisionRow, "test_calls": TestCallRow}[table]
    header = list(model.model_fields)
    return header, [[getattr(m, f) for f in header] for m in models]


def to_csv(report: Report, table: str) -> str:
    """Return one table of the report as CSV text, with a byte order mark so Excel reads the Chinese."""
    header, rows = table_rows(report, table)
    names = {**CSV_NAMES, **{c.category: c.name for c in report.categories}} if table == "hours" else CSV_NAMES
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(csv_cell(f"{names[field]} {field}") for field in header)
    writer.writerows([csv_cell(v) for v in row] for row in rows)
    return out.getvalue()
