"""MilestoneEscrow.submitEvidence: who may submit, when, and how new evidence resets the votes on
a milestone."""

import pytest
from assertions import (
    EVIDENCE,
    EVIDENCE_2,
    EVIDENCE_URI,
    REASON,
    MilestoneStatus,
    assert_books,
    expected_event,
    reverts,
)

pytestmark = pytest.mark.usefixtures("books_balance_at_end")


@pytest.fixture
def rejected_evidence(escrow, funded_eth_grant, ngo, attestors):
    """The funded ETH grant after two of three attestors rejected EVIDENCE on milestone 0."""
    escrow.submitEvidence(funded_eth_grant.id, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)
    for attestor in attestors[:2]:
        escrow.reject(funded_eth_grant.id, 0, EVIDENCE, REASON, sender=attestor)
    return funded_eth_grant


def test_submit_evidence_records_hash(escrow, funded_eth_grant, ngo):
    tx = escrow.submitEvidence(funded_eth_grant.id, 1, EVIDENCE, EVIDENCE_URI, sender=ngo)

    assert tx.events == [
        expected_event(
            escrow.EvidenceSubmitted,
            grantId=funded_eth_grant.id,
            milestoneIndex=1,
            submitter=ngo,
            evidenceHash=EVIDENCE,
            evidenceUri=EVIDENCE_URI,
        ),
    ]
    milestone = escrow.getMilestone(funded_eth_grant.id, 1)
    assert milestone.status == MilestoneStatus.EVIDENCE_SUBMITTED
    assert milestone.evidenceHash == EVIDENCE
    assert_books(escrow)


def test_submit_evidence_reverts_for_non_recipient(escrow, funded_eth_grant, attestors):
    with reverts(escrow.NotRecipient, grantId=funded_eth_grant.id, caller=attestors[0].address):
        escrow.submitEvidence(funded_eth_grant.id, 0, EVIDENCE, EVIDENCE_URI, sender=attestors[0])


def test_submit_evidence_reverts_on_underfunded_grant(escrow, eth_grant, donor, ngo):
    escrow.fund(eth_grant.id, 5_999, value=5_999, sender=donor)

    with reverts(escrow.GrantNotFullyFunded, grantId=eth_grant.id, funded=5_999, total=6_000):
        escrow.submitEvidence(eth_grant.id, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)


def test_submit_evidence_reverts_on_zero_hash(escrow, funded_eth_grant, ngo):
    with reverts(escrow.ZeroEvidenceHash):
        escrow.submitEvidence(funded_eth_grant.id, 0, b"\x00" * 32, EVIDENCE_URI, sender=ngo)


def test_submit_evidence_reverts_on_same_pending_hash(escrow, funded_eth_grant, ngo):
    escrow.submitEvidence(funded_eth_grant.id, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)

    with reverts(
        escrow.EvidenceAlreadySubmitted,
        grantId=funded_eth_grant.id,
        milestoneIndex=0,
        evidenceHash=EVIDENCE,
    ):
        escrow.submitEvidence(funded_eth_grant.id, 0, EVIDENCE, "ipfs://again", sender=ngo)


def test_submit_evidence_reverts_on_rejected_hash(escrow, rejected_evidence, ngo):
    with reverts(
        escrow.EvidenceHashRejected,
        grantId=rejected_evidence.id,
        milestoneIndex=0,
        evidenceHash=EVIDENCE,
    ):
        escrow.submitEvidence(rejected_evidence.id, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)


def test_rejected_hash_stays_blocked_after_other_evidence(escrow, rejected_evidence, ngo):
    escrow.submitEvidence(rejected_evidence.id, 0, EVIDENCE_2, EVIDENCE_URI, sender=ngo)

    with reverts(
        escrow.EvidenceHashRejected,
        grantId=rejected_evidence.id,
        milestoneIndex=0,
        evidenceHash=EVIDENCE,
    ):
        escrow.submitEvidence(rejected_evidence.id, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)


def test_rejected_hash_is_only_rejected_for_its_milestone(escrow, rejected_evidence, ngo):
    escrow.submitEvidence(rejected_evidence.id, 1, EVIDENCE, EVIDENCE_URI, sender=ngo)

    assert escrow.isEvidenceRejected(rejected_evidence.id, 0, EVIDENCE) is True
    assert escrow.isEvidenceRejected(rejected_evidence.id, 1, EVIDENCE) is False
    assert escrow.getMilestone(rejected_evidence.id, 1).evidenceHash == EVIDENCE


def test_submit_evidence_reverts_on_released_milestone(escrow, funded_eth_grant, ngo, release):
    release(funded_eth_grant, 0)

    with reverts(
        escrow.MilestoneAlreadySettled,
        grantId=funded_eth_grant.id,
        milestoneIndex=0,
        status=MilestoneStatus.RELEASED,
    ):
        escrow.submitEvidence(funded_eth_grant.id, 0, EVIDENCE_2, EVIDENCE_URI, sender=ngo)


def test_submit_evidence_reverts_on_reclaimed_milestone(escrow, chain, funded_eth_grant, ngo, stranger):
    chain.pending_timestamp = funded_eth_grant.deadlines[0]
    escrow.reclaim(funded_eth_grant.id, 0, sender=stranger)

    with reverts(
        escrow.MilestoneAlreadySettled,
        grantId=funded_eth_grant.id,
        milestoneIndex=0,
        status=MilestoneStatus.RECLAIMED,
    ):
        escrow.submitEvidence(funded_eth_grant.id, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)


def test_submit_evidence_reverts_on_unknown_grant(escrow, ngo):
    with reverts(escrow.GrantNotFound, grantId=1):
        escrow.submitEvidence(1, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)


def test_submit_evidence_reverts_on_unknown_milestone(escrow, funded_eth_grant, ngo):
    with reverts(escrow.MilestoneNotFound, grantId=funded_eth_grant.id, milestoneIndex=3, milestoneCount=3):
        escrow.submitEvidence(funded_eth_grant.id, 3, EVIDENCE, EVIDENCE_URI, sender=ngo)


def test_submit_evidence_succeeds_one_second_before_deadline(escrow, chain, funded_eth_grant, ngo):
    chain.pending_timestamp = funded_eth_grant.deadlines[0] - 1

    escrow.submitEvidence(funded_eth_grant.id, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)

    assert escrow.getMilestone(funded_eth_grant.id, 0).status == MilestoneStatus.EVIDENCE_SUBMITTED


@pytest.mark.parametrize("offset", [0, 1])
def test_submit_evidence_reverts_from_deadline(escrow, chain, funded_eth_grant, ngo, offset):
    deadline = funded_eth_grant.deadlines[0]
    chain.pending_timestamp = deadline + offset

    with reverts(
        escrow.MilestoneDeadlinePassed,
        grantId=funded_eth_grant.id,
        milestoneIndex=0,
        deadline=deadline,
    ):
        escrow.submitEvidence(funded_eth_grant.id, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)


def test_new_evidence_clears_approvals_and_rejections(escrow, funded_eth_grant, ngo, attestors):
    escrow.submitEvidence(funded_eth_grant.id, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)
    escrow.approve(funded_eth_grant.id, 0, EVIDENCE, sender=attestors[0])
    escrow.reject(funded_eth_grant.id, 0, EVIDENCE, REASON, sender=attestors[1])

    escrow.submitEvidence(funded_eth_grant.id, 0, EVIDENCE_2, "ipfs://bafy-evidence-2", sender=ngo)

    milestone = escrow.getMilestone(funded_eth_grant.id, 0)
    assert milestone.evidenceHash == EVIDENCE_2
    assert (milestone.approvals, milestone.rejections) == (0, 0)
    assert (milestone.approvalCount, milestone.rejectionCount) == (0, 0)
    # Replacing evidence is not a rejection of the earlier hash.
    assert escrow.isEvidenceRejected(funded_eth_grant.id, 0, EVIDENCE) is False


def test_approvals_of_old_evidence_do_not_count(escrow, funded_eth_grant, ngo, attestors):
    escrow.submitEvidence(funded_eth_grant.id, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)
    escrow.approve(funded_eth_grant.id, 0, EVIDENCE, sender=attestors[0])
    escrow.submitEvidence(funded_eth_grant.id, 0, EVIDENCE_2, EVIDENCE_URI, sender=ngo)

    tx = escrow.approve(funded_eth_grant.id, 0, EVIDENCE_2, sender=attestors[1])

    assert tx.events == [
        expected_event(
            escrow.MilestoneApproved,
            grantId=funded_eth_grant.id,
            milestoneIndex=0,
            attestor=attestors[1],
            evidenceHash=EVIDENCE_2,
            approvalCount=1,
        ),
    ]
    assert escrow.getMilestone(funded_eth_grant.id, 0).status == MilestoneStatus.EVIDENCE_SUBMITTED
    assert_books(escrow)


def test_attestor_can_approve_new_evidence_after_old(escrow, funded_eth_grant, ngo, attestors):
    escrow.submitEvidence(funded_eth_grant.id, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)
    escrow.approve(funded_eth_grant.id, 0, EVIDENCE, sender=attestors[0])
    escrow.submitEvidence(funded_eth_grant.id, 0, EVIDENCE_2, EVIDENCE_URI, sender=ngo)

    tx = escrow.approve(funded_eth_grant.id, 0, EVIDENCE_2, sender=attestors[0])

    assert tx.events == [
        expected_event(
            escrow.MilestoneApproved,
            grantId=funded_eth_grant.id,
            milestoneIndex=0,
            attestor=attestors[0],
            evidenceHash=EVIDENCE_2,
            approvalCount=1,
        ),
    ]
    assert escrow.getMilestone(funded_eth_grant.id, 0).approvals == 0b001


def test_approval_of_replaced_evidence_reverts(escrow, funded_eth_grant, ngo, attestors):
    escrow.submitEvidence(funded_eth_grant.id, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)
    escrow.submitEvidence(funded_eth_grant.id, 0, EVIDENCE_2, EVIDENCE_URI, sender=ngo)

    with reverts(
        escrow.EvidenceMismatch,
        grantId=funded_eth_grant.id,
        milestoneIndex=0,
        current=EVIDENCE_2,
        given=EVIDENCE,
    ):
        escrow.approve(funded_eth_grant.id, 0, EVIDENCE, sender=attestors[0])
