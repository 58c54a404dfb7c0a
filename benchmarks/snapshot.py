"""The committed gas snapshot, and the comparison that decides whether new figures pass."""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from benchmarks.chain import BenchmarkError

MAX_GROWTH = Fraction(2, 100)
"""Largest growth over the snapshot that passes: 2 %. Growth of exactly 2 % passes."""

FIX = (
    "If the change is intended, run `make gas` and commit benchmarks/gas-snapshot.json and "
    "docs/gas.md."
)


@dataclass(frozen=True)
class Finding:
    """One operation whose figure differs from the snapshot."""

    operation: str
    snapshot_gas: int | None
    measured_gas: int | None

    @property
    def change(self) -> Fraction | None:
        """Relative change from the snapshot, or None for a missing or new operation."""
        if self.snapshot_gas is None or self.measured_gas is None:
            return None
        return Fraction(self.measured_gas - self.snapshot_gas, self.snapshot_gas)

    def message(self) -> str:
        if self.measured_gas is None:
            return (
                f"{self.operation}: in the snapshot ({self.snapshot_gas:,} gas) but no longer "
                "measured."
            )
        if self.snapshot_gas is None:
            return (
                f"{self.operation}: measured ({self.measured_gas:,} gas) but not in the snapshot."
            )
        return (
            f"{self.operation}: {self.snapshot_gas:,} gas in the snapshot, {self.measured_gas:,} "
            f"now ({float(self.change) * 100:+.2f} %)."
        )


@dataclass(frozen=True)
class Comparison:
    """Result of comparing new figures with the snapshot."""

    failures: tuple[Finding, ...]
    """Operations that grew by more than MAX_GROWTH, and operations missing from either side."""

    other_changes: tuple[Finding, ...]
    """Operations whose figure changed within the allowance, or went down."""

    @property
    def passed(self) -> bool:
        return not self.failures

    def report(self) -> str:
        """Return a readable summary: every failure, every other change, and the fix."""
        lines = []
        if self.failures:
            lines.append(
                f"Gas check failed: {len(self.failures)} operation(s) grew by more than "
                f"{float(MAX_GROWTH) * 100:g} % or differ from the snapshot's set of operations."
            )
            lines += [f"  {finding.message()}" for finding in self.failures]
        if self.other_changes:
            lines.append(f"Other changes (drops, or growth within {float(MAX_GROWTH) * 100:g} %):")
            lines += [f"  {finding.message()}" for finding in self.other_changes]
        if self.failures:
            lines.append(FIX)
        elif not self.other_changes:
            lines.append("Gas check passed: every operation costs what the snapshot records.")
        else:
            lines.append("Gas check passed.")
        return "\n".join(lines)


def compare(snapshot: Mapping[str, int], measured: Mapping[str, int]) -> Comparison:
    """Compare `measured` gas figures with `snapshot`, operation by operation.

    An operation fails when it costs more than the snapshot plus MAX_GROWTH, or when it appears
    on one side only. A figure that went down passes, and is listed among the other changes.
    """
    failures = []
    other_changes = []
    for operation in sorted(set(snapshot) | set(measured)):
        finding = Finding(operation, snapshot.get(operation), measured.get(operation))
        if finding.change is None:
            failures.append(finding)
        elif finding.change > MAX_GROWTH:
            failures.append(finding)
        elif finding.change != 0:
            other_changes.append(finding)
    return Comparison(tuple(failures), tuple(other_changes))


def load(path: Path) -> dict[str, int]:
    """Read a snapshot: a JSON object of operation names and positive integer gas figures."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise BenchmarkError(
            f"The gas snapshot {path} was not found. Run `make gas` to write it."
        ) from error
    except json.JSONDecodeError as error:
        raise BenchmarkError(
            f"The gas snapshot {path} is not valid JSON ({error}). Run `make gas` to rewrite it."
        ) from error

    if not isinstance(data, dict):
        raise BenchmarkError(
            f"The gas snapshot {path} must be a JSON object. Run `make gas` to rewrite it."
        )
    for operation, gas in data.items():
        if isinstance(gas, bool) or not isinstance(gas, int) or gas <= 0:
            raise BenchmarkError(
                f"The gas snapshot {path} gives {operation} the value {gas!r}, not a positive "
                "integer. Run `make gas` to rewrite it."
            )
    return data


def save(path: Path, gas: Mapping[str, int]) -> None:
    """Write `gas` as the snapshot, one operation per line, in the order given."""
    path.write_text(json.dumps(dict(gas), indent=2) + "\n", encoding="utf-8")
