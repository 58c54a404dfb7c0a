"""Rich tables of the grant, project and donor statements, for `fundtrail report`.

Only the CLI imports this module. The tables show amounts in token units. The CSV and JSON
forms of `fundtrail report` also carry the exact base units.
"""

from rich.console import Group
from rich.table import Table
from rich.text import Text

from fundtrail.checks import show_time
from fundtrail.ledger.books import Mark
from fundtrail.ledger.statements import (
    DonorStatement,
    GrantStatement,
    Movement,
    ProjectStatement,
    Source,
)


def statement_view(statement) -> Group:
    """Render a grant, project or donor statement."""
    if isinstance(statement, GrantStatement):
        return grant_statement_view(statement)
    if isinstance(statement, ProjectStatement):
        return project_statement_view(statement)
    if isinstance(statement, DonorStatement):
        return donor_statement_view(statement)
    raise TypeError(f"not a statement: {type(statement).__name__}")


def grant_statement_view(statement: GrantStatement) -> Group:
    terms = statement.terms
    totals = statement.totals
    summary = _summary_grid(
        ("Status", statement.status.name),
        ("Creator", terms.creator),
        ("Recipient", terms.recipient),
        ("Token", f"{terms.token.symbol} ({terms.token.address})"),
        ("Total", terms.total.formatted),
        ("Funded", totals.funded.formatted),
        ("Released", totals.released.formatted),
        ("Reclaimed", totals.reclaimed.formatted),
        ("Held", totals.held.formatted),
        ("Funding ends", terms.funding_deadline.time),
        ("Attestors", f"{terms.threshold} of {len(terms.attestors)}: " + ", ".join(terms.attestors)),
        ("Terms", terms.terms_hash),
        ("Terms URI", terms.terms_uri),
        ("Created in", statement.created.tx_hash),
    )

    milestones = _table("Milestones", "#", "Status", "Amount", "Deadline", "Evidence", "Settled in")
    for milestone in terms.milestones:
        milestones.add_row(
            str(milestone.index),
            milestone.status.name,
            milestone.amount.formatted,
            milestone.deadline.time,
            milestone.evidence_hash or "",
            milestone.settled.tx_hash if milestone.settled else "",
        )

    funders = _table("Funders", "Funder", "Contribution", "Refunded", "Paid by")
    for funder in statement.funders:
        payers = sorted({funding.payer for funding in funder.fundings})
        funders.add_row(
            funder.funder,
            funder.contribution.formatted,
            "yes" if funder.refunded else "no",
            ", ".join(payers),
        )

    evidence = _table("Evidence", "#", "Hash", "URI", "Submitter", "Rejected", "Time")
    for item in statement.evidence:
        evidence.add_row(
            str(item.milestone_index),
            item.evidence_hash,
            item.uri,
            item.submitter + (f"\nrelayed by {item.relayer}" if item.relayer else ""),
            "yes" if item.rejected else "no",
            _time(item.at),
        )

    votes = _table("Votes", "#", "Attestor", "Vote", "Evidence", "Relayed by", "Time")
    for vote in statement.votes:
        votes.add_row(
            str(vote.milestone_index),
            vote.attestor,
            "approve" if vote.approved else "reject",
            vote.evidence_hash,
            vote.relayer or "",
            _time(vote.at),
        )

    return Group(
        _heading(f"Statement of grant {statement.grant_id}", statement.source),
        summary,
        milestones,
        funders,
        evidence,
        votes,
        movements_table(statement.movements()),
    )


def project_statement_view(statement: ProjectStatement) -> Group:
    summary = _summary_grid(
        ("Status", statement.status),
        ("Admin", statement.admin),
        ("Payout", statement.payout),
        ("Metadata", statement.metadata_hash),
        ("Metadata URI", statement.metadata_uri),
        ("Registered in", statement.registered.tx_hash),
        *(("Donated", total.amount.formatted) for total in statement.donated),
    )

    grants = _table("Grants to the payout address", "Grant", "Status", "Total", "Funded", "Released", "Held")
    for grant in statement.grants:
        grants.add_row(
            str(grant.grant_id),
            grant.status.name,
            grant.total.formatted,
            grant.funded.formatted,
            grant.released.formatted,
            grant.held.formatted,
        )

    return Group(
        _heading(f"Statement of project {statement.project_id}", statement.source),
        summary,
        grants,
        movements_table(statement.movements()),
    )


def donor_statement_view(statement: DonorStatement) -> Group:
    grants = _table(
        "Gifts into grants",
        "Grant",
        "Status",
        "Recipient",
        "Given",
        "Of funded",
        "Released",
        "Returned",
        "Still held",
    )
    for grant in statement.grants:
        grants.add_row(
            str(grant.grant_id),
            grant.status.name,
            grant.recipient,
            grant.contribution.formatted,
            grant.funded.formatted,
            grant.released_total.formatted,
            grant.returned_total.formatted,
            grant.still_held.formatted,
        )

    credits = _table("Credits to withdraw", "Token", "Amount")
    for credit in statement.credits:
        credits.add_row(credit.token.address, credit.amount.formatted)

    parts = [
        _heading(f"Statement of donor {statement.donor}", statement.source),
        Text(
            f"Direct gifts to projects: {len(statement.direct_gifts)}. "
            f"Grants funded: {len(statement.grants)}."
        ),
    ]
    if statement.grants:
        parts.append(grants)
        parts.append(
            Text(
                "Released is the donor's part of each release: the milestone amount times the "
                "donor's contribution, divided by what the grant was funded with, rounded down. "
                "The first funder gets the rounding remainder, as in a reclaim.",
                style="dim",
            )
        )
    if statement.credits:
        parts.append(credits)
    movements = statement.movements()
    if not movements:
        # The ledger cannot tell a mistyped address from one that never gave, so the message
        # names both possibilities.
        parts.append(
            Text(
                f"The ledger has no gift, funding or withdrawal of {statement.donor} up to block "
                f"{statement.source.last_block:,}. Check the address, or run `fundtrail index` "
                "if the gift is newer.",
                style="yellow",
            )
        )
        return Group(*parts)
    parts.append(movements_table(movements))
    return Group(*parts)


def movements_table(movements: list[Movement]) -> Table:
    """Render movements of money, one row each, in chain order.

    The parties and the transaction share one column, a line each, so that full addresses and
    hashes fit beside the amounts at the 200 columns used for files and pipes.
    """
    table = _table("Movements", "Time", "Kind", "For", "Amount", "Credited", "Parties and transaction")
    for movement in movements:
        if movement.grant_id is not None:
            target = f"grant {movement.grant_id}"
            if movement.milestone_index is not None:
                target += f" #{movement.milestone_index}"
        elif movement.project_id is not None:
            target = f"project {movement.project_id}"
        else:
            target = ""
        details = "\n".join(
            (
                f"party {movement.account}",
                f"from  {movement.from_address}",
                f"to    {movement.to_address}",
                f"tx    {movement.at.tx_hash}",
            )
        )
        table.add_row(
            _time(movement.at),
            movement.kind,
            target,
            movement.amount.formatted,
            "yes" if movement.credited else "no",
            details,
        )
    return table


def _heading(title: str, source: Source) -> Text:
    as_of = f"block {source.last_block:,}"
    if source.last_block_time is not None:
        as_of += f", {source.last_block_time.time}"
    return Text.assemble(
        (title, "bold underline"),
        f"\nChain {source.chain_id}, escrow {source.escrow}, registry {source.registry}, as of {as_of}",
    )


def _summary_grid(*rows: tuple[str, str]) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(label, value)
    return grid


def _table(title: str, *columns: str) -> Table:
    # The title is a blank line and a heading, as in `grant show`.
    table = Table(title=f"\n{title}", title_justify="left", title_style="bold underline")
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _time(mark: Mark) -> str:
    return show_time(mark.timestamp)
