"""The demo's lifecycle, run in-process, must end with exact balances and reconciled books."""

from fundtrail.demo import reconcile, run_demo
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
