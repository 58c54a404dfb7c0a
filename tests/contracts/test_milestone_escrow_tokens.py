"""MilestoneEscrow with real-world token behaviour: a USDT-like token without return values, a
fee-on-transfer token, and a regulated stablecoin with a blocklist and a pause."""

import pytest
from assertions import (
    EVIDENCE,
    EVIDENCE_URI,
    USDC_AMOUNTS,
    GrantStatus,
    PayoutKind,
    assert_books,
    expected_event,
    expected_transfer,
    reverts,
)

pytestmark = pytest.mark.usefixtures("books_balance_at_end")


# ---------------------------------------------------------------------------------------------
# USDT-like token without return values
# ---------------------------------------------------------------------------------------------


def test_no_return_token_release_end_to_end(escrow, create_grant, no_return_token, ngo, attestors):
    grant = create_grant(funded=True, token=no_return_token, amounts=USDC_AMOUNTS)
    assert escrow.getGrant(grant.id).status == GrantStatus.ACTIVE
    assert no_return_token.balanceOf(escrow) == sum(USDC_AMOUNTS)
    escrow.submitEvidence(grant.id, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)
    escrow.approve(grant.id, 0, EVIDENCE, sender=attestors[0])

    tx = escrow.approve(grant.id, 0, EVIDENCE, sender=attestors[1])

    amount = USDC_AMOUNTS[0]
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
            recipient=ngo,
            evidenceHash=EVIDENCE,
            amount=amount,
        ),
        expected_transfer(no_return_token, escrow, ngo, amount),
        expected_event(
            escrow.Payout,
            grantId=grant.id,
            account=ngo,
            token=no_return_token,
            kind=PayoutKind.RELEASE,
            milestoneIndex=0,
            amount=amount,
            credited=False,
        ),
    ]
    assert no_return_token.balanceOf(ngo) == amount
    assert_books(escrow)


def test_no_return_token_reclaim_and_refund(
    escrow,
    chain,
    create_grant,
    fund,
    no_return_token,
    donor,
    stranger,
):
    funded = create_grant(funded=True, token=no_return_token, amounts=USDC_AMOUNTS)
    underfunded = create_grant(token=no_return_token, amounts=USDC_AMOUNTS)
    fund(underfunded, donor, 10**6)
    donor_before = no_return_token.balanceOf(donor)
    chain.pending_timestamp = funded.deadlines[0]

    escrow.reclaim(funded.id, 0, sender=stranger)
    escrow.refund(underfunded.id, donor, sender=stranger)

    assert no_return_token.balanceOf(donor) == donor_before + 10**6
    assert escrow.getGrant(funded.id).reclaimed == USDC_AMOUNTS[0]
    assert escrow.totalCredits(no_return_token) == 0
    assert_books(escrow)


def test_no_return_token_funding_without_allowance_reverts(escrow, create_grant, no_return_token, donor):
    grant = create_grant(token=no_return_token, amounts=USDC_AMOUNTS)

    with reverts(
        no_return_token.InsufficientAllowance,
        owner=donor.address,
        spender=escrow.address,
        allowance=0,
        amount=10**6,
    ):
        escrow.fund(grant.id, 10**6, sender=donor)

    assert escrow.getGrant(grant.id).funded == 0


# ---------------------------------------------------------------------------------------------
# Fee-on-transfer token
# ---------------------------------------------------------------------------------------------


def test_fee_on_transfer_funding_reverts(escrow, create_grant, fee_token, donor):
    grant = create_grant(token=fee_token, amounts=(10**18,))
    fee_token.approve(escrow, 10**18, sender=donor)
    donor_before = fee_token.balanceOf(donor)

    with reverts(escrow.TokenAmountMismatch, token=fee_token.address, expected=10**18, received=99 * 10**16):
        escrow.fund(grant.id, 10**18, sender=donor)

    view = escrow.getGrant(grant.id)
    assert (view.funded, view.funderCount) == (0, 0)
    assert escrow.contributionOf(grant.id, donor) == 0
    assert escrow.getFunders(grant.id) == []
    assert escrow.totalHeld(fee_token) == 0
    assert fee_token.balanceOf(escrow) == 0
    assert fee_token.balanceOf(donor) == donor_before


def test_fee_on_transfer_create_and_fund_reverts(escrow, grant_maker, make_terms, fee_token):
    terms = make_terms(token=fee_token, amounts=(10**18,))
    fee_token.approve(escrow, 10**18, sender=grant_maker)

    with reverts(escrow.TokenAmountMismatch, token=fee_token.address, expected=10**18, received=99 * 10**16):
        escrow.createAndFundGrant(terms, 10**18, sender=grant_maker)

    assert escrow.grantCount() == 0


# ---------------------------------------------------------------------------------------------
# Blocklist and pause
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def blocklist_grant(create_grant, blocklist_token):
    return create_grant(funded=True, token=blocklist_token, amounts=USDC_AMOUNTS)


@pytest.fixture
def approved_once(escrow, blocklist_grant, ngo, attestors):
    """The blocklist-token grant with evidence on milestone 0 and one of two approvals."""
    escrow.submitEvidence(blocklist_grant.id, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)
    escrow.approve(blocklist_grant.id, 0, EVIDENCE, sender=attestors[0])
    return blocklist_grant


def test_blocklisted_recipient_release_is_credited(escrow, approved_once, blocklist_token, ngo, attestors):
    blocklist_token.setBlocked(ngo, True, sender=attestors[2])

    tx = escrow.approve(approved_once.id, 0, EVIDENCE, sender=attestors[1])

    amount = USDC_AMOUNTS[0]
    assert tx.events == [
        expected_event(
            escrow.MilestoneApproved,
            grantId=approved_once.id,
            milestoneIndex=0,
            attestor=attestors[1],
            evidenceHash=EVIDENCE,
            approvalCount=2,
        ),
        expected_event(
            escrow.MilestoneReleased,
            grantId=approved_once.id,
            milestoneIndex=0,
            recipient=ngo,
            evidenceHash=EVIDENCE,
            amount=amount,
        ),
        expected_event(
            escrow.Payout,
            grantId=approved_once.id,
            account=ngo,
            token=blocklist_token,
            kind=PayoutKind.RELEASE,
            milestoneIndex=0,
            amount=amount,
            credited=True,
        ),
    ]
    assert escrow.creditOf(ngo, blocklist_token) == amount
    assert escrow.totalCredits(blocklist_token) == amount
    assert blocklist_token.balanceOf(ngo) == 0
    assert escrow.getGrant(approved_once.id).released == amount
    assert_books(escrow)


def test_blocklisted_recipient_withdraws_to_other_address(
    escrow, approved_once, blocklist_token, ngo, attestors, stranger
):
    blocklist_token.setBlocked(ngo, True, sender=attestors[2])
    escrow.approve(approved_once.id, 0, EVIDENCE, sender=attestors[1])
    amount = USDC_AMOUNTS[0]

    tx = escrow.withdraw(blocklist_token, stranger, sender=ngo)

    assert tx.events == [
        expected_event(escrow.CreditWithdrawn, account=ngo, token=blocklist_token, to=stranger, amount=amount),
        expected_transfer(blocklist_token, escrow, stranger, amount),
    ]
    assert blocklist_token.balanceOf(stranger) == amount
    assert escrow.creditOf(ngo, blocklist_token) == 0
    assert escrow.totalCredits(blocklist_token) == 0
    assert_books(escrow)


def test_withdraw_to_blocklisted_address_reverts_and_keeps_credit(
    escrow, approved_once, blocklist_token, ngo, attestors
):
    blocklist_token.setBlocked(ngo, True, sender=attestors[2])
    escrow.approve(approved_once.id, 0, EVIDENCE, sender=attestors[1])

    with reverts(blocklist_token.AccountBlocked, account=ngo.address):
        escrow.withdraw(blocklist_token, ngo, sender=ngo)

    assert escrow.creditOf(ngo, blocklist_token) == USDC_AMOUNTS[0]


def test_paused_token_release_is_credited(escrow, approved_once, blocklist_token, ngo, attestors):
    blocklist_token.pause(sender=attestors[2])

    tx = escrow.approve(approved_once.id, 0, EVIDENCE, sender=attestors[1])

    amount = USDC_AMOUNTS[0]
    credited = expected_event(
        escrow.Payout,
        grantId=approved_once.id,
        account=ngo,
        token=blocklist_token,
        kind=PayoutKind.RELEASE,
        milestoneIndex=0,
        amount=amount,
        credited=True,
    )
    assert credited in tx.events
    assert escrow.creditOf(ngo, blocklist_token) == amount
    assert_books(escrow)


def test_withdraw_while_paused_reverts_and_keeps_credit(
    escrow,
    approved_once,
    blocklist_token,
    ngo,
    attestors,
):
    blocklist_token.pause(sender=attestors[2])
    escrow.approve(approved_once.id, 0, EVIDENCE, sender=attestors[1])

    with reverts(blocklist_token.EnforcedPause):
        escrow.withdraw(blocklist_token, ngo, sender=ngo)

    assert escrow.creditOf(ngo, blocklist_token) == USDC_AMOUNTS[0]
    assert escrow.totalCredits(blocklist_token) == USDC_AMOUNTS[0]
    assert_books(escrow)


def test_withdraw_after_unpause_pays_credit(escrow, approved_once, blocklist_token, ngo, attestors):
    blocklist_token.pause(sender=attestors[2])
    escrow.approve(approved_once.id, 0, EVIDENCE, sender=attestors[1])
    blocklist_token.unpause(sender=attestors[2])

    tx = escrow.withdraw(blocklist_token, ngo, sender=ngo)

    assert tx.events == [
        expected_event(escrow.CreditWithdrawn, account=ngo, token=blocklist_token, to=ngo, amount=USDC_AMOUNTS[0]),
        expected_transfer(blocklist_token, escrow, ngo, USDC_AMOUNTS[0]),
    ]
    assert blocklist_token.balanceOf(ngo) == USDC_AMOUNTS[0]
    assert escrow.creditOf(ngo, blocklist_token) == 0
    assert_books(escrow)


def test_blocklisted_funder_reclaim_is_credited_while_others_are_paid(
    escrow, chain, create_grant, fund, blocklist_token, grant_maker, donor, stranger
):
    grant = create_grant(token=blocklist_token, amounts=USDC_AMOUNTS)
    fund(grant, grant_maker, 3_000 * 10**6)
    fund(grant, donor, 3_000 * 10**6)
    blocklist_token.setBlocked(donor, True, sender=stranger)
    grant_maker_before = blocklist_token.balanceOf(grant_maker)
    chain.pending_timestamp = grant.deadlines[0]

    tx = escrow.reclaim(grant.id, 0, sender=stranger)

    assert tx.events == [
        expected_event(escrow.MilestoneReclaimed, grantId=grant.id, milestoneIndex=0, caller=stranger, amount=10**9),
        expected_event(
            escrow.Payout,
            grantId=grant.id,
            account=donor,
            token=blocklist_token,
            kind=PayoutKind.RECLAIM,
            milestoneIndex=0,
            amount=500 * 10**6,
            credited=True,
        ),
        expected_transfer(blocklist_token, escrow, grant_maker, 500 * 10**6),
        expected_event(
            escrow.Payout,
            grantId=grant.id,
            account=grant_maker,
            token=blocklist_token,
            kind=PayoutKind.RECLAIM,
            milestoneIndex=0,
            amount=500 * 10**6,
            credited=False,
        ),
    ]
    assert blocklist_token.balanceOf(grant_maker) == grant_maker_before + 500 * 10**6
    assert escrow.creditOf(donor, blocklist_token) == 500 * 10**6
    assert_books(escrow)
