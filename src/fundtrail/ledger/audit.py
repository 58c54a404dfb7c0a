"""The reconciliation audit: the books rebuilt from events against the contracts' own state.

`audit` rebuilds every grant, project and credit from the ledger's events up to one block, and
compares the result, at that same block, with the escrow's and the registry's view functions
and with the token balances the escrow holds. It also checks the accounting rules that the
rebuilt books must obey whatever the chain returns:

- each grant's released plus reclaimed amount is at most its funded amount (so that funded ==
  released + reclaimed + held with held >= 0), and funded is at most the grant's total;
- a grant's payouts add up to its released plus reclaimed amount;
- a settled milestone's payouts add up to its amount, in one transaction; an open one has none;
- a refunded funder got exactly its contribution back, once;
- no credit ever drops below zero;
- per token, the escrow's balance covers everything it holds for grants plus every credit.

Any balance above held plus credits is surplus (ETH forced in by `selfdestruct`, tokens sent
straight to the escrow): it is reported but is no discrepancy, since the contracts never count
it and no function pays it out.

The audit logs and returns an `AuditReport`; the CLI renders it.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum

from eth_utils import to_checksum_address

from fundtrail.errors import FundTrailError
from fundtrail.grants import GrantStatus, MilestoneStatus
from fundtrail.ledger import schema
from fundtrail.ledger.books import ETH, PROJECT_STATUSES, Books, GrantBook, rebuild
from fundtrail.ledger.indexer import Ledger
from fundtrail.ledger.views import ChainViews, ViewReverted

logger = logging.getLogger(__name__)

_SETTLED = (MilestoneStatus.Released, MilestoneStatus.Reclaimed)


class AuditError(FundTrailError):
    """The audit cannot run: a block the ledger has not read, or events that cannot be replayed."""


class Kind(StrEnum):
    """Category of a discrepancy: the view or rule that found it."""

    ESCROW = "escrow"
    """An escrow-wide count: `grantCount`."""
    GRANT = "grant"
    """A `getGrant` field, the attestors, the funders, or a grant that only one side has."""
    MILESTONE = "milestone"
    """A `getMilestone` field, or `isEvidenceRejected` of one evidence hash."""
    FUNDER = "funder"
    """`contributionOf` or `isRefunded` of one funder of one grant."""
    CREDIT = "credit"
    """`creditOf` of one account and token."""
    TOKEN = "token"
    """`totalHeld` or `totalCredits` of one token."""
    REGISTRY = "registry"
    """A registry-wide value: `projectCount`, `donationCount` or `owner`."""
    PROJECT = "project"
    """A `getProject` field, `totalDonated`, or a project that only one side has."""
    SHORTFALL = "shortfall"
    """The escrow's balance of a token is below what its grants and credits need."""
    BOOKS = "books"
    """An accounting rule that the rebuilt books break, whatever the chain returns."""


@dataclass(frozen=True)
class Discrepancy:
    """One value on which the rebuilt books and the chain, or the books and their own rules, differ."""

    kind: Kind
    subject: str
    """Identifier of the value's owner, such as `grant 3 milestone 1`, `token 0x...` or
    `account 0x... token 0x...`."""
    field: str
    """The view function, struct field or accounting rule compared."""
    expected: object
    """The value the rebuilt books give, or for `BOOKS` the value the rule requires. For a rule
    that is a bound (such as "at most funded"), it is the bound."""
    actual: object
    """The value the chain returns at the audited block, or for `BOOKS` the value in the books."""


@dataclass(frozen=True)
class TokenBalance:
    """The escrow's balance of one token, next to the amounts the rebuilt books require."""

    token: str
    balance: int
    held: int
    """Funded and not yet released, reclaimed or refunded, over every grant in this token."""
    credits: int

    @property
    def surplus(self) -> int:
        """Balance above held plus credits; negative when the escrow is short."""
        return self.balance - self.held - self.credits


@dataclass(frozen=True)
class Checked:
    """How much the audit compared."""

    events: int
    grants: int
    milestones: int
    funders: int
    projects: int
    donations: int
    credits: int
    """(account, token) pairs with a credit history."""
    tokens: int


@dataclass
class AuditReport:
    """The result of one audit at one block."""

    block: int
    timestamp: int
    """The audited block's timestamp, at which grant statuses are computed."""
    escrow: str
    registry: str
    checked: Checked
    balances: list[TokenBalance]
    discrepancies: list[Discrepancy] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when nothing differs. Surplus does not count."""
        return not self.discrepancies

    @property
    def surpluses(self) -> list[TokenBalance]:
        return [balance for balance in self.balances if balance.surplus > 0]

    def to_json(self) -> dict:
        """Return the report as JSON-ready data. Integers are decimal text, as in the ledger,
        because amounts may exceed what JSON readers hold exactly."""
        return {
            "block": self.block,
            "timestamp": self.timestamp,
            "escrow": self.escrow,
            "registry": self.registry,
            "clean": self.clean,
            "checked": vars(self.checked),
            "balances": [
                {
                    "token": item.token,
                    "balance": str(item.balance),
                    "held": str(item.held),
                    "credits": str(item.credits),
                    "surplus": str(item.surplus),
                }
                for item in self.balances
            ],
            "surpluses": [{"token": item.token, "amount": str(item.surplus)} for item in self.surpluses],
            "discrepancies": [
                {
                    "kind": str(item.kind),
                    "subject": item.subject,
                    "field": item.field,
                    "expected": json_value(item.expected),
                    "actual": json_value(item.actual),
                }
                for item in self.discrepancies
            ],
        }


def json_value(value: object) -> object:
    """Return `value` in JSON-ready form: enums by name, integers as decimal text."""
    if isinstance(value, (GrantStatus, MilestoneStatus)):
        return value.name
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [json_value(item) for item in value]
    return value


def audit(
    source: Ledger | Books,
    views: ChainViews,
    block: int | None = None,
    *,
    tokens: tuple[str, ...] = (),
) -> AuditReport:
    """Rebuild the books up to `block` and reconcile them with the chain at that block.

    `source` is a ledger, whose events up to `block` (default: its last block) are replayed, or
    books already rebuilt, for which `block` is required and must be the block they stop at.
    `tokens` adds tokens whose escrow balance is checked besides ETH and the tokens of grants
    and credits, such as those of the deployments file.
    """
    if isinstance(source, Ledger):
        last_block = source.last_block
        if block is None:
            block = last_block
        start_block = int(source.meta()["start_block"])
        if last_block < start_block:
            raise AuditError(
                "The ledger has read no block yet, so there is nothing to audit. Run "
                "`fundtrail index` (or `fundtrail audit` without --no-sync) first."
            )
        if block > last_block:
            raise AuditError(
                f"The ledger has read events up to block {last_block}, so it cannot be audited at "
                f"block {block}. Run `fundtrail index` first, or audit at block {last_block} or "
                "lower."
            )
        books = _replay(source.events(schema.events.c.block_number <= block))
    else:
        if block is None:
            raise AuditError("Auditing rebuilt books needs the block they were rebuilt up to.")
        books = source

    logger.info("Auditing %s events at block %s", books.events, block)
    auditor = _Auditor(books, views, block)
    report = auditor.run(tokens)
    logger.info(
        "Audit at block %s: %s discrepancies, surplus in %s tokens",
        block,
        len(report.discrepancies),
        len(report.surpluses),
    )
    return report


def _replay(rows: list[dict]) -> Books:
    try:
        return rebuild(rows)
    except (KeyError, IndexError) as error:
        # An event about a grant, milestone or project that no earlier event created.
        raise AuditError(
            f"The ledger's events cannot be replayed ({type(error).__name__}: {error}): an event "
            "refers to a grant, milestone or project that no earlier event created, so the "
            "ledger database is damaged or was edited. Delete it and run `fundtrail index` to "
            "read the events again."
        ) from error


class _Auditor:
    """One audit run: the books, the views at one block, and the discrepancies found so far."""

    def __init__(self, books: Books, views: ChainViews, block: int):
        self.books = books
        self.views = views
        self.block = block
        self.found: list[Discrepancy] = []

    def compare(self, kind: Kind, subject: str, name: str, expected, actual) -> None:
        if expected != actual:
            logger.warning(
                "Discrepancy in %s %s: expected %s, chain %s", subject, name, expected, actual
            )
            self.found.append(Discrepancy(kind, subject, name, expected, actual))

    def rule(self, subject: str, name: str, required, actual, satisfied: bool) -> None:
        if not satisfied:
            logger.warning("Books break %s on %s: required %s, have %s", name, subject, required, actual)
            self.found.append(Discrepancy(Kind.BOOKS, subject, name, required, actual))

    def escrow(self, function: str, *args):
        return self.views.escrow(function, *args, block=self.block)

    def registry(self, function: str, *args):
        return self.views.registry(function, *args, block=self.block)

    def run(self, extra_tokens: tuple[str, ...]) -> AuditReport:
        books = self.books
        timestamp = self.views.timestamp(self.block)

        grant_count = self.escrow("grantCount")
        self.compare(Kind.ESCROW, "escrow", "grantCount", len(books.grants), grant_count)
        for grant in books.grants.values():
            self._grant(grant, timestamp)
            self._grant_rules(grant)
        # Grant ids count up from 1, so ids above the books' highest exist only on the chain.
        for grant_id in range(max(books.grants, default=0) + 1, grant_count + 1):
            self.compare(Kind.GRANT, f"grant {grant_id}", "exists", False, True)

        self._credits()
        # NOTE: A token that no grant or credit uses and the deployments file does not list is
        # never read, so surplus in such a token goes unreported.
        tokens = sorted(books.tokens() | {ETH} | {to_checksum_address(token) for token in extra_tokens})
        balances = [self._token(token) for token in tokens]

        self._registry()

        checked = Checked(
            events=books.events,
            grants=len(books.grants),
            milestones=sum(len(grant.milestones) for grant in books.grants.values()),
            funders=sum(len(grant.contributions) for grant in books.grants.values()),
            projects=len(books.projects),
            donations=len(books.donations),
            credits=len(books.credits),
            tokens=len(tokens),
        )
        return AuditReport(
            block=self.block,
            timestamp=timestamp,
            escrow=self.views.escrow_address,
            registry=self.views.registry_address,
            checked=checked,
            balances=balances,
            discrepancies=self.found,
        )

    # Grants against the escrow.

    def _grant(self, grant: GrantBook, timestamp: int) -> None:
        subject = f"grant {grant.grant_id}"
        try:
            view = self.escrow("getGrant", grant.grant_id)
        except ViewReverted:
            self.compare(Kind.GRANT, subject, "exists", True, False)
            return

        expected = {
            "recipient": grant.recipient,
            "token": grant.token,
            "fundingDeadline": grant.funding_deadline,
            "threshold": grant.threshold,
            "attestorCount": len(grant.attestors),
            "milestoneCount": len(grant.milestones),
            "funderCount": len(grant.contributions),
            "status": grant.status(timestamp),
            "total": grant.total,
            "funded": grant.funded,
            "released": grant.released,
            "reclaimed": grant.reclaimed,
            "held": grant.held,
        }
        for name, value in expected.items():
            actual = GrantStatus(view[name]) if name == "status" else view[name]
            self.compare(Kind.GRANT, subject, name, value, actual)
        self.compare(Kind.GRANT, subject, "getAttestors", grant.attestors, self.escrow("getAttestors", grant.grant_id))
        self.compare(Kind.GRANT, subject, "getFunders", list(grant.contributions), self.escrow("getFunders", grant.grant_id))

        for funder, contribution in grant.contributions.items():
            funder_subject = f"{subject} funder {funder}"
            self.compare(
                Kind.FUNDER,
                funder_subject,
                "contributionOf",
                contribution,
                self.escrow("contributionOf", grant.grant_id, funder),
            )
            self.compare(
                Kind.FUNDER,
                funder_subject,
                "isRefunded",
                funder in grant.refunded,
                self.escrow("isRefunded", grant.grant_id, funder),
            )

        for milestone in grant.milestones:
            milestone_subject = f"{subject} milestone {milestone.index}"
            try:
                view = self.escrow("getMilestone", grant.grant_id, milestone.index)
            except ViewReverted:
                self.compare(Kind.MILESTONE, milestone_subject, "exists", True, False)
                continue
            expected = {
                "amount": milestone.amount,
                "deadline": milestone.deadline,
                "status": milestone.status,
                "evidenceHash": milestone.evidence_hash,
                "approvals": _bitmap(grant.attestors, milestone.approvals),
                "rejections": _bitmap(grant.attestors, milestone.rejections),
                "approvalCount": len(milestone.approvals),
                "rejectionCount": len(milestone.rejections),
            }
            for name, value in expected.items():
                actual = MilestoneStatus(view[name]) if name == "status" else view[name]
                self.compare(Kind.MILESTONE, milestone_subject, name, value, actual)
            for evidence in milestone.evidence:
                self.compare(
                    Kind.MILESTONE,
                    f"{milestone_subject} evidence {evidence.evidence_hash}",
                    "isEvidenceRejected",
                    evidence.rejected,
                    self.escrow("isEvidenceRejected", grant.grant_id, milestone.index, evidence.evidence_hash),
                )

    # Accounting rules on the rebuilt books.

    def _grant_rules(self, grant: GrantBook) -> None:
        subject = f"grant {grant.grant_id}"
        paid_out = grant.released + grant.reclaimed
        self.rule(subject, "funded, at most total", grant.total, grant.funded, grant.funded <= grant.total)
        self.rule(subject, "released + reclaimed, at most funded", grant.funded, paid_out, paid_out <= grant.funded)
        payouts = sum(payout.amount for payout in grant.payouts)
        self.rule(subject, "payouts", paid_out, payouts, payouts == paid_out)

        for milestone in grant.milestones:
            records = [payout for payout in grant.payouts if payout.milestone_index == milestone.index]
            settled = milestone.status in _SETTLED
            required = milestone.amount if settled else 0
            paid = sum(payout.amount for payout in records)
            milestone_subject = f"{subject} milestone {milestone.index}"
            self.rule(milestone_subject, "payouts", required, paid, paid == required)
            # Each release or reclaim is one transaction, so payouts from two transactions mean
            # the milestone was paid twice.
            settlements = len({payout.mark.tx_hash for payout in records})
            self.rule(milestone_subject, "settlements", int(settled), settlements, settlements == int(settled))

        refunds: dict[str, list[int]] = defaultdict(list)
        for payout in grant.payouts:
            if payout.kind == "refund":
                refunds[payout.account].append(payout.amount)
        for funder in grant.refunded | set(refunds):
            required = [grant.contributions.get(funder, 0)] if funder in grant.refunded else []
            self.rule(f"{subject} funder {funder}", "refund payouts", required, refunds[funder], refunds[funder] == required)

    def _credits(self) -> None:
        """Check every credit against `creditOf`, and that no credit ever went negative."""
        movements = []
        for grant in self.books.grants.values():
            movements += [
                (payout.mark, payout.account, payout.token, payout.amount)
                for payout in grant.payouts
                if payout.credited
            ]
        movements += [
            (withdrawal.mark, withdrawal.account, withdrawal.token, -withdrawal.amount)
            for withdrawal in self.books.withdrawals
        ]
        movements.sort(key=lambda movement: (movement[0].block_number, movement[0].log_index))
        running: dict[tuple[str, str], int] = defaultdict(int)
        lowest: dict[tuple[str, str], int] = {}
        for _, account, token, change in movements:
            running[(account, token)] += change
            lowest[(account, token)] = min(lowest.get((account, token), 0), running[(account, token)])
        for (account, token), minimum in lowest.items():
            self.rule(f"account {account} token {token}", "credit, never below 0", 0, minimum, minimum >= 0)

        # NOTE: `creditOf` is read only for the (account, token) pairs in the books. A credit the
        # books lack altogether shows up only in the token's `totalCredits`.
        for (account, token), amount in self.books.credits.items():
            self.compare(
                Kind.CREDIT, f"account {account} token {token}", "creditOf", amount, self.escrow("creditOf", account, token)
            )

    def _token(self, token: str) -> TokenBalance:
        held = self.books.total_held(token)
        credits = self.books.total_credits(token)
        subject = f"token {token}"
        self.compare(Kind.TOKEN, subject, "totalHeld", held, self.escrow("totalHeld", token))
        self.compare(Kind.TOKEN, subject, "totalCredits", credits, self.escrow("totalCredits", token))
        balance = self.views.balance(token, self.block)
        item = TokenBalance(token, balance, held, credits)
        if item.surplus < 0:
            self.compare(Kind.SHORTFALL, subject, "balance, at least held + credits", held + credits, balance)
        elif item.surplus > 0:
            logger.info("Surplus of %s in token %s at block %s", item.surplus, token, self.block)
        return item

    # The registry.

    def _registry(self) -> None:
        books = self.books
        project_count = self.registry("projectCount")
        self.compare(Kind.REGISTRY, "registry", "projectCount", len(books.projects), project_count)
        self.compare(Kind.REGISTRY, "registry", "donationCount", len(books.donations), self.registry("donationCount"))
        # NOTE: Without an OwnershipTransferred event in the indexed range, the books have no
        # registrar, and the owner is reported as a discrepancy with an expected value of None.
        self.compare(Kind.REGISTRY, "registry", "owner", books.registrar, self.registry("owner"))

        for project in books.projects.values():
            subject = f"project {project.project_id}"
            try:
                view = self.registry("getProject", project.project_id)
            except ViewReverted:
                self.compare(Kind.PROJECT, subject, "exists", True, False)
                continue
            expected = {
                "admin": project.admin,
                "payout": project.payout,
                "status": project.status,
                "metadataHash": project.metadata_hash,
                "metadataUri": project.metadata_uri,
            }
            for name, value in expected.items():
                actual = PROJECT_STATUSES[view[name]] if name == "status" else view[name]
                self.compare(Kind.PROJECT, subject, name, value, actual)
            for token, amount in project.donated.items():
                self.compare(
                    Kind.PROJECT,
                    f"{subject} token {token}",
                    "totalDonated",
                    amount,
                    self.registry("totalDonated", project.project_id, token),
                )

        for project_id in range(max(books.projects, default=0) + 1, project_count + 1):
            self.compare(Kind.PROJECT, f"project {project_id}", "exists", False, True)


def _bitmap(attestors: list[str], voters: list[str]) -> int:
    """Return the contract's attestor bitmap: bit i is set when attestor i voted."""
    return sum(1 << attestors.index(voter) for voter in voters if voter in attestors)
