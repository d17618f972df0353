"""Configuration: the demo branch as the issue describes it, and broken files refused with a reason."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.domain.branch import DEMO_CONFIG, load_branches
from services.runtime.settings import Settings

DEMO = DEMO_CONFIG.read_text(encoding="utf-8")


def test_demo_branch_is_zhongnan():
    branch = load_branches(DEMO_CONFIG)["zhongnan"]
    assert [(c.id, c.prefix) for c in branch.categories] == [("vip", "V"), ("personal", "A"), ("corporate", "B")]
    assert [(c.id, c.window, c.serves) for c in branch.counters] == [
        ("vip", "VIP", ["vip"]), ("1", "1", ["personal"]), ("2", "2", ["personal"]), ("3", "3", ["personal"]),
        ("4", "4", ["corporate"])]
    assert branch.counter("vip").pause_redirect == "3"
    assert [m.id for m in branch.managers] == ["lobby-manager", "deputy", "branch-manager"]
    assert [r.id for r in branch.pause_reasons] == ["vault_transfer", "corporate_cash", "review", "break", "other"]
    assert (branch.escalation.urgent_s, branch.escalation.high_s, branch.escalation.normal_s) == (20, 45, 120)


def test_environment_comes_first(tmp_path):
    own = tmp_path / "branches.toml"
    own.write_text(DEMO.replace('id = "zhongnan"', 'id = "xiangjiang"'), encoding="utf-8")
    settings = Settings.from_env({"REDIS_URL": "redis://cache:6379/2", "LOBBY_CONFIG": str(own),
                                  "KIOSK_PORT": "7001"})
    assert settings.redis_url == "redis://cache:6379/2"
    assert settings.ports == {"kiosk": 7001, "counter": 5002, "pager": 5003}
    assert list(load_branches(settings.config_path)) == ["xiangjiang"]
    assert Settings.from_env({}).config_path == DEMO_CONFIG


@pytest.mark.parametrize(("change", "complaint"), [
    (('serves = ["corporate"]', 'serves = ["gold"]'), "unknown categories"),
    (('pause_redirect = "3"', 'pause_redirect = "9"'), "unknown counter"),
    (('timezone = "Asia/Shanghai"', 'timezone = "Mars/Olympus"'), "unknown time zone"),
    (('id = "deputy"', 'id = "lobby-manager"'), "duplicate manager"),
    (('prefix = "B"', 'prefix = "A"'), "duplicate ticket prefix"),
    (('id = "zhongnan"', 'id = "Zhong.Nan"'), "pattern"),
])
def test_broken_branch_files_are_refused(tmp_path, change, complaint):
    broken = tmp_path / "broken.toml"
    broken.write_text(DEMO.replace(*change), encoding="utf-8")
    with pytest.raises(ValidationError, match=complaint):
        load_branches(broken)
