"""The targets and misses that docs/gas.md shows for a set of figures."""

from benchmarks import report
from benchmarks.scenarios import OPERATION_NAMES


def figures_at_limits(**overrides: int) -> dict[str, int]:
    """Return figures with every target operation exactly at its limit, and 1 gas elsewhere."""
    gas = dict.fromkeys(OPERATION_NAMES, 1)
    gas |= {target.operation: target.limit for target in report.TARGETS}
    return gas | overrides


def test_targets_refer_to_measured_operations():
    assert {target.operation for target in report.TARGETS} <= set(OPERATION_NAMES)


def test_published_figures_refer_to_measured_operations():
    assert {figure.ours for figure in report.PUBLISHED} <= set(OPERATION_NAMES)


def test_target_at_limit_is_met():
    table = report._targets_table(figures_at_limits())

    assert "| approval below quorum | 40,000 | 40,000 | met |" in table
    assert "missed" not in table


def test_target_above_limit_is_missed():
    table = report._targets_table(figures_at_limits(approve_below_quorum=40_613))

    assert "| approval below quorum | 40,000 | 40,613 | missed by 613 |" in table


def test_misses_explain_only_missed_targets():
    misses = report._misses(figures_at_limits(donate_eth=45_001))

    assert misses.startswith("**ETH donation.** A donation reads")
    assert "approval below quorum" not in misses


def test_misses_without_any_miss():
    assert report._misses(figures_at_limits()) == "Every target is met."
