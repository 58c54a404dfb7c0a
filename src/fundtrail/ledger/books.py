"""The books of every grant, project and credit, rebuilt from the ledger's events alone.

`rebuild` replays the stored events in chain order, the way the contracts applied them. The
audit compares its result with the contracts' view functions. The statements and the dashboard
read it, trusting nothing but the events.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from fundtrail.grants import GrantStatus, MilestoneStatus

ETH = "0x0000000000000000000000000000000000000000"
"""The token address the contracts use for ETH."""

ZERO_HASH = "0x" + "00" * 32

PAYOUT_KINDS = ("release", "reclaim", "refund")
"""`IMilestoneEscrow.PayoutKind`, in the same order."""

PROJECT_STATUSES = ("Pending", "Verified", "Suspended")
"""`IDonationRegistry.ProjectStatus`, in the same order."""


@dataclass(frozen=True)
class Mark:
    """Position and time of an event: transaction, block, log index and block time."""

    tx_hash: str
    block_number: int
    log_index: int
    timestamp: int

    @classmethod
    def of(cls, row: dict) -> "Mark":
        return cls(row["tx_hash"], row["block_number"], row["log_index"], row["timestamp"])


@dataclass
class Vote:
    attestor: str
    evidence_hash: str
    approved: bool
    reason_hash: str | None
    relayer: str | None
    """Address that relayed the attestor's offline signature, or None for an on-chain vote."""
    mark: Mark


@dataclass
class Evidence:
    evidence_hash: str
    uri: str
    submitter: str
    mark: Mark
    rejected: bool = False


@dataclass
class MilestoneBook:
    index: int
    amount: int
    deadline: int
    status: MilestoneStatus = MilestoneStatus.AwaitingEvidence
    evidence_hash: str = ZERO_HASH
    approvals: list[str] = field(default_factory=list)
    """Attestors who approved the current evidence, in the order they did."""
    rejections: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    """Every evidence submitted, oldest first."""
    votes: list[Vote] = field(default_factory=list)
    """Every approval and rejection, oldest first."""
    settled: Mark | None = None
    """The release or reclaim."""


@dataclass
class PayoutRecord:
    grant_id: int
    account: str
    token: str
    kind: str
    """`release`, `reclaim` or `refund`."""
    milestone_index: int | None
    """None for a refund."""
    amount: int
    credited: bool
    """The transfer failed, so the amount became a credit to withdraw."""
    mark: Mark


@dataclass
class GrantBook:
    grant_id: int
    creator: str
    recipient: str
    token: str
    funding_deadline: int
    threshold: int
    attestors: list[str]
    milestones: list[MilestoneBook]
    terms_hash: str
    terms_uri: str
    created: Mark
    funded: int = 0
    released: int = 0
    reclaimed: int = 0
    contributions: dict[str, int] = field(default_factory=dict)
    """Each funder's contribution, in the order they first funded, like `getFunders`."""
    fundings: list[tuple[str, str, int, Mark]] = field(default_factory=list)
    """Every contribution as (funder, payer, amount, mark)."""
    refunded: set[str] = field(default_factory=set)
    payouts: list[PayoutRecord] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(milestone.amount for milestone in self.milestones)

    @property
    def held(self) -> int:
        return self.funded - self.released - self.reclaimed

    def status(self, now: int) -> GrantStatus:
        """Return the grant's status at unix time `now`, by the contract's rule."""
        if self.funded < self.total:
            return GrantStatus.Funding if now < self.funding_deadline else GrantStatus.FundingFailed
        settled = sum(
            milestone.status in (MilestoneStatus.Released, MilestoneStatus.Reclaimed)
            for milestone in self.milestones
        )
        return GrantStatus.Completed if settled == len(self.milestones) else GrantStatus.Active


@dataclass
class Donation:
    donation_id: int
    donor: str
    token: str
    amount: int
    donor_ref: str
    mark: Mark
    project_id: int | None = None
    payout: str | None = None
    """For a direct gift: the payout address the registry forwarded it to."""
    grant_id: int | None = None


@dataclass
class ProjectBook:
    project_id: int
    admin: str
    payout: str
    status: str
    metadata_hash: str
    metadata_uri: str
    registered: Mark
    donated: dict[str, int] = field(default_factory=dict)
    """Direct donations by token."""


@dataclass
class Withdrawal:
    account: str
    token: str
    to: str
    amount: int
    mark: Mark


@dataclass
class Books:
    grants: dict[int, GrantBook] = field(default_factory=dict)
    projects: dict[int, ProjectBook] = field(default_factory=dict)
    donations: list[Donation] = field(default_factory=list)
    credits: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    """Credit of each (account, token) pair, after withdrawals."""
    withdrawals: list[Withdrawal] = field(default_factory=list)
    registrar: str | None = None
    relays: dict[tuple[str, str], str] = field(default_factory=dict)
    """The relayer of each (transaction hash, signer) pair of a relayed signature."""
    events: int = 0

    def total_held(self, token: str) -> int:
        return sum(grant.held for grant in self.grants.values() if grant.token == token)

    def total_credits(self, token: str) -> int:
        return sum(amount for (_, credit_token), amount in self.credits.items() if credit_token == token)

    def tokens(self) -> set[str]:
        return {grant.token for grant in self.grants.values()} | {token for _, token in self.credits}


def rebuild(rows: list[dict]) -> Books:
    """Replay ledger event rows, in chain order, into the books."""
    books = Books()
    for row in rows:
        handler = _HANDLERS.get(row["event"])
        if handler is not None:
            handler(books, row["args"], Mark.of(row))
        books.events += 1
    return books


def _grant_created(books: Books, args: dict, mark: Mark) -> None:
    terms = args["terms"]
    books.grants[args["grantId"]] = GrantBook(
        grant_id=args["grantId"],
        creator=args["creator"],
        recipient=terms["recipient"],
        token=terms["token"],
        funding_deadline=terms["fundingDeadline"],
        threshold=terms["threshold"],
        attestors=list(terms["attestors"]),
        milestones=[
            MilestoneBook(index, item["amount"], item["deadline"])
            for index, item in enumerate(terms["milestones"])
        ],
        terms_hash=terms["termsHash"],
        terms_uri=terms["termsUri"],
        created=mark,
    )


def _grant_funded(books: Books, args: dict, mark: Mark) -> None:
    grant = books.grants[args["grantId"]]
    funder = args["funder"]
    grant.funded += args["amount"]
    grant.contributions[funder] = grant.contributions.get(funder, 0) + args["amount"]
    grant.fundings.append((funder, args["payer"], args["amount"], mark))


def _milestone(books: Books, args: dict) -> MilestoneBook:
    return books.grants[args["grantId"]].milestones[args["milestoneIndex"]]


def _evidence_submitted(books: Books, args: dict, mark: Mark) -> None:
    milestone = _milestone(books, args)
    milestone.status = MilestoneStatus.EvidenceSubmitted
    milestone.evidence_hash = args["evidenceHash"]
    milestone.approvals = []
    milestone.rejections = []
    milestone.evidence.append(Evidence(args["evidenceHash"], args["evidenceUri"], args["submitter"], mark))


def _milestone_approved(books: Books, args: dict, mark: Mark) -> None:
    milestone = _milestone(books, args)
    milestone.approvals.append(args["attestor"])
    milestone.votes.append(
        Vote(args["attestor"], args["evidenceHash"], True, None, _relayer(books, args, mark), mark)
    )


def _milestone_rejected(books: Books, args: dict, mark: Mark) -> None:
    milestone = _milestone(books, args)
    milestone.rejections.append(args["attestor"])
    milestone.votes.append(
        Vote(
            args["attestor"],
            args["evidenceHash"],
            False,
            args["reasonHash"],
            _relayer(books, args, mark),
            mark,
        )
    )


def _evidence_rejected(books: Books, args: dict, mark: Mark) -> None:
    milestone = _milestone(books, args)
    milestone.status = MilestoneStatus.AwaitingEvidence
    milestone.evidence_hash = ZERO_HASH
    milestone.approvals = []
    milestone.rejections = []
    for evidence in milestone.evidence:
        if evidence.evidence_hash == args["evidenceHash"]:
            evidence.rejected = True


def _milestone_released(books: Books, args: dict, mark: Mark) -> None:
    milestone = _milestone(books, args)
    milestone.status = MilestoneStatus.Released
    milestone.settled = mark
    books.grants[args["grantId"]].released += args["amount"]


def _milestone_reclaimed(books: Books, args: dict, mark: Mark) -> None:
    milestone = _milestone(books, args)
    milestone.status = MilestoneStatus.Reclaimed
    milestone.settled = mark
    books.grants[args["grantId"]].reclaimed += args["amount"]


def _funding_refunded(books: Books, args: dict, mark: Mark) -> None:
    grant = books.grants[args["grantId"]]
    grant.reclaimed += args["amount"]
    grant.refunded.add(args["funder"])


def _payout(books: Books, args: dict, mark: Mark) -> None:
    kind = PAYOUT_KINDS[args["kind"]]
    record = PayoutRecord(
        grant_id=args["grantId"],
        account=args["account"],
        token=args["token"],
        kind=kind,
        milestone_index=None if kind == "refund" else args["milestoneIndex"],
        amount=args["amount"],
        credited=args["credited"],
        mark=mark,
    )
    books.grants[args["grantId"]].payouts.append(record)
    if record.credited:
        books.credits[(record.account, record.token)] += record.amount


def _signature_relayed(books: Books, args: dict, mark: Mark) -> None:
    books.relays[(mark.tx_hash, args["signer"])] = args["relayer"]


def _relayer(books: Books, args: dict, mark: Mark) -> str | None:
    return books.relays.get((mark.tx_hash, args["attestor"]))


def _credit_withdrawn(books: Books, args: dict, mark: Mark) -> None:
    books.credits[(args["account"], args["token"])] -= args["amount"]
    books.withdrawals.append(Withdrawal(args["account"], args["token"], args["to"], args["amount"], mark))


def _project_registered(books: Books, args: dict, mark: Mark) -> None:
    books.projects[args["projectId"]] = ProjectBook(
        project_id=args["projectId"],
        admin=args["admin"],
        payout=args["payout"],
        status=PROJECT_STATUSES[0],
        metadata_hash=args["metadataHash"],
        metadata_uri=args["metadataUri"],
        registered=mark,
    )


def _project_status_changed(books: Books, args: dict, mark: Mark) -> None:
    books.projects[args["projectId"]].status = PROJECT_STATUSES[args["newStatus"]]


def _project_payout_changed(books: Books, args: dict, mark: Mark) -> None:
    books.projects[args["projectId"]].payout = args["newPayout"]


def _project_metadata_changed(books: Books, args: dict, mark: Mark) -> None:
    project = books.projects[args["projectId"]]
    project.metadata_hash = args["metadataHash"]
    project.metadata_uri = args["metadataUri"]


def _donation(args: dict, mark: Mark, **target) -> Donation:
    return Donation(
        donation_id=args["donationId"],
        donor=args["donor"],
        token=args["token"],
        amount=args["amount"],
        donor_ref=args["donorRef"],
        mark=mark,
        **target,
    )


def _project_donation(books: Books, args: dict, mark: Mark) -> None:
    project = books.projects[args["projectId"]]
    project.donated[args["token"]] = project.donated.get(args["token"], 0) + args["amount"]
    books.donations.append(
        _donation(args, mark, project_id=args["projectId"], payout=args["payout"])
    )


def _grant_donation(books: Books, args: dict, mark: Mark) -> None:
    books.donations.append(_donation(args, mark, grant_id=args["grantId"]))


def _ownership_transferred(books: Books, args: dict, mark: Mark) -> None:
    books.registrar = args["newOwner"]


_HANDLERS = {
    "GrantCreated": _grant_created,
    "GrantFunded": _grant_funded,
    "EvidenceSubmitted": _evidence_submitted,
    "MilestoneApproved": _milestone_approved,
    "MilestoneRejected": _milestone_rejected,
    "EvidenceRejected": _evidence_rejected,
    "MilestoneReleased": _milestone_released,
    "MilestoneReclaimed": _milestone_reclaimed,
    "FundingRefunded": _funding_refunded,
    "Payout": _payout,
    "SignatureRelayed": _signature_relayed,
    "CreditWithdrawn": _credit_withdrawn,
    "ProjectRegistered": _project_registered,
    "ProjectStatusChanged": _project_status_changed,
    "ProjectPayoutChanged": _project_payout_changed,
    "ProjectMetadataChanged": _project_metadata_changed,
    "ProjectDonation": _project_donation,
    "GrantDonation": _grant_donation,
    "OwnershipTransferred": _ownership_transferred,
}
"""Handler of each event that changes the books. `SignatureRevoked` and
`OwnershipTransferStarted` change nothing that the books keep, so they stay in the ledger only."""
