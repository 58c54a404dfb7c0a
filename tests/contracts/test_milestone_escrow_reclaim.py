"""MilestoneEscrow.reclaim: pro-rata return of a missed milestone to the funders, and the
deadline that separates release from reclaim."""

import pytest
from assertions import (
    ETH,
    ETH_AMOUNTS,
    EVIDENCE,
    EVIDENCE_URI,
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
def three_funder_grant(escrow, eth_grant, grant_maker, donor, stranger):
    """The default ETH grant funded 1,000 / 2,000 / 3,000 wei by the grant maker, the donor and
    the stranger, in that order, so the grant maker is the first funder."""
    for funder, amount in ((grant_maker, 1_000), (donor, 2_000), (stranger, 3_000)):
        escrow.fund(eth_grant.id, amount, value=amount, sender=funder)
    return eth_grant


def test_reclaim_returns_amount_to_single_funder(escrow, chain, funded_eth_grant, grant_maker, stranger):
    grant_maker_before = grant_maker.balance
    chain.pending_timestamp = funded_eth_grant.deadlines[1]

    tx = escrow.reclaim(funded_eth_grant.id, 1, sender=stranger)

    assert tx.events == [
        expected_event(
            escrow.MilestoneReclaimed,
            grantId=funded_eth_grant.id,
            milestoneIndex=1,
            caller=stranger,
            amount=2_000,
        ),
        expected_event(
            escrow.Payout,
            grantId=funded_eth_grant.id,
            account=grant_maker,
            token=ETH,
            kind=PayoutKind.RECLAIM,
            milestoneIndex=1,
            amount=2_000,
            credited=False,
        ),
    ]
    assert grant_maker.balance == grant_maker_before + 2_000
    assert escrow.getMilestone(funded_eth_grant.id, 1).status == MilestoneStatus.RECLAIMED
    grant = escrow.getGrant(funded_eth_grant.id)
    assert (grant.released, grant.reclaimed, grant.held) == (0, 2_000, 4_000)
    assert_books(escrow)


def test_reclaim_splits_pro_rata_with_remainder_to_first_funder(
    escrow, chain, three_funder_grant, grant_maker, donor, stranger, attestors
):
    funders = (grant_maker, donor, stranger)
    before = {funder: funder.balance for funder in funders}
    chain.pending_timestamp = three_funder_grant.deadlines[0]

    tx = escrow.reclaim(three_funder_grant.id, 0, sender=attestors[0])

    # 1,000 wei split 1:2:3 is 166.67 / 333.33 / 500. The later funders get the rounded-down
    # shares 333 and 500, and the first funder gets the rest, 167.
    assert tx.events == [
        expected_event(
            escrow.MilestoneReclaimed,
            grantId=three_funder_grant.id,
            milestoneIndex=0,
            caller=attestors[0],
            amount=1_000,
        ),
        expected_event(
            escrow.Payout,
            grantId=three_funder_grant.id,
            account=donor,
            token=ETH,
            kind=PayoutKind.RECLAIM,
            milestoneIndex=0,
            amount=333,
            credited=False,
        ),
        expected_event(
            escrow.Payout,
            grantId=three_funder_grant.id,
            account=stranger,
            token=ETH,
            kind=PayoutKind.RECLAIM,
            milestoneIndex=0,
            amount=500,
            credited=False,
        ),
        expected_event(
            escrow.Payout,
            grantId=three_funder_grant.id,
            account=grant_maker,
            token=ETH,
            kind=PayoutKind.RECLAIM,
            milestoneIndex=0,
            amount=167,
            credited=False,
        ),
    ]
    paid = {funder: funder.balance - before[funder] for funder in funders}
    assert paid == {grant_maker: 167, donor: 333, stranger: 500}
    assert sum(paid.values()) == 1_000
    assert_books(escrow)


def test_reclaim_of_every_milestone_returns_all_funding(
    escrow, chain, three_funder_grant, grant_maker, donor, stranger, attestors
):
    funders = (grant_maker, donor, stranger)
    before = {funder: funder.balance for funder in funders}
    chain.pending_timestamp = three_funder_grant.deadlines[2]

    for index in range(3):
        escrow.reclaim(three_funder_grant.id, index, sender=attestors[0])
        assert_books(escrow)

    # Split 1:2:3, the milestones give 167 / 333 / 500, then 334 / 666 / 1,000, then
    # 500 / 1,000 / 1,500: the rounding moves 1 wei from the donor to the first funder.
    received = {funder: funder.balance - before[funder] for funder in funders}
    assert received == {grant_maker: 1_001, donor: 1_999, stranger: 3_000}
    grant = escrow.getGrant(three_funder_grant.id)
    assert (grant.reclaimed, grant.held) == (6_000, 0)
    assert grant.status == GrantStatus.COMPLETED


def test_reclaim_skips_funders_with_zero_share(escrow, chain, eth_grant, grant_maker, donor, stranger):
    escrow.fund(eth_grant.id, 5_999, value=5_999, sender=grant_maker)
    escrow.fund(eth_grant.id, 1, value=1, sender=donor)
    grant_maker_before = grant_maker.balance
    chain.pending_timestamp = eth_grant.deadlines[0]

    tx = escrow.reclaim(eth_grant.id, 0, sender=stranger)

    # The donor's share is 1,000 * 1 / 6,000 = 0, so it gets no Payout at all.
    assert tx.events == [
        expected_event(
            escrow.MilestoneReclaimed,
            grantId=eth_grant.id,
            milestoneIndex=0,
            caller=stranger,
            amount=1_000,
        ),
        expected_event(
            escrow.Payout,
            grantId=eth_grant.id,
            account=grant_maker,
            token=ETH,
            kind=PayoutKind.RECLAIM,
            milestoneIndex=0,
            amount=1_000,
            credited=False,
        ),
    ]
    assert grant_maker.balance == grant_maker_before + 1_000
    assert_books(escrow)


def test_reclaim_pays_fund_for_beneficiary(escrow, chain, eth_grant, donor, stranger):
    escrow.fundFor(eth_grant.id, stranger, 6_000, value=6_000, sender=donor)
    stranger_before = stranger.balance
    chain.pending_timestamp = eth_grant.deadlines[2]

    escrow.reclaim(eth_grant.id, 2, sender=donor)

    assert stranger.balance == stranger_before + 3_000


def test_reclaim_pays_all_64_funders(escrow, chain, create_grant, donor, stranger):
    grant = create_grant(amounts=(64_000,))
    funders = [f"0x{i:040x}" for i in range(0x1001, 0x1001 + 64)]
    for funder in funders:
        escrow.fundFor(grant.id, funder, 1_000, value=1_000, sender=donor)
    chain.pending_timestamp = grant.deadlines[0]

    tx = escrow.reclaim(grant.id, 0, sender=stranger)

    payouts = [event for event in tx.events if event.event_name == "Payout"]
    assert len(payouts) == 64
    assert all(chain.provider.get_balance(funder) == 1_000 for funder in funders)
    assert escrow.getGrant(grant.id).status == GrantStatus.COMPLETED
    assert_books(escrow)


def test_reclaim_usdc_transfers_tokens(escrow, chain, create_grant, fund, usdc, grant_maker, donor, stranger):
    grant = create_grant(token=usdc, amounts=USDC_AMOUNTS)
    fund(grant, grant_maker, 4_000 * 10**6)
    fund(grant, donor, 2_000 * 10**6)
    before = {funder: usdc.balanceOf(funder) for funder in (grant_maker, donor)}
    chain.pending_timestamp = grant.deadlines[1]

    tx = escrow.reclaim(grant.id, 1, sender=stranger)

    share_of_donor = 2_000 * 10**6 * 2_000 * 10**6 // (6_000 * 10**6)
    share_of_first = 2_000 * 10**6 - share_of_donor
    assert tx.events == [
        expected_event(
            escrow.MilestoneReclaimed,
            grantId=grant.id,
            milestoneIndex=1,
            caller=stranger,
            amount=2_000 * 10**6,
        ),
        expected_transfer(usdc, escrow, donor, share_of_donor),
        expected_event(
            escrow.Payout,
            grantId=grant.id,
            account=donor,
            token=usdc,
            kind=PayoutKind.RECLAIM,
            milestoneIndex=1,
            amount=share_of_donor,
            credited=False,
        ),
        expected_transfer(usdc, escrow, grant_maker, share_of_first),
        expected_event(
            escrow.Payout,
            grantId=grant.id,
            account=grant_maker,
            token=usdc,
            kind=PayoutKind.RECLAIM,
            milestoneIndex=1,
            amount=share_of_first,
            credited=False,
        ),
    ]
    assert usdc.balanceOf(donor) == before[donor] + 666_666_666
    assert usdc.balanceOf(grant_maker) == before[grant_maker] + 1_333_333_334
    assert_books(escrow)


def test_reclaim_with_evidence_pending(escrow, chain, funded_eth_grant, ngo, attestors, stranger):
    escrow.submitEvidence(funded_eth_grant.id, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)
    escrow.approve(funded_eth_grant.id, 0, EVIDENCE, sender=attestors[0])
    chain.pending_timestamp = funded_eth_grant.deadlines[0]

    escrow.reclaim(funded_eth_grant.id, 0, sender=stranger)

    milestone = escrow.getMilestone(funded_eth_grant.id, 0)
    assert milestone.status == MilestoneStatus.RECLAIMED
    assert milestone.evidenceHash == EVIDENCE
    assert_books(escrow)


def test_release_and_reclaim_complete_grant_together(escrow, chain, funded_eth_grant, release, stranger):
    release(funded_eth_grant, 0)
    release(funded_eth_grant, 1)
    chain.pending_timestamp = funded_eth_grant.deadlines[2]
    assert escrow.getGrant(funded_eth_grant.id).status == GrantStatus.ACTIVE

    escrow.reclaim(funded_eth_grant.id, 2, sender=stranger)

    grant = escrow.getGrant(funded_eth_grant.id)
    assert grant.status == GrantStatus.COMPLETED
    assert (grant.funded, grant.released, grant.reclaimed, grant.held) == (6_000, 3_000, 3_000, 0)
    assert_books(escrow)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_reclaim_reverts_one_second_before_deadline(escrow, chain, funded_eth_grant, stranger):
    deadline = funded_eth_grant.deadlines[0]
    chain.pending_timestamp = deadline - 1

    with reverts(
        escrow.MilestoneDeadlineNotReached,
        grantId=funded_eth_grant.id,
        milestoneIndex=0,
        deadline=deadline,
    ):
        escrow.reclaim(funded_eth_grant.id, 0, sender=stranger)


def test_reclaim_twice_reverts(escrow, chain, funded_eth_grant, stranger):
    chain.pending_timestamp = funded_eth_grant.deadlines[0]
    escrow.reclaim(funded_eth_grant.id, 0, sender=stranger)

    with reverts(
        escrow.MilestoneAlreadySettled,
        grantId=funded_eth_grant.id,
        milestoneIndex=0,
        status=MilestoneStatus.RECLAIMED,
    ):
        escrow.reclaim(funded_eth_grant.id, 0, sender=stranger)

    assert escrow.getGrant(funded_eth_grant.id).reclaimed == 1_000


def test_reclaim_of_released_milestone_reverts(escrow, chain, funded_eth_grant, release, stranger):
    release(funded_eth_grant, 0)
    chain.pending_timestamp = funded_eth_grant.deadlines[0] + 1

    with reverts(
        escrow.MilestoneAlreadySettled,
        grantId=funded_eth_grant.id,
        milestoneIndex=0,
        status=MilestoneStatus.RELEASED,
    ):
        escrow.reclaim(funded_eth_grant.id, 0, sender=stranger)


def test_reclaim_reverts_on_underfunded_grant(escrow, chain, eth_grant, donor, stranger):
    escrow.fund(eth_grant.id, 4_000, value=4_000, sender=donor)
    chain.pending_timestamp = eth_grant.deadlines[0]

    with reverts(escrow.GrantNotFullyFunded, grantId=eth_grant.id, funded=4_000, total=6_000):
        escrow.reclaim(eth_grant.id, 0, sender=stranger)


def test_reclaim_reverts_on_unknown_grant(escrow, stranger):
    with reverts(escrow.GrantNotFound, grantId=2):
        escrow.reclaim(2, 0, sender=stranger)


def test_reclaim_reverts_on_unknown_milestone(escrow, funded_eth_grant, stranger):
    with reverts(escrow.MilestoneNotFound, grantId=funded_eth_grant.id, milestoneIndex=3, milestoneCount=3):
        escrow.reclaim(funded_eth_grant.id, 3, sender=stranger)


# ---------------------------------------------------------------------------------------------
# The deadline separates release from reclaim
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_exactly_one_of_release_and_reclaim_is_possible(
    escrow, chain, funded_eth_grant, ngo, attestors, stranger, offset
):
    escrow.submitEvidence(funded_eth_grant.id, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)
    escrow.approve(funded_eth_grant.id, 0, EVIDENCE, sender=attestors[0])
    deadline = funded_eth_grant.deadlines[0]
    instant = deadline + offset

    # Each attempt runs from the same state at the same instant, and is then undone.
    with chain.isolate():
        chain.pending_timestamp = instant
        if offset < 0:
            escrow.approve(funded_eth_grant.id, 0, EVIDENCE, sender=attestors[1])
            assert escrow.getMilestone(funded_eth_grant.id, 0).status == MilestoneStatus.RELEASED
        else:
            with reverts(
                escrow.MilestoneDeadlinePassed,
                grantId=funded_eth_grant.id,
                milestoneIndex=0,
                deadline=deadline,
            ):
                escrow.approve(funded_eth_grant.id, 0, EVIDENCE, sender=attestors[1])

    with chain.isolate():
        chain.pending_timestamp = instant
        if offset < 0:
            with reverts(
                escrow.MilestoneDeadlineNotReached,
                grantId=funded_eth_grant.id,
                milestoneIndex=0,
                deadline=deadline,
            ):
                escrow.reclaim(funded_eth_grant.id, 0, sender=stranger)
        else:
            escrow.reclaim(funded_eth_grant.id, 0, sender=stranger)
            assert escrow.getMilestone(funded_eth_grant.id, 0).status == MilestoneStatus.RECLAIMED
        assert_books(escrow)


@pytest.mark.parametrize("offset", [0, 1])
def test_reclaim_succeeds_from_deadline(escrow, chain, funded_eth_grant, grant_maker, stranger, offset):
    grant_maker_before = grant_maker.balance
    chain.pending_timestamp = funded_eth_grant.deadlines[2] + offset

    escrow.reclaim(funded_eth_grant.id, 2, sender=stranger)

    assert grant_maker.balance == grant_maker_before + ETH_AMOUNTS[2]
    assert_books(escrow)
