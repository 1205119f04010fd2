"""Nothing on the command line can raise the privacy budget: the release
CLI takes no flag but --reason, and the DPO's settings file is read from a
fixed path, strictly, and refused when others may write it. Pure Python,
no Spark."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import pytest
import yaml

from script_loader import load_script
from sflux.core.errors import UserError
from sflux.dp import config as dp_config

VALID = {
    "budget": {"period": "2026", "total_epsilon": 10.0},
    "domain": {"first_date": dt.date(2026, 11, 1), "last_date": dt.date(2026, 12, 31)},
    "release": {"epsilon": 0.5, "max_cells_per_member": 20, "max_events_per_member_cell": 10,
                "max_amount_eur_per_member_cell": 500},
}


def test_the_dpos_settings_load_from_the_repo():
    config = dp_config.load()
    assert dp_config.CONFIG_FILE == Path(__file__).resolve().parents[3] / "conf" / "differential_privacy.yml"
    assert config == dp_config.parse(VALID, "test")
    assert len(config.dates) == 61 and config.dates[0] == dt.date(2026, 11, 1)
    # Sensitivity comes from the bounds: 20 cells x 10 events, 20 cells x 500 EUR.
    assert config.count_sensitivity == 200 and config.revenue_sensitivity_cents == 20 * 500 * 100


@pytest.mark.parametrize("hostile", [
    ["--total-epsilon", "1000"],
    ["--vars", '{"dp_total_epsilon": 1000}'],
    ["--config", "/tmp/generous.yml"],
    ["--period", "2027"],
    ["--epsilon", "5"],
    ["--seed", "42"],
])
def test_no_cli_flag_can_change_the_budget(hostile, capsys):
    with pytest.raises(SystemExit) as exited:
        load_script("release_dp").main(["--reason", "attack", *hostile])
    assert exited.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_the_release_cli_has_no_option_but_reason():
    """A flag added later that touches the budget would fail here first."""
    parser = load_script("release_dp").build_parser()
    assert {action.dest for action in parser._actions} == {"help", "reason"}
    with pytest.raises(SystemExit) as exited:
        load_script("release_dp").main([])
    assert exited.value.code == 2


def test_settings_others_may_write_are_refused(tmp_path: Path):
    settings = tmp_path / "differential_privacy.yml"
    settings.write_text(yaml.safe_dump(VALID), encoding="utf-8")
    settings.chmod(0o644)
    assert dp_config.load(settings).total_epsilon == 10.0
    for mode in (0o664, 0o646):
        settings.chmod(mode)
        with pytest.raises(UserError, match="others could raise the privacy budget"):
            dp_config.load(settings)


def _with(path: tuple[str, str], value) -> dict:
    document = copy.deepcopy(VALID)
    document[path[0]][path[1]] = value
    return document


@pytest.mark.parametrize(("document", "message"), [
    (_with(("budget", "total_epsilon"), float("inf")), "finite number > 0"),
    (_with(("budget", "total_epsilon"), -1), "finite number > 0"),
    (_with(("budget", "total_epsilon"), True), "finite number > 0"),
    (_with(("release", "epsilon"), 0), "finite number > 0"),
    (_with(("release", "epsilon"), 11.0), "exceeds budget.total_epsilon"),
    (_with(("release", "max_cells_per_member"), 0), "whole number > 0"),
    (_with(("release", "max_events_per_member_cell"), 2.5), "whole number > 0"),
    (_with(("release", "max_amount_eur_per_member_cell"), 0.001), "at most 2 decimals"),
    (_with(("domain", "last_date"), dt.date(2026, 10, 31)), "must span 1 to"),
    (_with(("domain", "last_date"), dt.date(2040, 1, 1)), "must span 1 to"),
    (_with(("domain", "first_date"), "yesterday"), "must be a date"),
    (_with(("budget", "period"), "2026'; drop table raw.dp_budget_ledger"), "budget.period must be a name"),
    (_with(("budget", "bonus_epsilon"), 100), "section 'budget' needs exactly"),
    ({**VALID, "seed": 42}, "needs exactly the sections"),
])
def test_malformed_settings_are_refused_in_one_line(document, message):
    with pytest.raises(UserError, match=message) as refused:
        dp_config.parse(document, "conf/differential_privacy.yml")
    assert "\n" not in str(refused.value)
