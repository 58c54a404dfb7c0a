"""Grant, project and donor statements, built from a ledger of the in-process chain.

Every amount is checked against values worked out by hand from the escrow's rules, and every
transaction hash against the receipt of the transaction that made it.
"""

import pytest
from statement_setup import (
    BAD_EVIDENCE,
    DIRECT_GIFT,
    DONOR_REF,
    DONOR_SHARE,
    EVIDENCE,
    GIFT_REF,
    GRANT_MAKER_SHARE,
    METADATA,
    REASON,
    USDC,
    hex32,
    read_ledger,
    run_cofunded,
    usdc_info,
)

from fundtrail.demo import run_demo
from fundtrail.donor import NO_DONOR_REF
from fundtrail.errors import SpecError
from fundtrail.grants import GrantStatus, MilestoneStatus
from fundtrail.ledger.statements import (
    CSV_COLUMNS,
    Amount,
    NotInLedgerError,
    UnknownTokenError,
    donor_statement,
    grant_statement,
    pro_rata_shares,
    project_statement,
    to_json,
)
from fundtrail.units import ETH, TokenInfo


@pytest.fixture
def cofunded(client, resolve, grant_maker, donor, ngo, attestors, registrar, stranger, chain):
    return run_cofunded(client, resolve(), grant_maker, donor, ngo, attestors, registrar, stranger, chain)


@pytest.fixture
def read_books(index_contracts, escrow, registry):
    """`read_books()` indexes the session's escrow and registry, and returns the books and source."""
    return lambda: read_ledger(index_contracts(escrow.address, registry.address))


@pytest.fixture
def tokens(usdc):
    return {usdc.address: usdc_info(usdc)}


def test_grant_statement_terms_and_funders(
    cofunded, registry, usdc, grant_maker, donor, ngo, attestors, read_books, tokens
):
    grant_id, _, receipts = cofunded
    books, source = read_books()

    statement = grant_statement(books, grant_id, tokens, source)

    token = usdc_info(usdc)
    terms = statement.terms
    assert statement.status == GrantStatus.Completed
    assert terms.creator == grant_maker.address
    assert terms.recipient == ngo.address
    assert terms.token == token
    assert terms.threshold == 2
    assert terms.attestors == [attestor.address for attestor in attestors]
    assert terms.total == Amount(6_000 * USDC, token)
    assert [milestone.amount.base_units for milestone in terms.milestones] == [1_000 * USDC, 2_000 * USDC, 3_000 * USDC]
    assert [milestone.status for milestone in terms.milestones] == [
        MilestoneStatus.Released,
        MilestoneStatus.Released,
        MilestoneStatus.Reclaimed,
    ]
    assert terms.terms_hash == "0x" + "11" * 32
    assert terms.terms_uri == "ipfs://bafy-terms"
    assert statement.created.tx_hash == receipts["create"].txn_hash

    assert [(funder.funder, funder.contribution.base_units) for funder in statement.funders] == [
        (grant_maker.address, GRANT_MAKER_SHARE),
        (donor.address, DONOR_SHARE),
    ]
    maker_funding, = statement.funders[0].fundings
    donor_funding, = statement.funders[1].fundings
    assert maker_funding.payer == grant_maker.address
    assert maker_funding.donation_id is None
    assert maker_funding.at.tx_hash == receipts["fund"].txn_hash
    assert donor_funding.payer == registry.address
    assert donor_funding.donation_id == 2
    assert donor_funding.donor_ref == hex32(DONOR_REF)
    assert donor_funding.at.tx_hash == receipts["donate"].txn_hash


def test_grant_statement_evidence_and_votes(cofunded, ngo, attestors, stranger, read_books, tokens):
    grant_id, _, receipts = cofunded
    books, source = read_books()

    statement = grant_statement(books, grant_id, tokens, source)

    assert [
        (item.milestone_index, item.evidence_hash, item.uri, item.submitter, item.rejected, item.relayer)
        for item in statement.evidence
    ] == [
        (0, hex32(EVIDENCE[0]), "ipfs://bafy-e0", ngo.address, False, None),
        (1, hex32(BAD_EVIDENCE), "ipfs://bafy-bad", ngo.address, True, None),
        (1, hex32(EVIDENCE[1]), "ipfs://bafy-e1", ngo.address, False, stranger.address),
    ]
    assert [item.at.tx_hash for item in statement.evidence] == [
        receipts["evidence0"].txn_hash,
        receipts["bad"].txn_hash,
        receipts["evidence1"].txn_hash,
    ]
    assert [
        (vote.milestone_index, vote.attestor, vote.approved, vote.reason_hash, vote.relayer, vote.at.tx_hash)
        for vote in statement.votes
    ] == [
        (0, attestors[0].address, True, None, None, receipts["approve0a"].txn_hash),
        (0, attestors[1].address, True, None, None, receipts["release0"].txn_hash),
        (1, attestors[0].address, False, hex32(REASON), None, receipts["reject1a"].txn_hash),
        (1, attestors[2].address, False, hex32(REASON), None, receipts["reject1b"].txn_hash),
        (1, attestors[1].address, True, None, None, receipts["approve1"].txn_hash),
        (1, attestors[2].address, True, None, stranger.address, receipts["release1"].txn_hash),
    ]


def test_grant_statement_releases_and_reclaim(cofunded, ngo, grant_maker, donor, read_books, tokens):
    grant_id, _, receipts = cofunded
    books, source = read_books()

    statement = grant_statement(books, grant_id, tokens, source)

    assert [
        (release.milestone_index, release.recipient, release.evidence_hash, release.amount.base_units,
         release.credited, release.at.tx_hash)
        for release in statement.releases
    ] == [
        (0, ngo.address, hex32(EVIDENCE[0]), 1_000 * USDC, False, receipts["release0"].txn_hash),
        (1, ngo.address, hex32(EVIDENCE[1]), 2_000 * USDC, False, receipts["release1"].txn_hash),
    ]
    reclaim, = statement.reclaims
    assert reclaim.milestone_index == 2
    assert reclaim.amount.base_units == 3_000 * USDC
    assert reclaim.at.tx_hash == receipts["reclaim2"].txn_hash
    # 3,000 USDC * 2,000.000001 / 6,000 is 1,000.0000005 USDC: the donor gets it rounded down,
    # and the grant maker, the first funder, gets the rest.
    assert sorted((share.funder, share.amount.base_units, share.credited) for share in reclaim.shares) == sorted([
        (grant_maker.address, 2_000 * USDC, False),
        (donor.address, 1_000 * USDC, False),
    ])
    assert {share.at.tx_hash for share in reclaim.shares} == {receipts["reclaim2"].txn_hash}
    assert statement.refunds == []
    assert statement.withdrawals == []
    assert statement.totals.funded.base_units == 6_000 * USDC
    assert statement.totals.released.base_units == 3_000 * USDC
    assert statement.totals.reclaimed.base_units == 3_000 * USDC
    assert statement.totals.held.base_units == 0


def test_grant_statement_json_form(cofunded, escrow, usdc, chain, read_books, tokens):
    grant_id, _, receipts = cofunded
    books, source = read_books()

    data = grant_statement(books, grant_id, tokens, source).to_json()

    assert data["kind"] == "grant"
    assert data["format_version"] == 1
    assert data["source"]["chain_id"] == chain.chain_id
    assert data["source"]["escrow"] == escrow.address
    assert data["source"]["last_block"] == source.last_block
    assert data["status"] == "Completed"
    assert data["terms"]["token"] == {"address": usdc.address, "symbol": "USDC", "decimals": 6}
    assert data["terms"]["total"] == {"base_units": 6_000 * USDC, "formatted": "6,000 USDC"}
    assert data["funders"][1]["contribution"] == {"base_units": DONOR_SHARE, "formatted": "2,000.000001 USDC"}
    release = data["releases"][0]
    receipt = receipts["release0"]
    timestamp = chain.blocks[receipt.block_number].timestamp
    assert release["at"]["tx_hash"] == receipt.txn_hash
    assert release["at"]["block_number"] == receipt.block_number
    assert release["at"]["timestamp"] == timestamp
    assert release["at"]["time"].endswith("Z")
    assert release["milestone_index"] == 0
    assert data["terms"]["milestones"][2]["status"] == "Reclaimed"


def test_donor_statement_follows_gifts(cofunded, ngo, donor, read_books, tokens):
    grant_id, project_id, receipts = cofunded
    books, source = read_books()

    statement = donor_statement(books, donor.address.lower(), tokens, source)

    assert statement.donor == donor.address
    gift, = statement.direct_gifts
    assert (gift.donation_id, gift.project_id, gift.amount.base_units, gift.forwarded_to) == (
        1, project_id, DIRECT_GIFT, ngo.address
    )
    assert gift.donor_ref == hex32(GIFT_REF)
    assert gift.at.tx_hash == receipts["gift"].txn_hash

    grant, = statement.grants
    assert grant.grant_id == grant_id
    assert grant.contribution.base_units == DONOR_SHARE
    assert grant.funded.base_units == 6_000 * USDC
    # 1,000 USDC * 2,000.000001 / 6,000 is 333.3333335 USDC, rounded down. 2,000 USDC gives
    # exactly 666.666667 USDC.
    assert [
        (share.milestone_index, share.evidence_hash, share.milestone_amount.base_units, share.share.base_units,
         share.at.tx_hash)
        for share in grant.released
    ] == [
        (0, hex32(EVIDENCE[0]), 1_000 * USDC, 333_333_333, receipts["release0"].txn_hash),
        (1, hex32(EVIDENCE[1]), 2_000 * USDC, 666_666_667, receipts["release1"].txn_hash),
    ]
    assert [(item.kind, item.milestone_index, item.amount.base_units, item.credited, item.at.tx_hash)
            for item in grant.returned] == [("reclaim", 2, 1_000 * USDC, False, receipts["reclaim2"].txn_hash)]
    assert grant.released_total.base_units == 1_000 * USDC
    assert grant.returned_total.base_units == 1_000 * USDC
    assert grant.still_held.base_units == 0
    assert statement.credits == []
    assert statement.withdrawals == []


def test_donor_statement_movements(cofunded, escrow, registry, ngo, donor, read_books, tokens):
    _, _, receipts = cofunded
    books, source = read_books()

    statement = donor_statement(books, donor.address, tokens, source)
    rows = [movement.to_row() for movement in statement.movements()]

    assert [(row["kind"], row["tx_hash"], row["base_units"], row["to"]) for row in rows] == [
        ("donation", receipts["gift"].txn_hash, DIRECT_GIFT, ngo.address),
        ("funding", receipts["donate"].txn_hash, DONOR_SHARE, escrow.address),
        ("release_share", receipts["release0"].txn_hash, 333_333_333, ngo.address),
        ("release_share", receipts["release1"].txn_hash, 666_666_667, ngo.address),
        ("reclaim", receipts["reclaim2"].txn_hash, 1_000 * USDC, donor.address),
    ]
    assert all(tuple(row) == CSV_COLUMNS for row in rows)
    assert rows[1]["from"] == registry.address
    assert rows[1]["donor_ref"] == hex32(DONOR_REF)
    assert rows[2]["evidence_hash"] == hex32(EVIDENCE[0])
    assert rows[2]["amount"] == "333.333333 USDC"


def test_project_statement_donations_and_grants(cofunded, usdc, ngo, donor, read_books, tokens):
    grant_id, project_id, receipts = cofunded
    books, source = read_books()

    statement = project_statement(books, project_id, tokens, source)

    assert (statement.admin, statement.payout, statement.status) == (ngo.address, ngo.address, "Verified")
    assert statement.metadata_hash == hex32(METADATA)
    assert statement.metadata_uri == "ipfs://bafy-project"
    assert statement.registered.tx_hash == receipts["register"].txn_hash
    donation, = statement.donations
    assert (donation.donation_id, donation.donor, donation.amount.base_units, donation.payout) == (
        1, donor.address, DIRECT_GIFT, ngo.address
    )
    assert donation.donor_ref == hex32(GIFT_REF)
    assert donation.at.tx_hash == receipts["gift"].txn_hash
    assert [(total.token.address, total.amount.base_units) for total in statement.donated] == [
        (usdc.address, DIRECT_GIFT)
    ]
    grant, = statement.grants
    assert grant.grant_id == grant_id
    assert grant.status == GrantStatus.Completed
    assert grant.released.base_units == 3_000 * USDC
    assert [release.at.tx_hash for release in grant.releases] == [
        receipts["release0"].txn_hash,
        receipts["release1"].txn_hash,
    ]
    assert [(movement.kind, movement.amount.base_units) for movement in statement.movements()] == [
        ("donation", DIRECT_GIFT),
        ("release", 1_000 * USDC),
        ("release", 2_000 * USDC),
    ]


def test_grant_statement_reads_tokens_from_lookup(cofunded, client, read_books):
    grant_id, _, _ = cofunded
    books, source = read_books()

    statement = grant_statement(books, grant_id, client.token_info, source)

    assert statement.terms.token.symbol == "USDC"
    assert statement.terms.token.decimals == 6
    assert statement.totals.funded.formatted == "6,000 USDC"


def test_eth_grant_needs_no_token_details(escrow, make_terms, grant_maker, client, read_books):
    escrow.createGrant(make_terms(amounts=(10**18, 2 * 10**18)), sender=grant_maker)
    grant_id = escrow.grantCount()
    escrow.fund(grant_id, 15 * 10**17, value=15 * 10**17, sender=grant_maker)
    books, source = read_books()

    from_lookup = grant_statement(books, grant_id, client.token_info, source)
    from_mapping = grant_statement(books, grant_id, {}, source)

    assert from_lookup.terms.token == ETH
    assert from_mapping.terms.token == ETH
    assert from_lookup.totals.funded.to_json() == {"base_units": 15 * 10**17, "formatted": "1.5 ETH"}
    assert from_lookup.status == GrantStatus.Funding


# A grant that misses full funding: the donor's contribution is refunded, the grant maker's is
# still held.


def test_refund_of_underfunded_grant(client, resolve, grant_maker, donor, stranger, chain, read_books, tokens):
    grant_id, _ = client.create_grant(resolve(), grant_maker)
    _, donate_receipt = client.donate_to_grant(grant_id, 1_000 * USDC, NO_DONOR_REF, donor)
    client.fund(grant_id, 500 * USDC, grant_maker)
    chain.pending_timestamp = client.grant(grant_id).funding_deadline
    refund_receipt = client.refund(grant_id, donor.address, stranger)
    books, source = read_books()

    grant = grant_statement(books, grant_id, tokens, source)
    gift, = donor_statement(books, donor.address, tokens, source).grants

    assert grant.status == GrantStatus.FundingFailed
    assert [
        (refund.funder, refund.amount.base_units, refund.credited, refund.at.tx_hash) for refund in grant.refunds
    ] == [
        (donor.address, 1_000 * USDC, False, refund_receipt.txn_hash)
    ]
    assert [(funder.funder, funder.refunded) for funder in grant.funders] == [
        (donor.address, True),
        (grant_maker.address, False),
    ]
    assert grant.totals.reclaimed.base_units == 1_000 * USDC
    assert grant.totals.held.base_units == 500 * USDC
    assert gift.status == GrantStatus.FundingFailed
    assert gift.gifts[0].at.tx_hash == donate_receipt.txn_hash
    assert gift.gifts[0].donor_ref == hex32(NO_DONOR_REF)
    assert [(item.kind, item.milestone_index, item.amount.base_units) for item in gift.returned] == [
        ("refund", None, 1_000 * USDC)
    ]
    assert gift.released == []
    assert gift.still_held.base_units == 0
    maker = donor_statement(books, grant_maker.address, tokens, source).grants[0]
    assert maker.still_held.base_units == 500 * USDC


# A grant in a token with a blocklist. The release to the blocked NGO and the donor's reclaimed
# share become credits. The NGO withdraws its credit, and the donor's credit stays.


def test_credited_payouts(
    escrow, registry, blocklist_token, make_terms, grant_maker, donor, ngo, attestors, stranger, chain, read_books
):
    token = TokenInfo(blocklist_token.address, "RUSD", 6)
    escrow.createGrant(make_terms(token=blocklist_token, amounts=(1_000 * USDC, 2_000 * USDC)), sender=grant_maker)
    grant_id = escrow.grantCount()
    blocklist_token.approve(escrow.address, 2_000 * USDC, sender=grant_maker)
    escrow.fund(grant_id, 2_000 * USDC, sender=grant_maker)
    blocklist_token.approve(registry.address, 1_000 * USDC, sender=donor)
    registry.donateToGrant(grant_id, 1_000 * USDC, NO_DONOR_REF, sender=donor)
    blocklist_token.setBlocked(ngo.address, True, sender=stranger)
    escrow.submitEvidence(grant_id, 0, EVIDENCE[0], "ipfs://bafy-e0", sender=ngo)
    escrow.approve(grant_id, 0, EVIDENCE[0], sender=attestors[0])
    release = escrow.approve(grant_id, 0, EVIDENCE[0], sender=attestors[1])
    chain.pending_timestamp = escrow.getMilestone(grant_id, 1).deadline
    blocklist_token.setBlocked(donor.address, True, sender=stranger)
    reclaim = escrow.reclaim(grant_id, 1, sender=stranger)
    blocklist_token.setBlocked(ngo.address, False, sender=stranger)
    withdrawal = escrow.withdraw(blocklist_token.address, ngo.address, sender=ngo)
    books, source = read_books()
    tokens = {blocklist_token.address: token}

    grant = grant_statement(books, grant_id, tokens, source)
    donor_view = donor_statement(books, donor.address, tokens, source)

    assert [(item.amount.base_units, item.credited, item.at.tx_hash) for item in grant.releases] == [
        (1_000 * USDC, True, release.txn_hash)
    ]
    # 2,000 RUSD * 1,000 / 3,000 is 666.666666 RUSD, rounded down, for the donor.
    shares = grant.reclaims[0].shares
    assert sorted((share.funder, share.amount.base_units, share.credited) for share in shares) == sorted([
        (grant_maker.address, 1_333_333_334, False),
        (donor.address, 666_666_666, True),
    ])
    assert [(item.account, item.to, item.amount.base_units, item.at.tx_hash) for item in grant.withdrawals] == [
        (ngo.address, ngo.address, 1_000 * USDC, withdrawal.txn_hash)
    ]
    assert [(row.kind, row.credited) for row in grant.movements()][-1] == ("withdrawal", False)
    assert [(credit.token, credit.amount.base_units) for credit in donor_view.credits] == [(token, 666_666_666)]
    gift, = donor_view.grants
    assert [(share.share.base_units, share.credited) for share in gift.released] == [(333_333_333, True)]
    assert [(item.kind, item.amount.base_units, item.credited, item.at.tx_hash) for item in gift.returned] == [
        ("reclaim", 666_666_666, True, reclaim.txn_hash)
    ]
    assert donor_view.withdrawals == []


# The whole demo lifecycle.


@pytest.fixture
def demo(accounts, index_contracts):
    result = run_demo(accounts)
    books, source = read_ledger(index_contracts(result.client.escrow.address, result.client.registry.address))
    return result, books, source


def test_demo_grant_statement(demo):
    result, books, source = demo
    roles = result.roles
    tokens = {result.token.address: result.token}

    statement = grant_statement(books, result.grant_id, tokens, source)

    assert statement.status == GrantStatus.Completed
    assert [(funder.funder, funder.contribution.base_units) for funder in statement.funders] == [
        (roles.grant_maker.address, 40_000 * USDC),
        (roles.grant_donor.address, 5_000 * USDC),
    ]
    assert [release.amount.base_units for release in statement.releases] == [12_500 * USDC, 25_000 * USDC]
    shares = {share.funder: (share.amount.base_units, share.credited) for share in statement.reclaims[0].shares}
    assert shares == {
        roles.grant_maker.address: (6_666_666_667, True),
        roles.grant_donor.address: (833_333_333, True),
    }
    assert [(item.account, item.amount.base_units) for item in statement.withdrawals] == [
        (roles.grant_maker.address, 6_666_666_667),
        (roles.grant_donor.address, 833_333_333),
    ]
    step_hashes = [step.txn_hash for step in result.steps]
    assert statement.reclaims[0].at.tx_hash == step_hashes[-3]
    assert [item.at.tx_hash for item in statement.withdrawals] == step_hashes[-2:]


def test_demo_donor_statement(demo):
    result, books, source = demo
    roles = result.roles
    tokens = {result.token.address: result.token}

    statement = donor_statement(books, roles.grant_donor.address, tokens, source)

    gift, = statement.grants
    # The donor gave 5,000 of 45,000. 12,500 * 5,000 / 45,000 is 1,388.888...8 rounded down, and
    # 25,000 gives 2,777.777...7.
    assert [share.share.base_units for share in gift.released] == [1_388_888_888, 2_777_777_777]
    assert [(item.kind, item.amount.base_units, item.credited) for item in gift.returned] == [
        ("reclaim", 833_333_333, True)
    ]
    assert statement.credits == []
    assert [(item.to, item.amount.base_units) for item in statement.withdrawals] == [
        (roles.grant_donor.address, 833_333_333)
    ]
    direct = donor_statement(books, roles.direct_donor.address, tokens, source)
    assert [(item.amount.base_units, item.forwarded_to) for item in direct.direct_gifts] == [
        (1_000 * USDC, roles.ngo.address)
    ]
    assert direct.grants == []


def test_demo_project_statement(demo):
    result, books, source = demo
    tokens = {result.token.address: result.token}

    statement = project_statement(books, result.project_id, tokens, source)

    assert statement.status == "Verified"
    assert [(item.donor, item.amount.base_units) for item in statement.donations] == [
        (result.roles.direct_donor.address, 1_000 * USDC)
    ]
    assert [grant.grant_id for grant in statement.grants] == [result.grant_id]
    assert statement.grants[0].released.base_units == 37_500 * USDC


# Rules and errors.


def test_pro_rata_shares_round_down_to_later_funders():
    shares = pro_rata_shares(100, {"first": 1, "second": 1, "third": 1}, 3)

    assert shares == {"first": 34, "second": 33, "third": 33}


def test_pro_rata_shares_skip_dust_funder():
    shares = pro_rata_shares(10, {"first": 999, "dust": 1}, 1_000)

    assert shares == {"first": 10, "dust": 0}


def test_unknown_grant_names_id_and_fix(read_books, tokens):
    books, source = read_books()

    with pytest.raises(NotInLedgerError) as raised:
        grant_statement(books, 7, tokens, source)

    message = str(raised.value)
    assert f"Grant 7 is not in the ledger, which has no grants up to block {source.last_block}." in message
    assert "`fundtrail index`" in message


def test_unknown_project_names_id(cofunded, read_books, tokens):
    books, source = read_books()

    with pytest.raises(NotInLedgerError, match="Project 9 is not in the ledger, which has projects 1 to 1"):
        project_statement(books, 9, tokens, source)


def test_donor_statement_rejects_bad_address(read_books):
    books, source = read_books()

    with pytest.raises(SpecError, match="ADDRESS: invalid value '0x1234': not an Ethereum address"):
        donor_statement(books, "0x1234", {}, source)


def test_missing_token_details_raise(cofunded, usdc, read_books):
    grant_id, _, _ = cofunded
    books, source = read_books()

    with pytest.raises(UnknownTokenError, match=f"Token {usdc.address} is missing from the token details passed in"):
        grant_statement(books, grant_id, {}, source)


def test_to_json_formats_eth_amounts():
    assert to_json(Amount(1_500_000_000_000_000_000, ETH)) == {
        "base_units": 1_500_000_000_000_000_000,
        "formatted": "1.5 ETH",
    }
