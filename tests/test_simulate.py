"""`lobby simulate`: a branch day through the real domain code on a real Redis, checked against queueing theory,
against the rules the branch's routing promises, and as a command a branch manager runs."""

from __future__ import annotations

import heapq
import math
import random
import statistics
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from services.domain.branch import DEMO_CONFIG, Branch, load_branches
from services.ops import cli
from services.ops.redis_server import RedisServer
from services.pager.report import figures
from services.pager.report.display import duration_text
from services.simulate import day, draws, outcome
from services.simulate.scenario import Scenario, ScenarioError, load, with_policy

ROOT = Path(__file__).resolve().parent.parent
VIP_PAUSE = ROOT / "scenarios" / "vip-pause.toml"
COUNTERS = 3


@pytest.fixture(scope="module")
def sim_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redis.Redis]:
    """A Redis of the simulations' own, on a Unix socket as `lobby simulate` runs it."""
    folder = tmp_path_factory.mktemp("sim")
    socket = folder / "redis.sock"
    server = RedisServer(folder, appendonly=False, extra_args=("--unixsocket", str(socket))).start()
    client = redis.Redis(unix_socket_path=str(socket), decode_responses=True)
    yield client
    client.close()
    server.stop()


@pytest.fixture
def sim(sim_redis: redis.Redis) -> redis.Redis:
    sim_redis.flushdb()
    return sim_redis


def mmc_branch(counters: int = COUNTERS) -> Branch:
    """One line, `counters` identical counters, a service time of a second: the textbook M/M/c queue."""
    return Branch.model_validate({
        "id": "mmc", "name": "M/M/c", "name_en": "M/M/c", "wait_limit_minutes": 0, "wait_alert_minutes": 0,
        "categories": [{"id": "all", "prefix": "A", "name": "全部", "name_en": "All", "service_minutes": 1 / 60,
                        "long_service_minutes": 24 * 60}],
        "counters": [{"id": str(i), "window": str(i), "serves": ["all"]} for i in range(1, counters + 1)],
        "managers": [{"id": "m", "name": "经理", "name_en": "Manager"}],
        "pause_reasons": [{"id": "other", "name": "其他", "name_en": "Other"}],
    })


def mmc_scenario(load_: float, customers: int, seed: int = 1) -> Scenario:
    per_hour = load_ * COUNTERS * 3600  # a service takes a second on average
    seconds = 9 * 3600 + customers / per_hour * 3600
    closes = f"{int(seconds // 3600):02d}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    return Scenario.model_validate({"opens": "09:00", "closes": closes, "seed": seed,
                                    "arrivals": {"all": {"per_hour": per_hour}},
                                    "service": {"all": {"distribution": "exponential"}}})


def textbook_waits(customers: list[draws.Customer], counters: int) -> list[int]:
    """The waits (ms) of a first-come-first-served queue with identical servers: each customer, in order of arrival,
    starts at the earliest moment a server is free (the Kiefer–Wolfowitz recursion)."""
    free = [0] * counters
    waits = []
    for customer in customers:
        soonest = heapq.heappop(free)
        start = max(customer.at_ms, soonest)
        waits.append(start - customer.at_ms)
        heapq.heappush(free, start + customer.service_ms)
    return waits


def erlang_c_wait_s(counters: int, arrivals_per_s: float, service_per_s: float) -> float:
    """The mean wait in an M/M/c queue (Erlang C)."""
    a = arrivals_per_s / service_per_s
    rho = a / counters
    below = sum(a ** k / math.factorial(k) for k in range(counters))
    top = a ** counters / math.factorial(counters) / (1 - rho)
    return top / (below + top) / (counters * service_per_s - arrivals_per_s)


@pytest.mark.parametrize("load_", [0.5, 0.8, 0.9])
def test_a_simulated_day_is_the_textbook_queue_to_the_millisecond(sim, load_):
    """The simulation, run through the issue and call scripts, gives every customer the wait the textbook queue
    gives them on the same arrivals and service times: so its statistics are that queue's."""
    branch, scenario = mmc_branch(), mmc_scenario(load_, 3000)
    happened = day.run(sim, branch, scenario)
    start = day.Simulation(sim, branch, scenario).start_ms
    came = draws.customers(scenario, branch, start)
    assert len(happened.tickets) == len(came) > 2500
    # Numbers are issued in order of arrival: A001 is the first customer, A1000 the thousandth.
    simulated = [happened.tickets[f"A{n:03d}"] for n in range(1, len(came) + 1)]
    assert [t.issued_ms for t in simulated] == [c.at_ms for c in came]
    assert [t.called_ms - t.issued_ms for t in simulated] == textbook_waits(came, COUNTERS)
    assert sum(1 for t in simulated if t.called_ms > t.issued_ms) > len(came) * (0.1 if load_ == 0.5 else 0.4)


@pytest.mark.parametrize("load_", [0.5, 0.8, 0.9])
def test_the_textbook_queue_waits_as_erlang_c_says(load_):
    """The queue the simulation reproduces, drawn as the simulation draws its customers, waits on average what
    Erlang C says, within 10%, over 400,000 customers: near saturation the mean of fewer varies too much (over
    20,000 customers at a load of 0.9 its spread from seed to seed is about 16%)."""
    rng = random.Random(f"erlang:{load_}")
    per_s = load_ * COUNTERS
    t = 0.0
    came = []
    for _ in range(400_000):
        t += rng.expovariate(per_s)
        came.append(draws.Customer(at_ms=round(t * 1000), category="all",
                                   service_ms=max(1, round(rng.expovariate(1.0) * 1000)), absent=False))
    mean_s = statistics.fmean(textbook_waits(came, COUNTERS)) / 1000
    assert mean_s == pytest.approx(erlang_c_wait_s(COUNTERS, per_s, 1.0), rel=0.10)


def demo_day(sim: redis.Redis, seed: int = 7) -> day.Day:
    scenario = load(VIP_PAUSE).model_copy(update={"seed": seed})
    return day.run(sim, scenario.load_branch(), scenario)


def test_within_a_line_nobody_is_called_before_someone_who_came_earlier(sim):
    happened = demo_day(sim)
    assert happened.pauses, "the scenario pauses the VIP counter"
    for category in happened.branch.categories:
        line = [t for t in happened.tickets.values() if t.category == category.id]
        by_call = sorted((t for t in line if t.called_ms is not None), key=lambda t: (t.called_ms, t.number))
        assert [t.number for t in by_call] == sorted(t.number for t in by_call), category.id
        assert [t.issued_ms for t in by_call] == sorted(t.issued_ms for t in by_call)


def test_no_counter_stands_idle_while_a_customer_it_may_call_waits(sim):
    happened = demo_day(sim)
    branch = happened.branch
    redirected: dict[str, list[tuple[str, int, int]]] = {}  # counter → (category, from, to) it calls first
    for counter_id, since, until in happened.pauses:
        paused = branch.counter(counter_id)
        assert paused is not None and paused.pause_redirect
        redirected.setdefault(paused.pause_redirect, []).extend((c, since, until) for c in paused.serves)
    assert redirected == {"3": [("vip", happened.pauses[0][1], happened.pauses[0][2])]}
    idle_spells = 0
    for counter in branch.counters:
        for idle_from, idle_to in happened.idle[counter.id]:
            idle_spells += 1
            for t in happened.tickets.values():
                may_call = t.category in counter.serves or any(
                    c == t.category and since < idle_to and idle_from < until
                    for c, since, until in redirected.get(counter.id, []))
                waited_to = t.called_ms if t.called_ms is not None else happened.end_ms
                overlap = min(idle_to, waited_to) - max(idle_from, t.issued_ms)
                assert not (may_call and overlap > 0), (counter.id, idle_from, idle_to, t)
    assert idle_spells > 20  # the rule was put to the test


def test_the_redirect_takes_waiting_vip_customers_to_window_3_during_the_pause(sim):
    happened = demo_day(sim)
    (_, since, until), = happened.pauses
    at_three = [t for t in happened.tickets.values() if t.category == "vip" and t.counter == "3"]
    assert at_three and all(since <= t.called_ms <= until for t in at_three)
    assert all(t.counter == "vip" for t in happened.tickets.values()
               if t.category == "vip" and t.called_ms is not None and not since <= t.called_ms <= until)


def test_a_pause_and_its_overrun_page_the_manager_and_the_resume_clears_them(sim):
    happened = demo_day(sim)
    scenario = load(VIP_PAUSE)
    report = figures.build(sim, happened.branch, happened.day, day.SimClock(happened.end_ms))
    report_pages = {row.kind: row for row in report.pages}
    assert report_pages["pause"].pages == 1 and report_pages["pause_overrun"].pages == 1
    assert report_pages["resume"].pages == 1 and report_pages["resume"].information == 1
    assert scenario.pauses[0].actual_minutes > scenario.pauses[0].expected_minutes


def test_the_same_seed_gives_the_same_report_byte_for_byte_and_another_seed_another(tmp_path, capsys):
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        scenario = tmp_path / f"{name}.toml"
        scenario.write_text(VIP_PAUSE.read_text(encoding="utf-8").replace("seed = 7", f"seed = {seed}"),
                            encoding="utf-8")
        assert cli.main(["simulate", str(scenario), "--out", str(tmp_path / name)]) == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert {"report.html", "report.json", "categories.csv", "hours.csv", "pages.csv"} <= {f.name for f in files}
    for name in files:
        first, again = (tmp_path / "a" / name).read_bytes(), (tmp_path / "b" / name).read_bytes()
        # The page names its scenario file, a.toml or b.toml: the rest is the same to the byte.
        assert first.replace(b"a.toml", b"b.toml") == again, name
    assert (tmp_path / "a" / "report.json").read_bytes() != (tmp_path / "c" / "report.json").read_bytes()
    capsys.readouterr()


def test_compare_runs_the_same_day_under_another_policy_side_by_side(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["simulate", str(VIP_PAUSE), "--compare", "pause_redirect=none", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "base against pause_redirect=none" in printed
    assert "贵宾 vip: longest wait in a pause" in printed
    assert (out / "base" / "report.html").is_file() and (out / "compare" / "report.html").is_file()
    svg = (out / "comparison.svg").read_text(encoding="utf-8")
    assert svg.startswith("<svg") and "pause_redirect=none" in svg and "<desc" in svg
    page = (out / "base" / "report.html").read_text(encoding="utf-8")
    assert "模拟营业日" in page and 'href="assets/report.css"' in page and 'report.js"' not in page
    assert (out / "base" / "assets" / "report.css").is_file()


def test_with_the_redirect_vip_customers_wait_less_in_the_pause_and_without_it_more(sim):
    base = demo_day(sim)
    sim.flushdb()
    scenario = load(VIP_PAUSE)
    without = day.run(sim, with_policy(scenario.load_branch(), "pause_redirect=none"), scenario)
    a, b = outcome.outcome([base], 0, 0), outcome.outcome([without], 0, 0)
    assert a.during_pause["vip"].count == b.during_pause["vip"].count > 0
    assert a.during_pause["vip"].max_s < b.during_pause["vip"].max_s
    assert not any(t.counter == "3" for t in without.tickets.values() if t.category == "vip")


@pytest.mark.parametrize(("argv", "says"), [
    (["--compare", "nonsense=1"], "the branch has no such setting"),
    (["--compare", "counters.9.weights.vip=2"], "no counter '9'"),
    (["--compare", "counters.3.weights.vip=0"], "counters.3.weights.vip: Input should be greater than or equal to 1"),
    (["--compare", "wait_limit_minutes=-5"], "wait_limit_minutes"),
    (["--compare", "wait_limit_minutes"], "a policy is key=value"),
])
def test_a_policy_that_does_not_fit_is_refused_and_nothing_is_written(tmp_path, capsys, argv, says):
    out = tmp_path / "out"
    assert cli.main(["simulate", str(VIP_PAUSE), *argv, "--out", str(out)]) == 2
    assert says in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(("text", "says"), [
    ('[arrivals.gold]\nper_hour = 3\n', "arrivals of unknown category 'gold'"),
    ('opens = "12:00"\ncloses = "09:00"\n[arrivals.vip]\nper_hour = 3\n', "closes must be after opens"),
    ('[arrivals.vip]\nper_hour = -1\n', "per_hour.0: Input should be greater than or equal to 0"),
    ('[arrivals.vip]\nper_hour = 3\n[[pauses]]\ncounter = "vip"\nat = "10:00"\nreason = "nap"\n'
     'expected_minutes = 5\nactual_minutes = 5\n', "unknown reason 'nap'"),
    ('[arrivals.vip]\ncsv = "missing.csv"\n', "cannot read"),
    ('[arrivals.vip\n', "not valid TOML"),
])
def test_a_scenario_that_does_not_fit_says_why(tmp_path, capsys, text, says):
    scenario = tmp_path / "bad.toml"
    scenario.write_text(text, encoding="utf-8")
    assert cli.main(["simulate", str(scenario), "--out", str(tmp_path / "out")]) == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_arrivals_can_follow_a_past_days_report(tmp_path):
    """A report's hours CSV (as the pager serves it: a byte order mark, `名称 field` headers) gives each hour's
    rate."""
    (tmp_path / "hours.csv").write_text(
        "\ufeff时 hour,时段 label,贵宾 vip,个人业务 personal,对公业务 corporate,合计 total\r\n"
        "9,09:00–10:00,0,30,2,32\r\n10,10:00–11:00,12,0,0,12\r\n", encoding="utf-8")
    scenario = Scenario.model_validate({
        "base": tmp_path, "opens": "09:00", "closes": "11:00",
        "arrivals": {c: {"csv": "hours.csv"} for c in ("vip", "personal", "corporate")}})
    branch = load_branches(DEMO_CONFIG)["zhongnan"]
    came = draws.customers(scenario, branch, 0)
    hour = 3_600_000
    assert {c.category for c in came if c.at_ms < hour} <= {"personal", "corporate"}
    assert {c.category for c in came if c.at_ms >= hour} == {"vip"}
    assert 15 < sum(c.category == "personal" for c in came) < 50


def test_a_scenario_names_a_branch_of_a_branch_file_of_its_own(tmp_path):
    (tmp_path / "branch.toml").write_text(DEMO_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "s.toml").write_text('branch = "zhongnan"\nbranch_file = "branch.toml"\n[arrivals.vip]\nper_hour = 1\n',
                                     encoding="utf-8")
    assert load(tmp_path / "s.toml").load_branch().id == "zhongnan"
    (tmp_path / "s.toml").write_text('branch = "nowhere"\nbranch_file = "branch.toml"\n[arrivals.vip]\nper_hour = 1\n',
                                     encoding="utf-8")
    with pytest.raises(ScenarioError, match="no branch 'nowhere'"):
        load(tmp_path / "s.toml").load_branch()


def test_policies_change_the_branch_as_they_say():
    branch = load_branches(DEMO_CONFIG)["zhongnan"]
    assert all(c.pause_redirect is None for c in with_policy(branch, "pause_redirect=none").counters)
    assert with_policy(branch, "wait_limit_minutes=20").wait_limit_minutes == 20
    blended = with_policy(branch, "counters.3.weights.vip=2")  # a weight for a category it did not serve
    assert blended.counter("3").serves == ["personal", "vip"]  # type: ignore[union-attr]
    assert blended.counter("3").weights == {"vip": 2}  # type: ignore[union-attr]
    assert with_policy(branch, "categories.vip.service_minutes=5").category("vip").service_minutes == 5  # type: ignore[union-attr]
    assert branch.wait_limit_minutes == 30, "the branch itself is left as it was"


def test_readme_shows_what_the_vip_pause_scenario_gives_on_seed_7(sim):
    """README's table of rule 1's effect: its seed-7 figures are what the simulator gives."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    scenario = load(VIP_PAUSE)
    branch = scenario.load_branch()
    figures_ = []
    for policy in ("pause_redirect=none", None, 'counters.3.serves=["personal","vip"]'):
        sim.flushdb()
        summed = outcome.outcome([day.run(sim, with_policy(branch, policy) if policy else branch, scenario)], 0, 0)
        figures_.append(summed)
    longest = " | ".join(duration_text(o.during_pause["vip"].max_s) for o in figures_)
    personal = " | ".join(duration_text(o.waits["personal"].p90_s) for o in figures_)
    assert f"| VIP customers waiting during the pause: longest wait, seed 7 | {longest} |" in readme
    assert f"| personal customers: p90 wait, seed 7 | {personal} |" in readme


HOURS = 'opens = "09:00"\ncloses = "11:00"\n'


@pytest.mark.parametrize(("text", "files", "says"), [
    (HOURS + '[arrivals.vip]\nper_hour = nan\n', {}, "finite number"),
    (HOURS + '[arrivals.vip]\nper_hour = inf\n', {}, "finite number"),
    (HOURS + '[arrivals.vip]\nper_hour = 1e9\n', {}, "less than or equal to 36000"),
    (HOURS + '[arrivals.vip]\nper_hour = []\n', {}, "at least 1 item"),
    (HOURS + '[arrivals.vip]\nper_hour = [1, 2, 3]\n', {}, "3 hourly rates for a day of 2 hours"),
    (HOURS + '[arrivals.vip]\nper_hour = 1\n[[pauses]]\ncounter = "vip"\nat = "08:00"\nreason = "review"\n'
     'expected_minutes = 5\nactual_minutes = 5\n', {}, "outside 09:00–11:00"),
    (HOURS + '[arrivals.vip]\ncsv = "a.csv"\n', {"a.csv": "time,category\n09:05+08:00,vip\n"}, "a.csv, line 2"),
    (HOURS + '[arrivals.vip]\ncsv = "a.csv"\n', {"a.csv": "time,category\n13:00,vip\n"}, "outside 09:00–11:00"),
    (HOURS + '[arrivals.vip]\ncsv = "a.csv"\n', {"a.csv": b"time\n\xff\xfe09:00\n"}, "not a UTF-8 CSV"),
    (HOURS + '[arrivals.vip]\ncsv = "h.csv"\n', {"h.csv": "hour,vip\n9,-20\n"}, "h.csv, line 2"),
    (HOURS + '[arrivals.vip]\nper_hour = 3\n[service.vip]\ndistribution = "samples"\nsamples_csv = "s.csv"\n',
     {"s.csv": "service_s\n60\ninf\n"}, "s.csv, line 3"),
    (HOURS + '[arrivals.vip]\nper_hour = 3\n[service.vip]\ndistribution = "samples"\nsamples_csv = "s.csv"\n',
     {"s.csv": "seconds\n60\n"}, "no `service_s` column"),
    ('branch_file = "bad.toml"\n' + HOURS + '[arrivals.vip]\nper_hour = 3\n', {"bad.toml": "x = 1\n"},
     "is not a branch file"),
])
def test_input_that_cannot_be_a_day_is_refused_with_where_and_why(tmp_path, capsys, text, files, says):
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    (tmp_path / "s.toml").write_text(text, encoding="utf-8")
    assert cli.main(["simulate", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_an_out_folder_that_cannot_be_written_is_refused_before_the_day_runs(tmp_path, capsys):
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    for out in (tmp_path / "a-file", tmp_path / "a-file" / "below"):
        assert cli.main(["simulate", str(VIP_PAUSE), "--out", str(out)]) == 2
        assert f"cannot write the reports into {out}" in capsys.readouterr().err


def test_a_policy_naming_a_counter_by_number_means_that_counter(tmp_path):
    branch = load_branches(DEMO_CONFIG)["zhongnan"]
    assert with_policy(branch, "counters.vip.pause_redirect=2").counter("vip").pause_redirect == "2"  # type: ignore[union-attr]
    with pytest.raises(ScenarioError, match=r"counters\.vip\.pause_redirect=vip: .*redirects to itself"):
        with_policy(branch, "counters.vip.pause_redirect=vip")


def test_a_simulation_stopped_midway_leaves_no_server_nor_folder_behind(tmp_path):
    """SIGTERM or Ctrl-C in the middle of a long run: a one-line answer, its Redis stopped, its folder gone."""
    import glob
    import os
    import signal
    import subprocess
    import sys
    import time

    for signum in (signal.SIGTERM, signal.SIGINT):
        before = set(glob.glob("/tmp/lobby-simulate-*"))
        run = subprocess.Popen([sys.executable, "-m", "services.ops.cli", "simulate", str(ROOT / "scenarios" /
                                "busy-day.toml"), "--days", "200", "--out", str(tmp_path / "out")],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not set(glob.glob("/tmp/lobby-simulate-*/redis.sock")) - {f"{b}/redis.sock" for b in before}:
            assert time.monotonic() < deadline and run.poll() is None, run.communicate()
            time.sleep(0.1)
        time.sleep(2)  # well into the first day
        children = subprocess.run(["pgrep", "-P", str(run.pid)], capture_output=True, text=True).stdout.split()
        assert children, "its Redis runs as its child"
        run.send_signal(signum)
        _, err = run.communicate(timeout=30)
        assert run.returncode == 130, err
        assert err.strip().endswith("lobby simulate: interrupted; nothing more was written") and "Traceback" not in err
        assert set(glob.glob("/tmp/lobby-simulate-*")) == before
        for child in children:
            assert not os.path.exists(f"/proc/{child}"), f"its Redis {child} is still running"


def test_a_reused_out_folder_holds_this_runs_files_only_and_keeps_what_is_not_ours(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["simulate", str(VIP_PAUSE), "--compare", "pause_redirect=none", "--out", str(out)]) == 0
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    assert cli.main(["simulate", str(VIP_PAUSE), "--out", str(out)]) == 0
    assert not (out / "base").exists() and not (out / "compare").exists() and not (out / "comparison.svg").exists()
    assert (out / "report.html").is_file() and (out / "notes.txt").read_text(encoding="utf-8") == "mine"
    capsys.readouterr()


def test_a_planned_pause_that_cannot_happen_is_said(tmp_path, capsys):
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        'opens = "09:00"\ncloses = "11:00"\n[arrivals.vip]\nper_hour = 6\n'
        '[[counters_open]]\nfrom = "09:00"\ncounters = ["1", "2", "3", "4"]\n'
        '[[pauses]]\ncounter = "vip"\nat = "10:00"\nreason = "review"\nexpected_minutes = 5\nactual_minutes = 5\n',
        encoding="utf-8")
    assert cli.main(["simulate", str(scenario), "--out", str(tmp_path / "out")]) == 0
    assert "the pause of counter vip at 10:00 did not happen: the counter was closed" in capsys.readouterr().out
