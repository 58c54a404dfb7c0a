"""Checks that read the chain before a transaction is sent, so that a transaction the contracts
would revert is never sent and the user learns what to change instead.

Each check mirrors a revert of `MilestoneEscrow` or `DonationRegistry`. The contracts still
check everything themselves: the chain can change between a check and the transaction.
"""

import logging
from datetime import UTC, datetime

from fundtrail.errors import SpecError
from fundtrail.grants import GrantStatus, MilestoneStatus
from fundtrail.units import ETH_ADDRESS, TokenInfo, format_amount

logger = logging.getLogger(__name__)

ZERO_ADDRESS = ETH_ADDRESS
ZERO_HASH = b"\x00" * 32


class PreconditionError(SpecError):
    """An action that the current chain state would reject, found before anything was sent."""


def show_time(timestamp: int) -> str:
    """Format Unix seconds as an ISO 8601 time in UTC."""
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def require_grant(escrow, grant_id: int):
    """Return the grant's `GrantView`, or raise when no grant has `grant_id`."""
    count = escrow.grantCount()
    if not 1 <= grant_id <= count:
        latest = f"the latest grant is {count}" if count else "no grant exists yet"
        raise PreconditionError(
            "grant id",
            grant_id,
            f"no grant has this id ({latest})",
            "Run `fundtrail grant list` to see the grants.",
        )
    return escrow.getGrant(grant_id)


def require_milestone(escrow, grant_id: int, grant, index: int):
    """Return the milestone's `MilestoneView`, or raise when the grant has no milestone `index`."""
    if not 0 <= index < grant.milestoneCount:
        raise PreconditionError(
            "milestone index",
            index,
            f"grant {grant_id} has milestones 0 to {grant.milestoneCount - 1}",
            "Pick an index from `fundtrail grant show`. Indices start at 0.",
        )
    return escrow.getMilestone(grant_id, index)


def require_fully_funded(grant_id: int, grant, token: TokenInfo) -> None:
    if grant.funded < grant.total:
        raise PreconditionError(
            "grant id",
            grant_id,
            f"the grant holds {format_amount(grant.funded, token)} of "
            f"{format_amount(grant.total, token)}, "
            "so milestones cannot be paid or reclaimed yet",
            "Fund the rest with `fundtrail grant fund` before the funding deadline.",
        )


def require_unsettled(grant_id: int, index: int, milestone) -> None:
    status = MilestoneStatus(milestone.status)
    if status in (MilestoneStatus.Released, MilestoneStatus.Reclaimed):
        raise PreconditionError(
            "milestone index",
            index,
            f"milestone {index} of grant {grant_id} is already {status.name}",
            "Nothing is left to do for this milestone, so pick another one.",
        )


def require_before_deadline(grant_id: int, index: int, milestone, now: int) -> None:
    """Raise when the milestone is settled or its deadline has passed."""
    require_unsettled(grant_id, index, milestone)
    if now >= milestone.deadline:
        raise PreconditionError(
            "milestone index",
            index,
            f"milestone {index} of grant {grant_id} passed its deadline "
            f"{show_time(milestone.deadline)}",
            "It can no longer get evidence or approvals. Anyone may now return its money to "
            "the funders with `fundtrail reclaim`.",
        )


def require_attestor(escrow, grant_id: int, address: str) -> int:
    """Return the attestor's bit position, or raise when `address` is not an attestor."""
    attestors = list(escrow.getAttestors(grant_id))
    if address not in attestors:
        raise PreconditionError(
            "sender",
            address,
            f"not an attestor of grant {grant_id}",
            "Send from one of its attestors: " + ", ".join(attestors) + ".",
        )
    return attestors.index(address)


def require_pending_evidence(grant_id: int, index: int, milestone, evidence_hash: bytes) -> None:
    if MilestoneStatus(milestone.status) != MilestoneStatus.EvidenceSubmitted:
        raise PreconditionError(
            "milestone index",
            index,
            f"milestone {index} of grant {grant_id} has no evidence awaiting attestation",
            "Wait until the recipient submits evidence with `fundtrail evidence submit`.",
        )
    current = bytes(milestone.evidenceHash)
    if current != evidence_hash:
        raise PreconditionError(
            "evidence hash",
            "0x" + evidence_hash.hex(),
            f"milestone {index} of grant {grant_id} awaits attestation of evidence "
            f"0x{current.hex()}",
            "Check that you reviewed the file the recipient submitted, and attest only the hash "
            "shown by `fundtrail grant show`.",
        )


def require_not_attested(grant_id: int, index: int, milestone, position: int, address: str) -> None:
    if (milestone.approvals | milestone.rejections) >> position & 1:
        raise PreconditionError(
            "sender",
            address,
            f"already approved or rejected the current evidence of milestone {index} "
            f"of grant {grant_id}",
            "Each attestor decides once per evidence hash, so wait for the other attestors.",
        )


def require_funding_open(grant_id: int, grant, amount: int, token: TokenInfo, now: int) -> None:
    remaining = grant.total - grant.funded
    # Checked before the deadline: for a fully funded grant, that is the reason nothing fits.
    if remaining == 0:
        raise PreconditionError(
            "grant id",
            grant_id,
            f"the grant is already fully funded ({format_amount(grant.total, token)}), so "
            "nothing more can be added",
            "Fund another grant, or give to a verified project with "
            "`fundtrail donate AMOUNT --project ID`.",
        )
    if now >= grant.fundingDeadline:
        raise PreconditionError(
            "grant id",
            grant_id,
            f"funding closed at {show_time(grant.fundingDeadline)}",
            "Fund another grant. If this one is not fully funded, funders can take their "
            "money back with `fundtrail refund`.",
        )
    if amount > remaining:
        raise PreconditionError(
            "amount",
            format_amount(amount, token),
            f"the grant needs only {format_amount(remaining, token)} more",
            f"Give at most {format_amount(remaining, token)}.",
        )


def grant_status_at(grant, now: int) -> GrantStatus:
    """Return the grant's status at time `now`, as the escrow computes it.

    `getGrant` reports the status at the latest block, which can still be Funding when the
    next block is already past the funding deadline.
    """
    if grant.funded < grant.total:
        return GrantStatus.Funding if now < grant.fundingDeadline else GrantStatus.FundingFailed
    return GrantStatus(grant.status)


def require_funding_failed(grant_id: int, grant, now: int) -> None:
    status = grant_status_at(grant, now)
    if status != GrantStatus.FundingFailed:
        raise PreconditionError(
            "grant id",
            grant_id,
            f"the grant is {status.name}, so its funders cannot take their money back",
            "Refunds open only when the funding deadline passes before the grant is fully funded.",
        )


def require_balance(balance: int, amount: int, token: TokenInfo, owner: str) -> None:
    if balance < amount:
        raise PreconditionError(
            "amount",
            format_amount(amount, token),
            f"{owner} holds only {format_amount(balance, token)}",
            f"Send from an account holding at least {format_amount(amount, token)}, or give less.",
        )


def require_positive(amount: int, token: TokenInfo) -> None:
    if amount <= 0:
        raise PreconditionError(
            "amount",
            format_amount(amount, token),
            "the amount must be greater than zero",
            "Give a positive amount.",
        )


def require_address(field: str, address: str) -> None:
    if address == ZERO_ADDRESS:
        raise PreconditionError(
            field, address, "the zero address cannot hold funds", "Give a real account's address."
        )


def require_hash(field: str, value: bytes) -> None:
    if value == ZERO_HASH:
        raise PreconditionError(
            field,
            "0x" + value.hex(),
            "a hash of zero means no hash",
            "Pass the keccak256 hash of the document.",
        )


def require_project(registry, project_id: int):
    """Return the registry's `Project`, or raise when no project has `project_id`."""
    count = registry.projectCount()
    if not 1 <= project_id <= count:
        latest = f"the latest project is {count}" if count else "no project exists yet"
        raise PreconditionError(
            "project id",
            project_id,
            f"no project has this id ({latest})",
            "Check the id of the registered project.",
        )
    return registry.getProject(project_id)
