"""The reconciliation audit against real contracts on the in-process chain.

Most tests run the demo's lifecycle, index it, then change the chain (forced ETH, tokens sent
straight to the escrow) or the ledger database (a deleted or altered event row) and check the
exact report.
"""

import json
import sqlite3
from dataclasses import replace

import pytest
from demo_ledger import (  # noqa: F401 (fixtures)
    demo,
    demo_deployment,
    demo_index,
    ledger_path,
    open_index,
    record_deployment,
)

from fundtrail.grants import GrantStatus, MilestoneStatus
from fundtrail.ledger.audit import (
    AuditError,
    Checked,
    Discrepancy,
    Kind,
    TokenBalance,
    audit,
)
from fundtrail.ledger.books import ETH, rebuild
from fundtrail.ledger.views import ChainViewError, ChainViews

USDC = 10**6
ETHER = 10**18
GRANT_ID = 1
DEMO_CHECKED = Checked(
    events=23, grants=1, milestones=3, funders=2, projects=1, donations=2, credits=2, tokens=2
)


@pytest.fixture
def views(demo_index, chain):
    return ChainViews.of_ledger(demo_index.ledger, chain.provider.web3)


def audit_demo(demo_index, views):
    """Read new events, then audit the demo's ledger at its last block."""
    demo_index.sync()
    return audit(demo_index.ledger, views)


def edit_ledger(path, statement: str, *parameters) -> int:
    """Run one SQL statement on the ledger file, as someone with database access could, and
    return the number of rows it changed."""
    with sqlite3.connect(path) as connection:
        return connection.execute(statement, parameters).rowcount


def test_demo_audit_is_clean(demo, demo_index, views, chain):
    report = audit_demo(demo_index, views)

    assert report.discrepancies == []
    assert report.clean
    assert report.block == chain.blocks.head.number
    assert report.timestamp == chain.blocks.head.timestamp
    assert report.escrow == demo.client.escrow.address
    assert report.registry == demo.client.registry.address
    assert report.checked == DEMO_CHECKED
    assert report.balances == [
        TokenBalance(ETH, balance=0, held=0, credits=0),
        TokenBalance(demo.stablecoin.address, balance=0, held=0, credits=0),
    ]
    assert report.surpluses == []


def test_forced_eth_is_surplus(demo, demo_index, views, project, accounts):
    escrow = demo.client.escrow.address
    # The constructor self-destructs into the escrow, which has no way to refuse the ETH.
    accounts[9].deploy(project.ForceEtherSender, escrow, value=3 * ETHER)

    report = audit_demo(demo_index, views)

    assert report.discrepancies == []
    assert report.clean
    assert report.surpluses == [TokenBalance(ETH, balance=3 * ETHER, held=0, credits=0)]
    assert report.surpluses[0].surplus == 3 * ETHER
    assert report.to_json()["surpluses"] == [{"token": ETH, "amount": str(3 * ETHER)}]


def test_tokens_sent_directly_are_surplus(demo, demo_index, views):
    escrow = demo.client.escrow.address
    demo.stablecoin.mint(escrow, 250 * USDC, sender=demo.roles.deployer)

    report = audit_demo(demo_index, views)

    assert report.discrepancies == []
    assert report.surpluses == [
        TokenBalance(demo.stablecoin.address, balance=250 * USDC, held=0, credits=0)
    ]


def test_deleted_payout_row_breaks_books(demo_index, views, ledger_path):
    deleted = edit_ledger(
        ledger_path,
        "DELETE FROM ledger_events WHERE event = 'Payout' AND grant_id = ? "
        "AND json_extract(args, '$.kind') = 0 AND json_extract(args, '$.milestoneIndex') = 0",
        GRANT_ID,
    )
    assert deleted == 1

    report = audit(demo_index.ledger, views)

    assert report.discrepancies == [
        Discrepancy(Kind.BOOKS, "grant 1", "payouts", 45_000 * USDC, 32_500 * USDC),
        Discrepancy(Kind.BOOKS, "grant 1 milestone 0", "payouts", 12_500 * USDC, 0),
        Discrepancy(Kind.BOOKS, "grant 1 milestone 0", "settlements", 1, 0),
    ]
    assert not report.clean


def test_altered_funding_amount_differs_from_chain(demo, demo_index, views, ledger_path):
    donor = demo.roles.grant_donor.address
    changed = edit_ledger(
        ledger_path,
        "UPDATE ledger_events SET amount = '4000000000', "
        "args = json_set(args, '$.amount', 4000000000) "
        "WHERE event = 'GrantFunded' AND grant_id = ? AND account = ?",
        GRANT_ID,
        donor,
    )
    assert changed == 1
    token = demo.stablecoin.address

    report = audit(demo_index.ledger, views)

    # The books now miss 1,000 USDC of funding: the grant looks underfunded after its
    # deadline, and it paid out more than it received.
    assert report.discrepancies == [
        Discrepancy(Kind.GRANT, "grant 1", "status", GrantStatus.FundingFailed, GrantStatus.Completed),
        Discrepancy(Kind.GRANT, "grant 1", "funded", 44_000 * USDC, 45_000 * USDC),
        Discrepancy(Kind.GRANT, "grant 1", "held", -1_000 * USDC, 0),
        Discrepancy(Kind.FUNDER, f"grant 1 funder {donor}", "contributionOf", 4_000 * USDC, 5_000 * USDC),
        Discrepancy(
            Kind.BOOKS, "grant 1", "released + reclaimed, at most funded", 44_000 * USDC, 45_000 * USDC
        ),
        Discrepancy(Kind.TOKEN, f"token {token}", "totalHeld", -1_000 * USDC, 0),
    ]


def test_deleted_credit_goes_negative(demo, demo_index, views, ledger_path):
    donor = demo.roles.grant_donor.address
    token = demo.stablecoin.address
    deleted = edit_ledger(
        ledger_path,
        "DELETE FROM ledger_events WHERE event = 'Payout' AND account = ? "
        "AND json_extract(args, '$.kind') = 1",
        donor,
    )
    assert deleted == 1

    report = audit(demo_index.ledger, views)

    subject = f"account {donor} token {token}"
    assert report.discrepancies == [
        Discrepancy(Kind.BOOKS, "grant 1", "payouts", 45_000 * USDC, 45_000 * USDC - 833_333_333),
        Discrepancy(Kind.BOOKS, "grant 1 milestone 2", "payouts", 7_500 * USDC, 7_500 * USDC - 833_333_333),
        Discrepancy(Kind.BOOKS, subject, "credit, never below 0", 0, -833_333_333),
        Discrepancy(Kind.CREDIT, subject, "creditOf", -833_333_333, 0),
        Discrepancy(Kind.TOKEN, f"token {token}", "totalCredits", -833_333_333, 0),
    ]


def test_duplicated_release_is_paid_twice(demo_index, views, ledger_path):
    # Copy milestone 0's release and its payout into a made-up transaction in the same block.
    copied = edit_ledger(
        ledger_path,
        "INSERT INTO ledger_events SELECT block_number, log_index + 1000, "
        "'0x' || substr(tx_hash, 3, 63) || 'f', contract, event, grant_id, project_id, account, "
        "token, amount, args FROM ledger_events "
        "WHERE event IN ('MilestoneReleased', 'Payout') AND grant_id = ? "
        "AND json_extract(args, '$.milestoneIndex') = 0",
        GRANT_ID,
    )
    assert copied == 2

    report = audit(demo_index.ledger, views)

    token_subject = f"token {report.balances[1].token}"
    assert report.discrepancies == [
        Discrepancy(Kind.GRANT, "grant 1", "released", 50_000 * USDC, 37_500 * USDC),
        Discrepancy(Kind.GRANT, "grant 1", "held", -12_500 * USDC, 0),
        Discrepancy(
            Kind.BOOKS, "grant 1", "released + reclaimed, at most funded", 45_000 * USDC, 57_500 * USDC
        ),
        Discrepancy(Kind.BOOKS, "grant 1 milestone 0", "payouts", 12_500 * USDC, 25_000 * USDC),
        Discrepancy(Kind.BOOKS, "grant 1 milestone 0", "settlements", 1, 2),
        Discrepancy(Kind.TOKEN, token_subject, "totalHeld", -12_500 * USDC, 0),
    ]


def test_report_json_has_exact_values(demo_index, views, ledger_path):
    edit_ledger(
        ledger_path,
        "DELETE FROM ledger_events WHERE event = 'Payout' AND grant_id = ? "
        "AND json_extract(args, '$.kind') = 0 AND json_extract(args, '$.milestoneIndex') = 1",
        GRANT_ID,
    )

    data = audit(demo_index.ledger, views).to_json()

    # The JSON must survive a round trip, with amounts as decimal text.
    assert json.loads(json.dumps(data)) == data
    assert data["clean"] is False
    assert data["checked"] == vars(replace(DEMO_CHECKED, events=DEMO_CHECKED.events - 1))
    assert data["discrepancies"] == [
        {
            "kind": "books",
            "subject": "grant 1",
            "field": "payouts",
            "expected": "45000000000",
            "actual": "20000000000",
        },
        {
            "kind": "books",
            "subject": "grant 1 milestone 1",
            "field": "payouts",
            "expected": "25000000000",
            "actual": "0",
        },
        {
            "kind": "books",
            "subject": "grant 1 milestone 1",
            "field": "settlements",
            "expected": "1",
            "actual": "0",
        },
    ]


def test_credited_payout_reconciles(
    project, escrow, registry, chain, make_terms, grant_maker, attestors, stranger, ngo, open_index
):
    rejecter = stranger.deploy(project.EthRejecter)
    escrow.createAndFundGrant(
        make_terms(token=ETH, amounts=[2 * ETHER], recipient=rejecter),
        2 * ETHER,
        value=2 * ETHER,
        sender=grant_maker,
    )
    evidence = b"\x42" * 32
    rejecter.submitEvidence(escrow, GRANT_ID, 0, evidence, sender=stranger)
    for attestor in attestors[:2]:
        escrow.approve(GRANT_ID, 0, evidence, sender=attestor)
    assert escrow.creditOf(rejecter, ETH) == 2 * ETHER

    indexer = open_index(record_deployment(escrow, registry, chain))
    indexer.sync()
    views = ChainViews.of_ledger(indexer.ledger, chain.provider.web3)
    report = audit(indexer.ledger, views)

    assert report.discrepancies == []
    assert report.balances == [TokenBalance(ETH, balance=2 * ETHER, held=0, credits=2 * ETHER)]
    books = rebuild(indexer.ledger.events())
    assert dict(books.credits) == {(rejecter.address, ETH): 2 * ETHER}

    rejecter.withdraw(escrow, ETH, ngo, sender=stranger)
    indexer.sync()
    report = audit(indexer.ledger, views)

    assert report.discrepancies == []
    assert report.balances == [TokenBalance(ETH, balance=0, held=0, credits=0)]


def test_status_follows_audited_block(
    escrow, registry, usdc, chain, make_terms, grant_maker, open_index
):
    usdc.approve(escrow, 500 * USDC, sender=grant_maker)
    terms = make_terms(token=usdc, amounts=[1_000 * USDC])
    receipt = escrow.createAndFundGrant(terms, 500 * USDC, sender=grant_maker)
    funding_deadline = terms[2]
    chain.pending_timestamp = funding_deadline
    chain.mine()

    indexer = open_index(record_deployment(escrow, registry, chain, tokens={"USDC": usdc.address}))
    indexer.sync()
    views = ChainViews.of_ledger(indexer.ledger, chain.provider.web3)
    before = audit(indexer.ledger, views, receipt.block_number)
    after = audit(indexer.ledger, views)

    assert before.timestamp < funding_deadline
    assert before.discrepancies == []
    assert after.timestamp == funding_deadline
    assert after.discrepancies == []
    assert after.balances[1] == TokenBalance(usdc.address, balance=500 * USDC, held=500 * USDC, credits=0)
    # The statuses differ, so each side must have used its own block's time.
    grant = rebuild(indexer.ledger.events()).grants[GRANT_ID]
    assert grant.status(before.timestamp) == GrantStatus.Funding
    assert grant.status(after.timestamp) == GrantStatus.FundingFailed


def test_block_beyond_ledger_raises(demo_index, views):
    last_block = demo_index.ledger.last_block

    with pytest.raises(AuditError) as raised:
        audit(demo_index.ledger, views, last_block + 1)

    assert str(raised.value) == (
        f"The ledger has read events up to block {last_block}, so it cannot be audited at block "
        f"{last_block + 1}. Run `fundtrail index` first, or audit at block {last_block} or lower."
    )


def test_books_without_block_raise(demo_index, views):
    books = rebuild(demo_index.ledger.events())

    with pytest.raises(AuditError, match="^Auditing rebuilt books needs the block"):
        audit(books, views)


def test_rebuilt_books_audit_like_ledger(demo_index, views):
    books = rebuild(demo_index.ledger.events())
    block = demo_index.ledger.last_block

    assert audit(books, views, block) == audit(demo_index.ledger, views)


@pytest.fixture
def funded_grant(escrow, usdc, make_terms, grant_maker):
    """A USDC grant of one 1,000 USDC milestone, funded in full."""
    usdc.approve(escrow, 1_000 * USDC, sender=grant_maker)
    escrow.createAndFundGrant(make_terms(token=usdc, amounts=[1_000 * USDC]), 1_000 * USDC, sender=grant_maker)
    return GRANT_ID


def test_votes_map_to_attestor_bitmaps(
    funded_grant, escrow, registry, usdc, chain, ngo, attestors, open_index, ledger_path
):
    evidence = "0x" + "42" * 32
    escrow.submitEvidence(funded_grant, 0, evidence, "ipfs://bafy-evidence", sender=ngo)
    escrow.approve(funded_grant, 0, evidence, sender=attestors[2])
    escrow.reject(funded_grant, 0, evidence, b"\x01" * 32, sender=attestors[0])
    milestone = escrow.getMilestone(funded_grant, 0)
    assert (milestone.approvals, milestone.rejections) == (0b100, 0b001)

    indexer = open_index(record_deployment(escrow, registry, chain, tokens={"USDC": usdc.address}))
    indexer.sync()
    views = ChainViews.of_ledger(indexer.ledger, chain.provider.web3)

    assert audit(indexer.ledger, views).discrepancies == []

    edit_ledger(ledger_path, "DELETE FROM ledger_events WHERE event = 'MilestoneApproved'")
    assert audit(indexer.ledger, views).discrepancies == [
        Discrepancy(Kind.MILESTONE, "grant 1 milestone 0", "approvals", 0, 0b100),
        Discrepancy(Kind.MILESTONE, "grant 1 milestone 0", "approvalCount", 0, 1),
    ]


def test_rejected_evidence_reconciles(
    funded_grant, escrow, registry, usdc, chain, ngo, attestors, open_index, ledger_path
):
    evidence = "0x" + "43" * 32
    escrow.submitEvidence(funded_grant, 0, evidence, "ipfs://bafy-evidence", sender=ngo)
    for attestor in attestors[:2]:
        escrow.reject(funded_grant, 0, evidence, b"\x02" * 32, sender=attestor)
    assert escrow.isEvidenceRejected(funded_grant, 0, evidence)

    indexer = open_index(record_deployment(escrow, registry, chain, tokens={"USDC": usdc.address}))
    indexer.sync()
    views = ChainViews.of_ledger(indexer.ledger, chain.provider.web3)

    assert audit(indexer.ledger, views).discrepancies == []

    edit_ledger(ledger_path, "DELETE FROM ledger_events WHERE event = 'EvidenceRejected'")
    subject = "grant 1 milestone 0"
    assert audit(indexer.ledger, views).discrepancies == [
        Discrepancy(Kind.MILESTONE, subject, "status", MilestoneStatus.EvidenceSubmitted, MilestoneStatus.AwaitingEvidence),
        Discrepancy(Kind.MILESTONE, subject, "evidenceHash", evidence, "0x" + "00" * 32),
        Discrepancy(Kind.MILESTONE, subject, "rejections", 0b011, 0),
        Discrepancy(Kind.MILESTONE, subject, "rejectionCount", 2, 0),
        Discrepancy(Kind.MILESTONE, f"{subject} evidence {evidence}", "isEvidenceRejected", False, True),
    ]


def test_grant_only_in_books_is_reported(demo_index, views, ledger_path):
    copied = edit_ledger(
        ledger_path,
        "INSERT INTO ledger_events SELECT block_number, log_index + 1000, tx_hash, contract, "
        "event, 2, project_id, account, token, amount, json_set(args, '$.grantId', 2) "
        "FROM ledger_events WHERE event = 'GrantCreated'",
    )
    assert copied == 1

    report = audit(demo_index.ledger, views)

    assert report.discrepancies == [
        Discrepancy(Kind.ESCROW, "escrow", "grantCount", 2, 1),
        Discrepancy(Kind.GRANT, "grant 2", "exists", True, False),
    ]


def test_grant_only_on_chain_is_reported(demo, demo_index, views, ledger_path):
    # Without the grant's events, the grant exists only on the chain, and the withdrawals of
    # the credits its reclaim created are left without those credits.
    edit_ledger(ledger_path, "DELETE FROM ledger_events WHERE grant_id IS NOT NULL")

    report = audit(demo_index.ledger, views)

    token = demo.stablecoin.address
    grant_maker = f"account {demo.roles.grant_maker.address} token {token}"
    grant_donor = f"account {demo.roles.grant_donor.address} token {token}"
    assert report.discrepancies == [
        Discrepancy(Kind.ESCROW, "escrow", "grantCount", 0, 1),
        Discrepancy(Kind.GRANT, "grant 1", "exists", False, True),
        Discrepancy(Kind.BOOKS, grant_maker, "credit, never below 0", 0, -6_666_666_667),
        Discrepancy(Kind.BOOKS, grant_donor, "credit, never below 0", 0, -833_333_333),
        Discrepancy(Kind.CREDIT, grant_maker, "creditOf", -6_666_666_667, 0),
        Discrepancy(Kind.CREDIT, grant_donor, "creditOf", -833_333_333, 0),
        Discrepancy(Kind.TOKEN, f"token {token}", "totalCredits", -7_500 * USDC, 0),
        Discrepancy(Kind.REGISTRY, "registry", "donationCount", 1, 2),
    ]


def test_unreplayable_ledger_raises(demo_index, views, ledger_path):
    edit_ledger(ledger_path, "DELETE FROM ledger_events WHERE event = 'GrantCreated'")

    with pytest.raises(AuditError) as raised:
        audit(demo_index.ledger, views)

    assert str(raised.value) == (
        "The ledger's events cannot be replayed (KeyError: 1): an event refers to a grant, "
        "milestone or project that no earlier event created, so the ledger database is damaged "
        "or was edited. Delete it and run `fundtrail index` to read the events again."
    )


def test_token_without_contract_raises(demo_index, views, accounts):
    not_a_token = accounts[9].address

    with pytest.raises(ChainViewError) as raised:
        audit(demo_index.ledger, views, tokens=(not_a_token,))

    assert str(raised.value) == (
        f"Token {not_a_token} has no contract code at block {demo_index.ledger.last_block}. "
        "Check the token addresses in the deployments file for this network."
    )


def test_refund_reconciles(escrow, registry, usdc, chain, make_terms, grant_maker, open_index, ledger_path):
    usdc.approve(escrow, 400 * USDC, sender=grant_maker)
    terms = make_terms(token=usdc, amounts=[1_000 * USDC])
    escrow.createAndFundGrant(terms, 400 * USDC, sender=grant_maker)
    chain.pending_timestamp = terms[2]
    escrow.refund(GRANT_ID, grant_maker, sender=grant_maker)

    indexer = open_index(record_deployment(escrow, registry, chain, tokens={"USDC": usdc.address}))
    indexer.sync()
    views = ChainViews.of_ledger(indexer.ledger, chain.provider.web3)

    assert audit(indexer.ledger, views).discrepancies == []
    assert escrow.isRefunded(GRANT_ID, grant_maker)

    edit_ledger(ledger_path, "DELETE FROM ledger_events WHERE event = 'Payout'")
    assert audit(indexer.ledger, views).discrepancies == [
        Discrepancy(Kind.BOOKS, "grant 1", "payouts", 400 * USDC, 0),
        Discrepancy(Kind.BOOKS, f"grant 1 funder {grant_maker.address}", "refund payouts", [400 * USDC], []),
    ]


def test_unread_ledger_raises(demo_deployment, open_index, chain):
    indexer = open_index(demo_deployment)
    views = ChainViews.of_ledger(indexer.ledger, chain.provider.web3)

    with pytest.raises(AuditError) as raised:
        audit(indexer.ledger, views)

    assert str(raised.value) == (
        "The ledger has read no block yet, so there is nothing to audit. Run `fundtrail index` "
        "(or `fundtrail audit` without --no-sync) first."
    )
