"""How the report's page and charts write its numbers: durations as m:ss, times of day as the branch's wall
clock, a pause's overrun in words, a ticket's status and the day in both languages. Page kinds and priorities
are named as the contracts name them (`services.domain.contracts`), never here.

JSON and CSV keep plain seconds and ISO times; only what people read is written here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from services.domain.branch import Branch
from services.domain.clock import parse_iso
from services.domain.contracts import INFORMATION, KIND_NAMES, PRIORITY_NAMES, PageKind
from services.pager.report.models import PauseRow

STATUS_NAMES = {
    "served": ("已办结", "Served"), "called": ("办理中", "Being served"), "no_show": ("过号", "No-show"),
    "waiting": ("等候中", "Waiting"), "expired": ("未叫号", "Never called"),
}
WEEKDAYS = "一二三四五六日"
# A page that needs no acknowledgement is named by its priority, in Chinese and in English.
INFORMATION_NAMES = PRIORITY_NAMES[INFORMATION]
# The kind of page the note under the pages table gives as an example of information: a counter resumed.
RESUMED_NAMES = KIND_NAMES[PageKind.RESUME]


def duration_text(seconds: float | None) -> str:
    """Write seconds as m:ss (h:mm:ss from an hour; "-" before a negative), to the second; "—" for none."""
    if seconds is None:
        return "—"
    total = math.floor(abs(seconds) + 0.5)
    sign = "-" if seconds < 0 and total else ""
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return sign + (f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}")


def wall_clock(branch: Branch, iso: str | None) -> str:
    """Write an ISO time as the branch's wall clock, HH:MM:SS; "—" for none."""
    if not iso:
        return "—"
    return parse_iso(iso).astimezone(branch.zone).strftime("%H:%M:%S")


def day_names(day: date) -> tuple[str, str]:
    """Write a day in Chinese and in English, with its weekday."""
    return f"{day.year}年{day.month}月{day.day}日 星期{WEEKDAYS[day.weekday()]}", day.strftime("%a %d %b %Y")


@dataclass(frozen=True)
class Overrun:
    """A pause's overrun as the page writes it: the figure or words, their English, and a class for colour."""

    text: str
    en: str
    cls: str


def overrun(pause: PauseRow) -> Overrun:
    """Write by how much a pause overran, in m:ss: "+5:00"; an early end, or the time a running pause has
    left, in words ("提前 0:48 · early"), never as a negative number."""
    if pause.over_s > 0:
        return Overrun(f"+{duration_text(pause.over_s)}", "", "over")
    if pause.over_s == 0:
        return Overrun(duration_text(0), "", "")
    if pause.running:
        return Overrun(f"尚余 {duration_text(-pause.over_s)}", "· left", "left")
    return Overrun(f"提前 {duration_text(-pause.over_s)}", "· early", "early")
