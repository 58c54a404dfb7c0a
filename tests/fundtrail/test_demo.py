"""The demo's lifecycle, run in-process, must end with exact balances and reconciled books."""

from fundtrail.demo import read_back, reconcile, run_demo
from fundtrail.grants import GrantStatus, MilestoneStatus

USDC = 10**6


def test_demo_ends_with_reconciled_books(accounts):
    steps = []
    result = run_demo(accounts, on_step=steps.append)
    reconciliation = reconcile(result)

    assert reconciliation.problems == []
    assert reconciliation.funded == 45_000 * USDC
    assert reconciliation.released == 37_500 * USDC
    assert reconciliation.reclaimed == 7_500 * USDC
    assert reconciliation.held == 0
    assert reconciliation.escrow_balance == 0
    assert reconciliation.escrow_credits == 0
    assert len(steps) == 15


def test_demo_pays_ngo_and_reclaims_pro_rata(accounts):
    result = run_demo(accounts)
    balances = reconcile(result).balances

    # 12,500 + 25,000 released, plus the 1,000 direct gift.
    assert balances["NGO (recipient and project payout)"] == 38_500 * USDC
    # Milestone 2's 7,500 comes back 40,000 : 5,000. The donor's share, 833.333333, is rounded
    # down, and the remainder goes to the first funder, the grant maker.
    assert balances["Donor into the grant"] == 833_333_333
    assert balances["Grant maker"] == 6_666_666_667
    assert balances["Direct donor"] == 0


def test_demo_settles_every_milestone(accounts):
    result = run_demo(accounts)
    grant = result.client.grant(result.grant_id)

    assert grant.status == GrantStatus.Completed
    assert [milestone.status for milestone in grant.milestones] == [
        MilestoneStatus.Released,
        MilestoneStatus.Released,
        MilestoneStatus.Reclaimed,
    ]
    assert all(milestone.settlement_tx for milestone in grant.milestones)


def test_offline_demo_relays_through_keeper(accounts, chain, tmp_path):
    result = run_demo(accounts, offline_folder=tmp_path)
    roles = result.roles
    escrow = result.client.escrow

    assert reconcile(result).problems == []
    evidence_log = next(
        log for log in escrow.EvidenceSubmitted.range(0, chain.blocks.height + 1)
        if log.milestoneIndex == 1
    )
    release_log = next(
        log for log in escrow.MilestoneReleased.range(0, chain.blocks.height + 1)
        if log.milestoneIndex == 1
    )
    # The NGO is the submitter of record, but the keeper sent both transactions.
    assert evidence_log.submitter == roles.ngo.address
    assert chain.get_receipt(evidence_log.transaction_hash).sender == roles.keeper.address
    assert chain.get_receipt(release_log.transaction_hash).sender == roles.keeper.address
    assert sorted(path.name for path in (tmp_path / "inbox" / "processed").iterdir()) == [
        f"approval-{roles.attestors[1].address[:10]}.json",
        f"approval-{roles.attestors[2].address[:10]}.json",
        "evidence-ngo.json",
    ]
    assert list((tmp_path / "inbox" / "quarantine").iterdir()) == []


def test_demo_reads_back_a_clean_ledger(accounts, tmp_path):
    result = run_demo(accounts)

    ledger = read_back(result, tmp_path)

    assert ledger.sync.events == 23
    assert ledger.audit.discrepancies == []
    assert ledger.audit.surpluses == []
    assert ledger.database == tmp_path / "ledger.sqlite"
    assert ledger.dashboard == tmp_path / "dashboard" / "index.html"
    assert ledger.dashboard.is_file()


def test_demo_donor_statement_follows_the_grant_gift(accounts, tmp_path):
    result = run_demo(accounts)

    statement = read_back(result, tmp_path).donor_statement

    assert statement.donor == result.roles.grant_donor.address
    assert statement.direct_gifts == []
    (gift,) = statement.grants
    assert gift.grant_id == result.grant_id
    assert gift.contribution.base_units == 5_000 * USDC
    # 5,000 of 45,000 of milestones 0 (12,500) and 1 (25,000), rounded down.
    assert [share.share.base_units for share in gift.released] == [1_388_888_888, 2_777_777_777]
    assert [item.amount.base_units for item in gift.returned] == [833_333_333]
    assert gift.still_held.base_units == 0


def test_demo_read_back_replaces_the_previous_ledger(accounts, tmp_path):
    read_back(run_demo(accounts), tmp_path)
    second = run_demo(accounts)

    ledger = read_back(second, tmp_path)

    assert ledger.sync.events == 23
    assert ledger.audit.clean
