"""MilestoneEscrow payouts that fail and become credits, and MilestoneEscrow.withdraw."""

import pytest
from assertions import (
    ETH,
    EVIDENCE,
    NO_MILESTONE,
    PayoutKind,
    assert_books,
    expected_event,
    reverts,
)


pytestmark = pytest.mark.usefixtures("books_balance_at_end")


@pytest.fixture
def credited_rejecter(escrow, create_grant, rejecter, attestors, stranger):
    """An ETH-rejecting recipient whose 1,000 wei release of milestone 0 was credited."""
    grant = create_grant(funded=True, recipient=rejecter)
    rejecter.submitEvidence(escrow, grant.id, 0, EVIDENCE, sender=stranger)
    for attestor in attestors[:2]:
        escrow.approve(grant.id, 0, EVIDENCE, sender=attestor)
    return rejecter


def test_failed_eth_release_is_credited(escrow, create_grant, rejecter, attestors, stranger):
    grant = create_grant(funded=True, recipient=rejecter)
    rejecter.submitEvidence(escrow, grant.id, 0, EVIDENCE, sender=stranger)
    escrow.approve(grant.id, 0, EVIDENCE, sender=attestors[0])

    tx = escrow.approve(grant.id, 0, EVIDENCE, sender=attestors[1])

    assert tx.events == [
        expected_event(
            escrow.MilestoneApproved,
            grantId=grant.id,
            milestoneIndex=0,
            attestor=attestors[1],
            evidenceHash=EVIDENCE,
            approvalCount=2,
        ),
        expected_event(
            escrow.MilestoneReleased,
            grantId=grant.id,
            milestoneIndex=0,
            recipient=rejecter,
            evidenceHash=EVIDENCE,
            amount=1_000,
        ),
        expected_event(
            escrow.Payout,
            grantId=grant.id,
            account=rejecter,
            token=ETH,
            kind=PayoutKind.RELEASE,
            milestoneIndex=0,
            amount=1_000,
            credited=True,
        ),
    ]
    assert escrow.creditOf(rejecter, ETH) == 1_000
    assert escrow.totalCredits(ETH) == 1_000
    assert rejecter.balance == 0
    assert_books(escrow)


def test_withdraw_sends_credit_to_other_address(escrow, credited_rejecter, stranger, donor):
    stranger_before = stranger.balance

    tx = credited_rejecter.withdraw(escrow, ETH, stranger, sender=donor)

    assert tx.events == [
        expected_event(escrow.CreditWithdrawn, account=credited_rejecter, token=ETH, to=stranger, amount=1_000),
    ]
    assert stranger.balance == stranger_before + 1_000
    assert escrow.creditOf(credited_rejecter, ETH) == 0
    assert escrow.totalCredits(ETH) == 0
    assert_books(escrow)


def test_second_withdraw_reverts(escrow, credited_rejecter, stranger):
    credited_rejecter.withdraw(escrow, ETH, stranger, sender=stranger)

    with reverts(escrow.NoCredit, account=credited_rejecter.address, token=ETH):
        credited_rejecter.withdraw(escrow, ETH, stranger, sender=stranger)


def test_withdraw_to_rejecting_address_reverts_and_keeps_credit(escrow, credited_rejecter, stranger):
    with reverts(credited_rejecter.EthRejected):
        credited_rejecter.withdraw(escrow, ETH, credited_rejecter, sender=stranger)

    assert escrow.creditOf(credited_rejecter, ETH) == 1_000
    assert escrow.totalCredits(ETH) == 1_000
    assert_books(escrow)


def test_withdraw_reverts_to_zero_address(escrow, credited_rejecter, stranger):
    with reverts(escrow.ZeroWithdrawalAddress):
        credited_rejecter.withdraw(escrow, ETH, ETH, sender=stranger)


@pytest.mark.parametrize("token_name", ["eth", "usdc"])
def test_withdraw_reverts_without_credit(escrow, usdc, stranger, token_name):
    token = ETH if token_name == "eth" else usdc.address

    with reverts(escrow.NoCredit, account=stranger.address, token=token):
        escrow.withdraw(token, stranger, sender=stranger)


def test_credit_is_per_token(escrow, credited_rejecter, usdc, stranger):
    with reverts(escrow.NoCredit, account=credited_rejecter.address, token=usdc.address):
        credited_rejecter.withdraw(escrow, usdc, stranger, sender=stranger)

    assert escrow.creditOf(credited_rejecter, ETH) == 1_000


def test_credits_add_up_across_payouts(escrow, create_grant, rejecter, attestors, stranger):
    grant = create_grant(funded=True, recipient=rejecter)
    for index in (0, 2):
        rejecter.submitEvidence(escrow, grant.id, index, EVIDENCE, sender=stranger)
        for attestor in attestors[:2]:
            escrow.approve(grant.id, index, EVIDENCE, sender=attestor)
        assert_books(escrow)
    stranger_before = stranger.balance

    rejecter.withdraw(escrow, ETH, stranger, sender=attestors[0])

    assert stranger.balance == stranger_before + 4_000
    assert escrow.creditOf(rejecter, ETH) == 0
    assert_books(escrow)


def test_failed_refund_is_credited(escrow, chain, eth_grant, rejecter, donor, stranger):
    escrow.fundFor(eth_grant.id, rejecter, 2_000, value=2_000, sender=donor)
    chain.pending_timestamp = eth_grant.funding_deadline

    tx = escrow.refund(eth_grant.id, rejecter, sender=stranger)

    credited = expected_event(
        escrow.Payout,
        grantId=eth_grant.id,
        account=rejecter,
        token=ETH,
        kind=PayoutKind.REFUND,
        milestoneIndex=NO_MILESTONE,
        amount=2_000,
        credited=True,
    )
    assert credited in tx.events
    assert escrow.creditOf(rejecter, ETH) == 2_000
    assert escrow.isRefunded(eth_grant.id, rejecter) is True
    assert_books(escrow)
