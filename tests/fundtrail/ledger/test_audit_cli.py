"""`fundtrail audit`, run with click's CliRunner against the demo's contracts in-process."""

import json
import sqlite3

import pytest
from click.testing import CliRunner
from demo_ledger import (  # noqa: F401 (fixtures)
    NETWORK,
    demo,
    demo_deployment,
    ledger_path,
)

from fundtrail.cli import EXIT_BAD_INPUT, cli
from fundtrail.cli_ledger import EXIT_DISCREPANCIES
from fundtrail.deployments import DeploymentsFile
from fundtrail.ledger.books import ETH

ETHER = 10**18


@pytest.fixture
def deployments(tmp_path, demo_deployment):
    path = tmp_path / "deployments.json"
    DeploymentsFile(path).save(demo_deployment)
    return path


@pytest.fixture
def run_audit(chain, deployments, ledger_path):
    """`run_audit(*options)` runs `fundtrail audit` on the test chain and returns click's result."""

    def invoke(*options, deployments_path=deployments):
        argv = [
            "audit",
            *options,
            "--network",
            NETWORK,
            "--deployments",
            str(deployments_path),
            "--database",
            str(ledger_path),
        ]
        # NOTE: Connecting with `--network` inside a test session empties ape's snapshot list
        # for this chain (ape 0.8.51), which the per-test isolation needs, so it is restored.
        snapshots = list(chain._snapshots[chain.chain_id])
        try:
            return CliRunner(mix_stderr=False).invoke(cli, argv, env={"COLUMNS": "300"})
        finally:
            chain._snapshots[chain.chain_id] = snapshots

    return invoke


def lines(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines()]


def table_rows(output: str) -> list[list[str]]:
    """Return the cells of every table row in rich's output, stripped of padding."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in output.splitlines()
        if line.strip().startswith("│")
    ]


def test_clean_demo_exits_zero(run_audit, demo, chain):
    result = run_audit()

    assert result.exit_code == 0, result.output + result.stderr
    block = chain.blocks.head.number
    assert f"Clean: the books match the chain at block {block}." in lines(result.output)
    rows = table_rows(result.output)
    assert ["Events replayed", "23"] in rows
    assert ["Grants", "1"] in rows
    assert ["Milestones", "3"] in rows
    assert ["Projects", "1"] in rows
    assert ["Tokens", "2"] in rows
    assert [f"USDC {demo.stablecoin.address}", "0 USDC", "0 USDC", "0 USDC", "0 USDC"] in rows
    assert "Discrepancies" not in result.output


def test_clean_demo_json(run_audit, demo, chain):
    result = run_audit("--json")

    assert result.exit_code == 0, result.output + result.stderr
    data = json.loads(result.output)
    assert data == {
        "block": chain.blocks.head.number,
        "timestamp": chain.blocks.head.timestamp,
        "escrow": demo.client.escrow.address,
        "registry": demo.client.registry.address,
        "clean": True,
        "checked": {
            "events": 23,
            "grants": 1,
            "milestones": 3,
            "funders": 2,
            "projects": 1,
            "donations": 2,
            "credits": 2,
            "tokens": 2,
        },
        "balances": [
            {"token": ETH, "balance": "0", "held": "0", "credits": "0", "surplus": "0"},
            {
                "token": demo.stablecoin.address,
                "balance": "0",
                "held": "0",
                "credits": "0",
                "surplus": "0",
            },
        ],
        "surpluses": [],
        "discrepancies": [],
    }


def test_forced_eth_is_surplus_exit_zero(run_audit, demo, project, accounts):
    accounts[9].deploy(project.ForceEtherSender, demo.client.escrow.address, value=3 * ETHER)

    result = run_audit()

    assert result.exit_code == 0, result.output + result.stderr
    assert (
        "Surplus: the escrow holds 3 ETH more than its grants and credits need. No one can "
        "withdraw it; it is not a discrepancy." in lines(result.output)
    )
    json_result = run_audit("--json", "--no-sync")
    assert json_result.exit_code == 0
    assert json.loads(json_result.output)["surpluses"] == [{"token": ETH, "amount": str(3 * ETHER)}]


def test_tampered_ledger_exits_one(run_audit, ledger_path, chain):
    assert run_audit().exit_code == 0
    with sqlite3.connect(ledger_path) as connection:
        deleted = connection.execute(
            "DELETE FROM ledger_events WHERE event = 'Payout' "
            "AND json_extract(args, '$.kind') = 0 AND json_extract(args, '$.milestoneIndex') = 0"
        ).rowcount
    assert deleted == 1

    result = run_audit("--no-sync")
    json_result = run_audit("--no-sync", "--json")

    assert result.exit_code == EXIT_DISCREPANCIES == 1
    block = chain.blocks.head.number
    assert f"3 discrepancies between the books and the chain at block {block}." in lines(result.output)
    assert table_rows(result.output)[-3:] == [
        ["books", "grant 1", "payouts", "45000000000", "32500000000"],
        ["books", "grant 1 milestone 0", "payouts", "12500000000", "0"],
        ["books", "grant 1 milestone 0", "settlements", "1", "0"],
    ]
    assert json_result.exit_code == EXIT_DISCREPANCIES
    assert json.loads(json_result.output)["discrepancies"] == [
        {"kind": "books", "subject": "grant 1", "field": "payouts", "expected": "45000000000", "actual": "32500000000"},
        {"kind": "books", "subject": "grant 1 milestone 0", "field": "payouts", "expected": "12500000000", "actual": "0"},
        {"kind": "books", "subject": "grant 1 milestone 0", "field": "settlements", "expected": "1", "actual": "0"},
    ]


def test_no_sync_audits_last_indexed_block(run_audit, demo, project, accounts):
    first = run_audit("--json")
    accounts[9].deploy(project.ForceEtherSender, demo.client.escrow.address, value=ETHER)

    result = run_audit("--json", "--no-sync")

    assert result.exit_code == 0
    data = json.loads(result.output)
    # The ETH arrived after the indexed block, so the audit at that block does not see it.
    assert data["block"] == json.loads(first.output)["block"]
    assert data["surpluses"] == []


def test_missing_deployment_exits_two(run_audit, tmp_path):
    result = run_audit(deployments_path=tmp_path / "absent.json")

    assert result.exit_code == EXIT_BAD_INPUT
    assert result.output == ""
    assert f"No deployments file at {tmp_path / 'absent.json'}" in result.stderr


def test_unread_ledger_exits_two(run_audit):
    result = run_audit("--no-sync")

    assert result.exit_code == EXIT_BAD_INPUT
    assert result.output == ""
    assert result.stderr == (
        "Error: The ledger has read no block yet, so there is nothing to audit. Run `fundtrail "
        "index` (or `fundtrail audit` without --no-sync) first.\n"
    )
