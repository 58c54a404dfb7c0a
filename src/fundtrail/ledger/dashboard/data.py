"""The figures the dashboard shows, computed from the books alone.

Everything here is plain data: amounts stay integers in base units next to their `TokenInfo`,
times stay Unix seconds. `fundtrail.ledger.dashboard.html` turns it into pages, so the pages
can switch to another source of the same figures without changing how they are drawn.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from fundtrail.errors import FundTrailError
from fundtrail.grants import GrantStatus, MilestoneStatus
from fundtrail.ledger.books import Books, GrantBook
from fundtrail.ledger.statements import pro_rata_shares
from fundtrail.units import TokenInfo

MAX_DONOR_NODES = 12
"""Donors drawn one by one in a token's funds-flow diagram; the smaller rest share one node.

NOTE: Only donors are grouped. Every grant and milestone gets its own node, so a token with
hundreds of grants makes a very tall diagram. The table under it lists the same flows.
"""


class DashboardError(FundTrailError):
    """The dashboard cannot be built from the given books or written to the given folder."""


@dataclass(frozen=True)
class TokenTotals:
    """The ledger's totals of one token, in its base units."""

    token: TokenInfo
    grants: int
    """Number of grants paid in this token."""
    committed: int
    """Sum of the grants' milestone amounts."""
    funded: int
    released: int
    """Paid to recipients when milestones were approved."""
    reclaimed: int
    """Returned to funders: missed milestones and refunds after failed funding."""
    held: int
    """In the escrow for milestones not yet settled."""
    donations: int
    """Gifts through the registry, to projects directly or into grants."""
    credits: int
    """Payouts whose transfer failed and that their owners have not withdrawn yet."""


@dataclass(frozen=True)
class TimelineEntry:
    """One event in a grant's history."""

    timestamp: int
    block_number: int
    log_index: int
    tx_hash: str
    event: str
    """A short description of the event, such as "Milestone 1 released"."""
    account: str | None
    """The party that acted or received, where the event has one."""
    amount: int | None
    detail: str = ""


@dataclass(frozen=True)
class MilestoneRow:
    index: int
    amount: int
    deadline: int
    status: MilestoneStatus
    approvals: int
    """Approvals of the current evidence."""
    evidence_uri: str | None
    """The URI of the newest evidence, if any was submitted."""
    settled_at: int | None
    settled_tx: str | None
    past_deadline: bool
    """Unsettled at a time after its deadline, so anyone can reclaim it."""


@dataclass(frozen=True)
class GrantPage:
    grant_id: int
    token: TokenInfo
    status: GrantStatus
    creator: str
    recipient: str
    recipient_project: int | None
    """The project whose payout address is the grant's recipient, if one is."""
    threshold: int
    attestors: list[str]
    funding_deadline: int
    terms_hash: str
    terms_uri: str
    total: int
    funded: int
    released: int
    reclaimed: int
    held: int
    contributions: list[tuple[str, int]]
    """Each funder and their contribution, in the order they first funded."""
    milestones: list[MilestoneRow]
    timeline: list[TimelineEntry]


@dataclass(frozen=True)
class ProjectRow:
    project_id: int
    status: str
    payout: str
    metadata_uri: str
    donated: list[tuple[TokenInfo, int]]


@dataclass(frozen=True)
class FlowNode:
    key: str
    label: str
    column: int
    """0 donors, 1 projects and grants, 2 milestones and forwarded gifts, 3 where the money
    ended up."""
    kind: str
    """donor, project, grant, milestone, forward, recipient, returned or held."""
    href: str | None = None
    """A page of the site about this node, relative to the site's root."""


@dataclass(frozen=True)
class FlowLink:
    source: str
    target: str
    amount: int
    kind: str
    """gift, funding, forward, allocation, release, return or held: how the diagram colours it."""


@dataclass(frozen=True)
class FundsFlow:
    """The funds-flow diagram of one token."""

    token: TokenInfo
    nodes: list[FlowNode]
    links: list[FlowLink]


@dataclass(frozen=True)
class Gift:
    """One gift or funding by a donor, and where it went first."""

    kind: str
    """project: to a project's payout address; grant: into a grant through the registry;
    funding: straight into a grant's escrow."""
    token: TokenInfo
    amount: int
    timestamp: int
    tx_hash: str
    project_id: int | None
    grant_id: int | None
    forwarded_to: str | None
    """For a project gift: the payout address the registry forwarded it to."""


@dataclass(frozen=True)
class ShareRow:
    """The outcome of a donor's part of one milestone, or of a refund."""

    milestone: int | None
    """None for a refund after failed funding."""
    outcome: str
    """released, returned or held."""
    amount: int
    exact: bool
    """True for an amount paid to the donor; False for a pro-rata share of a payment to the
    recipient or of what the escrow still holds."""
    tx_hash: str | None


@dataclass(frozen=True)
class GrantShare:
    """A donor's contribution to one grant, and its fate milestone by milestone."""

    grant_id: int
    token: TokenInfo
    contribution: int
    rows: list[ShareRow]


@dataclass(frozen=True)
class DonorRecord:
    address: str
    gifts: list[Gift]
    shares: list[GrantShare]
    credits: list[tuple[TokenInfo, int]]
    """Credited payouts this donor can still withdraw."""


@dataclass(frozen=True)
class SiteData:
    chain_id: int
    escrow: str
    registry: str
    last_block: int
    now: int
    """The timestamp of the last indexed block: the time grant statuses refer to."""
    totals: list[TokenTotals]
    grants: list[GrantPage]
    projects: list[ProjectRow]
    flows: list[FundsFlow]
    donors: list[DonorRecord] = field(default_factory=list)


def ledger_tokens(books: Books) -> set[str]:
    """Return the address of every token that the books mention."""
    return (
        books.tokens()
        | {donation.token for donation in books.donations}
        | {token for project in books.projects.values() for token in project.donated}
    )


def build_site_data(
    books: Books,
    tokens: dict[str, TokenInfo],
    *,
    chain_id: int,
    escrow: str,
    registry: str,
    last_block: int,
    now: int,
) -> SiteData:
    """Compute every figure of the dashboard from `books`.

    `tokens` maps each address of `ledger_tokens(books)` to its symbol and decimals. Raises
    `DashboardError` when one is missing, because amounts cannot be shown without decimals.
    """
    missing = sorted(ledger_tokens(books) - tokens.keys())
    if missing:
        raise DashboardError(
            f"No symbol and decimals for the token(s) {', '.join(missing)}. Pass a TokenInfo "
            "for every address that ledger_tokens(books) returns."
        )
    payout_projects = {project.payout: project.project_id for project in books.projects.values()}
    grants = [
        grant_page(grant, tokens[grant.token], now, payout_projects.get(grant.recipient), registry)
        for grant in sorted(books.grants.values(), key=lambda grant: grant.grant_id)
    ]
    projects = [
        ProjectRow(
            project.project_id,
            project.status,
            project.payout,
            project.metadata_uri,
            [(tokens[token], amount) for token, amount in project.donated.items()],
        )
        for project in sorted(books.projects.values(), key=lambda project: project.project_id)
    ]
    ordered_tokens = _ordered_tokens(books, tokens)
    return SiteData(
        chain_id=chain_id,
        escrow=escrow,
        registry=registry,
        last_block=last_block,
        now=now,
        totals=[token_totals(books, token) for token in ordered_tokens],
        grants=grants,
        projects=projects,
        flows=[funds_flow(books, token, payout_projects) for token in ordered_tokens],
        donors=donor_records(books, tokens),
    )


def _ordered_tokens(books: Books, tokens: dict[str, TokenInfo]) -> list[TokenInfo]:
    """Return the books' tokens by symbol, then address, so pages list them in a stable order."""
    return sorted((tokens[address] for address in ledger_tokens(books)), key=lambda t: (t.symbol, t.address))


def token_totals(books: Books, token: TokenInfo) -> TokenTotals:
    grants = [grant for grant in books.grants.values() if grant.token == token.address]
    return TokenTotals(
        token=token,
        grants=len(grants),
        committed=sum(grant.total for grant in grants),
        funded=sum(grant.funded for grant in grants),
        released=sum(grant.released for grant in grants),
        reclaimed=sum(grant.reclaimed for grant in grants),
        held=sum(grant.held for grant in grants),
        donations=sum(donation.amount for donation in books.donations if donation.token == token.address),
        credits=books.total_credits(token.address),
    )


def grant_page(
    grant: GrantBook, token: TokenInfo, now: int, recipient_project: int | None, registry: str
) -> GrantPage:
    milestones = [
        MilestoneRow(
            index=milestone.index,
            amount=milestone.amount,
            deadline=milestone.deadline,
            status=milestone.status,
            approvals=len(milestone.approvals),
            evidence_uri=milestone.evidence[-1].uri if milestone.evidence else None,
            settled_at=milestone.settled.timestamp if milestone.settled else None,
            settled_tx=milestone.settled.tx_hash if milestone.settled else None,
            past_deadline=milestone.settled is None and now > milestone.deadline,
        )
        for milestone in grant.milestones
    ]
    return GrantPage(
        grant_id=grant.grant_id,
        token=token,
        status=grant.status(now),
        creator=grant.creator,
        recipient=grant.recipient,
        recipient_project=recipient_project,
        threshold=grant.threshold,
        attestors=list(grant.attestors),
        funding_deadline=grant.funding_deadline,
        terms_hash=grant.terms_hash,
        terms_uri=grant.terms_uri,
        total=grant.total,
        funded=grant.funded,
        released=grant.released,
        reclaimed=grant.reclaimed,
        held=grant.held,
        contributions=list(grant.contributions.items()),
        milestones=milestones,
        timeline=grant_timeline(grant, registry),
    )


def grant_timeline(grant: GrantBook, registry: str) -> list[TimelineEntry]:
    """Return every event of `grant` that the books keep, in chain order."""
    created = grant.created
    milestones = f"{len(grant.milestones)} milestone" + ("" if len(grant.milestones) == 1 else "s")
    entries = [
        TimelineEntry(
            created.timestamp, created.block_number, created.log_index, created.tx_hash,
            "Grant created", grant.creator, grant.total,
            f"{milestones}, {grant.threshold} of {len(grant.attestors)} attestors",
        )
    ]
    for funder, payer, amount, mark in grant.fundings:
        if payer == funder:
            detail = ""
        elif payer == registry:
            detail = "a gift through the donation registry"
        else:
            detail = f"paid by {payer}"
        entries.append(
            TimelineEntry(mark.timestamp, mark.block_number, mark.log_index, mark.tx_hash,
                          "Funded", funder, amount, detail)
        )
    for milestone in grant.milestones:
        for evidence in milestone.evidence:
            mark = evidence.mark
            entries.append(
                TimelineEntry(
                    mark.timestamp, mark.block_number, mark.log_index, mark.tx_hash,
                    f"Milestone {milestone.index} evidence submitted", evidence.submitter, None,
                    evidence.uri + (" (rejected)" if evidence.rejected else ""),
                )
            )
        for vote in milestone.votes:
            mark = vote.mark
            verb = "approved" if vote.approved else "rejected"
            detail = f"relayed by {vote.relayer}" if vote.relayer else ""
            entries.append(
                TimelineEntry(mark.timestamp, mark.block_number, mark.log_index, mark.tx_hash,
                              f"Milestone {milestone.index} {verb}", vote.attestor, None, detail)
            )
    for payout in grant.payouts:
        mark = payout.mark
        if payout.kind == "release":
            event = f"Milestone {payout.milestone_index} released"
        elif payout.kind == "reclaim":
            event = f"Milestone {payout.milestone_index} reclaimed"
        else:
            event = "Refunded"
        detail = "credited: the transfer failed, so the amount waits to be withdrawn" if payout.credited else ""
        entries.append(
            TimelineEntry(mark.timestamp, mark.block_number, mark.log_index, mark.tx_hash,
                          event, payout.account, payout.amount, detail)
        )
    return sorted(entries, key=lambda entry: (entry.block_number, entry.log_index))


def funds_flow(books: Books, token: TokenInfo, payout_projects: dict[str, int]) -> FundsFlow:
    """Return the flow of `token` from donors through projects, grants and milestones.

    Money ends at a recipient, back with the funders, or still in the escrow.
    """
    nodes: dict[str, FlowNode] = {}
    links: dict[tuple[str, str, str], int] = defaultdict(int)

    def add_link(source: str, target: str, amount: int, kind: str) -> None:
        if amount > 0:
            links[(source, target, kind)] += amount

    def recipient_node(address: str) -> str:
        key = f"recipient:{address}"
        project_id = payout_projects.get(address)
        label = f"{_short(address)} (project {project_id} payout)" if project_id else _short(address)
        nodes.setdefault(key, FlowNode(key, label, 3, "recipient"))
        return key

    returned = FlowNode("returned", "Returned to funders", 3, "returned")
    held = FlowNode("held", "Held in escrow", 3, "held")

    given = _donor_amounts(books, token.address)
    donor_key = _donor_keys(given)
    for address in given:
        key = donor_key[address]
        if key not in nodes:
            others = sum(1 for value in donor_key.values() if value == key)
            label = _short(address) if key != "donor:others" else f"{others} other donors"
            href = f"donors.html#{address}" if key != "donor:others" else "donors.html"
            nodes[key] = FlowNode(key, label, 0, "donor", href)

    for donation in books.donations:
        if donation.token != token.address or donation.project_id is None:
            continue
        project_key = f"project:{donation.project_id}"
        nodes.setdefault(project_key, FlowNode(project_key, f"Project {donation.project_id}", 1, "project"))
        # The registry forwards a direct gift in the same transaction. The diagram still
        # passes it through the milestone column, so that no band crosses that column's nodes.
        forward_key = f"forward:{donation.project_id}"
        nodes.setdefault(
            forward_key, FlowNode(forward_key, f"Project {donation.project_id}: forwarded at once", 2, "forward")
        )
        add_link(donor_key[donation.donor], project_key, donation.amount, "gift")
        add_link(project_key, forward_key, donation.amount, "forward")
        add_link(forward_key, recipient_node(donation.payout), donation.amount, "release")

    for grant in sorted(books.grants.values(), key=lambda grant: grant.grant_id):
        if grant.token != token.address:
            continue
        grant_key = f"grant:{grant.grant_id}"
        nodes[grant_key] = FlowNode(grant_key, f"Grant {grant.grant_id}", 1, "grant",
                                    f"grants/grant-{grant.grant_id}.html")
        for funder, amount in grant.contributions.items():
            add_link(donor_key[funder], grant_key, amount, "funding")
        if grant.funded < grant.total:
            # An underfunded grant releases nothing: its money is held or refunded as a whole.
            add_link(grant_key, "returned", grant.reclaimed, "return")
            add_link(grant_key, "held", grant.held, "held")
            continue
        for milestone in grant.milestones:
            milestone_key = f"milestone:{grant.grant_id}:{milestone.index}"
            nodes[milestone_key] = FlowNode(
                milestone_key, f"Grant {grant.grant_id} milestone {milestone.index}", 2, "milestone",
                f"grants/grant-{grant.grant_id}.html",
            )
            add_link(grant_key, milestone_key, milestone.amount, "allocation")
            if milestone.status == MilestoneStatus.Released:
                add_link(milestone_key, recipient_node(grant.recipient), milestone.amount, "release")
            elif milestone.status == MilestoneStatus.Reclaimed:
                add_link(milestone_key, "returned", milestone.amount, "return")
            else:
                add_link(milestone_key, "held", milestone.amount, "held")

    used = {key for source, target, _ in links for key in (source, target)}
    for node in (returned, held):
        if node.key in used:
            nodes[node.key] = node
    ordered = sorted((node for node in nodes.values() if node.key in used), key=lambda node: node.column)
    return FundsFlow(
        token,
        ordered,
        [FlowLink(source, target, amount, kind) for (source, target, kind), amount in links.items()],
    )


def _donor_amounts(books: Books, token: str) -> dict[str, int]:
    """Return what each donor gave in `token`, largest first: project gifts and grant funding."""
    given: dict[str, int] = defaultdict(int)
    for donation in books.donations:
        if donation.token == token and donation.project_id is not None:
            given[donation.donor] += donation.amount
    for grant in books.grants.values():
        if grant.token == token:
            for funder, amount in grant.contributions.items():
                given[funder] += amount
    return dict(sorted(given.items(), key=lambda item: -item[1]))


def _donor_keys(given: dict[str, int]) -> dict[str, str]:
    """Map each donor to their diagram node, with all but the largest sharing one node."""
    keys = {}
    for rank, address in enumerate(given):
        # Grouping a single donor would hide a name and save nothing.
        grouped = len(given) > MAX_DONOR_NODES and rank >= MAX_DONOR_NODES - 1
        keys[address] = "donor:others" if grouped else f"donor:{address}"
    return keys


def donor_records(books: Books, tokens: dict[str, TokenInfo]) -> list[DonorRecord]:
    """Return every donor and funder with their gifts and what became of them, by address.

    NOTE: The donor lookup page contains all of these records, so its size grows with the
    number of donors. On the demo's ledger a record is 0.9 KB of HTML for one project gift
    and 2.4 KB for a grant funder with three milestones.
    """
    gifts: dict[str, list[Gift]] = defaultdict(list)
    registry_fundings = set()
    for donation in books.donations:
        kind = "project" if donation.project_id is not None else "grant"
        gifts[donation.donor].append(
            Gift(kind, tokens[donation.token], donation.amount, donation.mark.timestamp,
                 donation.mark.tx_hash, donation.project_id, donation.grant_id, donation.payout)
        )
        if donation.grant_id is not None:
            registry_fundings.add((donation.mark.tx_hash, donation.donor, donation.grant_id))
    for grant in books.grants.values():
        for funder, _, amount, mark in grant.fundings:
            # A gift into a grant through the registry also funds the grant, in the same
            # transaction; it is listed once, as the gift.
            if (mark.tx_hash, funder, grant.grant_id) in registry_fundings:
                continue
            gifts[funder].append(
                Gift("funding", tokens[grant.token], amount, mark.timestamp, mark.tx_hash, None,
                     grant.grant_id, None)
            )

    records = []
    for address in sorted(gifts, key=str.lower):
        shares = [
            grant_share(grant, address, tokens[grant.token])
            for grant in sorted(books.grants.values(), key=lambda grant: grant.grant_id)
            if address in grant.contributions
        ]
        credits = [
            (tokens[token], amount)
            for (account, token), amount in sorted(books.credits.items())
            if account == address and amount > 0
        ]
        records.append(
            DonorRecord(address, sorted(gifts[address], key=lambda gift: gift.timestamp), shares, credits)
        )
    return records


def grant_share(grant: GrantBook, funder: str, token: TokenInfo) -> GrantShare:
    """Return what became of `funder`'s contribution to `grant`, milestone by milestone.

    Payouts to the funder (reclaims and refunds) are exact. The contract pays a released
    milestone to the recipient as one sum and keeps no funder's part of it. So the funder's
    part of a release, and of what the escrow still holds, is their pro-rata share by the
    statements' rule (`pro_rata_shares`). Each share is rounded down, and the first funder gets
    the remainder, as when the escrow splits a reclaim.
    """
    contribution = grant.contributions[funder]
    rows = []
    if grant.funded < grant.total:
        for payout in grant.payouts:
            if payout.kind == "refund" and payout.account == funder:
                rows.append(ShareRow(None, "returned", payout.amount, True, payout.mark.tx_hash))
        if funder not in grant.refunded:
            rows.append(ShareRow(None, "held", contribution, True, None))
        return GrantShare(grant.grant_id, token, contribution, rows)

    for milestone in grant.milestones:
        share = pro_rata_shares(milestone.amount, grant.contributions, grant.funded)[funder]
        if milestone.status == MilestoneStatus.Released:
            rows.append(ShareRow(milestone.index, "released", share, False, milestone.settled.tx_hash))
        elif milestone.status == MilestoneStatus.Reclaimed:
            paid = sum(
                payout.amount
                for payout in grant.payouts
                if payout.kind == "reclaim"
                and payout.milestone_index == milestone.index
                and payout.account == funder
            )
            rows.append(ShareRow(milestone.index, "returned", paid, True, milestone.settled.tx_hash))
        else:
            rows.append(ShareRow(milestone.index, "held", share, False, None))
    return GrantShare(grant.grant_id, token, contribution, rows)


def _short(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}"
