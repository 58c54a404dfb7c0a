"""Read models of escrow grants, built from the escrow's view functions and its events."""

import logging
from dataclasses import dataclass
from enum import IntEnum

from fundtrail.units import TokenInfo

logger = logging.getLogger(__name__)


class GrantStatus(IntEnum):
    """`IMilestoneEscrow.GrantStatus`, in the same order."""

    Funding = 0
    FundingFailed = 1
    Active = 2
    Completed = 3


class MilestoneStatus(IntEnum):
    """`IMilestoneEscrow.MilestoneStatus`, in the same order."""

    AwaitingEvidence = 0
    EvidenceSubmitted = 1
    Released = 2
    Reclaimed = 3


ZERO_HASH = b"\x00" * 32

# Positions of `termsHash` and `termsUri` in `IMilestoneEscrow.GrantTerms`.
_TERMS_HASH = 6
_TERMS_URI = 7


@dataclass(frozen=True)
class MilestoneSummary:
    """One milestone's terms, attestation state and settlement."""

    index: int
    amount: int
    """Payment in the token's smallest unit."""
    deadline: int
    """Unix time from which the milestone can no longer be approved, only reclaimed."""
    status: MilestoneStatus
    evidence_hash: bytes | None
    """The evidence awaiting attestation, or, once released, the evidence that was paid."""
    evidence_uri: str | None
    approvals: tuple[str, ...]
    """Attestors who approved the current evidence."""
    rejections: tuple[str, ...]
    """Attestors who rejected the current evidence."""
    settlement_tx: str | None
    """Hash of the transaction that released or reclaimed the milestone."""

    @property
    def approval_count(self) -> int:
        return len(self.approvals)

    @property
    def settled(self) -> bool:
        return self.status in (MilestoneStatus.Released, MilestoneStatus.Reclaimed)


@dataclass(frozen=True)
class FunderSummary:
    """One funder's contribution to a grant."""

    address: str
    contribution: int
    refunded: bool


@dataclass(frozen=True)
class GrantSummary:
    """A grant's terms, books, milestones and funders at the latest block."""

    grant_id: int
    creator: str
    recipient: str
    token: TokenInfo
    funding_deadline: int
    threshold: int
    attestors: tuple[str, ...]
    terms_hash: bytes
    terms_uri: str
    status: GrantStatus
    total: int
    funded: int
    released: int
    reclaimed: int
    held: int
    milestones: tuple[MilestoneSummary, ...]
    funders: tuple[FunderSummary, ...]
    created_tx: str

    @property
    def remaining(self) -> int:
        """Funding still needed before the grant is fully funded."""
        return self.total - self.funded


def read_grant(escrow, grant_id: int, token: TokenInfo, *, start_block: int = 0) -> GrantSummary:
    """Build the read model of grant `grant_id` from views and from events since `start_block`.

    The caller checks that the grant exists. `token` must describe the grant's token.
    """
    from ape import chain

    view = escrow.getGrant(grant_id)
    attestors = tuple(escrow.getAttestors(grant_id))
    topics = {"grantId": grant_id}
    # `range` stops before its second argument, so one past the head includes the latest block.
    stop = chain.blocks.height + 1

    def logs(event):
        return list(event.range(start_block, stop, search_topics=topics))

    created = logs(escrow.GrantCreated)
    if not created:
        # A start block after the grant's creation hides its events, but the views still work.
        logger.warning("No GrantCreated event for grant %s from block %s", grant_id, start_block)
    settlements = {
        log.milestoneIndex: log.transaction_hash
        for log in logs(escrow.MilestoneReleased) + logs(escrow.MilestoneReclaimed)
    }
    evidence_uris = {
        (log.milestoneIndex, bytes(log.evidenceHash)): log.evidenceUri
        for log in logs(escrow.EvidenceSubmitted)
    }

    milestones = tuple(
        _read_milestone(escrow, grant_id, index, attestors, settlements, evidence_uris)
        for index in range(view.milestoneCount)
    )
    funders = tuple(
        FunderSummary(
            address=funder,
            contribution=escrow.contributionOf(grant_id, funder),
            refunded=escrow.isRefunded(grant_id, funder),
        )
        for funder in escrow.getFunders(grant_id)
    )
    # ape decodes the struct inside the event as a plain list, in `GrantTerms` field order.
    terms = created[0].terms if created else None

    return GrantSummary(
        grant_id=grant_id,
        creator=created[0].creator if created else "",
        recipient=view.recipient,
        token=token,
        funding_deadline=view.fundingDeadline,
        threshold=view.threshold,
        attestors=attestors,
        terms_hash=bytes(terms[_TERMS_HASH]) if terms else ZERO_HASH,
        terms_uri=terms[_TERMS_URI] if terms else "",
        status=GrantStatus(view.status),
        total=view.total,
        funded=view.funded,
        released=view.released,
        reclaimed=view.reclaimed,
        held=view.held,
        milestones=milestones,
        funders=funders,
        created_tx=created[0].transaction_hash if created else "",
    )


def _read_milestone(
    escrow, grant_id, index, attestors, settlements, evidence_uris
) -> MilestoneSummary:
    view = escrow.getMilestone(grant_id, index)
    evidence_hash = bytes(view.evidenceHash)
    has_evidence = evidence_hash != ZERO_HASH
    return MilestoneSummary(
        index=index,
        amount=view.amount,
        deadline=view.deadline,
        status=MilestoneStatus(view.status),
        evidence_hash=evidence_hash if has_evidence else None,
        evidence_uri=evidence_uris.get((index, evidence_hash)) if has_evidence else None,
        approvals=_members(attestors, view.approvals),
        rejections=_members(attestors, view.rejections),
        settlement_tx=settlements.get(index),
    )


def _members(attestors: tuple[str, ...], bitmap: int) -> tuple[str, ...]:
    """Return the attestors whose bit, by index, is set in `bitmap`."""
    return tuple(attestor for position, attestor in enumerate(attestors) if bitmap >> position & 1)
