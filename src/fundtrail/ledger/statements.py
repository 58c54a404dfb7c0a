"""Statements of a grant, a project or a donor, built from the ledger's books.

A statement is a tree of dataclasses. `to_json()` turns it into plain JSON-ready data, the form
that `fundtrail report --format json` writes and the dashboard reads, and `movements()` lists
its movements of money as flat `Movement` rows, the form of `--format csv`.

The JSON form is stable for a given `FORMAT_VERSION`:

- the top level has `kind` ("grant", "project" or "donor"), `format_version` and `source`
  (chain id, contract addresses, and the last indexed block with its time);
- field names are those of the dataclasses below;
- an amount is `{"base_units": int, "formatted": "1,250.5 USDC"}`. Base units are exact
  integers. NOTE: JavaScript's `JSON.parse` reads integers above 2**53 as inexact floats, so a
  JavaScript reader needs a BigInt-aware parser for 18-decimal tokens such as ETH;
- every event has `at`: `{"tx_hash", "block_number", "log_index", "timestamp", "time"}`,
  where `timestamp` is Unix seconds and `time` is ISO 8601 in UTC;
- a deadline is `{"timestamp", "time"}`;
- a token is `{"address", "symbol", "decimals"}`, with address 0x0...0 for ETH;
- addresses are EIP-55 checksummed; hashes are 0x and 64 lowercase hex digits.
"""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from enum import Enum

import sqlalchemy as sa
from eth_utils import is_address, to_checksum_address

from fundtrail.checks import show_time
from fundtrail.errors import FundTrailError, SpecError
from fundtrail.grants import GrantStatus, MilestoneStatus
from fundtrail.ledger import schema
from fundtrail.ledger.books import ZERO_HASH, Books, Donation, GrantBook, Mark, PayoutRecord, rebuild
from fundtrail.units import ETH, ETH_ADDRESS, TokenInfo, format_amount

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Version of the JSON form. It changes only when a field is renamed, removed or changes meaning."""

TokenLookup = Callable[[str], TokenInfo]
"""Returns the `TokenInfo` of a token address, such as `FundTrail.token_info`."""


class NotInLedgerError(FundTrailError, LookupError):
    """The ledger has no grant or project with the requested id."""


class UnknownTokenError(FundTrailError, LookupError):
    """A token of a statement is missing from the mapping of token details passed in."""


def token_lookup(tokens: Mapping[str, TokenInfo] | TokenLookup) -> TokenLookup:
    """Return a lookup of token details from a mapping by address, or from a lookup function.

    ETH (address 0x0...0) is always `units.ETH`, with 18 decimals, so neither a mapping nor a
    function needs to know it. A function such as `FundTrail.token_info` would otherwise ask the
    zero address for an ERC-20 symbol.
    """
    if callable(tokens):
        lookup_function = tokens

        def lookup_with_eth(address: str) -> TokenInfo:
            return ETH if address == ETH_ADDRESS else lookup_function(address)

        return lookup_with_eth
    by_address = {ETH_ADDRESS: ETH} | {to_checksum_address(key): info for key, info in tokens.items()}

    def lookup(address: str) -> TokenInfo:
        try:
            return by_address[to_checksum_address(address)]
        except KeyError:
            raise UnknownTokenError(
                f"Token {address} is missing from the token details passed in. Add its symbol "
                "and decimals to the mapping, or read tokens from the chain with "
                "`FundTrail.token_info`."
            ) from None

    return lookup


# Building blocks of every statement.


@dataclass(frozen=True)
class Amount:
    """An exact amount of a token, in base units."""

    base_units: int
    token: TokenInfo

    @property
    def formatted(self) -> str:
        return format_amount(self.base_units, self.token)

    def to_json(self) -> dict:
        return {"base_units": self.base_units, "formatted": self.formatted}


@dataclass(frozen=True)
class Moment:
    """A point in time without a transaction, such as a deadline."""

    timestamp: int
    """Unix seconds."""

    @property
    def time(self) -> str:
        return show_time(self.timestamp)

    def to_json(self) -> dict:
        return {"timestamp": self.timestamp, "time": self.time}


def mark_json(mark: Mark) -> dict:
    """Return the JSON form of the event position `mark`, with its time in both forms."""
    return {
        "tx_hash": mark.tx_hash,
        "block_number": mark.block_number,
        "log_index": mark.log_index,
        "timestamp": mark.timestamp,
        "time": show_time(mark.timestamp),
    }


def to_json(value):
    """Return the JSON-ready form of a statement or any part of one."""
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, Mark):
        return mark_json(value)
    if isinstance(value, TokenInfo):
        return {"address": value.address, "symbol": value.symbol, "decimals": value.decimals}
    if isinstance(value, Enum):
        return value.name
    if is_dataclass(value):
        return {item.name: to_json(getattr(value, item.name)) for item in fields(value)}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    return value


@dataclass(frozen=True)
class Source:
    """The contracts a statement covers, and the last block it includes."""

    chain_id: int
    escrow: str
    registry: str
    last_block: int
    """The last block the ledger has read. Later events are not in the statement."""
    last_block_time: Moment | None
    """The time of `last_block`, or None for a ledger that has read no block yet."""

    @classmethod
    def from_ledger(cls, ledger) -> "Source":
        meta = ledger.meta()
        last_block = int(meta["last_block"])
        query = sa.select(schema.blocks.c.timestamp).where(schema.blocks.c.number == last_block)
        with ledger.engine.connect() as connection:
            timestamp = connection.execute(query).scalar_one_or_none()
        return cls(
            chain_id=int(meta["chain_id"]),
            escrow=meta["escrow"],
            registry=meta["registry"],
            last_block=last_block,
            last_block_time=None if timestamp is None else Moment(timestamp),
        )


@dataclass(frozen=True)
class Movement:
    """One movement of money, as a row of the CSV form.

    A credited payout stayed in the escrow as a credit of `account`: `to_address` is the account
    it is owed to, and a later withdrawal moves it. A `release_share` is the donor's part of a
    release, worked out by `pro_rata_shares`, not a transfer of its own.
    """

    kind: str
    """`funding`, `donation`, `release`, `release_share`, `reclaim`, `refund` or `withdrawal`."""
    at: Mark
    account: str
    """The party the movement belongs to: the funder, donor, recipient or credit holder."""
    from_address: str
    to_address: str
    amount: Amount
    grant_id: int | None = None
    project_id: int | None = None
    milestone_index: int | None = None
    credited: bool = False
    donation_id: int | None = None
    evidence_hash: str | None = None
    """The released evidence, for `release` and `release_share`."""
    donor_ref: str | None = None

    def to_row(self) -> dict:
        """Return the CSV row, keyed by `CSV_COLUMNS`."""
        return {
            "time": show_time(self.at.timestamp),
            "timestamp": self.at.timestamp,
            "block_number": self.at.block_number,
            "log_index": self.at.log_index,
            "tx_hash": self.at.tx_hash,
            "kind": self.kind,
            "grant_id": _blank_if_none(self.grant_id),
            "project_id": _blank_if_none(self.project_id),
            "milestone_index": _blank_if_none(self.milestone_index),
            "account": self.account,
            "from": self.from_address,
            "to": self.to_address,
            "token": self.amount.token.address,
            "symbol": self.amount.token.symbol,
            "base_units": self.amount.base_units,
            "amount": self.amount.formatted,
            "credited": "yes" if self.credited else "no",
            "donation_id": _blank_if_none(self.donation_id),
            "evidence_hash": self.evidence_hash or "",
            "donor_ref": self.donor_ref or "",
        }


CSV_COLUMNS = (
    "time",
    "timestamp",
    "block_number",
    "log_index",
    "tx_hash",
    "kind",
    "grant_id",
    "project_id",
    "milestone_index",
    "account",
    "from",
    "to",
    "token",
    "symbol",
    "base_units",
    "amount",
    "credited",
    "donation_id",
    "evidence_hash",
    "donor_ref",
)
"""The CSV header, in column order."""


def pro_rata_shares(amount: int, contributions: Mapping[str, int], funded: int) -> dict[str, int]:
    """Split `amount` between the funders of a grant by their contributions, as the escrow does.

    Every funder but the first gets `amount * contribution // funded`: exact integer
    arithmetic, rounded down to a whole base unit. The first funder, in the order of their
    first contribution (the order of `contributions`), gets the rest, so the shares add up to
    `amount` exactly and the first funder absorbs every rounding remainder. The escrow splits
    a reclaim by this rule, and the statements split releases by it too. A funder whose share
    rounds down to zero gets 0, as the escrow skips them.
    """
    funders = list(contributions)
    if not funders or funded <= 0:
        return {}
    shares = {funder: amount * contributions[funder] // funded for funder in funders[1:]}
    first = {funders[0]: amount - sum(shares.values())}
    return first | shares


# The grant statement.


@dataclass(frozen=True)
class MilestoneTerms:
    index: int
    amount: Amount
    deadline: Moment
    """Release needs the quorum before this time. From this time on, anyone may reclaim."""
    status: MilestoneStatus
    evidence_hash: str | None
    """The evidence under review or released, or None when no evidence is pending."""
    settled: Mark | None
    """The release or reclaim, or None while the milestone is open."""


@dataclass(frozen=True)
class GrantTerms:
    """The terms fixed when the grant was created."""

    creator: str
    recipient: str
    token: TokenInfo
    funding_deadline: Moment
    threshold: int
    """Attestor approvals needed to release a milestone."""
    attestors: list[str]
    total: Amount
    milestones: list[MilestoneTerms]
    terms_hash: str
    terms_uri: str


@dataclass(frozen=True)
class Funding:
    """One contribution to a grant."""

    funder: str
    payer: str
    """The address the money came from: the funder, the registry for a donation, or a third party."""
    amount: Amount
    donation_id: int | None
    """The registry's donation id when the contribution came through `donateToGrant`."""
    donor_ref: str | None
    at: Mark


@dataclass(frozen=True)
class Funder:
    funder: str
    contribution: Amount
    refunded: bool
    fundings: list[Funding]


@dataclass(frozen=True)
class EvidenceEntry:
    milestone_index: int
    evidence_hash: str
    uri: str
    submitter: str
    rejected: bool
    """The attestors' rejections put the quorum out of reach, so this hash can never be used again."""
    relayer: str | None
    """The account that submitted the recipient's offline signature, or None for an on-chain submission."""
    at: Mark


@dataclass(frozen=True)
class VoteEntry:
    """An attestor's approval or rejection of one evidence hash."""

    milestone_index: int
    attestor: str
    approved: bool
    evidence_hash: str
    reason_hash: str | None
    """For a rejection: the hash of the attestor's written reasons, which stay off-chain."""
    relayer: str | None
    """The account that submitted the attestor's offline signature, or None for an on-chain vote."""
    at: Mark


@dataclass(frozen=True)
class Release:
    milestone_index: int
    recipient: str
    evidence_hash: str
    amount: Amount
    credited: bool
    """The transfer failed, so the amount became a credit of the recipient to withdraw."""
    at: Mark


@dataclass(frozen=True)
class Share:
    """One funder's share of a reclaimed milestone, from its `Payout` event."""

    funder: str
    amount: Amount
    credited: bool
    at: Mark


@dataclass(frozen=True)
class Reclaim:
    milestone_index: int
    amount: Amount
    shares: list[Share]
    """Each funder's share, as paid or credited. A funder whose share rounds to 0 is absent."""
    at: Mark


@dataclass(frozen=True)
class Refund:
    funder: str
    amount: Amount
    credited: bool
    at: Mark


@dataclass(frozen=True)
class WithdrawalEntry:
    account: str
    to: str
    amount: Amount
    at: Mark


@dataclass(frozen=True)
class GrantTotals:
    funded: Amount
    released: Amount
    reclaimed: Amount
    """Reclaimed milestones and refunds together, as the escrow counts them."""
    held: Amount
    """Still in the escrow for open milestones or refunds not yet claimed."""


@dataclass(frozen=True)
class GrantStatement:
    """Everything that happened to one grant, from its terms to its last payout."""

    source: Source
    grant_id: int
    status: GrantStatus
    """The status at the time of `source.last_block`, by the escrow's rule."""
    terms: GrantTerms
    created: Mark
    totals: GrantTotals
    funders: list[Funder]
    """In the order of their first contribution, the escrow's funder order."""
    evidence: list[EvidenceEntry]
    votes: list[VoteEntry]
    releases: list[Release]
    reclaims: list[Reclaim]
    refunds: list[Refund]
    withdrawals: list[WithdrawalEntry]
    """Credit withdrawals in the grant's token by accounts this grant credited, after the credit.

    NOTE: the escrow pools each account's credits per token over all grants, so a withdrawal
    listed here can include credits from other grants.
    """

    def to_json(self) -> dict:
        return _statement_json("grant", self)

    def movements(self) -> list[Movement]:
        """Return the grant's movements of money, in chain order."""
        escrow = self.source.escrow
        rows = []
        for funder in self.funders:
            for funding in funder.fundings:
                rows.append(
                    Movement(
                        "funding",
                        funding.at,
                        funder.funder,
                        funding.payer,
                        escrow,
                        funding.amount,
                        grant_id=self.grant_id,
                        donation_id=funding.donation_id,
                        donor_ref=funding.donor_ref,
                    )
                )
        for release in self.releases:
            rows.append(_release_movement(self.grant_id, release, escrow))
        for reclaim in self.reclaims:
            for share in reclaim.shares:
                rows.append(
                    Movement(
                        "reclaim",
                        share.at,
                        share.funder,
                        escrow,
                        share.funder,
                        share.amount,
                        grant_id=self.grant_id,
                        milestone_index=reclaim.milestone_index,
                        credited=share.credited,
                    )
                )
        for refund in self.refunds:
            rows.append(_refund_movement(self.grant_id, refund, escrow))
        for withdrawal in self.withdrawals:
            rows.append(_withdrawal_movement(withdrawal, escrow))
        return _in_chain_order(rows)


def grant_statement(
    books: Books, grant_id: int, tokens: Mapping[str, TokenInfo] | TokenLookup, source: Source
) -> GrantStatement:
    """Build the statement of grant `grant_id`, or raise `NotInLedgerError` if the ledger has none."""
    grant = _require_grant(books, grant_id, source)
    token = token_lookup(tokens)(grant.token)

    def amount(base_units: int) -> Amount:
        return Amount(base_units, token)

    milestones = [
        MilestoneTerms(
            index=milestone.index,
            amount=amount(milestone.amount),
            deadline=Moment(milestone.deadline),
            status=milestone.status,
            evidence_hash=None if milestone.evidence_hash == ZERO_HASH else milestone.evidence_hash,
            settled=milestone.settled,
        )
        for milestone in grant.milestones
    ]
    terms = GrantTerms(
        creator=grant.creator,
        recipient=grant.recipient,
        token=token,
        funding_deadline=Moment(grant.funding_deadline),
        threshold=grant.threshold,
        attestors=list(grant.attestors),
        total=amount(grant.total),
        milestones=milestones,
        terms_hash=grant.terms_hash,
        terms_uri=grant.terms_uri,
    )

    fundings = _fundings(books, grant, token)
    funders = [
        Funder(
            funder=funder,
            contribution=amount(contribution),
            refunded=funder in grant.refunded,
            fundings=[funding for funding in fundings if funding.funder == funder],
        )
        for funder, contribution in grant.contributions.items()
    ]

    evidence = []
    votes = []
    for milestone in grant.milestones:
        evidence.extend(
            EvidenceEntry(
                milestone_index=milestone.index,
                evidence_hash=item.evidence_hash,
                uri=item.uri,
                submitter=item.submitter,
                rejected=item.rejected,
                relayer=books.relays.get((item.mark.tx_hash, item.submitter)),
                at=item.mark,
            )
            for item in milestone.evidence
        )
        votes.extend(
            VoteEntry(
                milestone.index,
                vote.attestor,
                vote.approved,
                vote.evidence_hash,
                vote.reason_hash,
                vote.relayer,
                vote.mark,
            )
            for vote in milestone.votes
        )

    return GrantStatement(
        source=source,
        grant_id=grant_id,
        status=_grant_status(grant, source),
        terms=terms,
        created=grant.created,
        totals=GrantTotals(
            funded=amount(grant.funded),
            released=amount(grant.released),
            reclaimed=amount(grant.reclaimed),
            held=amount(grant.held),
        ),
        funders=funders,
        evidence=_in_chain_order(evidence),
        votes=_in_chain_order(votes),
        releases=_releases(grant, token),
        reclaims=_reclaims(grant, token),
        refunds=[
            Refund(payout.account, Amount(payout.amount, token), payout.credited, payout.mark)
            for payout in grant.payouts
            if payout.kind == "refund"
        ],
        withdrawals=_grant_withdrawals(books, grant, token),
    )


def _require_grant(books: Books, grant_id: int, source: Source) -> GrantBook:
    grant = books.grants.get(grant_id)
    if grant is not None:
        return grant
    known = f"grants {min(books.grants)} to {max(books.grants)}" if books.grants else "no grants"
    raise NotInLedgerError(
        f"Grant {grant_id} is not in the ledger, which has {known} up to block "
        f"{source.last_block}. Check the id with `fundtrail grant list`; if the grant is newer "
        "than that block, bring the ledger up to date with `fundtrail index` first."
    )


def _grant_status(grant: GrantBook, source: Source) -> GrantStatus:
    # A ledger that contains a grant has read its block, so the time is known in practice. The
    # fallback keeps the function total.
    if source.last_block_time is not None:
        now = source.last_block_time.timestamp
    else:
        now = grant.created.timestamp
    return grant.status(now)


def _fundings(books: Books, grant: GrantBook, token: TokenInfo) -> list[Funding]:
    """Return every contribution to `grant`, with the registry donation that paid it, if any.

    The registry emits `GrantDonation` and then has the escrow emit `GrantFunded` in the same
    transaction, so each donation matches the first unmatched funding of that transaction with
    the same grant, funder and amount.
    """
    unmatched: list[Donation] = [donation for donation in books.donations if donation.grant_id == grant.grant_id]
    result = []
    for funder, payer, base_units, mark in grant.fundings:
        donation = next(
            (
                item
                for item in unmatched
                if item.mark.tx_hash == mark.tx_hash
                and item.donor == funder
                and item.amount == base_units
                and item.mark.log_index < mark.log_index
            ),
            None,
        )
        if donation is not None:
            unmatched.remove(donation)
        result.append(
            Funding(
                funder=funder,
                payer=payer,
                amount=Amount(base_units, token),
                donation_id=None if donation is None else donation.donation_id,
                donor_ref=None if donation is None else donation.donor_ref,
                at=mark,
            )
        )
    return result


def _releases(grant: GrantBook, token: TokenInfo) -> list[Release]:
    return [
        Release(
            milestone_index=payout.milestone_index,
            recipient=payout.account,
            evidence_hash=grant.milestones[payout.milestone_index].evidence_hash,
            amount=Amount(payout.amount, token),
            credited=payout.credited,
            at=payout.mark,
        )
        for payout in grant.payouts
        if payout.kind == "release"
    ]


def _reclaims(grant: GrantBook, token: TokenInfo) -> list[Reclaim]:
    reclaims = []
    for milestone in grant.milestones:
        if milestone.settled is None or milestone.status != MilestoneStatus.Reclaimed:
            continue
        payouts = _payouts(grant, "reclaim", milestone.index)
        reclaims.append(
            Reclaim(
                milestone_index=milestone.index,
                amount=Amount(milestone.amount, token),
                shares=[
                    Share(payout.account, Amount(payout.amount, token), payout.credited, payout.mark)
                    for payout in payouts
                ],
                at=milestone.settled,
            )
        )
    return _in_chain_order(reclaims)


def _payouts(grant: GrantBook, kind: str, milestone_index: int | None = None) -> list[PayoutRecord]:
    return [
        payout
        for payout in grant.payouts
        if payout.kind == kind and (milestone_index is None or payout.milestone_index == milestone_index)
    ]


def _grant_withdrawals(books: Books, grant: GrantBook, token: TokenInfo) -> list[WithdrawalEntry]:
    first_credit: dict[str, Mark] = {}
    for payout in grant.payouts:
        if payout.credited:
            first_credit.setdefault(payout.account, payout.mark)
    return [
        WithdrawalEntry(item.account, item.to, Amount(item.amount, token), item.mark)
        for item in books.withdrawals
        if item.token == grant.token
        and item.account in first_credit
        and _position(item.mark) > _position(first_credit[item.account])
    ]


# The project statement.


@dataclass(frozen=True)
class TokenTotal:
    token: TokenInfo
    amount: Amount


@dataclass(frozen=True)
class ProjectDonationEntry:
    """A direct donation, forwarded by the registry to the payout address in the same transaction."""

    donation_id: int
    donor: str
    token: TokenInfo
    amount: Amount
    payout: str
    """The payout address the registry forwarded the donation to."""
    donor_ref: str
    """The donor's salted commitment, or 0x0...0 when the donor gave none."""
    at: Mark


@dataclass(frozen=True)
class ProjectGrant:
    """A grant whose recipient is the project's payout address, with its releases."""

    grant_id: int
    status: GrantStatus
    token: TokenInfo
    total: Amount
    funded: Amount
    released: Amount
    reclaimed: Amount
    held: Amount
    releases: list[Release]
    created: Mark


@dataclass(frozen=True)
class ProjectStatement:
    """A project's registration, the donations it received and the grants that pay it."""

    source: Source
    project_id: int
    admin: str
    payout: str
    status: str
    """`Pending`, `Verified` or `Suspended`."""
    metadata_hash: str
    metadata_uri: str
    registered: Mark
    donated: list[TokenTotal]
    """Direct donations added up by token."""
    donations: list[ProjectDonationEntry]
    grants: list[ProjectGrant]
    """Grants whose recipient is the current payout address.

    NOTE: grants to a payout address the project used before a change are not listed, because
    the books keep only the current payout address.
    """

    def to_json(self) -> dict:
        return _statement_json("project", self)

    def movements(self) -> list[Movement]:
        """Return the donations and grant releases the project received, in chain order."""
        rows = [
            Movement(
                "donation",
                donation.at,
                donation.donor,
                donation.donor,
                donation.payout,
                donation.amount,
                project_id=self.project_id,
                donation_id=donation.donation_id,
                donor_ref=donation.donor_ref,
            )
            for donation in self.donations
        ]
        for grant in self.grants:
            rows.extend(_release_movement(grant.grant_id, release, self.source.escrow) for release in grant.releases)
        return _in_chain_order(rows)


def project_statement(
    books: Books, project_id: int, tokens: Mapping[str, TokenInfo] | TokenLookup, source: Source
) -> ProjectStatement:
    """Build the statement of project `project_id`.

    Raise `NotInLedgerError` if the ledger has no such project.
    """
    project = books.projects.get(project_id)
    if project is None:
        known = f"projects {min(books.projects)} to {max(books.projects)}" if books.projects else "no projects"
        raise NotInLedgerError(
            f"Project {project_id} is not in the ledger, which has {known} up to block "
            f"{source.last_block}. Check the project id; if the project is newer than that "
            "block, bring the ledger up to date with `fundtrail index` first."
        )
    lookup = token_lookup(tokens)

    donations = [
        ProjectDonationEntry(
            donation_id=donation.donation_id,
            donor=donation.donor,
            token=lookup(donation.token),
            amount=Amount(donation.amount, lookup(donation.token)),
            payout=donation.payout,
            donor_ref=donation.donor_ref,
            at=donation.mark,
        )
        for donation in books.donations
        if donation.project_id == project_id
    ]
    grants = []
    for grant in books.grants.values():
        if grant.recipient != project.payout:
            continue
        token = lookup(grant.token)
        grants.append(
            ProjectGrant(
                grant_id=grant.grant_id,
                status=_grant_status(grant, source),
                token=token,
                total=Amount(grant.total, token),
                funded=Amount(grant.funded, token),
                released=Amount(grant.released, token),
                reclaimed=Amount(grant.reclaimed, token),
                held=Amount(grant.held, token),
                releases=_releases(grant, token),
                created=grant.created,
            )
        )

    return ProjectStatement(
        source=source,
        project_id=project_id,
        admin=project.admin,
        payout=project.payout,
        status=project.status,
        metadata_hash=project.metadata_hash,
        metadata_uri=project.metadata_uri,
        registered=project.registered,
        donated=[
            TokenTotal(lookup(address), Amount(total, lookup(address)))
            for address, total in project.donated.items()
        ],
        donations=donations,
        grants=grants,
    )


# The donor statement.


@dataclass(frozen=True)
class DirectGift:
    """A donation straight to a project, and the payout address it was forwarded to."""

    donation_id: int
    project_id: int
    token: TokenInfo
    amount: Amount
    forwarded_to: str
    donor_ref: str
    at: Mark


@dataclass(frozen=True)
class ReleaseShare:
    """The donor's part of one released milestone, by `pro_rata_shares`."""

    milestone_index: int
    evidence_hash: str
    """The evidence the attestors approved for the release."""
    recipient: str
    milestone_amount: Amount
    share: Amount
    credited: bool
    """The release became a credit of the recipient instead of a transfer."""
    at: Mark


@dataclass(frozen=True)
class ReturnedAmount:
    """An amount the escrow paid or credited back to the donor, from its `Payout` event."""

    kind: str
    """`reclaim` (a milestone missed its deadline) or `refund` (the grant missed full funding)."""
    milestone_index: int | None
    """The reclaimed milestone, or None for a refund."""
    amount: Amount
    credited: bool
    """The transfer failed, so the amount became a credit of the donor to withdraw."""
    at: Mark


@dataclass(frozen=True)
class GrantGift:
    """The donor's contributions to one grant, and where the money went."""

    grant_id: int
    status: GrantStatus
    token: TokenInfo
    recipient: str
    contribution: Amount
    """The donor's total contribution: the sum of `gifts`."""
    funded: Amount
    """The grant's funding from all funders. The donor's part of a milestone is contribution / funded."""
    gifts: list[Funding]
    released: list[ReleaseShare]
    returned: list[ReturnedAmount]
    released_total: Amount
    returned_total: Amount
    still_held: Amount
    """The donor's part of the money the escrow still holds for the grant.

    For a grant short of full funding, the whole contribution until it is refunded. For a fully
    funded grant, the donor's `pro_rata_shares` of each open milestone, which is what the donor
    gets back if every open milestone is reclaimed.
    """


@dataclass(frozen=True)
class Credit:
    """Credit the donor can still withdraw from the escrow, in one token."""

    token: TokenInfo
    amount: Amount


@dataclass(frozen=True)
class DonorStatement:
    """Every gift of one address, followed to where the money went."""

    source: Source
    donor: str
    direct_gifts: list[DirectGift]
    grants: list[GrantGift]
    """Grants the donor contributed to, by `fund`, by `fundFor` naming the donor as funder, or
    through the registry's `donateToGrant`, in the order of the donor's first contribution."""
    credits: list[Credit]
    withdrawals: list[WithdrawalEntry]
    """The donor's credit withdrawals, in every token."""

    def to_json(self) -> dict:
        return _statement_json("donor", self)

    def movements(self) -> list[Movement]:
        """Return the donor's gifts and what became of them, in chain order."""
        escrow = self.source.escrow
        rows = [
            Movement(
                "donation",
                gift.at,
                self.donor,
                self.donor,
                gift.forwarded_to,
                gift.amount,
                project_id=gift.project_id,
                donation_id=gift.donation_id,
                donor_ref=gift.donor_ref,
            )
            for gift in self.direct_gifts
        ]
        for grant in self.grants:
            for funding in grant.gifts:
                rows.append(
                    Movement(
                        "funding",
                        funding.at,
                        self.donor,
                        funding.payer,
                        escrow,
                        funding.amount,
                        grant_id=grant.grant_id,
                        donation_id=funding.donation_id,
                        donor_ref=funding.donor_ref,
                    )
                )
            for share in grant.released:
                rows.append(
                    Movement(
                        "release_share",
                        share.at,
                        self.donor,
                        escrow,
                        grant.recipient,
                        share.share,
                        grant_id=grant.grant_id,
                        milestone_index=share.milestone_index,
                        credited=share.credited,
                        evidence_hash=share.evidence_hash,
                    )
                )
            for returned in grant.returned:
                rows.append(
                    Movement(
                        returned.kind,
                        returned.at,
                        self.donor,
                        escrow,
                        self.donor,
                        returned.amount,
                        grant_id=grant.grant_id,
                        milestone_index=returned.milestone_index,
                        credited=returned.credited,
                    )
                )
        rows.extend(_withdrawal_movement(withdrawal, escrow) for withdrawal in self.withdrawals)
        return _in_chain_order(rows)


def donor_statement(
    books: Books, donor: str, tokens: Mapping[str, TokenInfo] | TokenLookup, source: Source
) -> DonorStatement:
    """Build the statement of the donor at address `donor`.

    An address with no gifts gets an empty statement, not an error: the ledger cannot tell a
    mistyped address from one that never gave. Raise `SpecError` when `donor` is not an address.
    """
    donor = donor_address(donor)
    lookup = token_lookup(tokens)

    direct_gifts = [
        DirectGift(
            donation_id=donation.donation_id,
            project_id=donation.project_id,
            token=lookup(donation.token),
            amount=Amount(donation.amount, lookup(donation.token)),
            forwarded_to=donation.payout,
            donor_ref=donation.donor_ref,
            at=donation.mark,
        )
        for donation in books.donations
        if donation.donor == donor and donation.project_id is not None
    ]
    grants = [
        _grant_gift(books, grant, donor, lookup(grant.token), source)
        for grant in sorted(
            (grant for grant in books.grants.values() if donor in grant.contributions),
            key=lambda grant: _position(_first_funding(grant, donor)),
        )
    ]
    credits = [
        Credit(lookup(token), Amount(amount, lookup(token)))
        for (account, token), amount in books.credits.items()
        if account == donor and amount > 0
    ]
    withdrawals = [
        WithdrawalEntry(item.account, item.to, Amount(item.amount, lookup(item.token)), item.mark)
        for item in books.withdrawals
        if item.account == donor
    ]
    logger.debug(
        "Donor %s: %s direct gifts, %s grants, %s credits", donor, len(direct_gifts), len(grants), len(credits)
    )
    return DonorStatement(source, donor, direct_gifts, grants, credits, withdrawals)


def donor_address(text: str) -> str:
    """Return `text` as a checksummed address, or raise `SpecError` if it is not an address."""
    if not isinstance(text, str) or not is_address(text.strip()):
        raise SpecError(
            "ADDRESS",
            text,
            "not an Ethereum address",
            "Pass the donor's address as 0x and 40 hex digits.",
        )
    return to_checksum_address(text.strip())


def _first_funding(grant: GrantBook, donor: str) -> Mark:
    return next(mark for funder, _, _, mark in grant.fundings if funder == donor)


def _grant_gift(books: Books, grant: GrantBook, donor: str, token: TokenInfo, source: Source) -> GrantGift:
    def amount(base_units: int) -> Amount:
        return Amount(base_units, token)

    fully_funded = grant.funded == grant.total
    released = []
    for payout in _payouts(grant, "release"):
        milestone = grant.milestones[payout.milestone_index]
        share = pro_rata_shares(payout.amount, grant.contributions, grant.funded)[donor]
        released.append(
            ReleaseShare(
                milestone_index=milestone.index,
                evidence_hash=milestone.evidence_hash,
                recipient=payout.account,
                milestone_amount=amount(payout.amount),
                share=amount(share),
                credited=payout.credited,
                at=payout.mark,
            )
        )
    returned = [
        ReturnedAmount(payout.kind, payout.milestone_index, amount(payout.amount), payout.credited, payout.mark)
        for payout in grant.payouts
        if payout.account == donor and payout.kind in ("reclaim", "refund")
    ]

    if not fully_funded:
        still_held = 0 if donor in grant.refunded else grant.contributions[donor]
    else:
        still_held = sum(
            pro_rata_shares(milestone.amount, grant.contributions, grant.funded)[donor]
            for milestone in grant.milestones
            if milestone.settled is None
        )

    return GrantGift(
        grant_id=grant.grant_id,
        status=_grant_status(grant, source),
        token=token,
        recipient=grant.recipient,
        contribution=amount(grant.contributions[donor]),
        funded=amount(grant.funded),
        gifts=[funding for funding in _fundings(books, grant, token) if funding.funder == donor],
        released=released,
        returned=returned,
        released_total=amount(sum(item.share.base_units for item in released)),
        returned_total=amount(sum(item.amount.base_units for item in returned)),
        still_held=amount(still_held),
    )


# Helpers shared by the statements.


def _statement_json(kind: str, statement) -> dict:
    return {"kind": kind, "format_version": FORMAT_VERSION} | {
        item.name: to_json(getattr(statement, item.name)) for item in fields(statement)
    }


def _blank_if_none(value: int | None) -> int | str:
    return "" if value is None else value


def _position(mark: Mark) -> tuple[int, int]:
    return (mark.block_number, mark.log_index)


def _in_chain_order(items: list) -> list:
    return sorted(items, key=lambda item: _position(item.at))


def _release_movement(grant_id: int, release: Release, escrow: str) -> Movement:
    return Movement(
        "release",
        release.at,
        release.recipient,
        escrow,
        release.recipient,
        release.amount,
        grant_id=grant_id,
        milestone_index=release.milestone_index,
        credited=release.credited,
        evidence_hash=release.evidence_hash,
    )


def _refund_movement(grant_id: int, refund: Refund, escrow: str) -> Movement:
    return Movement(
        "refund",
        refund.at,
        refund.funder,
        escrow,
        refund.funder,
        refund.amount,
        grant_id=grant_id,
        credited=refund.credited,
    )


def _withdrawal_movement(withdrawal: WithdrawalEntry, escrow: str) -> Movement:
    return Movement("withdrawal", withdrawal.at, withdrawal.account, escrow, withdrawal.to, withdrawal.amount)


def load_books(ledger) -> Books:
    """Rebuild the books from every event stored in `ledger`."""
    return rebuild(ledger.events())
