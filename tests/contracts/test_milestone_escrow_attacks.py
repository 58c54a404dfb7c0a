"""MilestoneEscrow against hostile parties: ETH-rejecting recipients and funders, a re-entrant
recipient, ETH forced in without a call, and parties acting on grants that are not theirs."""

import pytest
from assertions import (
    ETH,
    EVIDENCE,
    EVIDENCE_URI,
    MilestoneStatus,
    PayoutKind,
    assert_books,
    expected_event,
    reverts,
    selector,
)

pytestmark = pytest.mark.usefixtures("books_balance_at_end")


def test_rejecting_recipient_cannot_block_release(escrow, create_grant, rejecter, attestors, stranger):
    grant = create_grant(funded=True, recipient=rejecter)
    rejecter.submitEvidence(escrow, grant.id, 1, EVIDENCE, sender=stranger)
    escrow.approve(grant.id, 1, EVIDENCE, sender=attestors[0])

    tx = escrow.approve(grant.id, 1, EVIDENCE, sender=attestors[1])

    payout = expected_event(
        escrow.Payout,
        grantId=grant.id,
        account=rejecter,
        token=ETH,
        kind=PayoutKind.RELEASE,
        milestoneIndex=1,
        amount=2_000,
        credited=True,
    )
    assert payout in tx.events
    assert escrow.getMilestone(grant.id, 1).status == MilestoneStatus.RELEASED
    stranger_before = stranger.balance
    rejecter.withdraw(escrow, ETH, stranger, sender=attestors[2])
    assert stranger.balance == stranger_before + 2_000
    assert_books(escrow)


def test_rejecting_funder_is_credited_while_others_are_paid(
    escrow, chain, eth_grant, rejecter, grant_maker, donor, stranger
):
    escrow.fund(eth_grant.id, 3_000, value=3_000, sender=grant_maker)
    rejecter.fund(escrow, eth_grant.id, 2_000, value=2_000, sender=donor)
    escrow.fund(eth_grant.id, 1_000, value=1_000, sender=donor)
    before = {funder: funder.balance for funder in (grant_maker, donor)}
    chain.pending_timestamp = eth_grant.deadlines[2]

    tx = escrow.reclaim(eth_grant.id, 2, sender=stranger)

    assert tx.events == [
        expected_event(
            escrow.MilestoneReclaimed,
            grantId=eth_grant.id,
            milestoneIndex=2,
            caller=stranger,
            amount=3_000,
        ),
        expected_event(
            escrow.Payout,
            grantId=eth_grant.id,
            account=rejecter,
            token=ETH,
            kind=PayoutKind.RECLAIM,
            milestoneIndex=2,
            amount=1_000,
            credited=True,
        ),
        expected_event(
            escrow.Payout,
            grantId=eth_grant.id,
            account=donor,
            token=ETH,
            kind=PayoutKind.RECLAIM,
            milestoneIndex=2,
            amount=500,
            credited=False,
        ),
        expected_event(
            escrow.Payout,
            grantId=eth_grant.id,
            account=grant_maker,
            token=ETH,
            kind=PayoutKind.RECLAIM,
            milestoneIndex=2,
            amount=1_500,
            credited=False,
        ),
    ]
    assert grant_maker.balance == before[grant_maker] + 1_500
    assert donor.balance == before[donor] + 500
    assert escrow.creditOf(rejecter, ETH) == 1_000
    assert_books(escrow)


def test_reentrant_recipient_is_paid_and_reentry_blocked(
    escrow,
    project,
    deployer,
    create_grant,
    attestors,
    stranger,
):
    recipient = deployer.deploy(project.ReentrantRecipient, escrow)
    grant = create_grant(funded=True, recipient=recipient)
    recipient.setTarget(grant.id, 0, sender=stranger)
    recipient.submitEvidence(grant.id, 0, EVIDENCE, sender=stranger)
    escrow.approve(grant.id, 0, EVIDENCE, sender=attestors[0])

    tx = escrow.approve(grant.id, 0, EVIDENCE, sender=attestors[1])

    # The receive function fits in the 50,000 gas of an ETH payout: its reclaim call reverts
    # at the reentrancy guard, it stores the revert data and accepts the ETH.
    payout = expected_event(
        escrow.Payout,
        grantId=grant.id,
        account=recipient,
        token=ETH,
        kind=PayoutKind.RELEASE,
        milestoneIndex=0,
        amount=1_000,
        credited=False,
    )
    assert payout in tx.events
    assert recipient.balance == 1_000
    assert recipient.reentered() is False
    assert recipient.reentryError() == selector("ReentrancyGuardReentrantCall()")
    assert escrow.creditOf(recipient, ETH) == 0
    assert escrow.getGrant(grant.id).reclaimed == 0
    assert_books(escrow)


def test_forced_eth_changes_no_books(escrow, project, deployer, funded_eth_grant):
    deployer.deploy(project.ForceEtherSender, escrow, value=777)

    assert escrow.balance == 6_000 + 777
    assert escrow.totalHeld(ETH) == 6_000
    assert escrow.totalCredits(ETH) == 0
    grant = escrow.getGrant(funded_eth_grant.id)
    assert (grant.funded, grant.held) == (6_000, 6_000)
    assert_books(escrow, eth_surplus=777)


def test_forced_eth_breaks_no_payout(
    escrow, chain, project, deployer, funded_eth_grant, release, rejecter, create_grant, attestors, stranger
):
    deployer.deploy(project.ForceEtherSender, escrow, value=777)

    release(funded_eth_grant, 0)
    assert_books(escrow, eth_surplus=777)
    chain.pending_timestamp = funded_eth_grant.deadlines[1]
    escrow.reclaim(funded_eth_grant.id, 1, sender=stranger)
    assert_books(escrow, eth_surplus=777)

    rejecting_grant = create_grant(funded=True, recipient=rejecter, amounts=(500,))
    rejecter.submitEvidence(escrow, rejecting_grant.id, 0, EVIDENCE, sender=stranger)
    for attestor in attestors[:2]:
        escrow.approve(rejecting_grant.id, 0, EVIDENCE, sender=attestor)
    rejecter.withdraw(escrow, ETH, stranger, sender=stranger)

    assert escrow.balance == 3_000 + 777
    assert escrow.getGrant(funded_eth_grant.id).held == 3_000
    assert_books(escrow, eth_surplus=777)


def test_recipient_cannot_submit_evidence_for_another_grant(
    escrow,
    create_grant,
    funded_eth_grant,
    stranger,
    donor,
):
    other = create_grant(funded=True, recipient=stranger)

    with reverts(escrow.NotRecipient, grantId=funded_eth_grant.id, caller=stranger.address):
        escrow.submitEvidence(funded_eth_grant.id, 0, EVIDENCE, EVIDENCE_URI, sender=stranger)

    assert escrow.getGrant(other.id).recipient == stranger.address


def test_reclaim_of_one_grant_leaves_others_untouched(
    escrow,
    chain,
    create_grant,
    funded_eth_grant,
    stranger,
):
    later = create_grant(funded=True, deadlines_in=[400 * 86_400, 500 * 86_400, 600 * 86_400])
    chain.pending_timestamp = funded_eth_grant.deadlines[2]

    for index in range(3):
        escrow.reclaim(funded_eth_grant.id, index, sender=stranger)

    assert escrow.getGrant(later.id).held == 6_000
    assert escrow.totalHeld(ETH) == 6_000
    assert escrow.balance == 6_000
    with reverts(
        escrow.MilestoneDeadlineNotReached,
        grantId=later.id,
        milestoneIndex=0,
        deadline=later.deadlines[0],
    ):
        escrow.reclaim(later.id, 0, sender=stranger)
    assert_books(escrow)
