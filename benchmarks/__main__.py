"""Command line of the gas benchmark, with the commands `gas` and `check`."""

import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from benchmarks import breakdown, report, scenarios, snapshot
from benchmarks.breakdown import Breakdown
from benchmarks.chain import ROOT, BenchmarkError, Chain, anvil, load_artifacts

SNAPSHOT = ROOT / "benchmarks" / "gas-snapshot.json"
DOC = ROOT / "docs" / "gas.md"

port_option = click.option(
    "--port",
    type=click.IntRange(1024, 65535),
    default=8547,
    show_default=True,
    help="Port on 127.0.0.1 for the fresh anvil that the benchmark starts. It must be free.",
)
snapshot_option = click.option(
    "--snapshot",
    "snapshot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=SNAPSHOT,
    show_default=True,
    help="Gas snapshot file: a JSON object of operation names and gas figures.",
)


@dataclass(frozen=True)
class Run:
    """The figures of one benchmark run."""

    gas: dict[str, int]
    """Receipt gasUsed of each operation, in the order of `scenarios.OPERATIONS`."""

    breakdowns: dict[str, Breakdown]
    """Gas of each operation by kind of work. Empty unless the run traced its transactions."""

    client_version: str
    """anvil's `web3_clientVersion`, such as `anvil/v1.7.1`."""


def run_benchmark(port: int, *, with_breakdowns: bool) -> Run:
    """Measure every operation on a fresh anvil, and trace each one if `with_breakdowns`."""
    artifacts = load_artifacts()
    executable = shutil.which("anvil") or "anvil"
    with anvil(port, executable, tracing=with_breakdowns) as w3:
        receipts = scenarios.measure(Chain(w3, artifacts))
        breakdowns = {
            name: breakdown.trace(w3, receipt["transactionHash"])
            for name, receipt in receipts.items()
            if with_breakdowns
        }
        return Run(
            gas={name: receipt["gasUsed"] for name, receipt in receipts.items()},
            breakdowns=breakdowns,
            client_version=w3.client_version,
        )


@click.group()
@click.option("--verbose", is_flag=True, help="Log every transaction's gas.")
def cli(verbose: bool) -> None:
    """Measure the gas of FundTrail's operations on a fresh anvil."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(name)s: %(message)s"
    )


@cli.command()
@port_option
@snapshot_option
@click.option(
    "--doc",
    "doc_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DOC,
    show_default=True,
    help="Markdown page to write the tables into.",
)
def gas(port: int, snapshot_path: Path, doc_path: Path) -> None:
    """Measure every operation, then write the snapshot and the gas page."""
    run = _run(port, with_breakdowns=True)
    snapshot.save(snapshot_path, run.gas)
    doc_path.write_text(
        report.render(run.gas, run.breakdowns, run.client_version), encoding="utf-8"
    )

    width = max(len(name) for name in run.gas)
    for name, value in run.gas.items():
        click.echo(f"{name:<{width}}  {value:>9,}")
    click.echo(f"Wrote {snapshot_path} and {doc_path}.")


@cli.command()
@port_option
@snapshot_option
def check(port: int, snapshot_path: Path) -> None:
    """Measure every operation again and fail when one grew by more than 2 %."""
    recorded = _load(snapshot_path)
    run = _run(port, with_breakdowns=False)
    comparison = snapshot.compare(recorded, run.gas)
    click.echo(comparison.report(), err=not comparison.passed)
    if not comparison.passed:
        sys.exit(1)


def _run(port: int, *, with_breakdowns: bool) -> Run:
    try:
        return run_benchmark(port, with_breakdowns=with_breakdowns)
    except BenchmarkError as error:
        raise click.ClickException(str(error)) from error


def _load(path: Path) -> dict[str, int]:
    try:
        return snapshot.load(path)
    except BenchmarkError as error:
        raise click.ClickException(str(error)) from error


if __name__ == "__main__":
    cli()
