"""The read-side commands of the `fundtrail` CLI: index, audit, report and dashboard.

They read the chain and the ledger database and never send a transaction.
"""

import csv
import io
import json
import logging
import os
from enum import IntEnum
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from fundtrail import render, render_statements
from fundtrail.checks import show_time
from fundtrail.cli import ChainCommand, chain_options, cli
from fundtrail.deployments import Deployment, DeploymentsFile
from fundtrail.errors import FileError
from fundtrail.units import TokenInfo, format_amount

logger = logging.getLogger(__name__)

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


EXIT_DISCREPANCIES = 1
"""Exit status of `fundtrail audit` when the rebuilt books and the chain differ. Surplus alone
exits 0."""


@cli.command("audit", cls=ChainCommand)
@chain_options(sends=False)
@ledger_options
@click.option(
    "--no-sync",
    is_flag=True,
    help="Audit the ledger database as it is, without reading new events first.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of tables.")
def audit(deployments, database, no_sync, as_json):
    """Reconcile the books rebuilt from events with the contracts, at the ledger's last block.

    Reads new events first (unless --no-sync), rebuilds every grant, project and credit from
    the ledger alone, and compares them with the escrow's and the registry's view functions and
    with the escrow's balances, all read at the ledger's last block. Also checks the accounting
    rules the books must obey. ETH or tokens sent to the escrow beyond what it owes are listed
    as surplus, which is no discrepancy.

    \b
    Exit status:
      0  no discrepancy (surplus allowed)
      1  at least one discrepancy
      2  the audit could not run, such as for a missing deployment, a ledger database of
         another deployment, or a ledger that has read no block yet
    """
    from ape import chain

    from fundtrail.ledger.audit import audit as run_audit
    from fundtrail.ledger.views import ChainViews

    deployment = load_deployment(deployments)
    indexer = open_indexer(deployments, database, None)
    if not no_sync:
        sync_with_progress(indexer)
    views = ChainViews.of_ledger(indexer.ledger, chain.provider.web3)
    report = run_audit(indexer.ledger, views, tokens=tuple(deployment.tokens.values()))

    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        print_audit(report, token_infos(deployment, report))
    if not report.clean:
        raise click.exceptions.Exit(EXIT_DISCREPANCIES)


def token_infos(deployment: Deployment, report) -> dict[str, TokenInfo]:
    """Return the symbol and decimals of each audited token, read from the token contracts.

    A token without `symbol()` or `decimals()` is shown in base units, under its address.
    """
    from ape.exceptions import ApeException

    from fundtrail.client import FundTrail

    client = FundTrail.from_deployment(deployment)
    infos = {}
    for item in report.balances:
        try:
            infos[item.token] = client.token_info(item.token)
        except ApeException as error:
            logger.warning(
                "Failed to read symbol and decimals of token %s, so it is shown in base units: %s",
                item.token,
                error,
            )
            infos[item.token] = TokenInfo(item.token, "base units", 0)
    return infos


def print_audit(report, tokens: dict[str, TokenInfo]) -> None:
    console = render.stdout()
    checked = report.checked
    summary = Table(title=f"Audit at block {report.block:,}", show_header=False)
    summary.add_column("What")
    summary.add_column("Value", justify="right")
    rows = (
        ("Block time", show_time(report.timestamp)),
        ("Escrow", report.escrow),
        ("Registry", report.registry),
        ("Events replayed", f"{checked.events:,}"),
        ("Grants", f"{checked.grants:,}"),
        ("Milestones", f"{checked.milestones:,}"),
        ("Funders", f"{checked.funders:,}"),
        ("Projects", f"{checked.projects:,}"),
        ("Donations", f"{checked.donations:,}"),
        ("Credit accounts", f"{checked.credits:,}"),
        ("Tokens", f"{checked.tokens:,}"),
    )
    for name, value in rows:
        summary.add_row(name, value)
    console.print(summary)

    balances = Table(title="Escrow balances")
    for name in ("Token", "Balance", "Held for grants", "Credits", "Surplus"):
        balances.add_column(name, justify="left" if name == "Token" else "right")
    for item in report.balances:
        token = tokens[item.token]
        surplus = format_amount(item.surplus, token)
        balances.add_row(
            f"{escape(token.symbol)} {item.token}",
            format_amount(item.balance, token),
            format_amount(item.held, token),
            format_amount(item.credits, token),
            f"[yellow]{surplus}[/]" if item.surplus > 0 else surplus,
        )
    console.print(balances)

    for item in report.surpluses:
        token = tokens[item.token]
        console.print(
            f"[yellow]Surplus:[/] the escrow holds {format_amount(item.surplus, token)} more than "
            "its grants and credits need. No one can withdraw it; it is not a discrepancy."
        )
    if report.clean:
        console.print(f"[bold green]Clean:[/] the books match the chain at block {report.block:,}.")
        return

    # Values are shown as the contracts return them: amounts in base units, times in seconds.
    discrepancies = Table(title="Discrepancies")
    for name in ("Kind", "Subject", "Field", "Expected (books)", "Actual (chain)"):
        discrepancies.add_column(name)
    for item in report.discrepancies:
        discrepancies.add_row(
            str(item.kind), item.subject, item.field, escape(_show(item.expected)), escape(_show(item.actual))
        )
    console.print(discrepancies)
    count = len(report.discrepancies)
    noun = "discrepancy" if count == 1 else "discrepancies"
    console.print(
        f"[bold red]{count:,} {noun}[/] between the books and the chain at block {report.block:,}."
    )


def _show(value) -> str:
    return value.name if isinstance(value, IntEnum) else str(value)


REPORT_FORMATS = ("table", "csv", "json")


def report_options(function):
    """Add the options every `fundtrail report` command shares."""
    function = click.option(
        "--no-sync",
        is_flag=True,
        help="Report from the ledger as it is, without reading new blocks first.",
    )(function)
    function = click.option(
        "--out",
        type=click.Path(dir_okay=False, writable=True, path_type=Path),
        default=None,
        help="Write the statement to this file instead of standard output.",
    )(function)
    function = click.option(
        "--format",
        "output_format",
        type=click.Choice(REPORT_FORMATS),
        default="table",
        show_default=True,
        help="table: readable tables. csv: one row per movement of money, with a header. "
        "json: the whole statement, as the dashboard reads it.",
    )(function)
    function = ledger_options(function)
    return chain_options(sends=False)(function)


@cli.group()
def report():
    """Write the statement of a grant, a project or a donor, from the ledger database.

    Each command brings the ledger up to date first, unless --no-sync is given.
    """


def _write_statement(deployments, database, output_format, out, no_sync, build) -> None:
    """Sync the ledger unless `no_sync`, build a statement with `build`, and write it."""
    from fundtrail.client import FundTrail
    from fundtrail.ledger.statements import Source, load_books

    indexer = open_indexer(deployments, database, None)
    if not no_sync:
        sync_with_progress(indexer)
    client = FundTrail.from_deployment(load_deployment(deployments))
    statement = build(load_books(indexer.ledger), client.token_info, Source.from_ledger(indexer.ledger))

    if output_format == "json":
        text = json.dumps(statement.to_json(), indent=2) + "\n"
    elif output_format == "csv":
        text = _movements_csv(statement.movements())
    else:
        text = None

    if out is None:
        if text is None:
            render.stdout().print(render_statements.statement_view(statement))
        else:
            click.echo(text, nl=False)
        return
    try:
        if text is None:
            with out.open("w", encoding="utf-8") as file:
                console = Console(file=file, width=render.PIPE_WIDTH, highlight=False, color_system=None)
                console.print(render_statements.statement_view(statement))
        else:
            # The csv module writes its own \r\n line endings, so newline translation stays off.
            out.write_text(text, encoding="utf-8", newline="")
    except OSError as error:
        raise FileError(
            out, f"cannot write the statement ({error.strerror})", "Choose a writable --out path."
        ) from error
    render.stdout().print(f"Wrote the {output_format} statement to {escape(str(out))}")


def _movements_csv(movements) -> str:
    from fundtrail.ledger.statements import CSV_COLUMNS

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(movement.to_row() for movement in movements)
    return buffer.getvalue()


@report.command("grant", cls=ChainCommand)
@report_options
@click.argument("grant_id", type=click.IntRange(min=1))
def report_grant(deployments, database, output_format, out, no_sync, grant_id):
    """Write the statement of grant GRANT_ID: terms, funders, evidence, votes and every payout."""
    from fundtrail.ledger.statements import grant_statement

    _write_statement(
        deployments,
        database,
        output_format,
        out,
        no_sync,
        lambda books, tokens, source: grant_statement(books, grant_id, tokens, source),
    )


@report.command("project", cls=ChainCommand)
@report_options
@click.argument("project_id", type=click.IntRange(min=1))
def report_project(deployments, database, output_format, out, no_sync, project_id):
    """Write the statement of project PROJECT_ID: its donations and the grants that pay it."""
    from fundtrail.ledger.statements import project_statement

    _write_statement(
        deployments,
        database,
        output_format,
        out,
        no_sync,
        lambda books, tokens, source: project_statement(books, project_id, tokens, source),
    )


@report.command("donor", cls=ChainCommand)
@report_options
@click.argument("address")
def report_donor(deployments, database, output_format, out, no_sync, address):
    """Write the statement of the donor at ADDRESS: each gift followed to where it went."""
    from fundtrail.ledger.statements import donor_address, donor_statement

    # Checked before the sync, so that a mistyped address fails at once.
    donor_address(address)
    _write_statement(
        deployments,
        database,
        output_format,
        out,
        no_sync,
        lambda books, tokens, source: donor_statement(books, address, tokens, source),
    )
