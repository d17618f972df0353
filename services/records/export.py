"""A stretch of archived days as files for auditors: pages, tickets or pauses, as CSV or JSON Lines.

Read straight from the records database, in time order. A page comes with its whole trail: in JSON Lines the
page as the pager kept it (its audit entries, replies, managers paged) and its alerts; in CSV its columns,
then its audit trail and alerts as JSON text in one cell each. CSV is UTF-8 with a byte order mark (Excel
reads the Chinese), and a text cell a spreadsheet would run as a formula gets a leading quote.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any, TextIO

from sqlalchemy import Engine, select

from services.records import tables

WHAT = ("pages", "tickets", "pauses")
FORMATS = ("csv", "jsonl")
# A spreadsheet would run a cell that starts with one of these as a formula: such text gets a leading quote.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BATCH = 2000


def csv_cell(value: Any) -> Any:
    """Write a value as a spreadsheet reads it safely: empty for None, text never taken for a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return csv_cell(" ".join(str(v) for v in value))
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def records(db: Engine, branch: str, first: str, last: str, what: str) -> Iterator[dict[str, Any]]:
    """Yield the archived pages, tickets or pauses of a branch from day `first` to day `last`, in time order."""
    if what not in WHAT:
        raise ValueError(f"what must be one of {', '.join(WHAT)}; got {what!r}")
    table = {"pages": tables.pages, "tickets": tables.tickets, "pauses": tables.pauses}[what]
    moment = {"pages": tables.pages.c.created_at, "tickets": tables.tickets.c.issued_at,
              "pauses": tables.pauses.c.since}[what]
    query = (select(table).where(table.c.branch == branch, table.c.day >= first, table.c.day <= last)
             .order_by(table.c.day, moment))
    with db.connect() as connection:
        result = connection.execution_options(yield_per=BATCH).execute(query).mappings()
        for chunk in result.partitions():
            rows = [dict(row) for row in chunk]
            if what == "pages":
                _with_alerts(connection, branch, rows)
            yield from rows


def _with_alerts(connection: Any, branch: str, rows: list[dict[str, Any]]) -> None:
    ids = [row["id"] for row in rows]
    found: dict[str, list[dict[str, Any]]] = {}
    query = select(tables.alerts.c.page_id, tables.alerts.c.alert).where(tables.alerts.c.branch == branch,
                                                                          tables.alerts.c.page_id.in_(ids))
    for page_id, alert in connection.execute(query):
        found.setdefault(page_id, []).append(alert)
    for row in rows:
        row["alerts"] = found.get(row["id"], [])


def write(rows: Iterator[dict[str, Any]], what: str, fmt: str, out: TextIO) -> int:
    """Write records as CSV or JSON Lines; return how many."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    count = 0
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
            count += 1
        return count
    table = {"pages": tables.pages, "tickets": tables.tickets, "pauses": tables.pauses}[what]
    header = [c.name for c in table.columns if c.name != "page"]
    if what == "pages":
        header += ["paged", "replies", "audit", "alerts"]
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        if what == "pages":
            page = row["page"]
            row = {**row, "paged": " ".join(page.get("paged") or []),
                   "replies": _json(page.get("replies") or []), "audit": _json(page.get("audit") or []),
                   "alerts": _json(row["alerts"])}
        writer.writerow(csv_cell(row[name]) for name in header)
        count += 1
    return count


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
