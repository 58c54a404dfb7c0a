"""The read-side commands of the `fundtrail` CLI: index, audit, report and dashboard.

They read the chain and the ledger database and never send a transaction.
"""

import os
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from fundtrail import render
from fundtrail.cli import ChainCommand, chain_options, cli
from fundtrail.deployments import Deployment, DeploymentsFile

DATABASE_ENV_VAR = "FUNDTRAIL_LEDGER_DATABASE"
"""Environment variable with the ledger database, as a path or a SQLAlchemy URL."""

REMOTE_CONFIRMATIONS = 12
"""Default confirmation depth on public networks. Local chains do not reorganise on their own,
so there the default is 0."""


def ledger_options(function):
    """Add `--database`, the ledger database shared by every read-side command."""
    return click.option(
        "--database",
        envvar=DATABASE_ENV_VAR,
        default=None,
        help="Ledger database: a path to an SQLite file, or a SQLAlchemy URL such as "
        "postgresql://user@host/fundtrail. Defaults to $FUNDTRAIL_LEDGER_DATABASE, else "
        ".fundtrail/ledger/CHAIN-ESCROW.sqlite.",
    )(function)


def load_deployment(deployments: Path | None) -> Deployment:
    from ape import networks

    return DeploymentsFile(deployments).load(networks.provider.network_choice)


def open_indexer(deployments: Path | None, database: str | None, confirmations: int | None):
    """Return an indexer for the connected network's deployment."""
    from ape import chain, networks

    from fundtrail.ledger import open_ledger

    if confirmations is None:
        confirmations = 0 if networks.provider.network.is_local else REMOTE_CONFIRMATIONS
    return open_ledger(
        load_deployment(deployments), chain.provider.web3, database=database, confirmations=confirmations
    )


def sync_with_progress(indexer):
    """Run `indexer.sync`, with a progress bar on a terminal, and return its result."""
    console = render.stderr()
    if not console.is_terminal or os.environ.get("FUNDTRAIL_NO_PROGRESS"):
        return indexer.sync()
    columns = (
        TextColumn("Indexing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("blocks, {task.fields[events]:,} events"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("index", total=None, events=0)

        def advance(state):
            progress.update(
                task,
                total=state.end_block - state.start_block + 1,
                completed=state.last_block - state.start_block + 1,
                events=state.events,
            )

        return indexer.sync(on_progress=advance)


@cli.command("index", cls=ChainCommand)
@chain_options(sends=False)
@ledger_options
@click.option(
    "--confirmations",
    type=click.IntRange(min=0),
    default=None,
    help="Blocks to leave unread behind the head, so that a short reorganisation never reaches "
    f"the index. Defaults to 0 on local chains and {REMOTE_CONFIRMATIONS} elsewhere.",
)
def index(deployments, database, confirmations):
    """Read every new event of the escrow and the registry into the ledger database.

    The first run reads from the deploy blocks; later runs continue after the last block read.
    A reorganised chain is detected and the affected blocks are read again.
    """
    indexer = open_indexer(deployments, database, confirmations)
    result = sync_with_progress(indexer)
    console = render.stdout()
    if result.rolled_back_to is not None:
        console.print(
            f"[yellow]The chain was reorganised:[/] rolled back to block {result.rolled_back_to} "
            "and read again from there."
        )
    if result.end_block < result.start_block:
        console.print(f"The ledger is up to date at block {indexer.ledger.last_block}.")
        return
    rejected = f" ({plural(result.rejected, 'range')} rejected and split)" if result.rejected else ""
    console.print(
        f"Indexed blocks {result.start_block:,} to {result.end_block:,}: "
        f"{plural(result.events, 'event')} in {plural(result.requests, 'request')}{rejected}. "
        f"Ledger: {indexer.ledger.engine.url.render_as_string(hide_password=True)}"
    )


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


@cli.command("dashboard", cls=ChainCommand)
@chain_options(sends=False)
@ledger_options
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the site: a new or empty folder, or one with an earlier dashboard, which "
    "is replaced.",
)
@click.option(
    "--sync/--no-sync",
    default=True,
    show_default=True,
    help="Index new events first, like `fundtrail index`. With --no-sync, the site shows the "
    "ledger as it is; the network is still read for token symbols and decimals.",
)
@click.option(
    "--confirmations",
    type=click.IntRange(min=0),
    default=None,
    help="Blocks to leave unread behind the head when syncing, as for `fundtrail index`. "
    f"Defaults to 0 on local chains and {REMOTE_CONFIRMATIONS} elsewhere.",
)
def dashboard(deployments, database, out, sync, confirmations):
    """Write a static site of the ledger: totals, grants, funds flow and a donor lookup.

    The site loads nothing from the network, so it works from a folder, offline, and can be
    published on any static web host.
    """
    from fundtrail.client import FundTrail
    from fundtrail.ledger.dashboard import build_dashboard

    console = render.stdout()
    indexer = open_indexer(deployments, database, confirmations)
    if sync:
        result = sync_with_progress(indexer)
        if result.rolled_back_to is not None:
            console.print(
                f"[yellow]The chain was reorganised:[/] rolled back to block {result.rolled_back_to} "
                "and read again from there."
            )
    client = FundTrail.from_deployment(load_deployment(deployments))
    data, start_page = build_dashboard(indexer.ledger, client.token_info, out)

    console.print(
        f"Wrote the dashboard of {plural(len(data.grants), 'grant')} and "
        f"{plural(len(data.donors), 'donor')}, as of block {data.last_block:,}, to {out}."
    )
    console.print(f"Open {start_page} in a browser: {start_page.resolve().as_uri()}", soft_wrap=True)
