"""MilestoneEscrow funding: fund, fundFor, createAndFundGrant, the funding deadline and refunds
of grants that were not fully funded in time."""

import pytest
from ape.utils import ZERO_ADDRESS
from assertions import (
    ETH,
    ETH_AMOUNTS,
    NO_MILESTONE,
    USDC_AMOUNTS,
    GrantStatus,
    PayoutKind,
    assert_books,
    balance_of,
    expected_event,
    expected_grant_created,
    expected_transfer,
    gas_paid_in,
    reverts,
    transfer_events,
)

pytestmark = pytest.mark.usefixtures("books_balance_at_end")


# ---------------------------------------------------------------------------------------------
# fund and fundFor
# ---------------------------------------------------------------------------------------------


def test_fund_records_contribution(escrow, create_grant, fund, grant_token, donor):
    grant = create_grant(token=grant_token, amounts=USDC_AMOUNTS)
    amount = 700 * 10**6
    donor_before = balance_of(grant_token, donor)

    tx = fund(grant, donor, amount)

    assert tx.events == [
        expected_event(
            escrow.GrantFunded,
            grantId=grant.id,
            funder=donor,
            payer=donor,
            amount=amount,
            totalFunded=amount,
        ),
        *transfer_events(grant_token, donor, escrow, amount),
    ]
    assert balance_of(grant_token, donor) == donor_before - amount - gas_paid_in(grant_token, tx)
    assert balance_of(grant_token, escrow) == amount
    assert escrow.contributionOf(grant.id, donor) == amount
    assert escrow.getFunders(grant.id) == [donor.address]
    assert escrow.getGrant(grant.id).funded == amount
    assert escrow.totalHeld(grant_token) == amount
    assert_books(escrow)


def test_repeated_funding_adds_to_one_contribution(escrow, eth_grant, donor):
    escrow.fund(eth_grant.id, 1_000, value=1_000, sender=donor)

    tx = escrow.fund(eth_grant.id, 500, value=500, sender=donor)

    assert tx.events == [
        expected_event(
            escrow.GrantFunded,
            grantId=eth_grant.id,
            funder=donor,
            payer=donor,
            amount=500,
            totalFunded=1_500,
        ),
    ]
    assert escrow.contributionOf(eth_grant.id, donor) == 1_500
    assert escrow.getFunders(eth_grant.id) == [donor.address]
    assert escrow.getGrant(eth_grant.id).funderCount == 1
    assert_books(escrow)


def test_funders_are_listed_in_order_of_first_contribution(escrow, eth_grant, donor, grant_maker, stranger):
    for funder in (stranger, donor, stranger, grant_maker):
        escrow.fund(eth_grant.id, 100, value=100, sender=funder)
        assert_books(escrow)

    assert escrow.getFunders(eth_grant.id) == [stranger.address, donor.address, grant_maker.address]
    assert escrow.contributionOf(eth_grant.id, stranger) == 200


def test_fund_for_records_funder_not_payer(escrow, eth_grant, donor, stranger):
    tx = escrow.fundFor(eth_grant.id, stranger, 800, value=800, sender=donor)

    assert tx.events == [
        expected_event(
            escrow.GrantFunded,
            grantId=eth_grant.id,
            funder=stranger,
            payer=donor,
            amount=800,
            totalFunded=800,
        ),
    ]
    assert escrow.contributionOf(eth_grant.id, stranger) == 800
    assert escrow.contributionOf(eth_grant.id, donor) == 0
    assert escrow.getFunders(eth_grant.id) == [stranger.address]
    assert_books(escrow)


def test_full_funding_makes_grant_active(escrow, eth_grant, donor):
    escrow.fund(eth_grant.id, 5_999, value=5_999, sender=donor)
    assert escrow.getGrant(eth_grant.id).status == GrantStatus.FUNDING

    escrow.fund(eth_grant.id, 1, value=1, sender=donor)

    grant = escrow.getGrant(eth_grant.id)
    assert grant.status == GrantStatus.ACTIVE
    assert (grant.funded, grant.held) == (6_000, 6_000)
    assert_books(escrow)


@pytest.mark.parametrize("method", ["fund", "fundFor"])
def test_funding_reverts_on_unknown_grant(escrow, donor, method):
    args = (7, donor.address, 100) if method == "fundFor" else (7, 100)

    with reverts(escrow.GrantNotFound, grantId=7):
        getattr(escrow, method)(*args, value=100, sender=donor)


@pytest.mark.parametrize("method", ["fund", "fundFor"])
def test_funding_reverts_on_zero_amount(escrow, eth_grant, donor, method):
    args = (eth_grant.id, donor.address, 0) if method == "fundFor" else (eth_grant.id, 0)

    with reverts(escrow.ZeroAmount):
        getattr(escrow, method)(*args, sender=donor)


def test_fund_for_reverts_on_zero_funder(escrow, eth_grant, donor):
    with reverts(escrow.ZeroFunder):
        escrow.fundFor(eth_grant.id, ZERO_ADDRESS, 100, value=100, sender=donor)


@pytest.mark.parametrize("amount", [6_001, 60_000])
def test_fund_reverts_above_total(escrow, eth_grant, donor, amount):
    with reverts(escrow.FundingExceedsTotal, grantId=eth_grant.id, amount=amount, remaining=6_000):
        escrow.fund(eth_grant.id, amount, value=amount, sender=donor)


def test_fund_reverts_above_remaining(escrow, eth_grant, donor, grant_maker):
    escrow.fund(eth_grant.id, 5_000, value=5_000, sender=grant_maker)

    with reverts(escrow.FundingExceedsTotal, grantId=eth_grant.id, amount=1_001, remaining=1_000):
        escrow.fund(eth_grant.id, 1_001, value=1_001, sender=donor)


def test_fund_reverts_on_fully_funded_grant(escrow, funded_eth_grant, donor):
    with reverts(escrow.FundingExceedsTotal, grantId=funded_eth_grant.id, amount=1, remaining=0):
        escrow.fund(funded_eth_grant.id, 1, value=1, sender=donor)


@pytest.mark.parametrize("sent", [0, 999, 1_001])
def test_fund_eth_reverts_on_value_mismatch(escrow, eth_grant, donor, sent):
    with reverts(escrow.EthAmountMismatch, sent=sent, amount=1_000):
        escrow.fund(eth_grant.id, 1_000, value=sent, sender=donor)


def test_fund_erc20_reverts_on_eth_sent(escrow, create_grant, usdc, donor):
    grant = create_grant(token=usdc, amounts=USDC_AMOUNTS)
    usdc.approve(escrow, 10**6, sender=donor)

    with reverts(escrow.UnexpectedEth, sent=1):
        escrow.fund(grant.id, 10**6, value=1, sender=donor)


def test_fund_accepts_64_funders_and_rejects_the_65th(escrow, eth_grant, donor):
    funders = [f"0x{i:040x}" for i in range(1, 65)]
    for funder in funders:
        escrow.fundFor(eth_grant.id, funder, 1, value=1, sender=donor)
    assert escrow.getGrant(eth_grant.id).funderCount == 64

    with reverts(escrow.TooManyFunders, grantId=eth_grant.id, max=64):
        escrow.fund(eth_grant.id, 1, value=1, sender=donor)

    # An existing funder may still add to its contribution.
    escrow.fundFor(eth_grant.id, funders[0], 1, value=1, sender=donor)
    assert escrow.contributionOf(eth_grant.id, funders[0]) == 2
    assert_books(escrow)


# ---------------------------------------------------------------------------------------------
# Funding deadline
# ---------------------------------------------------------------------------------------------


def test_fund_succeeds_one_second_before_funding_deadline(escrow, chain, eth_grant, donor):
    chain.pending_timestamp = eth_grant.funding_deadline - 1

    escrow.fund(eth_grant.id, 100, value=100, sender=donor)

    assert escrow.contributionOf(eth_grant.id, donor) == 100
    assert_books(escrow)


@pytest.mark.parametrize("offset", [0, 1])
@pytest.mark.parametrize("method", ["fund", "fundFor"])
def test_funding_reverts_at_and_after_funding_deadline(escrow, chain, eth_grant, donor, offset, method):
    args = (eth_grant.id, donor.address, 100) if method == "fundFor" else (eth_grant.id, 100)
    chain.pending_timestamp = eth_grant.funding_deadline + offset

    with reverts(escrow.FundingClosed, grantId=eth_grant.id, fundingDeadline=eth_grant.funding_deadline):
        getattr(escrow, method)(*args, value=100, sender=donor)


# ---------------------------------------------------------------------------------------------
# createAndFundGrant
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "status"),
    [(6_000 * 10**6, GrantStatus.ACTIVE), (2_500 * 10**6, GrantStatus.FUNDING)],
    ids=["full", "partial"],
)
def test_create_and_fund_grant(escrow, grant_maker, make_terms, grant_token, amount, status):
    terms = make_terms(token=grant_token, amounts=USDC_AMOUNTS)
    value = amount if grant_token == ETH else 0
    if grant_token != ETH:
        grant_token.approve(escrow, amount, sender=grant_maker)

    tx = escrow.createAndFundGrant(terms, amount, value=value, sender=grant_maker)

    assert tx.events == [
        expected_grant_created(escrow, 1, grant_maker, terms),
        expected_event(
            escrow.GrantFunded,
            grantId=1,
            funder=grant_maker,
            payer=grant_maker,
            amount=amount,
            totalFunded=amount,
        ),
        *transfer_events(grant_token, grant_maker, escrow, amount),
    ]
    assert escrow.contributionOf(1, grant_maker) == amount
    assert balance_of(grant_token, escrow) == amount
    assert escrow.getGrant(1).status == status
    assert_books(escrow)


def test_create_and_fund_grant_reverts_as_a_whole(escrow, grant_maker, make_terms):
    terms = make_terms(amounts=ETH_AMOUNTS)

    with reverts(escrow.EthAmountMismatch, sent=5_999, amount=6_000):
        escrow.createAndFundGrant(terms, 6_000, value=5_999, sender=grant_maker)

    assert escrow.grantCount() == 0


@pytest.mark.parametrize(
    ("amount", "error", "inputs"),
    [
        (0, "ZeroAmount", {}),
        (6_001, "FundingExceedsTotal", {"grantId": 1, "amount": 6_001, "remaining": 6_000}),
    ],
)
def test_create_and_fund_grant_checks_amount(escrow, grant_maker, make_terms, amount, error, inputs):
    with reverts(getattr(escrow, error), **inputs):
        escrow.createAndFundGrant(make_terms(amounts=ETH_AMOUNTS), amount, value=amount, sender=grant_maker)

    assert escrow.grantCount() == 0


def test_create_and_fund_grant_validates_terms(escrow, grant_maker, make_terms):
    with reverts(escrow.InvalidThreshold, threshold=0, attestorCount=3):
        escrow.createAndFundGrant(make_terms(threshold=0), 100, value=100, sender=grant_maker)


def test_create_and_fund_grant_rejects_eth_for_erc20(escrow, grant_maker, make_terms, usdc):
    usdc.approve(escrow, 10**6, sender=grant_maker)

    with reverts(escrow.UnexpectedEth, sent=10**6):
        escrow.createAndFundGrant(
            make_terms(token=usdc, amounts=USDC_AMOUNTS), 10**6, value=10**6, sender=grant_maker
        )


# ---------------------------------------------------------------------------------------------
# Refunds
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def underfunded_grant(escrow, eth_grant, grant_maker, donor):
    """The default ETH grant with 1,000 wei from the grant maker and 2,500 from the donor,
    short of its 6,000 wei total."""
    escrow.fund(eth_grant.id, 1_000, value=1_000, sender=grant_maker)
    escrow.fund(eth_grant.id, 2_500, value=2_500, sender=donor)
    return eth_grant


def test_grant_fails_funding_at_funding_deadline(escrow, chain, underfunded_grant):
    chain.mine(timestamp=underfunded_grant.funding_deadline - 1)
    assert escrow.getGrant(underfunded_grant.id).status == GrantStatus.FUNDING

    chain.mine(timestamp=underfunded_grant.funding_deadline)

    assert escrow.getGrant(underfunded_grant.id).status == GrantStatus.FUNDING_FAILED


@pytest.mark.parametrize("offset", [0, 1])
def test_refund_returns_contribution_from_funding_deadline(
    escrow, chain, underfunded_grant, donor, stranger, offset
):
    donor_before = donor.balance
    chain.pending_timestamp = underfunded_grant.funding_deadline + offset

    tx = escrow.refund(underfunded_grant.id, donor, sender=stranger)

    assert tx.events == [
        expected_event(escrow.FundingRefunded, grantId=underfunded_grant.id, funder=donor, amount=2_500),
        expected_event(
            escrow.Payout,
            grantId=underfunded_grant.id,
            account=donor,
            token=ETH,
            kind=PayoutKind.REFUND,
            milestoneIndex=NO_MILESTONE,
            amount=2_500,
            credited=False,
        ),
    ]
    assert donor.balance == donor_before + 2_500
    assert escrow.isRefunded(underfunded_grant.id, donor) is True
    assert escrow.contributionOf(underfunded_grant.id, donor) == 2_500
    assert_books(escrow)


def test_refund_reverts_one_second_before_funding_deadline(escrow, chain, underfunded_grant, donor):
    chain.pending_timestamp = underfunded_grant.funding_deadline - 1

    with reverts(escrow.RefundNotAvailable, grantId=underfunded_grant.id):
        escrow.refund(underfunded_grant.id, donor, sender=donor)


def test_refund_pays_each_funder_exactly_once(escrow, chain, underfunded_grant, grant_maker, donor, stranger):
    chain.pending_timestamp = underfunded_grant.funding_deadline
    balances_before = {funder: funder.balance for funder in (grant_maker, donor)}

    for funder in (grant_maker, donor):
        escrow.refund(underfunded_grant.id, funder, sender=stranger)
        assert_books(escrow)

    assert grant_maker.balance == balances_before[grant_maker] + 1_000
    assert donor.balance == balances_before[donor] + 2_500
    grant = escrow.getGrant(underfunded_grant.id)
    assert (grant.funded, grant.reclaimed, grant.held) == (3_500, 3_500, 0)
    assert grant.status == GrantStatus.FUNDING_FAILED
    for funder in (grant_maker, donor):
        with reverts(escrow.NothingToRefund, grantId=underfunded_grant.id, funder=funder.address):
            escrow.refund(underfunded_grant.id, funder, sender=stranger)


def test_refund_reverts_for_non_funder(escrow, chain, underfunded_grant, stranger):
    chain.pending_timestamp = underfunded_grant.funding_deadline

    with reverts(escrow.NothingToRefund, grantId=underfunded_grant.id, funder=stranger.address):
        escrow.refund(underfunded_grant.id, stranger, sender=stranger)


def test_refund_reverts_on_fully_funded_grant(escrow, chain, funded_eth_grant, grant_maker):
    chain.pending_timestamp = funded_eth_grant.funding_deadline + 1

    with reverts(escrow.RefundNotAvailable, grantId=funded_eth_grant.id):
        escrow.refund(funded_eth_grant.id, grant_maker, sender=grant_maker)


def test_refund_reverts_on_unknown_grant(escrow, donor):
    with reverts(escrow.GrantNotFound, grantId=3):
        escrow.refund(3, donor, sender=donor)


def test_refund_goes_to_fund_for_beneficiary(escrow, chain, eth_grant, donor, stranger):
    escrow.fundFor(eth_grant.id, stranger, 700, value=700, sender=donor)
    chain.pending_timestamp = eth_grant.funding_deadline
    stranger_before = stranger.balance

    escrow.refund(eth_grant.id, stranger, sender=donor)

    assert stranger.balance == stranger_before + 700
    with reverts(escrow.NothingToRefund, grantId=eth_grant.id, funder=donor.address):
        escrow.refund(eth_grant.id, donor, sender=donor)


def test_refund_usdc_transfers_tokens(escrow, chain, create_grant, usdc, fund, donor, stranger):
    grant = create_grant(token=usdc, amounts=USDC_AMOUNTS)
    fund(grant, donor, 123_456_789)
    chain.pending_timestamp = grant.funding_deadline
    donor_before = balance_of(usdc, donor)

    tx = escrow.refund(grant.id, donor, sender=stranger)

    assert tx.events == [
        expected_event(escrow.FundingRefunded, grantId=grant.id, funder=donor, amount=123_456_789),
        expected_transfer(usdc, escrow, donor, 123_456_789),
        expected_event(
            escrow.Payout,
            grantId=grant.id,
            account=donor,
            token=usdc,
            kind=PayoutKind.REFUND,
            milestoneIndex=NO_MILESTONE,
            amount=123_456_789,
            credited=False,
        ),
    ]
    assert usdc.balanceOf(donor) == donor_before + 123_456_789
    assert usdc.balanceOf(escrow) == 0
    assert_books(escrow)
