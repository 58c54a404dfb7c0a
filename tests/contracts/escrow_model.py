"""A shadow model of MilestoneEscrow, DonationRegistry and the test tokens, in plain Python.

Each action method mirrors one contract function: it runs the same checks in the same order and
raises `Revert` with the custom error and arguments the contract must revert with, or applies
the effects the transaction must have. The state machine runs an action on a deep copy of the
model, so a revert leaves the model untouched, exactly as it leaves the chain untouched.

`now` is always the `block.timestamp` of the transaction being modelled.
"""

from dataclasses import dataclass, field

# The contracts' enums, shared with the example-based tests.
from assertions import GrantStatus, MilestoneStatus, ProjectStatus, SignatureState

ETH = "0x0000000000000000000000000000000000000000"
ZERO_ADDRESS = ETH
ZERO_HASH = b"\x00" * 32
MAX_UINT256 = 2**256 - 1
FEE_BASIS_POINTS = 100


class Revert(Exception):
    """The modelled call reverts with the custom error `name(*args)`."""

    def __init__(self, name, *args):
        super().__init__(name, args)
        self.name = name
        self.args_ = tuple(args)

    @property
    def expected(self):
        return self.name, self.args_


@dataclass
class Milestone:
    amount: int
    deadline: int
    status: MilestoneStatus = MilestoneStatus.AWAITING_EVIDENCE
    evidence_hash: bytes = ZERO_HASH
    approvals: int = 0
    rejections: int = 0
    rejected_hashes: set = field(default_factory=set)

    @property
    def settled(self):
        return self.status in (MilestoneStatus.RELEASED, MilestoneStatus.RECLAIMED)

    def view(self):
        """The tuple `getMilestone` returns."""
        return (
            self.amount,
            self.deadline,
            int(self.status),
            self.evidence_hash,
            self.approvals,
            self.rejections,
            self.approvals.bit_count(),
            self.rejections.bit_count(),
        )


@dataclass
class Grant:
    id: int
    recipient: str
    token: str
    funding_deadline: int
    threshold: int
    attestors: list
    milestones: list
    funders: list = field(default_factory=list)
    contributions: dict = field(default_factory=dict)
    refunded: set = field(default_factory=set)
    funded: int = 0
    released: int = 0
    reclaimed: int = 0

    @property
    def total(self):
        return sum(milestone.amount for milestone in self.milestones)

    @property
    def held(self):
        return self.funded - self.released - self.reclaimed

    def status(self, now):
        if self.funded < self.total:
            return GrantStatus.FUNDING if now < self.funding_deadline else GrantStatus.FUNDING_FAILED
        if all(milestone.settled for milestone in self.milestones):
            return GrantStatus.COMPLETED
        return GrantStatus.ACTIVE

    def view(self, now):
        """The tuple `getGrant` returns when the latest block has timestamp `now`."""
        return (
            self.recipient,
            self.token,
            self.funding_deadline,
            self.threshold,
            len(self.attestors),
            len(self.milestones),
            len(self.funders),
            int(self.status(now)),
            self.total,
            self.funded,
            self.released,
            self.reclaimed,
            self.held,
        )


@dataclass
class Project:
    admin: str
    payout: str
    status: ProjectStatus
    metadata_hash: bytes
    metadata_uri: str
    donated: dict = field(default_factory=dict)

    def view(self):
        return (self.admin, self.payout, int(self.status), self.metadata_hash, self.metadata_uri)


@dataclass
class TokenRules:
    """Which transfers fail, and what a transfer of each token delivers.

    `eth_rejecters` reject every ETH transfer, `blocked` are on the blocklist token's list, and
    `fee_token` burns FEE_BASIS_POINTS of every transfer between two accounts.
    """

    blocklist_token: str
    fee_token: str
    eth_rejecters: frozenset
    blocked: frozenset
    paused: bool = False

    def transfer_error(self, token, sender, receiver):
        """Return the Revert a plain transfer of `token` raises, or None if it goes through."""
        if token == ETH:
            return Revert("EthRejected") if receiver in self.eth_rejecters else None
        if token == self.blocklist_token:
            if sender in self.blocked:
                return Revert("AccountBlocked", sender)
            if receiver in self.blocked:
                return Revert("AccountBlocked", receiver)
            if self.paused:
                return Revert("EnforcedPause")
        return None

    def delivered(self, token, amount):
        """Return how much of a transfer of `amount` reaches the receiver."""
        if token == self.fee_token:
            return amount - amount * FEE_BASIS_POINTS // 10_000
        return amount


@dataclass
class Model:
    """Everything the contracts and tokens hold, as the tests expect it."""

    escrow: str
    registry: str
    registrar: str
    chain_id: int
    rules: TokenRules
    balances: dict
    grants: dict = field(default_factory=dict)
    credits: dict = field(default_factory=dict)
    signatures: dict = field(default_factory=dict)
    projects: dict = field(default_factory=dict)
    donation_count: int = 0

    # -- Books --------------------------------------------------------------------------------

    def total_held(self, token):
        return sum(grant.held for grant in self.grants.values() if grant.token == token)

    def total_credits(self, token):
        return sum(amount for (_, credit_token), amount in self.credits.items() if credit_token == token)

    def credit_of(self, account, token):
        return self.credits.get((account, token), 0)

    def balance(self, token, account):
        return self.balances.get((token, account), 0)

    def _move(self, token, sender, receiver, amount):
        """Apply a transfer that succeeds: the sender pays `amount`, the receiver gets what arrives."""
        self.balances[(token, sender)] = self.balance(token, sender) - amount
        self.balances[(token, receiver)] = self.balance(token, receiver) + self.rules.delivered(token, amount)
        assert self.balances[(token, sender)] >= 0, f"{sender} cannot pay {amount} of {token}"

    def _collect(self, token, payer, receiver, amount):
        """Model `safeTransferFrom(payer, receiver, amount)` followed by the receiver's check that
        exactly `amount` arrived, as the escrow and the registry both do."""
        error = self.rules.transfer_error(token, payer, receiver)
        if error is not None:
            raise error
        received = self.rules.delivered(token, amount)
        if received != amount:
            raise Revert("TokenAmountMismatch", token, amount, received)
        self._move(token, payer, receiver, amount)

    # -- Escrow: grant makers -----------------------------------------------------------------

    def _grant(self, grant_id):
        grant = self.grants.get(grant_id)
        if grant is None:
            raise Revert("GrantNotFound", grant_id)
        return grant

    def create_grant(self, terms, now):
        """Model `createGrant(terms)` and return the new grant's id."""
        recipient, token, funding_deadline, threshold, attestors, milestones, _, _ = terms
        if recipient == ZERO_ADDRESS:
            raise Revert("ZeroRecipient")
        if not 0 < len(milestones) <= 32:
            raise Revert("InvalidMilestoneCount", len(milestones), 32)
        if not 0 < len(attestors) <= 16:
            raise Revert("InvalidAttestorCount", len(attestors), 16)
        if threshold == 0 or threshold > len(attestors):
            raise Revert("InvalidThreshold", threshold, len(attestors))
        if funding_deadline <= now:
            raise Revert("FundingDeadlineNotInFuture", funding_deadline, now)
        for index, (amount, deadline) in enumerate(milestones):
            if amount == 0:
                raise Revert("ZeroMilestoneAmount", index)
            if deadline <= funding_deadline:
                raise Revert("MilestoneDeadlineTooEarly", index, deadline, funding_deadline)
        seen = set()
        for index, attestor in enumerate(attestors):
            if attestor == ZERO_ADDRESS:
                raise Revert("ZeroAttestor", index)
            if attestor in seen:
                raise Revert("DuplicateAttestor", attestor)
            seen.add(attestor)

        grant_id = len(self.grants) + 1
        self.grants[grant_id] = Grant(
            id=grant_id,
            recipient=recipient,
            token=token,
            funding_deadline=funding_deadline,
            threshold=threshold,
            attestors=list(attestors),
            milestones=[Milestone(amount, deadline) for amount, deadline in milestones],
        )
        return grant_id

    def fund(self, grant_id, payer, funder, amount, value, now):
        """Model `fund` (funder == payer) and `fundFor`, called by `payer` with `value` wei."""
        grant = self._grant(grant_id)
        if amount == 0:
            raise Revert("ZeroAmount")
        if funder == ZERO_ADDRESS:
            raise Revert("ZeroFunder")
        if now >= grant.funding_deadline:
            raise Revert("FundingClosed", grant_id, grant.funding_deadline)
        remaining = grant.total - grant.funded
        if amount > remaining:
            raise Revert("FundingExceedsTotal", grant_id, amount, remaining)
        if grant.token == ETH:
            if value != amount:
                raise Revert("EthAmountMismatch", value, amount)
        elif value != 0:
            raise Revert("UnexpectedEth", value)
        if funder not in grant.contributions and len(grant.funders) == 64:
            raise Revert("TooManyFunders", grant_id, 64)

        grant.funded += amount
        if funder not in grant.contributions:
            grant.funders.append(funder)
            grant.contributions[funder] = 0
        grant.contributions[funder] += amount

        if grant.token == ETH:
            self._move(ETH, payer, self.escrow, amount)
        else:
            self._collect(grant.token, payer, self.escrow, amount)

    def refund(self, grant_id, funder, now):
        grant = self._grant(grant_id)
        if grant.status(now) != GrantStatus.FUNDING_FAILED:
            raise Revert("RefundNotAvailable", grant_id)
        contribution = grant.contributions.get(funder, 0)
        if contribution == 0 or funder in grant.refunded:
            raise Revert("NothingToRefund", grant_id, funder)

        grant.refunded.add(funder)
        grant.reclaimed += contribution
        self._payout(grant.token, funder, contribution)

    def _payout(self, token, account, amount):
        """Model `_payout`: send `amount`, or credit it to `account` if the transfer fails."""
        if self.rules.transfer_error(token, self.escrow, account) is None:
            self._move(token, self.escrow, account, amount)
        else:
            self.credits[(account, token)] = self.credit_of(account, token) + amount

    # -- Escrow: milestones -------------------------------------------------------------------

    def _milestone(self, grant, index):
        if index >= len(grant.milestones):
            raise Revert("MilestoneNotFound", grant.id, index, len(grant.milestones))
        return grant.milestones[index]

    @staticmethod
    def _require_fully_funded(grant):
        if grant.funded < grant.total:
            raise Revert("GrantNotFullyFunded", grant.id, grant.funded, grant.total)

    @staticmethod
    def _require_open(grant, index, milestone, now):
        if milestone.settled:
            raise Revert("MilestoneAlreadySettled", grant.id, index, int(milestone.status))
        if now >= milestone.deadline:
            raise Revert("MilestoneDeadlinePassed", grant.id, index, milestone.deadline)

    def submit_evidence(self, grant_id, index, evidence_hash, submitter, now):
        grant = self._grant(grant_id)
        milestone = self._milestone(grant, index)
        if submitter != grant.recipient:
            raise Revert("NotRecipient", grant_id, submitter)
        self._require_fully_funded(grant)
        self._require_open(grant, index, milestone, now)
        if evidence_hash == ZERO_HASH:
            raise Revert("ZeroEvidenceHash")
        if (
            milestone.status == MilestoneStatus.EVIDENCE_SUBMITTED
            and milestone.evidence_hash == evidence_hash
        ):
            raise Revert("EvidenceAlreadySubmitted", grant_id, index, evidence_hash)
        if evidence_hash in milestone.rejected_hashes:
            raise Revert("EvidenceHashRejected", grant_id, index, evidence_hash)

        milestone.status = MilestoneStatus.EVIDENCE_SUBMITTED
        milestone.evidence_hash = evidence_hash
        milestone.approvals = 0
        milestone.rejections = 0

    def _require_vote(self, grant, index, milestone, evidence_hash, attestor, now):
        """Return the attestor's bit, after the checks of `_requireVote`."""
        if attestor not in grant.attestors:
            raise Revert("NotAttestor", grant.id, attestor)
        self._require_open(grant, index, milestone, now)
        if milestone.status != MilestoneStatus.EVIDENCE_SUBMITTED:
            raise Revert("NoPendingEvidence", grant.id, index)
        if milestone.evidence_hash != evidence_hash:
            raise Revert("EvidenceMismatch", grant.id, index, milestone.evidence_hash, evidence_hash)
        bit = 1 << grant.attestors.index(attestor)
        if (milestone.approvals | milestone.rejections) & bit:
            raise Revert("AlreadyAttested", grant.id, index, attestor)
        return bit

    def approve(self, grant_id, index, evidence_hash, attestor, now):
        grant = self._grant(grant_id)
        milestone = self._milestone(grant, index)
        bit = self._require_vote(grant, index, milestone, evidence_hash, attestor, now)

        milestone.approvals |= bit
        if milestone.approvals.bit_count() == grant.threshold:
            milestone.status = MilestoneStatus.RELEASED
            grant.released += milestone.amount
            self._payout(grant.token, grant.recipient, milestone.amount)

    def reject(self, grant_id, index, evidence_hash, attestor, now):
        grant = self._grant(grant_id)
        milestone = self._milestone(grant, index)
        bit = self._require_vote(grant, index, milestone, evidence_hash, attestor, now)

        milestone.rejections |= bit
        if milestone.rejections.bit_count() > len(grant.attestors) - grant.threshold:
            milestone.rejected_hashes.add(evidence_hash)
            milestone.status = MilestoneStatus.AWAITING_EVIDENCE
            milestone.evidence_hash = ZERO_HASH
            milestone.approvals = 0
            milestone.rejections = 0

    def reclaim(self, grant_id, index, now):
        grant = self._grant(grant_id)
        milestone = self._milestone(grant, index)
        self._require_fully_funded(grant)
        if milestone.settled:
            raise Revert("MilestoneAlreadySettled", grant_id, index, int(milestone.status))
        if now < milestone.deadline:
            raise Revert("MilestoneDeadlineNotReached", grant_id, index, milestone.deadline)

        amount = milestone.amount
        milestone.status = MilestoneStatus.RECLAIMED
        grant.reclaimed += amount
        # Each funder after the first gets its share rounded down; the first gets the rest.
        distributed = 0
        for funder in grant.funders[1:]:
            share = amount * grant.contributions[funder] // grant.funded
            if share == 0:
                continue
            distributed += share
            self._payout(grant.token, funder, share)
        self._payout(grant.token, grant.funders[0], amount - distributed)

    # -- Escrow: typed signatures -------------------------------------------------------------

    def use_signature(self, signer, digest, expiry, valid, now):
        """Model `_useSignature`. `valid` is whether the signature is the signer's own."""
        if now >= expiry:
            raise Revert("SignatureExpired", signer, expiry)
        self._require_unspent(signer, digest)
        if not valid:
            raise Revert("InvalidSignature", signer)
        self.signatures[(signer, digest)] = SignatureState.USED

    def _require_unspent(self, signer, digest):
        state = self.signatures.get((signer, digest), SignatureState.UNUSED)
        if state == SignatureState.USED:
            raise Revert("SignatureAlreadyUsed", signer, digest)
        if state == SignatureState.REVOKED:
            raise Revert("SignatureWasRevoked", signer, digest)

    def revoke_signature(self, signer, digest):
        self._require_unspent(signer, digest)
        self.signatures[(signer, digest)] = SignatureState.REVOKED

    def approve_with_signatures(self, grant_id, index, evidence_hash, approvals, now):
        """Model `approveWithSignatures`. `approvals` contains `(attestor, digest, expiry, valid)`."""
        if not approvals:
            raise Revert("EmptySignatureBatch")
        for attestor, digest, expiry, valid in approvals:
            self.use_signature(attestor, digest, expiry, valid, now)
            self.approve(grant_id, index, evidence_hash, attestor, now)

    def submit_evidence_with_signature(self, grant_id, index, evidence_hash, digest, expiry, valid, now):
        recipient = self._grant(grant_id).recipient
        self.use_signature(recipient, digest, expiry, valid, now)
        self.submit_evidence(grant_id, index, evidence_hash, recipient, now)

    # -- Escrow: credits ----------------------------------------------------------------------

    def withdraw(self, account, token, to):
        if to == ZERO_ADDRESS:
            raise Revert("ZeroWithdrawalAddress")
        amount = self.credit_of(account, token)
        if amount == 0:
            raise Revert("NoCredit", account, token)

        del self.credits[(account, token)]
        # Unlike a payout, a failed withdrawal reverts with the receiver's or the token's error.
        error = self.rules.transfer_error(token, self.escrow, to)
        if error is not None:
            raise error
        self._move(token, self.escrow, to, amount)

    # -- Registry -----------------------------------------------------------------------------

    def _project(self, project_id):
        project = self.projects.get(project_id)
        if project is None:
            raise Revert("ProjectNotFound", project_id)
        return project

    def register_project(self, admin, payout, metadata_hash, metadata_uri):
        if admin == ZERO_ADDRESS:
            raise Revert("ZeroAdmin")
        if payout == ZERO_ADDRESS:
            raise Revert("ZeroPayout")
        project_id = len(self.projects) + 1
        self.projects[project_id] = Project(admin, payout, ProjectStatus.PENDING, metadata_hash, metadata_uri)
        return project_id

    def set_project_status(self, project_id, status, caller):
        if caller != self.registrar:
            raise Revert("OwnableUnauthorizedAccount", caller)
        project = self._project(project_id)
        if project.status == status:
            raise Revert("ProjectStatusUnchanged", project_id, int(status))
        project.status = status

    @staticmethod
    def _require_amount(token, amount, value):
        if amount == 0:
            raise Revert("ZeroDonation")
        if token == ETH:
            if value != amount:
                raise Revert("EthAmountMismatch", value, amount)
        elif value != 0:
            raise Revert("UnexpectedEth", value)

    def donate(self, project_id, token, amount, value, donor):
        project = self._project(project_id)
        if project.status != ProjectStatus.VERIFIED:
            raise Revert("ProjectNotVerified", project_id, int(project.status))
        self._require_amount(token, amount, value)

        self.donation_count += 1
        project.donated[token] = project.donated.get(token, 0) + amount
        if token == ETH:
            # Address.sendValue bubbles up the receiver's revert data.
            error = self.rules.transfer_error(ETH, self.registry, project.payout)
            if error is not None:
                raise error
            self._move(ETH, donor, project.payout, amount)
        else:
            self._collect(token, donor, project.payout, amount)

    def donate_to_grant(self, grant_id, amount, value, donor, now):
        token = self._grant(grant_id).token
        self._require_amount(token, amount, value)

        self.donation_count += 1
        if token == ETH:
            self._move(ETH, donor, self.registry, amount)
        else:
            # The registry collects the tokens first, and the escrow checks the grant after.
            self._collect(token, donor, self.registry, amount)
        self.fund(grant_id, self.registry, donor, amount, value, now)

    def set_paused(self, paused):
        """Model the blocklist token's `pause` (True) and `unpause` (False)."""
        if paused and self.rules.paused:
            raise Revert("EnforcedPause")
        if not paused and not self.rules.paused:
            raise Revert("ExpectedPause")
        self.rules.paused = paused
