"""MilestoneEscrow.createGrant: validation of every term, the GrantCreated event, and the views
of a newly created grant."""

import pytest
from ape.utils import ZERO_ADDRESS
from eth_utils import to_checksum_address
from assertions import (
    DAY,
    ETH,
    MAX_UINT128,
    GrantStatus,
    MilestoneStatus,
    assert_books,
    assert_view_reverts,
    expected_grant_created,
    reverts,
)

pytestmark = pytest.mark.usefixtures("books_balance_at_end")


def test_create_grant_emits_full_terms(escrow, grant_maker, make_terms):
    terms = make_terms()

    tx = escrow.createGrant(terms, sender=grant_maker)

    assert tx.events == [expected_grant_created(escrow, 1, grant_maker, terms)]
    assert escrow.grantCount() == 1


def test_expected_grant_created_detects_a_changed_term(escrow, grant_maker, make_terms):
    # Guards the matcher itself: a mock with one different term must not compare equal.
    terms = make_terms()
    tx = escrow.createGrant(terms, sender=grant_maker)

    changed = list(terms)
    changed[7] = "ipfs://another-agreement"

    assert tx.events != [expected_grant_created(escrow, 1, grant_maker, tuple(changed))]


def test_grant_ids_start_at_one_and_increase(escrow, create_grant):
    assert escrow.grantCount() == 0

    first = create_grant()
    second = create_grant()

    assert (first.id, second.id) == (1, 2)
    assert escrow.grantCount() == 2


def test_new_grant_view_shows_terms_and_empty_books(escrow, eth_grant, ngo):
    grant = escrow.getGrant(eth_grant.id)

    assert grant.recipient == ngo.address
    assert grant.token == ETH
    assert grant.fundingDeadline == eth_grant.funding_deadline
    assert (grant.threshold, grant.attestorCount, grant.milestoneCount) == (2, 3, 3)
    assert grant.funderCount == 0
    assert grant.status == GrantStatus.FUNDING
    assert grant.total == 6_000
    assert (grant.funded, grant.released, grant.reclaimed, grant.held) == (0, 0, 0, 0)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_new_milestone_view_shows_terms(escrow, eth_grant, index):
    milestone = escrow.getMilestone(eth_grant.id, index)

    assert milestone.amount == eth_grant.amounts[index]
    assert milestone.deadline == eth_grant.deadlines[index]
    assert milestone.status == MilestoneStatus.AWAITING_EVIDENCE
    assert milestone.evidenceHash == b"\x00" * 32
    assert (milestone.approvals, milestone.rejections) == (0, 0)
    assert (milestone.approvalCount, milestone.rejectionCount) == (0, 0)


def test_new_grant_lists_attestors_in_order(escrow, eth_grant, attestors):
    assert escrow.getAttestors(eth_grant.id) == [attestor.address for attestor in attestors]
    assert escrow.getFunders(eth_grant.id) == []


def test_create_grant_accepts_erc20_token(escrow, create_grant, usdc):
    grant = create_grant(token=usdc, amounts=(5 * 10**6,))

    assert escrow.getGrant(grant.id).token == usdc.address
    assert escrow.totalHeld(usdc) == 0


def test_constants(escrow):
    assert escrow.MAX_MILESTONES() == 32
    assert escrow.MAX_ATTESTORS() == 16
    assert escrow.MAX_FUNDERS() == 64
    assert escrow.ETH_PAYOUT_GAS() == 50_000
    assert escrow.VERSION() == "0.1.0"


def test_create_grant_reverts_on_zero_recipient(escrow, grant_maker, make_terms):
    with reverts(escrow.ZeroRecipient):
        escrow.createGrant(make_terms(recipient=ZERO_ADDRESS), sender=grant_maker)

    assert escrow.grantCount() == 0


@pytest.mark.parametrize("count", [0, 33])
def test_create_grant_reverts_on_invalid_milestone_count(escrow, grant_maker, make_terms, count):
    terms = make_terms(amounts=[100] * count, deadlines_in=[30 * DAY] * count)

    with reverts(escrow.InvalidMilestoneCount, count=count, max=32):
        escrow.createGrant(terms, sender=grant_maker)


def test_create_grant_accepts_32_milestones(escrow, grant_maker, make_terms):
    terms = make_terms(amounts=[100] * 32, deadlines_in=[(30 + i) * DAY for i in range(32)])

    escrow.createGrant(terms, sender=grant_maker)

    assert escrow.getGrant(1).milestoneCount == 32
    assert escrow.getMilestone(1, 31).deadline == terms[5][31][1]
    assert_view_reverts(
        escrow.MilestoneNotFound,
        escrow.getMilestone,
        1,
        32,
        grantId=1,
        milestoneIndex=32,
        milestoneCount=32,
    )


@pytest.mark.parametrize("count", [0, 17])
def test_create_grant_reverts_on_invalid_attestor_count(escrow, grant_maker, make_terms, count):
    attestors = [f"0x{i:040x}" for i in range(1, count + 1)]

    with reverts(escrow.InvalidAttestorCount, count=count, max=16):
        escrow.createGrant(make_terms(attestors=attestors, threshold=1), sender=grant_maker)


def test_create_grant_accepts_16_attestors(escrow, grant_maker, make_terms):
    attestors = [f"0x{i:040x}" for i in range(1, 17)]

    escrow.createGrant(make_terms(attestors=attestors, threshold=16), sender=grant_maker)

    assert escrow.getAttestors(1) == [to_checksum_address(address) for address in attestors]
    assert escrow.getGrant(1).attestorCount == 16


@pytest.mark.parametrize("threshold", [0, 4])
def test_create_grant_reverts_on_invalid_threshold(escrow, grant_maker, make_terms, threshold):
    with reverts(escrow.InvalidThreshold, threshold=threshold, attestorCount=3):
        escrow.createGrant(make_terms(threshold=threshold), sender=grant_maker)


@pytest.mark.parametrize("threshold", [1, 3])
def test_create_grant_accepts_threshold_bounds(escrow, grant_maker, make_terms, threshold):
    escrow.createGrant(make_terms(threshold=threshold), sender=grant_maker)

    assert escrow.getGrant(1).threshold == threshold


def test_create_grant_reverts_on_zero_attestor(escrow, grant_maker, make_terms, attestors):
    terms = make_terms(attestors=[attestors[0], ZERO_ADDRESS, attestors[2]])

    with reverts(escrow.ZeroAttestor, attestorIndex=1):
        escrow.createGrant(terms, sender=grant_maker)


def test_create_grant_reverts_on_duplicate_attestor(escrow, grant_maker, make_terms, attestors):
    terms = make_terms(attestors=[attestors[0], attestors[1], attestors[0]])

    with reverts(escrow.DuplicateAttestor, attestor=attestors[0].address):
        escrow.createGrant(terms, sender=grant_maker)


def test_create_grant_reverts_on_zero_milestone_amount(escrow, grant_maker, make_terms):
    with reverts(escrow.ZeroMilestoneAmount, milestoneIndex=2):
        escrow.createGrant(make_terms(amounts=(1_000, 2_000, 0)), sender=grant_maker)


def test_create_grant_reverts_when_total_exceeds_uint128(escrow, grant_maker, make_terms):
    terms = make_terms(amounts=(MAX_UINT128, 1))

    with reverts(escrow.GrantTotalTooLarge, total=MAX_UINT128 + 1, max=MAX_UINT128):
        escrow.createGrant(terms, sender=grant_maker)


def test_create_grant_accepts_total_of_max_uint128(escrow, grant_maker, make_terms):
    escrow.createGrant(make_terms(amounts=(MAX_UINT128 - 1, 1)), sender=grant_maker)

    assert escrow.getGrant(1).total == MAX_UINT128


@pytest.mark.parametrize("offset", [-1, 0])
def test_create_grant_reverts_when_funding_deadline_not_in_future(
    escrow, chain, grant_maker, make_terms, offset
):
    terms = make_terms(funding_in=10)
    creation_time = terms[2] - offset
    chain.pending_timestamp = creation_time

    with reverts(escrow.FundingDeadlineNotInFuture, fundingDeadline=terms[2], currentTime=creation_time):
        escrow.createGrant(terms, sender=grant_maker)


def test_create_grant_accepts_funding_deadline_one_second_ahead(escrow, chain, grant_maker, make_terms):
    terms = make_terms(funding_in=10)
    chain.pending_timestamp = terms[2] - 1

    escrow.createGrant(terms, sender=grant_maker)

    assert escrow.getGrant(1).fundingDeadline == terms[2]


@pytest.mark.parametrize("offset", [-1, 0])
def test_create_grant_reverts_when_milestone_deadline_too_early(escrow, grant_maker, make_terms, offset):
    funding_in = 7 * DAY
    terms = make_terms(deadlines_in=[30 * DAY, funding_in + offset, 90 * DAY])

    with reverts(
        escrow.MilestoneDeadlineTooEarly,
        milestoneIndex=1,
        deadline=terms[2] + offset,
        fundingDeadline=terms[2],
    ):
        escrow.createGrant(terms, sender=grant_maker)


def test_create_grant_accepts_milestone_deadline_after_funding_deadline(escrow, grant_maker, make_terms):
    terms = make_terms(amounts=(500,), deadlines_in=[7 * DAY + 1])

    escrow.createGrant(terms, sender=grant_maker)

    assert escrow.getMilestone(1, 0).deadline == terms[2] + 1
    assert_books(escrow)


@pytest.mark.parametrize("view", ["getGrant", "getAttestors", "getFunders"])
@pytest.mark.parametrize("grant_id", [0, 2])
def test_grant_views_revert_on_unknown_grant(escrow, eth_grant, view, grant_id):
    assert_view_reverts(escrow.GrantNotFound, getattr(escrow, view), grant_id, grantId=grant_id)


def test_get_milestone_reverts_on_unknown_grant(escrow):
    assert_view_reverts(escrow.GrantNotFound, escrow.getMilestone, 1, 0, grantId=1)


def test_get_milestone_reverts_on_unknown_index(escrow, eth_grant):
    assert_view_reverts(
        escrow.MilestoneNotFound,
        escrow.getMilestone,
        eth_grant.id,
        3,
        grantId=eth_grant.id,
        milestoneIndex=3,
        milestoneCount=3,
    )


def test_per_address_views_are_zero_for_strangers(escrow, eth_grant, stranger):
    assert escrow.contributionOf(eth_grant.id, stranger) == 0
    assert escrow.isRefunded(eth_grant.id, stranger) is False
    assert escrow.isEvidenceRejected(eth_grant.id, 0, b"\x01" * 32) is False
    assert escrow.creditOf(stranger, ETH) == 0
    assert escrow.totalCredits(ETH) == 0
    assert escrow.totalHeld(ETH) == 0
