"""The gas check's comparison with the snapshot, and the snapshot file itself."""

import json

import pytest
from click.testing import CliRunner

import benchmarks.__main__ as command
from benchmarks import snapshot
from benchmarks.chain import BenchmarkError
from benchmarks.scenarios import OPERATION_NAMES

SNAPSHOT = {"approve": 100_000, "donate": 50_000}


def test_unchanged_figures_pass():
    comparison = snapshot.compare(SNAPSHOT, dict(SNAPSHOT))

    assert comparison.passed
    assert comparison.failures == ()
    assert comparison.other_changes == ()
    assert (
        comparison.report() == "Gas check passed: every operation costs what the snapshot records."
    )


def test_growth_of_exactly_two_percent_passes():
    comparison = snapshot.compare(SNAPSHOT, {"approve": 102_000, "donate": 50_000})

    assert comparison.passed
    assert comparison.other_changes == (snapshot.Finding("approve", 100_000, 102_000),)


def test_growth_above_two_percent_fails():
    comparison = snapshot.compare(SNAPSHOT, {"approve": 102_001, "donate": 50_000})

    assert not comparison.passed
    assert comparison.failures == (snapshot.Finding("approve", 100_000, 102_001),)
    assert comparison.other_changes == ()


def test_failure_report_names_figures_and_fix():
    report = snapshot.compare(SNAPSHOT, {"approve": 103_500, "donate": 50_000}).report()

    assert "approve: 100,000 gas in the snapshot, 103,500 now (+3.50 %)." in report
    assert report.endswith(snapshot.FIX)
    assert "run `make gas` and commit benchmarks/gas-snapshot.json" in snapshot.FIX


def test_lower_figure_passes_and_is_listed():
    comparison = snapshot.compare(SNAPSHOT, {"approve": 90_000, "donate": 50_000})

    assert comparison.passed
    assert comparison.other_changes == (snapshot.Finding("approve", 100_000, 90_000),)
    assert "approve: 100,000 gas in the snapshot, 90,000 now (-10.00 %)." in comparison.report()


def test_missing_operation_fails():
    comparison = snapshot.compare(SNAPSHOT, {"approve": 100_000})

    assert not comparison.passed
    assert comparison.failures == (snapshot.Finding("donate", 50_000, None),)
    assert "donate: in the snapshot (50,000 gas) but no longer measured." in comparison.report()


def test_new_operation_fails():
    comparison = snapshot.compare(SNAPSHOT, {**SNAPSHOT, "withdraw": 40_000})

    assert not comparison.passed
    assert comparison.failures == (snapshot.Finding("withdraw", None, 40_000),)
    assert "withdraw: measured (40,000 gas) but not in the snapshot." in comparison.report()


def test_every_failure_is_reported():
    measured = {"approve": 110_000, "withdraw": 40_000}

    comparison = snapshot.compare(SNAPSHOT, measured)

    assert [finding.operation for finding in comparison.failures] == [
        "approve",
        "donate",
        "withdraw",
    ]


def test_snapshot_round_trip_keeps_order(tmp_path):
    path = tmp_path / "gas-snapshot.json"
    figures = {"withdraw": 40_000, "approve": 100_000}

    snapshot.save(path, figures)

    assert list(snapshot.load(path).items()) == list(figures.items())


@pytest.mark.parametrize("value", ["100000", 0, -5, 1.5, True, None])
def test_snapshot_rejects_invalid_figure(tmp_path, value):
    path = tmp_path / "gas-snapshot.json"
    path.write_text(json.dumps({"approve": value}), encoding="utf-8")

    with pytest.raises(BenchmarkError, match=r"gives approve the value .* Run `make gas`"):
        snapshot.load(path)


def test_snapshot_rejects_missing_file(tmp_path):
    with pytest.raises(BenchmarkError, match=r"was not found\. Run `make gas` to write it\."):
        snapshot.load(tmp_path / "missing.json")


def test_snapshot_rejects_invalid_json(tmp_path):
    path = tmp_path / "gas-snapshot.json"
    path.write_text("{", encoding="utf-8")

    with pytest.raises(BenchmarkError, match="is not valid JSON"):
        snapshot.load(path)


def test_committed_snapshot_lists_every_operation():
    recorded = snapshot.load(command.SNAPSHOT)

    assert tuple(recorded) == OPERATION_NAMES


def _fake_run(gas):
    def run_benchmark(port, *, with_breakdowns):
        return command.Run(gas=gas, breakdowns={}, client_version="anvil/v0")

    return run_benchmark


def test_check_command_fails_on_growth(tmp_path, monkeypatch):
    path = tmp_path / "gas-snapshot.json"
    snapshot.save(path, SNAPSHOT)
    monkeypatch.setattr(command, "run_benchmark", _fake_run({"approve": 105_000, "donate": 50_000}))

    result = CliRunner().invoke(command.cli, ["check", "--snapshot", str(path)])

    assert result.exit_code == 1
    assert "approve: 100,000 gas in the snapshot, 105,000 now (+5.00 %)." in result.output


def test_check_command_passes_unchanged(tmp_path, monkeypatch):
    path = tmp_path / "gas-snapshot.json"
    snapshot.save(path, SNAPSHOT)
    monkeypatch.setattr(command, "run_benchmark", _fake_run(dict(SNAPSHOT)))

    result = CliRunner().invoke(command.cli, ["check", "--snapshot", str(path)])

    assert result.exit_code == 0
    assert "Gas check passed" in result.output
