"""DonationRegistry: direct donations to verified projects and donations into MilestoneEscrow
grants, where the donor becomes the grant's co-funder."""

import pytest
from assertions import (
    DONOR_REF,
    ETH,
    NO_MILESTONE,
    NO_REF,
    PayoutKind,
    ProjectStatus,
    address_of,
    balance_of,
    expected_event,
    fees_of_reverted_transaction,
    register_project,
    reverts,
    transfer_events,
)

ETH_UNIT = 10**18
USDC_UNIT = 10**6


@pytest.fixture
def project_id(registry, registrar, project_admin, payout):
    """A verified project that pays out to `payout`."""
    project_id = register_project(registry, project_admin, payout, sender=project_admin)
    registry.verifyProject(project_id, sender=registrar)
    return project_id


@pytest.fixture
def unit(grant_token):
    return ETH_UNIT if grant_token == ETH else USDC_UNIT


def create_grant(escrow, terms, token, grant_maker, funding=0):
    """Create a grant as `grant_maker`, funded with `funding` unless it is zero, and return its id."""
    if funding == 0:
        receipt = escrow.createGrant(terms, sender=grant_maker)
    elif token == ETH:
        receipt = escrow.createAndFundGrant(terms, funding, sender=grant_maker, value=funding)
    else:
        token.approve(escrow, funding, sender=grant_maker)
        receipt = escrow.createAndFundGrant(terms, funding, sender=grant_maker)
    (created,) = receipt.events.filter(escrow.GrantCreated)
    return created.grantId


def donate_to_grant(registry, token, grant_id, amount, donor, donor_ref=DONOR_REF):
    """Donate `amount` into a grant through the registry, approving the registry first for ERC-20."""
    if token == ETH:
        return registry.donateToGrant(grant_id, amount, donor_ref, sender=donor, value=amount)
    token.approve(registry, amount, sender=donor)
    return registry.donateToGrant(grant_id, amount, donor_ref, sender=donor)


def move_time_to(chain, timestamp):
    """Make the next block's timestamp `timestamp`, so the next transaction runs at that time."""
    chain.pending_timestamp = timestamp


# Direct donations in ETH.


def test_donate_eth_forwards_to_payout(registry, project_id, donor, payout):
    amount = 3 * ETH_UNIT
    donor_before = donor.balance
    payout_before = payout.balance
    assert registry.donate.call(project_id, ETH, amount, DONOR_REF, sender=donor, value=amount) == 1

    receipt = registry.donate(project_id, ETH, amount, DONOR_REF, sender=donor, value=amount)

    assert receipt.events == [
        expected_event(
            registry.ProjectDonation,
            donationId=1,
            projectId=project_id,
            donor=donor,
            token=ETH,
            amount=amount,
            payout=payout,
            donorRef=DONOR_REF,
        )
    ]
    assert payout.balance == payout_before + amount
    assert donor.balance == donor_before - amount - receipt.total_fees_paid
    assert registry.balance == 0
    assert registry.totalDonated(project_id, ETH) == amount
    assert registry.donationCount() == 1


@pytest.mark.parametrize("sent", [0, 2 * ETH_UNIT - 1, 2 * ETH_UNIT + 1])
def test_donate_eth_rejects_value_mismatch(registry, project_id, donor, payout, sent):
    payout_before = payout.balance

    with reverts(registry.EthAmountMismatch, sent=sent, amount=2 * ETH_UNIT):
        registry.donate(project_id, ETH, 2 * ETH_UNIT, NO_REF, sender=donor, value=sent)

    assert payout.balance == payout_before
    assert registry.donationCount() == 0


def test_donate_eth_reverts_when_payout_rejects_eth(
    chain, project, registry, registrar, project_admin, donor, deployer
):
    rejecter = deployer.deploy(project.EthRejecter)
    rejecting_project_id = register_project(registry, project_admin, rejecter, sender=project_admin)
    registry.verifyProject(rejecting_project_id, sender=registrar)
    donor_before = donor.balance

    # OpenZeppelin's Address.sendValue passes the receiver's own revert data up unchanged.
    with reverts(rejecter.EthRejected) as revert:
        registry.donate(rejecting_project_id, ETH, ETH_UNIT, NO_REF, sender=donor, value=ETH_UNIT)

    assert donor.balance == donor_before - fees_of_reverted_transaction(chain, revert)
    assert rejecter.balance == 0
    assert registry.balance == 0
    assert registry.totalDonated(rejecting_project_id, ETH) == 0
    assert registry.donationCount() == 0


# Direct donations in ERC-20 tokens.


@pytest.mark.parametrize("token_name", ["usdc", "no_return_token"])
def test_donate_token_forwards_to_payout(registry, project_id, donor, payout, token_name, request):
    token = request.getfixturevalue(token_name)
    amount = 250 * USDC_UNIT
    donor_before = token.balanceOf(donor)
    token.approve(registry, amount, sender=donor)

    receipt = registry.donate(project_id, token, amount, DONOR_REF, sender=donor)

    assert receipt.events == [
        expected_event(
            registry.ProjectDonation,
            donationId=1,
            projectId=project_id,
            donor=donor,
            token=token,
            amount=amount,
            payout=payout,
            donorRef=DONOR_REF,
        ),
        *transfer_events(token, donor, payout, amount),
    ]
    assert token.balanceOf(payout) == amount
    assert token.balanceOf(donor) == donor_before - amount
    assert token.balanceOf(registry) == 0
    assert token.allowance(donor, registry) == 0
    assert registry.totalDonated(project_id, token) == amount
    assert registry.totalDonated(project_id, ETH) == 0


def test_donate_fee_token_reverts(registry, project_id, donor, payout, fee_token):
    amount = 1_000 * ETH_UNIT
    donor_before = fee_token.balanceOf(donor)
    fee_token.approve(registry, amount, sender=donor)

    # The token burns 1% on the way, so the payout would receive 990 tokens for 1,000 stated.
    with reverts(registry.TokenAmountMismatch, token=fee_token, expected=amount, received=990 * ETH_UNIT):
        registry.donate(project_id, fee_token, amount, NO_REF, sender=donor)

    assert fee_token.balanceOf(donor) == donor_before
    assert fee_token.balanceOf(payout) == 0
    assert registry.totalDonated(project_id, fee_token) == 0
    assert registry.donationCount() == 0


def test_donate_token_rejects_eth(registry, project_id, donor, usdc):
    usdc.approve(registry, 10 * USDC_UNIT, sender=donor)

    with reverts(registry.UnexpectedEth, sent=1):
        registry.donate(project_id, usdc, 10 * USDC_UNIT, NO_REF, sender=donor, value=1)

    assert usdc.allowance(donor, registry) == 10 * USDC_UNIT


def test_donate_token_requires_allowance(registry, project_id, donor, usdc):
    with reverts(usdc.ERC20InsufficientAllowance, spender=registry, allowance=0, needed=10 * USDC_UNIT):
        registry.donate(project_id, usdc, 10 * USDC_UNIT, NO_REF, sender=donor)

    assert registry.donationCount() == 0


@pytest.mark.parametrize("token_name", ["eth", "usdc"])
def test_donate_rejects_zero_amount(registry, project_id, donor, usdc, token_name):
    token = ETH if token_name == "eth" else usdc

    with reverts(registry.ZeroDonation):
        registry.donate(project_id, token, 0, NO_REF, sender=donor)


# Project state and donations.


@pytest.mark.usefixtures("project_id")
@pytest.mark.parametrize("unknown_id", [0, 2])
def test_donate_rejects_unknown_project(registry, donor, unknown_id):
    with reverts(registry.ProjectNotFound, projectId=unknown_id):
        registry.donate(unknown_id, ETH, ETH_UNIT, NO_REF, sender=donor, value=ETH_UNIT)


def test_donate_rejects_pending_project(registry, project_admin, payout, donor):
    pending_project_id = register_project(registry, project_admin, payout, sender=project_admin)
    payout_before = payout.balance

    with reverts(registry.ProjectNotVerified, projectId=pending_project_id, status=ProjectStatus.PENDING):
        registry.donate(pending_project_id, ETH, ETH_UNIT, NO_REF, sender=donor, value=ETH_UNIT)

    assert payout.balance == payout_before


def test_suspended_project_receives_nothing_until_verified(registry, registrar, project_id, donor, payout, usdc):
    registry.suspendProject(project_id, sender=registrar)
    payout_before = payout.balance
    usdc.approve(registry, 5 * USDC_UNIT, sender=donor)

    with reverts(registry.ProjectNotVerified, projectId=project_id, status=ProjectStatus.SUSPENDED):
        registry.donate(project_id, ETH, ETH_UNIT, NO_REF, sender=donor, value=ETH_UNIT)
    with reverts(registry.ProjectNotVerified, projectId=project_id, status=ProjectStatus.SUSPENDED):
        registry.donate(project_id, usdc, 5 * USDC_UNIT, NO_REF, sender=donor)

    assert payout.balance == payout_before
    assert usdc.balanceOf(payout) == 0
    assert registry.totalDonated(project_id, ETH) == 0
    assert registry.donationCount() == 0

    registry.verifyProject(project_id, sender=registrar)
    registry.donate(project_id, ETH, ETH_UNIT, NO_REF, sender=donor, value=ETH_UNIT)
    registry.donate(project_id, usdc, 5 * USDC_UNIT, NO_REF, sender=donor)

    assert payout.balance == payout_before + ETH_UNIT
    assert usdc.balanceOf(payout) == 5 * USDC_UNIT
    assert registry.totalDonated(project_id, ETH) == ETH_UNIT
    assert registry.totalDonated(project_id, usdc) == 5 * USDC_UNIT


def test_donation_after_payout_change_goes_to_new_payout(
    registry, project_id, project_admin, donor, payout, stranger, usdc
):
    registry.setProjectPayout(project_id, stranger, sender=project_admin)
    usdc.approve(registry, 7 * USDC_UNIT, sender=donor)

    receipt = registry.donate(project_id, usdc, 7 * USDC_UNIT, NO_REF, sender=donor)

    assert receipt.events == [
        expected_event(
            registry.ProjectDonation,
            donationId=1,
            projectId=project_id,
            donor=donor,
            token=usdc,
            amount=7 * USDC_UNIT,
            payout=stranger,
            donorRef=NO_REF,
        ),
        *transfer_events(usdc, donor, stranger, 7 * USDC_UNIT),
    ]
    assert usdc.balanceOf(stranger) == 7 * USDC_UNIT
    assert usdc.balanceOf(payout) == 0


def test_total_donated_is_kept_per_project_and_token(
    registry, escrow, project_id, registrar, donor, stranger, usdc, grant_maker, make_terms
):
    other_project_id = register_project(registry, stranger, stranger, sender=stranger)
    registry.verifyProject(other_project_id, sender=registrar)
    usdc.approve(registry, 30 * USDC_UNIT, sender=donor)

    registry.donate(project_id, ETH, 1 * ETH_UNIT, NO_REF, sender=donor, value=1 * ETH_UNIT)
    registry.donate(project_id, ETH, 2 * ETH_UNIT, NO_REF, sender=donor, value=2 * ETH_UNIT)
    registry.donate(project_id, usdc, 30 * USDC_UNIT, NO_REF, sender=donor)
    registry.donate(other_project_id, ETH, 5 * ETH_UNIT, NO_REF, sender=donor, value=5 * ETH_UNIT)
    # Grant donations are the escrow's books, so they add to no project's total.
    grant_id = create_grant(escrow, make_terms(), ETH, grant_maker)
    donate_to_grant(registry, ETH, grant_id, 1_000, donor)

    assert registry.totalDonated(project_id, ETH) == 3 * ETH_UNIT
    assert registry.totalDonated(project_id, usdc) == 30 * USDC_UNIT
    assert registry.totalDonated(other_project_id, ETH) == 5 * ETH_UNIT
    assert registry.totalDonated(other_project_id, usdc) == 0
    assert registry.donationCount() == 5


def test_donation_ids_increase_across_both_kinds(
    registry, escrow, project_id, donor, usdc, grant_maker, make_terms
):
    grant_id = create_grant(escrow, make_terms(), ETH, grant_maker)
    usdc.approve(registry, USDC_UNIT, sender=donor)

    first = registry.donate(project_id, ETH, ETH_UNIT, NO_REF, sender=donor, value=ETH_UNIT)
    second = registry.donateToGrant(grant_id, 1_000, NO_REF, sender=donor, value=1_000)
    third = registry.donate(project_id, usdc, USDC_UNIT, NO_REF, sender=donor)

    assert first.events.filter(registry.ProjectDonation)[0].donationId == 1
    assert second.events.filter(registry.GrantDonation)[0].donationId == 2
    assert third.events.filter(registry.ProjectDonation)[0].donationId == 3
    assert registry.donationCount() == 3


# Donations into MilestoneEscrow grants.


def test_donate_to_grant_eth_makes_donor_funder(registry, escrow, donor, grant_maker, make_terms):
    grant_id = create_grant(escrow, make_terms(amounts=(ETH_UNIT, 2 * ETH_UNIT)), ETH, grant_maker)
    amount = ETH_UNIT // 2
    donor_before = donor.balance
    escrow_before = escrow.balance
    assert registry.donateToGrant.call(grant_id, amount, DONOR_REF, sender=donor, value=amount) == 1

    receipt = registry.donateToGrant(grant_id, amount, DONOR_REF, sender=donor, value=amount)

    assert receipt.events == [
        expected_event(
            registry.GrantDonation,
            donationId=1,
            grantId=grant_id,
            donor=donor,
            token=ETH,
            amount=amount,
            donorRef=DONOR_REF,
        ),
        expected_event(
            escrow.GrantFunded, grantId=grant_id, funder=donor, payer=registry, amount=amount, totalFunded=amount
        ),
    ]
    assert donor.balance == donor_before - amount - receipt.total_fees_paid
    assert escrow.balance == escrow_before + amount
    assert registry.balance == 0
    assert escrow.contributionOf(grant_id, donor) == amount
    assert escrow.contributionOf(grant_id, registry) == 0
    assert escrow.getFunders(grant_id) == [donor.address]
    assert escrow.getGrant(grant_id).funded == amount
    assert registry.donationCount() == 1


def test_donate_to_grant_usdc_makes_donor_funder(registry, escrow, donor, grant_maker, usdc, make_terms):
    terms = make_terms(token=usdc, amounts=(100 * USDC_UNIT, 200 * USDC_UNIT))
    grant_id = create_grant(escrow, terms, usdc, grant_maker)
    amount = 120 * USDC_UNIT
    donor_before = usdc.balanceOf(donor)
    usdc.approve(registry, amount, sender=donor)

    receipt = registry.donateToGrant(grant_id, amount, DONOR_REF, sender=donor)

    # The registry takes the tokens, approves the escrow for exactly the amount, and the escrow
    # pulls them in the same transaction.
    assert receipt.events == [
        expected_event(
            registry.GrantDonation,
            donationId=1,
            grantId=grant_id,
            donor=donor,
            token=usdc,
            amount=amount,
            donorRef=DONOR_REF,
        ),
        *transfer_events(usdc, donor, registry, amount),
        expected_event(usdc.Approval, owner=registry, spender=escrow, value=amount),
        expected_event(
            escrow.GrantFunded, grantId=grant_id, funder=donor, payer=registry, amount=amount, totalFunded=amount
        ),
        *transfer_events(usdc, registry, escrow, amount),
    ]
    assert usdc.balanceOf(donor) == donor_before - amount
    assert usdc.balanceOf(escrow) == amount
    assert usdc.balanceOf(registry) == 0
    assert usdc.allowance(registry, escrow) == 0
    assert escrow.contributionOf(grant_id, donor) == amount
    assert escrow.contributionOf(grant_id, registry) == 0
    assert escrow.getFunders(grant_id) == [donor.address]


def test_reclaimed_milestone_share_returns_to_donor(
    chain, registry, escrow, donor, grant_maker, stranger, grant_token, unit, make_terms
):
    terms = make_terms(token=grant_token, amounts=(1_000 * unit, 2_000 * unit, 3_000 * unit))
    grant_id = create_grant(escrow, terms, grant_token, grant_maker, funding=5_000 * unit)
    donate_to_grant(registry, grant_token, grant_id, 1_000 * unit, donor)
    assert escrow.getFunders(grant_id) == [grant_maker.address, donor.address]
    donor_before = balance_of(grant_token, donor)
    grant_maker_before = balance_of(grant_token, grant_maker)

    first_deadline = terms[5][0][1]
    move_time_to(chain, first_deadline)
    receipt = escrow.reclaim(grant_id, 0, sender=stranger)

    # The donor paid 1/6 of the grant, so gets 1/6 of the milestone rounded down. The first
    # funder, the grant maker, gets the rest including the rounding remainder.
    donor_share = 1_000 * unit // 6
    grant_maker_share = 1_000 * unit - donor_share
    assert receipt.events == [
        expected_event(
            escrow.MilestoneReclaimed, grantId=grant_id, milestoneIndex=0, caller=stranger, amount=1_000 * unit
        ),
        *transfer_events(grant_token, escrow, donor, donor_share),
        expected_event(
            escrow.Payout,
            grantId=grant_id,
            account=donor,
            token=address_of(grant_token),
            kind=PayoutKind.RECLAIM,
            milestoneIndex=0,
            amount=donor_share,
            credited=False,
        ),
        *transfer_events(grant_token, escrow, grant_maker, grant_maker_share),
        expected_event(
            escrow.Payout,
            grantId=grant_id,
            account=grant_maker,
            token=address_of(grant_token),
            kind=PayoutKind.RECLAIM,
            milestoneIndex=0,
            amount=grant_maker_share,
            credited=False,
        ),
    ]
    assert balance_of(grant_token, donor) == donor_before + donor_share
    assert balance_of(grant_token, grant_maker) == grant_maker_before + grant_maker_share
    assert balance_of(grant_token, registry) == 0
    assert escrow.creditOf(donor, address_of(grant_token)) == 0


def test_failed_grant_refunds_donor(
    chain, registry, escrow, donor, grant_maker, stranger, grant_token, unit, make_terms
):
    terms = make_terms(token=grant_token, amounts=(1_000 * unit, 2_000 * unit))
    grant_id = create_grant(escrow, terms, grant_token, grant_maker, funding=500 * unit)
    donate_to_grant(registry, grant_token, grant_id, 700 * unit, donor)
    donor_before = balance_of(grant_token, donor)

    funding_deadline = terms[2]
    move_time_to(chain, funding_deadline)
    receipt = escrow.refund(grant_id, donor, sender=stranger)

    assert receipt.events == [
        expected_event(escrow.FundingRefunded, grantId=grant_id, funder=donor, amount=700 * unit),
        *transfer_events(grant_token, escrow, donor, 700 * unit),
        expected_event(
            escrow.Payout,
            grantId=grant_id,
            account=donor,
            token=address_of(grant_token),
            kind=PayoutKind.REFUND,
            milestoneIndex=NO_MILESTONE,
            amount=700 * unit,
            credited=False,
        ),
    ]
    assert balance_of(grant_token, donor) == donor_before + 700 * unit
    assert escrow.isRefunded(grant_id, donor)
    # The registry passed the money through and is no funder, so it has nothing to take back.
    with reverts(escrow.NothingToRefund, grantId=grant_id, funder=registry):
        escrow.refund(grant_id, registry, sender=stranger)


# Errors of grant donations, the escrow's included.


def test_donate_to_grant_rejects_unknown_grant(registry, escrow, donor):
    with reverts(escrow.GrantNotFound, grantId=1):
        registry.donateToGrant(1, 1_000, NO_REF, sender=donor, value=1_000)


def test_donate_to_grant_rejects_amount_above_remaining(
    registry, escrow, donor, grant_maker, grant_token, unit, make_terms
):
    terms = make_terms(token=grant_token, amounts=(1_000 * unit, 2_000 * unit))
    grant_id = create_grant(escrow, terms, grant_token, grant_maker, funding=2_500 * unit)

    with reverts(escrow.FundingExceedsTotal, grantId=grant_id, amount=500 * unit + 1, remaining=500 * unit):
        donate_to_grant(registry, grant_token, grant_id, 500 * unit + 1, donor)

    assert escrow.contributionOf(grant_id, donor) == 0
    assert escrow.getGrant(grant_id).funded == 2_500 * unit
    assert balance_of(grant_token, escrow) == 2_500 * unit
    assert balance_of(grant_token, registry) == 0


def test_donate_to_grant_rejects_after_funding_deadline(
    chain, registry, escrow, donor, grant_maker, grant_token, unit, make_terms
):
    terms = make_terms(token=grant_token, amounts=(1_000 * unit,))
    grant_id = create_grant(escrow, terms, grant_token, grant_maker)
    funding_deadline = terms[2]

    move_time_to(chain, funding_deadline)
    with reverts(escrow.FundingClosed, grantId=grant_id, fundingDeadline=funding_deadline):
        donate_to_grant(registry, grant_token, grant_id, 100 * unit, donor)

    assert escrow.getGrant(grant_id).funded == 0


def test_donate_to_grant_rejects_zero_amount(registry, escrow, donor, grant_maker, make_terms):
    grant_id = create_grant(escrow, make_terms(), ETH, grant_maker)

    with reverts(registry.ZeroDonation):
        registry.donateToGrant(grant_id, 0, NO_REF, sender=donor)


@pytest.mark.parametrize("sent", [0, 999, 1_001])
def test_donate_to_eth_grant_rejects_value_mismatch(registry, escrow, donor, grant_maker, make_terms, sent):
    grant_id = create_grant(escrow, make_terms(), ETH, grant_maker)

    with reverts(registry.EthAmountMismatch, sent=sent, amount=1_000):
        registry.donateToGrant(grant_id, 1_000, NO_REF, sender=donor, value=sent)

    assert escrow.getGrant(grant_id).funded == 0


def test_donate_to_token_grant_rejects_eth(registry, escrow, donor, grant_maker, usdc, make_terms):
    grant_id = create_grant(escrow, make_terms(token=usdc), usdc, grant_maker)
    usdc.approve(registry, 1_000, sender=donor)

    with reverts(registry.UnexpectedEth, sent=1_000):
        registry.donateToGrant(grant_id, 1_000, NO_REF, sender=donor, value=1_000)

    assert escrow.getGrant(grant_id).funded == 0


def test_donate_to_fee_token_grant_reverts(registry, escrow, donor, grant_maker, fee_token, make_terms):
    grant_id = create_grant(escrow, make_terms(token=fee_token, amounts=(1_000 * ETH_UNIT,)), fee_token, grant_maker)
    donor_before = fee_token.balanceOf(donor)
    fee_token.approve(registry, 500 * ETH_UNIT, sender=donor)

    with reverts(registry.TokenAmountMismatch, token=fee_token, expected=500 * ETH_UNIT, received=495 * ETH_UNIT):
        registry.donateToGrant(grant_id, 500 * ETH_UNIT, NO_REF, sender=donor)

    assert fee_token.balanceOf(donor) == donor_before
    assert fee_token.balanceOf(registry) == 0
    assert escrow.getGrant(grant_id).funded == 0
    assert registry.donationCount() == 0
