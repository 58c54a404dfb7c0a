"""MilestoneEscrow.approve and reject: the M-of-N quorum, automatic release, rejection of
evidence, and the approval deadline."""

import pytest
from assertions import (
    DAY,
    ETH,
    EVIDENCE,
    EVIDENCE_2,
    EVIDENCE_URI,
    REASON,
    USDC_AMOUNTS,
    GrantStatus,
    MilestoneStatus,
    PayoutKind,
    assert_books,
    expected_event,
    expected_transfer,
    reverts,
)

pytestmark = pytest.mark.usefixtures("books_balance_at_end")


@pytest.fixture
def submitted(escrow, funded_eth_grant, ngo):
    """The funded ETH grant with EVIDENCE pending on milestone 0."""
    escrow.submitEvidence(funded_eth_grant.id, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)
    return funded_eth_grant


@pytest.fixture
def funded_accounts(accounts, deployer):
    """`funded_accounts(n)` returns n new test accounts, each sent 1 ETH for gas."""

    def _generate(count):
        generated = [accounts.generate_test_account() for _ in range(count)]
        for account in generated:
            deployer.transfer(account, 10**18)
        return generated

    return _generate


# ---------------------------------------------------------------------------------------------
# approve
# ---------------------------------------------------------------------------------------------


def test_approve_below_threshold_records_vote(escrow, submitted, attestors):
    tx = escrow.approve(submitted.id, 0, EVIDENCE, sender=attestors[1])

    assert tx.events == [
        expected_event(
            escrow.MilestoneApproved,
            grantId=submitted.id,
            milestoneIndex=0,
            attestor=attestors[1],
            evidenceHash=EVIDENCE,
            approvalCount=1,
        ),
    ]
    milestone = escrow.getMilestone(submitted.id, 0)
    assert (milestone.approvals, milestone.approvalCount) == (0b010, 1)
    assert milestone.status == MilestoneStatus.EVIDENCE_SUBMITTED
    assert_books(escrow)


def test_quorum_approval_releases_to_recipient(escrow, submitted, attestors, ngo):
    escrow.approve(submitted.id, 0, EVIDENCE, sender=attestors[0])
    ngo_before = ngo.balance

    tx = escrow.approve(submitted.id, 0, EVIDENCE, sender=attestors[2])

    assert tx.events == [
        expected_event(
            escrow.MilestoneApproved,
            grantId=submitted.id,
            milestoneIndex=0,
            attestor=attestors[2],
            evidenceHash=EVIDENCE,
            approvalCount=2,
        ),
        expected_event(
            escrow.MilestoneReleased,
            grantId=submitted.id,
            milestoneIndex=0,
            recipient=ngo,
            evidenceHash=EVIDENCE,
            amount=1_000,
        ),
        expected_event(
            escrow.Payout,
            grantId=submitted.id,
            account=ngo,
            token=ETH,
            kind=PayoutKind.RELEASE,
            milestoneIndex=0,
            amount=1_000,
            credited=False,
        ),
    ]
    assert ngo.balance == ngo_before + 1_000
    assert escrow.creditOf(ngo, ETH) == 0
    assert_books(escrow)


def test_release_updates_milestone_and_grant(escrow, funded_eth_grant, release):
    release(funded_eth_grant, 0)

    milestone = escrow.getMilestone(funded_eth_grant.id, 0)
    assert milestone.status == MilestoneStatus.RELEASED
    assert (milestone.approvals, milestone.approvalCount) == (0b011, 2)
    grant = escrow.getGrant(funded_eth_grant.id)
    assert (grant.released, grant.reclaimed, grant.held) == (1_000, 0, 5_000)
    assert grant.status == GrantStatus.ACTIVE
    assert escrow.totalHeld(ETH) == 5_000


def test_releasing_every_milestone_completes_grant(escrow, funded_eth_grant, release):
    for index in range(3):
        release(funded_eth_grant, index)
        assert_books(escrow)

    grant = escrow.getGrant(funded_eth_grant.id)
    assert grant.status == GrantStatus.COMPLETED
    assert (grant.released, grant.held) == (6_000, 0)


def test_usdc_release_transfers_tokens(escrow, funded_usdc_grant, ngo, attestors, usdc):
    escrow.submitEvidence(funded_usdc_grant.id, 2, EVIDENCE, EVIDENCE_URI, sender=ngo)
    escrow.approve(funded_usdc_grant.id, 2, EVIDENCE, sender=attestors[0])

    tx = escrow.approve(funded_usdc_grant.id, 2, EVIDENCE, sender=attestors[1])

    amount = USDC_AMOUNTS[2]
    assert tx.events == [
        expected_event(
            escrow.MilestoneApproved,
            grantId=funded_usdc_grant.id,
            milestoneIndex=2,
            attestor=attestors[1],
            evidenceHash=EVIDENCE,
            approvalCount=2,
        ),
        expected_event(
            escrow.MilestoneReleased,
            grantId=funded_usdc_grant.id,
            milestoneIndex=2,
            recipient=ngo,
            evidenceHash=EVIDENCE,
            amount=amount,
        ),
        expected_transfer(usdc, escrow, ngo, amount),
        expected_event(
            escrow.Payout,
            grantId=funded_usdc_grant.id,
            account=ngo,
            token=usdc,
            kind=PayoutKind.RELEASE,
            milestoneIndex=2,
            amount=amount,
            credited=False,
        ),
    ]
    assert usdc.balanceOf(ngo) == amount
    assert_books(escrow)


def test_approve_reverts_for_non_attestor(escrow, submitted, ngo):
    with reverts(escrow.NotAttestor, grantId=submitted.id, caller=ngo.address):
        escrow.approve(submitted.id, 0, EVIDENCE, sender=ngo)


def test_attestor_of_one_grant_cannot_approve_another(escrow, create_grant, submitted, ngo, stranger):
    other = create_grant(funded=True, attestors=[stranger], threshold=1)
    escrow.submitEvidence(other.id, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)

    with reverts(escrow.NotAttestor, grantId=submitted.id, caller=stranger.address):
        escrow.approve(submitted.id, 0, EVIDENCE, sender=stranger)


def test_approve_reverts_without_pending_evidence(escrow, funded_eth_grant, attestors):
    with reverts(escrow.NoPendingEvidence, grantId=funded_eth_grant.id, milestoneIndex=1):
        escrow.approve(funded_eth_grant.id, 1, EVIDENCE, sender=attestors[0])


def test_approve_reverts_on_evidence_mismatch(escrow, submitted, attestors):
    with reverts(
        escrow.EvidenceMismatch,
        grantId=submitted.id,
        milestoneIndex=0,
        current=EVIDENCE,
        given=EVIDENCE_2,
    ):
        escrow.approve(submitted.id, 0, EVIDENCE_2, sender=attestors[0])


def test_approve_twice_reverts(escrow, submitted, attestors):
    escrow.approve(submitted.id, 0, EVIDENCE, sender=attestors[0])

    with reverts(
        escrow.AlreadyAttested,
        grantId=submitted.id,
        milestoneIndex=0,
        attestor=attestors[0].address,
    ):
        escrow.approve(submitted.id, 0, EVIDENCE, sender=attestors[0])

    assert escrow.getMilestone(submitted.id, 0).approvalCount == 1


def test_approve_after_reject_reverts(escrow, submitted, attestors):
    escrow.reject(submitted.id, 0, EVIDENCE, REASON, sender=attestors[0])

    with reverts(
        escrow.AlreadyAttested,
        grantId=submitted.id,
        milestoneIndex=0,
        attestor=attestors[0].address,
    ):
        escrow.approve(submitted.id, 0, EVIDENCE, sender=attestors[0])


def test_approve_after_release_reverts(escrow, submitted, attestors):
    escrow.approve(submitted.id, 0, EVIDENCE, sender=attestors[0])
    escrow.approve(submitted.id, 0, EVIDENCE, sender=attestors[1])

    with reverts(
        escrow.MilestoneAlreadySettled,
        grantId=submitted.id,
        milestoneIndex=0,
        status=MilestoneStatus.RELEASED,
    ):
        escrow.approve(submitted.id, 0, EVIDENCE, sender=attestors[2])

    assert escrow.getGrant(submitted.id).released == 1_000


def test_approve_reverts_on_unknown_grant(escrow, attestors):
    with reverts(escrow.GrantNotFound, grantId=4):
        escrow.approve(4, 0, EVIDENCE, sender=attestors[0])


def test_approve_reverts_on_unknown_milestone(escrow, submitted, attestors):
    with reverts(escrow.MilestoneNotFound, grantId=submitted.id, milestoneIndex=5, milestoneCount=3):
        escrow.approve(submitted.id, 5, EVIDENCE, sender=attestors[0])


def test_approval_releases_one_second_before_deadline(escrow, chain, submitted, attestors):
    escrow.approve(submitted.id, 0, EVIDENCE, sender=attestors[0])
    chain.pending_timestamp = submitted.deadlines[0] - 1

    escrow.approve(submitted.id, 0, EVIDENCE, sender=attestors[1])

    assert escrow.getMilestone(submitted.id, 0).status == MilestoneStatus.RELEASED
    assert_books(escrow)


@pytest.mark.parametrize("offset", [0, 1])
@pytest.mark.parametrize("vote", ["approve", "reject"])
def test_votes_revert_from_deadline(escrow, chain, submitted, attestors, offset, vote):
    escrow.approve(submitted.id, 0, EVIDENCE, sender=attestors[0])
    args = (REASON,) if vote == "reject" else ()
    deadline = submitted.deadlines[0]
    chain.pending_timestamp = deadline + offset

    with reverts(escrow.MilestoneDeadlinePassed, grantId=submitted.id, milestoneIndex=0, deadline=deadline):
        getattr(escrow, vote)(submitted.id, 0, EVIDENCE, *args, sender=attestors[1])

    assert escrow.getMilestone(submitted.id, 0).status == MilestoneStatus.EVIDENCE_SUBMITTED


# ---------------------------------------------------------------------------------------------
# reject
# ---------------------------------------------------------------------------------------------


def test_single_rejection_is_recorded(escrow, submitted, attestors):
    tx = escrow.reject(submitted.id, 0, EVIDENCE, REASON, sender=attestors[2])

    assert tx.events == [
        expected_event(
            escrow.MilestoneRejected,
            grantId=submitted.id,
            milestoneIndex=0,
            attestor=attestors[2],
            evidenceHash=EVIDENCE,
            reasonHash=REASON,
            rejectionCount=1,
        ),
    ]
    milestone = escrow.getMilestone(submitted.id, 0)
    assert (milestone.rejections, milestone.rejectionCount) == (0b100, 1)
    assert milestone.status == MilestoneStatus.EVIDENCE_SUBMITTED
    assert escrow.isEvidenceRejected(submitted.id, 0, EVIDENCE) is False


def test_single_attestor_cannot_block_two_of_three(escrow, submitted, attestors, ngo):
    escrow.reject(submitted.id, 0, EVIDENCE, REASON, sender=attestors[0])
    escrow.approve(submitted.id, 0, EVIDENCE, sender=attestors[1])
    ngo_before = ngo.balance

    escrow.approve(submitted.id, 0, EVIDENCE, sender=attestors[2])

    assert escrow.getMilestone(submitted.id, 0).status == MilestoneStatus.RELEASED
    assert ngo.balance == ngo_before + 1_000
    assert_books(escrow)


def test_two_rejections_reject_evidence_of_two_of_three(escrow, submitted, attestors):
    escrow.approve(submitted.id, 0, EVIDENCE, sender=attestors[0])
    escrow.reject(submitted.id, 0, EVIDENCE, REASON, sender=attestors[1])

    tx = escrow.reject(submitted.id, 0, EVIDENCE, REASON, sender=attestors[2])

    assert tx.events == [
        expected_event(
            escrow.MilestoneRejected,
            grantId=submitted.id,
            milestoneIndex=0,
            attestor=attestors[2],
            evidenceHash=EVIDENCE,
            reasonHash=REASON,
            rejectionCount=2,
        ),
        expected_event(escrow.EvidenceRejected, grantId=submitted.id, milestoneIndex=0, evidenceHash=EVIDENCE),
    ]
    milestone = escrow.getMilestone(submitted.id, 0)
    assert milestone.status == MilestoneStatus.AWAITING_EVIDENCE
    assert milestone.evidenceHash == b"\x00" * 32
    assert (milestone.approvals, milestone.rejections) == (0, 0)
    assert escrow.isEvidenceRejected(submitted.id, 0, EVIDENCE) is True
    assert_books(escrow)


@pytest.mark.parametrize(
    ("threshold", "attestor_count", "rejections_needed"),
    [(1, 1, 1), (1, 3, 3), (2, 3, 2), (3, 3, 1)],
)
def test_evidence_is_rejected_after_n_minus_m_plus_one_rejections(
    escrow, create_grant, ngo, attestors, threshold, attestor_count, rejections_needed
):
    grant = create_grant(funded=True, attestors=attestors[:attestor_count], threshold=threshold)
    escrow.submitEvidence(grant.id, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)
    for attestor in attestors[: rejections_needed - 1]:
        escrow.reject(grant.id, 0, EVIDENCE, REASON, sender=attestor)
    assert escrow.isEvidenceRejected(grant.id, 0, EVIDENCE) is False

    last = attestors[rejections_needed - 1]
    tx = escrow.reject(grant.id, 0, EVIDENCE, REASON, sender=last)

    assert tx.events == [
        expected_event(
            escrow.MilestoneRejected,
            grantId=grant.id,
            milestoneIndex=0,
            attestor=last,
            evidenceHash=EVIDENCE,
            reasonHash=REASON,
            rejectionCount=rejections_needed,
        ),
        expected_event(escrow.EvidenceRejected, grantId=grant.id, milestoneIndex=0, evidenceHash=EVIDENCE),
    ]
    assert escrow.getMilestone(grant.id, 0).status == MilestoneStatus.AWAITING_EVIDENCE


def test_votes_revert_after_evidence_rejected(escrow, submitted, attestors):
    for attestor in attestors[:2]:
        escrow.reject(submitted.id, 0, EVIDENCE, REASON, sender=attestor)

    with reverts(escrow.NoPendingEvidence, grantId=submitted.id, milestoneIndex=0):
        escrow.approve(submitted.id, 0, EVIDENCE, sender=attestors[2])
    with reverts(escrow.NoPendingEvidence, grantId=submitted.id, milestoneIndex=0):
        escrow.reject(submitted.id, 0, EVIDENCE, REASON, sender=attestors[2])


def test_rejected_milestone_can_still_be_released_with_new_evidence(escrow, submitted, ngo, attestors):
    for attestor in attestors[:2]:
        escrow.reject(submitted.id, 0, EVIDENCE, REASON, sender=attestor)
    escrow.submitEvidence(submitted.id, 0, EVIDENCE_2, EVIDENCE_URI, sender=ngo)
    escrow.approve(submitted.id, 0, EVIDENCE_2, sender=attestors[0])

    tx = escrow.approve(submitted.id, 0, EVIDENCE_2, sender=attestors[1])

    released = expected_event(
        escrow.MilestoneReleased,
        grantId=submitted.id,
        milestoneIndex=0,
        recipient=ngo,
        evidenceHash=EVIDENCE_2,
        amount=1_000,
    )
    assert released in tx.events
    assert escrow.getMilestone(submitted.id, 0).status == MilestoneStatus.RELEASED
    assert_books(escrow)


def test_reject_reverts_for_non_attestor(escrow, submitted, stranger):
    with reverts(escrow.NotAttestor, grantId=submitted.id, caller=stranger.address):
        escrow.reject(submitted.id, 0, EVIDENCE, REASON, sender=stranger)


def test_reject_reverts_without_pending_evidence(escrow, funded_eth_grant, attestors):
    with reverts(escrow.NoPendingEvidence, grantId=funded_eth_grant.id, milestoneIndex=0):
        escrow.reject(funded_eth_grant.id, 0, EVIDENCE, REASON, sender=attestors[0])


def test_reject_reverts_on_evidence_mismatch(escrow, submitted, attestors):
    with reverts(
        escrow.EvidenceMismatch,
        grantId=submitted.id,
        milestoneIndex=0,
        current=EVIDENCE,
        given=EVIDENCE_2,
    ):
        escrow.reject(submitted.id, 0, EVIDENCE_2, REASON, sender=attestors[0])


def test_reject_after_approve_reverts(escrow, submitted, attestors):
    escrow.approve(submitted.id, 0, EVIDENCE, sender=attestors[1])

    with reverts(
        escrow.AlreadyAttested,
        grantId=submitted.id,
        milestoneIndex=0,
        attestor=attestors[1].address,
    ):
        escrow.reject(submitted.id, 0, EVIDENCE, REASON, sender=attestors[1])


def test_reject_after_release_reverts(escrow, funded_eth_grant, attestors, release):
    release(funded_eth_grant, 0)

    with reverts(
        escrow.MilestoneAlreadySettled,
        grantId=funded_eth_grant.id,
        milestoneIndex=0,
        status=MilestoneStatus.RELEASED,
    ):
        escrow.reject(funded_eth_grant.id, 0, EVIDENCE, REASON, sender=attestors[2])


def test_reject_reverts_on_unknown_grant(escrow, attestors):
    with reverts(escrow.GrantNotFound, grantId=9):
        escrow.reject(9, 0, EVIDENCE, REASON, sender=attestors[0])


def test_reject_reverts_on_unknown_milestone(escrow, submitted, attestors):
    with reverts(escrow.MilestoneNotFound, grantId=submitted.id, milestoneIndex=3, milestoneCount=3):
        escrow.reject(submitted.id, 3, EVIDENCE, REASON, sender=attestors[0])


# ---------------------------------------------------------------------------------------------
# Grant shapes at the limits
# ---------------------------------------------------------------------------------------------


def test_one_of_one_grant_releases_on_single_approval(escrow, create_grant, ngo, attestors):
    grant = create_grant(funded=True, attestors=attestors[:1], threshold=1, amounts=(4_000,))
    escrow.submitEvidence(grant.id, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)
    ngo_before = ngo.balance

    tx = escrow.approve(grant.id, 0, EVIDENCE, sender=attestors[0])

    assert tx.events == [
        expected_event(
            escrow.MilestoneApproved,
            grantId=grant.id,
            milestoneIndex=0,
            attestor=attestors[0],
            evidenceHash=EVIDENCE,
            approvalCount=1,
        ),
        expected_event(
            escrow.MilestoneReleased,
            grantId=grant.id,
            milestoneIndex=0,
            recipient=ngo,
            evidenceHash=EVIDENCE,
            amount=4_000,
        ),
        expected_event(
            escrow.Payout,
            grantId=grant.id,
            account=ngo,
            token=ETH,
            kind=PayoutKind.RELEASE,
            milestoneIndex=0,
            amount=4_000,
            credited=False,
        ),
    ]
    assert ngo.balance == ngo_before + 4_000
    assert escrow.getGrant(grant.id).status == GrantStatus.COMPLETED
    assert_books(escrow)


def test_sixteen_of_sixteen_grant_needs_every_attestor(escrow, create_grant, ngo, funded_accounts):
    sixteen = funded_accounts(16)
    grant = create_grant(funded=True, attestors=sixteen, threshold=16)
    escrow.submitEvidence(grant.id, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)

    for count, attestor in enumerate(sixteen[:15], start=1):
        escrow.approve(grant.id, 0, EVIDENCE, sender=attestor)
        assert escrow.getMilestone(grant.id, 0).approvalCount == count
    milestone = escrow.getMilestone(grant.id, 0)
    assert (milestone.approvals, milestone.status) == (0x7FFF, MilestoneStatus.EVIDENCE_SUBMITTED)

    tx = escrow.approve(grant.id, 0, EVIDENCE, sender=sixteen[15])

    approved = expected_event(
        escrow.MilestoneApproved,
        grantId=grant.id,
        milestoneIndex=0,
        attestor=sixteen[15],
        evidenceHash=EVIDENCE,
        approvalCount=16,
    )
    assert approved in tx.events
    milestone = escrow.getMilestone(grant.id, 0)
    assert (milestone.approvals, milestone.approvalCount) == (0xFFFF, 16)
    assert milestone.status == MilestoneStatus.RELEASED
    assert_books(escrow)


def test_last_of_sixteen_attestors_uses_top_bit(escrow, create_grant, ngo, funded_accounts):
    sixteen = funded_accounts(16)
    grant = create_grant(funded=True, attestors=sixteen, threshold=2)
    escrow.submitEvidence(grant.id, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)

    escrow.reject(grant.id, 0, EVIDENCE, REASON, sender=sixteen[15])

    milestone = escrow.getMilestone(grant.id, 0)
    assert (milestone.rejections, milestone.rejectionCount) == (0x8000, 1)


def test_last_of_32_milestones_can_be_released(escrow, create_grant, ngo, attestors):
    grant = create_grant(
        funded=True,
        amounts=[10 + i for i in range(32)],
        deadlines_in=[(30 + i) * DAY for i in range(32)],
    )
    escrow.submitEvidence(grant.id, 31, EVIDENCE, EVIDENCE_URI, sender=ngo)
    escrow.approve(grant.id, 31, EVIDENCE, sender=attestors[0])
    ngo_before = ngo.balance

    tx = escrow.approve(grant.id, 31, EVIDENCE, sender=attestors[1])

    assert tx.events == [
        expected_event(
            escrow.MilestoneApproved,
            grantId=grant.id,
            milestoneIndex=31,
            attestor=attestors[1],
            evidenceHash=EVIDENCE,
            approvalCount=2,
        ),
        expected_event(
            escrow.MilestoneReleased,
            grantId=grant.id,
            milestoneIndex=31,
            recipient=ngo,
            evidenceHash=EVIDENCE,
            amount=41,
        ),
        expected_event(
            escrow.Payout,
            grantId=grant.id,
            account=ngo,
            token=ETH,
            kind=PayoutKind.RELEASE,
            milestoneIndex=31,
            amount=41,
            credited=False,
        ),
    ]
    assert ngo.balance == ngo_before + 41
    assert escrow.getGrant(grant.id).released == 41
    assert_books(escrow)
