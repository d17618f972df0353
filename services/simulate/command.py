"""`lobby simulate SCENARIO [--compare KEY=VALUE ...]`: run a scenario's day, write its daily report, print what
it came to; with --compare, run the same seeded day again under another policy and print the two side by side.

The `lobby` command (services/ops/cli.py) starts the private Redis and hands its address here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.domain.branch import Branch, Manager
from services.pager.report import figures, standalone
from services.pager.report.csv import TABLES
from services.pager.report.display import duration_text
from services.pager.report.models import Report
from services.simulate import chart, day, draws, outcome
from services.simulate.scenario import POLICY_HELP, Scenario, ScenarioError, load, with_policy

READER = Manager(id="simulation", name="模拟", name_en="Simulation")


@dataclass(frozen=True)
class Run:
    """One policy's day: its name, the branch it ran on, what happened, its report and what it came to."""

    label: str
    branch: Branch
    day: day.Day
    report: Report
    outcome: outcome.Outcome
    seconds: float


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", type=Path, help="a scenario file (see scenarios/vip-pause.toml)")
    parser.add_argument("--compare", action="append", default=[], metavar="KEY=VALUE",
                        help="run the same day again with this policy (several apply together)\n" + POLICY_HELP)
    parser.add_argument("--days", type=_days, default=1, metavar="N",
                        help="run N days, seeds seed…seed+N−1, and pool their figures (reports: the first day's)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where the reports go (default ./var/simulate/<scenario name>)")


def _unwritable(folder: Path) -> str | None:
    """Say why the reports could not be written into a folder (made if missing), or None when they can."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        return "it is a file"
    except OSError as exc:
        return exc.strerror or str(exc)
    if not os.access(folder, os.W_OK | os.X_OK):
        return "it is not writable"
    return None


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        days = 0
    if not 1 <= days <= 1000:
        raise argparse.ArgumentTypeError(f"days is a whole number from 1 to 1000, not {text!r}")
    return days


def main(args: argparse.Namespace, redis_url: str) -> int:
    """Run the command against an empty Redis of its own at redis_url."""
    console = Console(stderr=False, highlight=False)
    try:
        scenario = load(args.scenario)
        base = scenario.load_branch()
        variant = base
        for policy in args.compare:
            variant = with_policy(variant, policy)
        draws.customers(scenario, base, 0)  # reads the files it names: a bad one is refused before anything runs
    except ScenarioError as exc:
        print(f"lobby simulate: {exc}", file=sys.stderr)
        return 2
    out = (args.out or Path("var") / "simulate" / args.scenario.stem).resolve()
    problem = _unwritable(out)
    if problem:
        print(f"lobby simulate: cannot write the reports into {out}: {problem}", file=sys.stderr)
        return 2
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    policies = [("base", base)] + ([(" ".join(args.compare), variant)] if args.compare else [])
    try:
        runs = [simulate(r, branch, scenario, label, args.days) for label, branch in policies]
    except ScenarioError as exc:  # a file it names (arrivals, service times) is read as the day is drawn
        print(f"lobby simulate: {exc}", file=sys.stderr)
        return 2
    # Written once every day has run: an interrupted run leaves the folder as it was.
    folders = [out / "base", out / "compare"] if len(runs) == 2 else [out]
    _clear(out)
    for run, folder in zip(runs, folders, strict=True):
        note = f"{args.scenario.name}, seed {scenario.seed}" + ("" if run.label == "base" else f", {run.label}")
        standalone.write(folder, run.branch, run.report, READER, note)
    if len(runs) == 2:
        (out / "comparison.svg").write_text(chart.compare(runs[0].day, runs[1].day, runs[0].label, runs[1].label),
                                            encoding="utf-8")
    for run in runs:
        console.print(summary(scenario, run))
        for said in run.day.skipped:
            console.print(f"note ({run.label}): {said}", soft_wrap=True, markup=False)
    if len(runs) == 2:
        console.print(comparison(runs[0], runs[1]))
    for run, folder in zip(runs, folders, strict=True):
        console.print(f"{run.label}: {folder / 'report.html'}", soft_wrap=True, markup=False)
    if len(runs) == 2:
        console.print(f"chart: {out / 'comparison.svg'}", soft_wrap=True, markup=False)
    return 0


def _clear(out: Path) -> None:
    """Remove what an earlier run of this command wrote into the folder (and nothing else), so that no file of
    another scenario or policy is left beside this run's."""
    for name in ("base", "compare", "assets"):
        if (out / name).is_dir() and not (out / name).is_symlink():
            shutil.rmtree(out / name)
    for name in ("comparison.svg", "report.html", "report.json", *(f"{t}.csv" for t in TABLES)):
        (out / name).unlink(missing_ok=True)


def simulate(r: redis.Redis, branch: Branch, scenario: Scenario, label: str, days: int = 1) -> Run:
    """Run one policy's day (or days, seed after seed) on an emptied Redis; keep the first day's report."""
    started = time.perf_counter()
    happened: list[day.Day] = []
    served = no_show = 0
    first: Report | None = None
    with Progress(TextColumn(f"{label:>12.12}"), BarColumn(), MofNCompleteColumn(), TextColumn("customers"),
                  TimeElapsedColumn(), transient=True, disable=not sys.stderr.isatty(),
                  console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=None)
        for n in range(days):
            seeded = scenario.model_copy(update={"seed": scenario.seed + n})
            r.flushdb()
            simulation = day.Simulation(r, branch, seeded)
            before = sum(len(d.tickets) for d in happened)

            def progress(done: int, total: int, before: int = before, left: int = len(simulation.customers) * (days - n)
                         ) -> None:
                if done % 20 == 0 or done == total:
                    bar.update(task, completed=before + done, total=before + left)

            happened.append(simulation.run(progress))
            report = figures.build(r, branch, happened[-1].day, simulation.clock)
            served, no_show = served + report.summary.served, no_show + report.summary.no_show
            first = first or report
    assert first is not None
    seconds = time.perf_counter() - started
    return Run(label, branch, happened[0], first, outcome.outcome(happened, served, no_show), seconds)


def _m(seconds: float | None) -> str:
    return "—" if seconds is None else duration_text(seconds)


def summary(scenario: Scenario, run: Run) -> Table:
    """Tabulate a run: per category, customers and waits, all day and around pauses; the day's totals below."""
    o, e = run.outcome, run.outcome.estimates
    seeds = f"seed {scenario.seed}" if o.days == 1 else \
        f"{o.days} days, seeds {scenario.seed}–{scenario.seed + o.days - 1}"
    table = Table(title=f"{run.branch.name} · {scenario.date} {scenario.opens}–{scenario.closes} · {seeds} · "
                        f"{run.label}", title_justify="left",
                  caption=f"served {o.served} · no-show {o.no_show} · not called {o.not_called} · pages {o.pages}\n"
                          f"estimate error {_m(e.error_s)}, best knowable {_m(e.best_error_s)}"
                          + (f" ({e.ratio:.2f}×)" if e.ratio else "") + f" · ran in {run.seconds:.1f} s",
                  caption_justify="left")
    for column in ("category", "customers", "mean wait", "p90", "longest", "in a pause: p90", "longest"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for c in run.branch.categories:
        w, p = o.waits[c.id], o.during_pause[c.id]
        table.add_row(f"{c.name} {c.id}", str(w.count), _m(w.mean_s), _m(w.p90_s), _m(w.max_s),
                      _m(p.p90_s), _m(p.max_s))
    return table


def comparison(base: Run, other: Run) -> Table:
    """Set the two policies' figures side by side, the customers of the paused counters first."""
    days = f" ({base.outcome.days} days pooled)" if base.outcome.days > 1 else ""
    table = Table(title=f"base against {other.label}{days}", title_justify="left")
    for column, justify in (("", "left"), ("base", "right"), (other.label, "right"), ("change", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]

    def row(name: str, a: float | None, b: float | None, *, end: bool = False) -> None:
        change = "—" if a is None or b is None else ("+" if b >= a else "−") + duration_text(abs(b - a))
        table.add_row(name, _m(a), _m(b), change, end_section=end)

    paused = outcome.pause_customers(base.day)
    for c in base.branch.categories:
        a, b = base.outcome.during_pause[c.id], other.outcome.during_pause[c.id]
        if c.id in paused or a.count:
            if base.outcome.days > 1:
                row(f"{c.name} {c.id}: longest wait in a pause (mean of each day's)",
                    base.outcome.pause_longest[c.id], other.outcome.pause_longest[c.id])
            else:
                row(f"{c.name} {c.id}: longest wait in a pause", a.max_s, b.max_s)
            row(f"{c.name} {c.id}: p90 wait in a pause", a.p90_s, b.p90_s, end=True)
    for c in base.branch.categories:
        a, b = base.outcome.waits[c.id], other.outcome.waits[c.id]
        row(f"{c.name} {c.id}: p90 wait", a.p90_s, b.p90_s)
        row(f"{c.name} {c.id}: longest wait", a.max_s, b.max_s, end=True)
    table.add_row("pages", str(base.outcome.pages), str(other.outcome.pages), "")
    return table
