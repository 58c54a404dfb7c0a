"""The static-analysis gate of `make slither`: toolchain/build_info.py compiles the contracts
into a Hardhat build-info file, and toolchain/slither_gate.py runs slither on it and sets the
exit code. These tests check that the gate fails on what it must fail on, and that it never
passes because it analysed nothing.

The gate runs with the Python of .venv-slither, which `make slither` creates; the tests that
run slither itself skip without it. Judging a saved report needs no slither, so those tests
run the gate with this Python.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from ape import compilers

ROOT = Path(__file__).resolve().parents[2]
SLITHER_PYTHON = ROOT / ".venv-slither" / "bin" / "python"
GATE = ROOT / "toolchain" / "slither_gate.py"
BUILD_INFO = ROOT / "toolchain" / "build_info.py"
FIXTURES = "tests/toolchain/fixtures"

needs_slither = pytest.mark.skipif(
    not SLITHER_PYTHON.exists(), reason="needs .venv-slither, which `make slither` creates"
)


def run(python, script, *arguments):
    return subprocess.run(
        [str(python), str(script), *map(str, arguments)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def finding(impact, check="reentrancy-no-eth"):
    """A result in the shape of slither's JSON output, with the fields the gate reads."""
    return {
        "check": check,
        "impact": impact,
        "confidence": "Medium",
        "description": f"{check} in Escrow.pay() (contracts/Escrow.sol#10-20)\n",
        "elements": [],
    }


def write_report(path, findings, stale_comments=(), contracts=("MilestoneEscrow",)):
    path.write_text(
        json.dumps(
            {
                "contracts": list(contracts),
                "included_files": ["contracts/MilestoneEscrow.sol"],
                "findings": list(findings),
                "stale_comments": list(stale_comments),
            }
        )
    )
    return path


def judge_report(path):
    return run(sys.executable, GATE, "--from-report", path)


# Judging a report.


@pytest.mark.parametrize("impact", ["High", "Medium"])
def test_gate_fails_on_blocking_finding(tmp_path, impact):
    report = write_report(tmp_path / "report.json", [finding("Low", "timestamp"), finding(impact)])

    result = judge_report(report)

    assert result.returncode == 1
    assert f"[{impact}/Medium] reentrancy-no-eth" in result.stdout
    assert "FAILED: 1 High or Medium finding(s)" in result.stdout


@pytest.mark.parametrize("impact", ["Low", "Informational", "Optimization"])
def test_gate_passes_with_minor_findings(tmp_path, impact):
    report = write_report(tmp_path / "report.json", [finding(impact)])

    result = judge_report(report)

    assert result.returncode == 0
    assert f"[{impact}/Medium] reentrancy-no-eth" in result.stdout
    assert "FAILED" not in result.stdout


def test_gate_passes_without_findings(tmp_path):
    result = judge_report(write_report(tmp_path / "report.json", []))

    assert result.returncode == 0
    assert "1 contracts analysed, findings counted in 1 files: 0 finding(s)" in result.stdout


def test_gate_fails_on_stale_comment(tmp_path):
    stale = {"file": "contracts/MilestoneEscrow.sol", "line": 12, "detectors": ["timestamp"]}
    report = write_report(tmp_path / "report.json", [], stale_comments=[stale])

    result = judge_report(report)

    assert result.returncode == 1
    assert (
        "`slither-disable-next-line timestamp` at contracts/MilestoneEscrow.sol#12" in result.stdout
    )
    assert "FAILED: 1 stale disable comment(s)" in result.stdout


def test_gate_rejects_report_without_contracts(tmp_path):
    report = write_report(tmp_path / "report.json", [], contracts=())

    result = judge_report(report)

    assert result.returncode == 2
    assert "lists no analysed contract" in result.stderr


def test_gate_rejects_missing_report(tmp_path):
    result = judge_report(tmp_path / "missing.json")

    assert result.returncode == 2
    assert "cannot read the report" in result.stderr


# Running slither on known fixtures.


@pytest.fixture(scope="module")
def fixture_artifacts(tmp_path_factory):
    """A build-info of the fixture contracts, compiled like the project's contracts."""
    artifacts = tmp_path_factory.mktemp("slither")
    result = run(sys.executable, BUILD_INFO, "--contracts", FIXTURES, "--out", artifacts)
    assert result.returncode == 0, result.stderr
    return artifacts


def run_gate_on_fixtures(artifacts, *arguments):
    return run(
        SLITHER_PYTHON, GATE, "--artifacts", artifacts, "--include-paths", FIXTURES, *arguments
    )


@needs_slither
def test_gate_reports_fixture_findings(fixture_artifacts, tmp_path):
    report = tmp_path / "report.json"

    result = run_gate_on_fixtures(
        fixture_artifacts, "--expect-contract", "LockedEther", "--report", report
    )

    assert result.returncode == 1, result.stderr
    assert "FAILED: 1 High or Medium finding(s)" in result.stdout
    assert "FAILED: 1 stale disable comment(s)" in result.stdout
    analysis = json.loads(report.read_text())
    assert analysis["contracts"] == ["AcceptedLockedEther", "LockedEther", "StaleComment"]
    assert analysis["included_files"] == [
        f"{FIXTURES}/AcceptedLockedEther.sol",
        f"{FIXTURES}/LockedEther.sol",
        f"{FIXTURES}/StaleComment.sol",
    ]
    # AcceptedLockedEther has the same finding, accepted by its disable comment.
    [locked_ether] = analysis["findings"]
    assert locked_ether["check"] == "locked-ether"
    assert locked_ether["impact"] == "Medium"
    assert locked_ether["elements"][0]["name"] == "LockedEther"
    assert analysis["stale_comments"] == [
        {"file": f"{FIXTURES}/StaleComment.sol", "line": 6, "detectors": ["timestamp"]}
    ]


@needs_slither
def test_gate_rejects_include_path_without_files(fixture_artifacts):
    result = run(
        SLITHER_PYTHON, GATE, "--artifacts", fixture_artifacts, "--include-paths", "contracts/"
    )

    assert result.returncode == 2
    assert "include path 'contracts/' selects no compiled file" in result.stderr


@needs_slither
def test_gate_rejects_missing_expected_contract(fixture_artifacts):
    result = run_gate_on_fixtures(fixture_artifacts, "--expect-contract", "MilestoneEscrow")

    assert result.returncode == 2
    assert "expected contracts were not analysed: MilestoneEscrow" in result.stderr


@needs_slither
def test_gate_rejects_missing_build_info(tmp_path):
    result = run(SLITHER_PYTHON, GATE, "--artifacts", tmp_path)

    assert result.returncode == 2
    assert f"no build-info file in {tmp_path / 'build-info'}" in result.stderr


# The build-info compile.


def load_build_info_module():
    spec = importlib.util.spec_from_file_location("build_info", BUILD_INFO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_build_info_uses_ape_compile_settings(project):
    version, settings = load_build_info_module().read_compiler_settings(ROOT)
    escrow_source = ROOT / "contracts" / "MilestoneEscrow.sol"

    [(ape_version, ape_input)] = compilers.solidity.get_standard_input_json(
        [escrow_source], project=project
    ).items()

    ape_settings = ape_input["settings"]
    assert str(ape_version).startswith(f"{version}+")
    assert settings["optimizer"] == ape_settings["optimizer"]
    assert settings["evmVersion"] == ape_settings["evmVersion"]
    # ape reads OpenZeppelin from its copy in contracts/.cache/, this build from node_modules/.
    assert settings["remappings"] == [
        "@openzeppelin/contracts/=node_modules/@openzeppelin/contracts/"
    ]
    assert ape_settings["remappings"] == [
        "@openzeppelin/contracts=contracts/.cache/openzeppelin/5.3.0"
    ]
