"""Rich tables and messages for the `fundtrail` CLI. Only the CLI imports this module."""

import os

from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from fundtrail.checks import show_time
from fundtrail.deployments import Deployment
from fundtrail.evidence import to_hex
from fundtrail.grants import GrantSummary, MilestoneStatus, MilestoneSummary
from fundtrail.signing import EVIDENCE_SUBMISSION
from fundtrail.units import format_amount

_STATUS_STYLES = {
    MilestoneStatus.AwaitingEvidence: "yellow",
    MilestoneStatus.EvidenceSubmitted: "cyan",
    MilestoneStatus.Released: "green",
    MilestoneStatus.Reclaimed: "red",
}


PIPE_WIDTH = 200
"""Line width for output to a file or pipe, wide enough for full hashes in every table."""

# Layout of a milestone's detail lines. The indent, the label column, the 1-space gap and the
# cell's right padding leave 66 columns for the value at 80, so a hash fits on one line.
_DETAIL_INDENT = 2
_DETAIL_LABEL_WIDTH = 10


def stdout() -> Console:
    # A new console per command, so that it picks up the terminal width of the moment.
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(highlight=False, width=PIPE_WIDTH)
    return console


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


def receipt_line(action: str, receipt) -> Text:
    """Describe a mined transaction in one line."""
    return Text.assemble(
        (action, "bold"),
        f": transaction {receipt.txn_hash} in block {receipt.block_number}, "
        f"gas used {receipt.gas_used:,}",
    )


def deployment_table(deployment: Deployment) -> Table:
    table = Table(title=f"FundTrail on {deployment.network} (chain {deployment.chain_id})")
    table.add_column("Contract")
    table.add_column("Address", no_wrap=True)
    table.add_column("Block", justify="right")
    table.add_column("Transaction", no_wrap=True)
    for name, record in deployment.contracts.items():
        table.add_row(name, record.address, str(record.block), record.tx_hash)
    for symbol, address in deployment.tokens.items():
        table.add_row(f"token {symbol}", address, "", "")
    return table


def grant_view(grant: GrantSummary) -> Group:
    """Render a grant: its parties and books, its milestones, then its funders."""
    token = grant.token
    books = Table.grid(padding=(0, 1))
    books.add_column(style="bold")
    books.add_column()
    for label, value in (
        ("Status", grant.status.name),
        ("Recipient", grant.recipient),
        ("Token", f"{token.symbol} ({token.address})"),
        ("Total", format_amount(grant.total, token)),
        ("Funded", format_amount(grant.funded, token)),
        ("Released", format_amount(grant.released, token)),
        ("Reclaimed", format_amount(grant.reclaimed, token)),
        ("Held", format_amount(grant.held, token)),
        ("Funding ends", show_time(grant.funding_deadline)),
        (
            "Attestors",
            f"{grant.threshold} of {len(grant.attestors)}: " + ", ".join(grant.attestors),
        ),
        ("Terms", to_hex(grant.terms_hash)),
        ("Terms URI", grant.terms_uri),
        ("Created in", grant.created_tx or "unknown"),
    ):
        books.add_row(label, value)

    milestones = [Text("\nMilestones", style="bold underline")]
    milestones.extend(_milestone_block(milestone, grant) for milestone in grant.milestones)

    # The title is a blank line and a heading, as for the milestones.
    funders = Table(title="\nFunders", title_justify="left", title_style="bold underline")
    funders.add_column("Funder", no_wrap=True)
    funders.add_column("Contribution", justify="right")
    funders.add_column("Refunded")
    for funder in grant.funders:
        funders.add_row(
            funder.address,
            format_amount(funder.contribution, token),
            "yes" if funder.refunded else "no",
        )

    return Group(
        Text(f"Grant {grant.grant_id}", style="bold underline"), books, *milestones, funders
    )


def _milestone_block(milestone: MilestoneSummary, grant: GrantSummary) -> Group:
    """Render one milestone as a summary line and labelled detail lines below it.

    A block instead of a table row keeps every field readable at 80 columns. A value wider
    than its column, such as a long URI, folds onto the next line instead of being cut.
    """
    header = Text.assemble(
        (f"#{milestone.index}", "bold"),
        "  ",
        (milestone.status.name, _STATUS_STYLES[milestone.status]),
        "  ",
        format_amount(milestone.amount, grant.token),
        "  deadline ",
        show_time(milestone.deadline),
    )

    details = _detail_grid()
    if milestone.evidence_hash is None:
        details.add_row("Evidence", "none submitted")
    else:
        details.add_row("Evidence", to_hex(milestone.evidence_hash))
        # The URI comes from the EvidenceSubmitted event, which a late start block can miss.
        details.add_row("URI", milestone.evidence_uri or "unknown (no EvidenceSubmitted event)")
        approvals = f"{milestone.approval_count} of {grant.threshold}"
        if milestone.approvals:
            approvals += ": " + ", ".join(milestone.approvals)
        details.add_row("Approvals", approvals)
        if milestone.rejections:
            details.add_row(
                "Rejections", f"{len(milestone.rejections)}: " + ", ".join(milestone.rejections)
            )
    if milestone.settlement_tx:
        label = "Release tx" if milestone.status == MilestoneStatus.Released else "Reclaim tx"
        details.add_row(label, milestone.settlement_tx)

    return Group(header, _indented(details))


def _detail_grid() -> Table:
    """Return an empty grid of labelled detail lines, laid out as a milestone's in `grant show`."""
    details = Table.grid(padding=(0, 1))
    details.add_column(width=_DETAIL_LABEL_WIDTH, style="bold")
    details.add_column(overflow="fold")
    return details


def _indented(details: Table) -> Padding:
    return Padding(details, (0, 0, 0, _DETAIL_INDENT), expand=False)


def relay_report_view(report) -> Group:
    """Render what `fundtrail relay` sent and dropped, one block per transaction or file.

    Blocks instead of table rows keep full addresses and hashes readable at 80 columns.
    A dropped file that the escrow can never accept is marked "invalid".
    """
    parts = []
    if report.submitted:
        parts.append(Text("Submitted", style="bold underline"))
        parts.extend(_submitted_block(item) for item in report.submitted)
    if report.dropped:
        parts.append(Text("Dropped", style="bold underline"))
        parts.extend(_dropped_block(item) for item in report.dropped)
    return Group(*parts)


def _submitted_block(item) -> Group:
    if item.kind == EVIDENCE_SUBMISSION:
        what = "Evidence"
    else:
        noun = "approval" if len(item.signers) == 1 else "approvals"
        what = f"{len(item.signers)} {noun}"
    header = Text.assemble(
        (what, "bold"), f" for milestone {item.milestone_index} of grant {item.grant_id}"
    )
    if item.released:
        header.append(", released", style="green")

    details = _detail_grid()
    details.add_row("Evidence", to_hex(item.evidence_hash))
    label = "Signer" if len(item.signers) == 1 else "Signers"
    for signer in item.signers:
        details.add_row(label, signer)
        # Only the first signer's line carries the label.
        label = ""
    details.add_row("Tx hash", item.tx_hash)
    details.add_row("Released", "yes" if item.released else "no")
    return Group(header, _indented(details))


def _dropped_block(item) -> Group:
    header = Text(str(item.path), style="bold", overflow="fold")
    if item.invalid:
        header.append("  invalid", style="bold red")

    details = _detail_grid()
    details.add_row("Kind", item.kind)
    details.add_row("Signer", item.signer)
    details.add_row("Reason", item.reason)
    return Group(header, _indented(details))


def grants_table(grants: list[GrantSummary]) -> Table:
    table = Table(title="Grants")
    for column in (
        "Id",
        "Status",
        "Recipient",
        "Funded / total",
        "Milestones settled",
        "Funding deadline",
    ):
        table.add_column(column, no_wrap=column == "Recipient")
    for grant in grants:
        settled = sum(1 for milestone in grant.milestones if milestone.settled)
        table.add_row(
            str(grant.grant_id),
            grant.status.name,
            grant.recipient,
            format_amount(grant.funded, grant.token)
            + " / "
            + format_amount(grant.total, grant.token),
            f"{settled} of {len(grant.milestones)}",
            show_time(grant.funding_deadline),
        )
    return table


def demo_step_line(step) -> Text:
    """Describe one demo transaction as it happens."""
    return Text.assemble(
        (f"[{step.number}] ", "bold cyan"),
        step.action,
        (f"  tx {step.txn_hash[:18]}… block {step.block}, gas {step.gas_used:,}", "dim"),
    )


def reconciliation_view(reconciliation, token) -> Group:
    """Render the demo's books, the balances they must match, and the verdict."""
    books = Table(title="Books of the grant and the escrow")
    books.add_column("Check")
    books.add_column("Amount", justify="right")
    for label, value in (
        ("Funded", reconciliation.funded),
        ("Released to the NGO", reconciliation.released),
        ("Reclaimed by the funders", reconciliation.reclaimed),
        ("Held for open milestones", reconciliation.held),
        ("Escrow token balance", reconciliation.escrow_balance),
        ("Escrow: held for all grants", reconciliation.escrow_held),
        ("Escrow: credits awaiting withdrawal", reconciliation.escrow_credits),
    ):
        books.add_row(label, format_amount(value, token))

    balances = Table(title="Token balances")
    balances.add_column("Party")
    balances.add_column("Balance", justify="right")
    for party, balance in reconciliation.balances.items():
        balances.add_row(party, format_amount(balance, token))

    if reconciliation.problems:
        verdict = Text("Books do NOT reconcile:\n" + "\n".join(reconciliation.problems), "bold red")
    else:
        verdict = Text(
            "Books reconcile: funded = released + reclaimed + held, the escrow holds at least "
            "what it owes, and every minted token is accounted for.",
            style="bold green",
        )
    return Group(books, balances, verdict)
