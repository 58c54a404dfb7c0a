"""The `fundtrail` CLI, run with click's CliRunner against the in-process test chain.

The commands connect with `--network ethereum:local:test`, which ape resolves to the provider
this test session already runs, and sign with ape's test accounts by alias (`TEST::<index>`).
"""

import json

import pytest
from click.testing import CliRunner
from eth_utils import keccak
from grant_setup import DAY, TOTAL, USDC_UNIT, write_spec

from fundtrail.cli import cli
from fundtrail.contracts import ESCROW, REGISTRY
from fundtrail.deployments import ContractRecord, Deployment, DeploymentsFile
from fundtrail.grants import MilestoneStatus

NETWORK = "ethereum:local:test"
SALT_HEX = "00" * 31 + "07"


@pytest.fixture
def run(invoke_cli, deployments):
    """`run(*args, account=...)` invokes the CLI on the test chain and returns click's result."""

    def invoke(*args, account=None, deployments_path=deployments):
        argv = [*args, "--network", NETWORK, "--deployments", deployments_path]
        if account is not None:
            argv += ["--account", account.alias]
        return invoke_cli(argv)

    return invoke


def test_deploy_writes_deployments_file(run, tmp_path, deployer, registrar, usdc, chain):
    path = tmp_path / "new.json"

    result = run(
        "deploy",
        "--registrar",
        registrar.alias,
        "--token",
        f"USDC={usdc.address}",
        account=deployer,
        deployments_path=path,
    )

    assert result.exit_code == 0, result.stderr
    entry = json.loads(path.read_text())["networks"][NETWORK]
    assert entry["chain_id"] == chain.chain_id
    assert entry["tokens"] == {"USDC": usdc.address}
    assert set(entry["contracts"]) == {ESCROW, REGISTRY}
    assert entry["contracts"][ESCROW]["address"] in result.stdout


def test_grant_create_prints_grant(run, tmp_path, grant_maker, escrow, ngo):
    result = run("grant", "create", write_spec(tmp_path), "--fund", account=grant_maker)

    assert result.exit_code == 0, result.stderr
    assert "Created grant 1 and funded it" in result.stdout
    assert ngo.address in result.stdout
    assert "6,000 USDC" in result.stdout
    assert escrow.getGrant(1).funded == TOTAL


def test_grant_create_reports_every_spec_problem(run, tmp_path, grant_maker, escrow):
    milestones = [{"title": "Hotline staffed", "amount": "1,000 DAI", "deadline": "30d"}]
    spec = write_spec(tmp_path, quorum=4, milestones=milestones)
    nonce = grant_maker.nonce

    result = run("grant", "create", spec, account=grant_maker)

    assert result.exit_code == 2
    assert "2 problems found" in result.stderr
    assert "milestones[0].amount: invalid value '1,000 DAI'" in result.stderr
    assert "Write the amount in USDC" in result.stderr
    assert (
        "quorum: invalid value 4: must be between 1 and the number of attestors, 3" in result.stderr
    )
    assert escrow.grantCount() == 0
    assert grant_maker.nonce == nonce


def test_grant_create_suggests_known_alias(run, tmp_path, grant_maker, escrow):
    spec = write_spec(tmp_path, attestors=["TEST::3", "TEST::4", "TST::5"])

    result = run("grant", "create", spec, account=grant_maker)

    assert result.exit_code == 2
    assert "attestors[2]: invalid value 'TST::5': no account has this alias" in result.stderr
    assert "Did you mean 'TEST::5'" in result.stderr
    assert escrow.grantCount() == 0


def test_grant_create_rejects_missing_spec(run, tmp_path, grant_maker):
    result = run("grant", "create", tmp_path / "absent.yaml", account=grant_maker)

    assert result.exit_code == 2
    assert "absent.yaml: file not found" in result.stderr


def test_grant_fund_revert_exits_1(
    run, client, resolve, grant_maker, donor, fee_token, deployer, escrow
):
    fee_token.mint(donor, 1_000 * 10**18, sender=deployer)
    milestones = [{"title": "Hotline staffed", "amount": "100 FEE", "deadline": "30d"}]
    grant_id, _ = client.create_grant(
        resolve(token=fee_token.address, milestones=milestones), grant_maker
    )

    result = run("grant", "fund", grant_id, "10", account=donor)

    # The checks cannot see a transfer fee, so the escrow's own check reverts on-chain.
    assert result.exit_code == 1
    assert "TokenAmountMismatch" in result.stderr
    assert escrow.getGrant(grant_id).funded == 0


def test_grant_fund_rejects_amount_above_remaining(run, client, resolve, grant_maker, donor):
    grant_id, _ = client.create_grant(resolve(), grant_maker)
    nonce = donor.nonce

    result = run("grant", "fund", grant_id, "6,000.01", account=donor)

    assert result.exit_code == 2
    assert (
        "amount: invalid value '6,000.01 USDC': the grant needs only 6,000 USDC more"
        in result.stderr
    )
    assert donor.nonce == nonce


def test_grant_fund_rejects_fully_funded_grant(run, grant_id, donor):
    nonce = donor.nonce

    result = run("grant", "fund", grant_id, "1", account=donor)

    assert result.exit_code == 2
    assert (
        f"grant id: invalid value {grant_id}: the grant is already fully funded (6,000 USDC), "
        "so nothing more can be added. Fund another grant, or give to a verified project with "
        "`fundtrail donate AMOUNT --project ID`." in result.stderr
    )
    assert "at most" not in result.stderr
    assert donor.nonce == nonce


def test_grant_show_suggests_recorded_network(run, tmp_path, escrow, registry, chain):
    path = tmp_path / "foundry-only.json"
    records = {
        ESCROW: ContractRecord(escrow.address, 0, escrow.txn_hash),
        REGISTRY: ContractRecord(registry.address, 0, registry.txn_hash),
    }
    DeploymentsFile(path).save(Deployment("ethereum:local:foundry", 31337, records, {}))

    result = run("grant", "show", 1, deployments_path=path)

    assert result.exit_code == 2
    assert (
        f"No deployment recorded for network {NETWORK} in {path} (recorded networks: "
        "ethereum:local:foundry). Add `--network ethereum:local:foundry` to use the deployment "
        "recorded there" in result.stderr
    )
    assert "fundtrail deploy" not in result.stderr


def test_grant_show_rejects_unknown_grant(run):
    result = run("grant", "show", 9)

    assert result.exit_code == 2
    assert "grant id: invalid value 9: no grant has this id (no grant exists yet)" in result.stderr


def test_grant_list_shows_each_grant(run, client, resolve, grant_maker, ngo):
    client.create_grant(resolve(), grant_maker)
    client.create_grant(resolve(), grant_maker, fund=True)

    result = run("grant", "list")

    assert result.exit_code == 0, result.stderr
    assert "0 USDC / 6,000 USDC" in result.stdout
    assert "6,000 USDC / 6,000 USDC" in result.stdout
    assert result.stdout.count(ngo.address) == 2


def test_evidence_submit_publishes_hash_and_uri(
    run, client, grant_id, ngo, evidence_file, evidence_hash
):
    result = run(
        "evidence", "submit", grant_id, 0, evidence_file, "--uri", "ipfs://bafy-report", account=ngo
    )

    assert result.exit_code == 0, result.stderr
    assert "0x" + evidence_hash.hex() in result.stdout
    milestone = client.grant(grant_id).milestones[0]
    assert milestone.evidence_hash == evidence_hash
    assert milestone.evidence_uri == "ipfs://bafy-report"


def test_evidence_submit_rejects_email_in_uri(run, client, grant_id, ngo, evidence_file):
    uri = "https://example.org/report?from=jane.doe@example.org"
    nonce = ngo.nonce

    result = run("evidence", "submit", grant_id, 0, evidence_file, "--uri", uri, account=ngo)

    assert result.exit_code == 2
    assert "evidence URI: found what looks like an e-mail address" in result.stderr
    assert "--allow-personal-data" in result.stderr
    assert "jane.doe@example.org" not in result.stderr
    assert ngo.nonce == nonce
    assert client.grant(grant_id).milestones[0].status == MilestoneStatus.AwaitingEvidence


def test_evidence_submit_accepts_email_when_allowed(run, client, grant_id, ngo, evidence_file):
    uri = "https://example.org/report?from=press@example.org"

    result = run(
        "evidence",
        "submit",
        grant_id,
        0,
        evidence_file,
        "--uri",
        uri,
        "--allow-personal-data",
        account=ngo,
    )

    assert result.exit_code == 0, result.stderr
    assert client.grant(grant_id).milestones[0].evidence_uri == uri


def test_evidence_submit_rejects_missing_file(run, grant_id, ngo, tmp_path):
    nonce = ngo.nonce

    result = run(
        "evidence",
        "submit",
        grant_id,
        0,
        tmp_path / "missing.pdf",
        "--uri",
        "ipfs://bafy-report",
        account=ngo,
    )

    assert result.exit_code == 2
    assert "missing.pdf: file not found" in result.stderr
    assert ngo.nonce == nonce


def test_evidence_submit_rejects_wrong_grant_id(run, grant_id, ngo, evidence_file):
    result = run(
        "evidence",
        "submit",
        grant_id + 1,
        0,
        evidence_file,
        "--uri",
        "ipfs://bafy-report",
        account=ngo,
    )

    assert result.exit_code == 2
    assert (
        f"grant id: invalid value {grant_id + 1}: no grant has this id "
        f"(the latest grant is {grant_id})" in result.stderr
    )


def test_attest_approve_rejects_non_attestor(
    run, client, grant_id, submitted, stranger, evidence_file
):
    nonce = stranger.nonce

    result = run(
        "attest", "approve", grant_id, 0, "--evidence-file", evidence_file, account=stranger
    )

    assert result.exit_code == 2
    assert (
        f"sender: invalid value '{stranger.address}': not an attestor of grant {grant_id}"
        in result.stderr
    )
    assert stranger.nonce == nonce
    assert client.grant(grant_id).milestones[0].approval_count == 0


def test_attest_approve_releases_at_quorum(
    run, client, grant_id, submitted, attestors, evidence_file
):
    first = run(
        "attest", "approve", grant_id, 0, "--evidence-file", evidence_file, account=attestors[0]
    )
    second = run(
        "attest",
        "approve",
        grant_id,
        0,
        "--evidence-hash",
        "0x" + submitted.hex(),
        account=attestors[2],
    )
    show_result = run("grant", "show", grant_id)

    assert first.exit_code == 0, first.stderr
    assert f"Approved milestone 0 of grant {grant_id} (approval 1 of 2):" in first.stdout
    assert second.exit_code == 0, second.stderr
    assert (
        f"Approved milestone 0 of grant {grant_id} (approval 2 of 2), which released it:"
        in second.stdout
    )
    milestone = client.grant(grant_id).milestones[0]
    assert milestone.status == MilestoneStatus.Released
    assert show_result.exit_code == 0, show_result.stderr
    assert "#0  Released  1,000 USDC" in show_result.stdout
    assert f"Release tx {milestone.settlement_tx}" in show_result.stdout
    assert (
        f"Approvals  2 of 2: {attestors[0].address}, {attestors[2].address}" in show_result.stdout
    )


def test_attest_approve_requires_one_evidence_form(
    run, grant_id, submitted, attestors, evidence_file
):
    result = run(
        "attest",
        "approve",
        grant_id,
        0,
        "--evidence-file",
        evidence_file,
        "--evidence-hash",
        "0x" + submitted.hex(),
        account=attestors[0],
    )

    assert result.exit_code == 2
    assert (
        "--evidence-file / --evidence-hash: invalid value 'both': needs exactly one of the two"
        in result.stderr
    )


def test_attest_reject_with_reason_file(
    run, client, grant_id, submitted, attestors, evidence_file, tmp_path
):
    reasons = tmp_path / "reasons.md"
    reasons.write_text("The report covers only two of the four weeks.\n", encoding="utf-8")

    result = run(
        "attest",
        "reject",
        grant_id,
        0,
        "--evidence-file",
        evidence_file,
        "--reason-file",
        reasons,
        account=attestors[0],
    )

    assert result.exit_code == 0, result.stderr
    assert "The quorum is now out of reach" not in result.stdout
    assert client.grant(grant_id).milestones[0].rejections == (attestors[0].address,)


def test_attest_reject_reports_lost_quorum(run, client, grant_id, submitted, attestors):
    reason = "0x" + "5e" * 32
    client.reject(grant_id, 0, submitted, bytes.fromhex(reason[2:]), attestors[0])

    result = run(
        "attest",
        "reject",
        grant_id,
        0,
        "--evidence-hash",
        "0x" + submitted.hex(),
        "--reason-hash",
        reason,
        account=attestors[1],
    )

    assert result.exit_code == 0, result.stderr
    assert "The quorum is now out of reach" in result.stdout
    assert client.grant(grant_id).milestones[0].status == MilestoneStatus.AwaitingEvidence


def test_reclaim_after_deadline(run, client, grant_id, stranger, chain):
    early = run("reclaim", grant_id, 2, account=stranger)
    chain.pending_timestamp += 90 * DAY
    late = run("reclaim", grant_id, 2, account=stranger)

    assert early.exit_code == 2
    assert "is open until" in early.stderr
    assert late.exit_code == 0, late.stderr
    assert client.grant(grant_id).milestones[2].status == MilestoneStatus.Reclaimed


def test_refund_after_failed_funding(run, client, resolve, grant_maker, donor, usdc, chain):
    grant_id, _ = client.create_grant(resolve(), grant_maker)
    client.fund(grant_id, 40 * USDC_UNIT, donor)
    balance_before = usdc.balanceOf(donor)
    chain.pending_timestamp += 7 * DAY

    result = run("refund", grant_id, account=donor)

    assert result.exit_code == 0, result.stderr
    assert usdc.balanceOf(donor) == balance_before + 40 * USDC_UNIT


def test_withdraw_rejects_missing_credit(run, ngo):
    result = run("withdraw", "--token", "USDC", account=ngo)

    assert result.exit_code == 2
    assert f"{ngo.address} has no USDC credit in the escrow" in result.stderr


def test_donate_publishes_only_commitment(run, client, ngo, registrar, donor, registry):
    project_id, _ = client.register_project(
        ngo.address, ngo.address, b"\x33" * 32, "ipfs://bafy-project", ngo
    )
    client.verify_project(project_id, registrar)

    result = run(
        "donate",
        "0.01",
        "--project",
        project_id,
        "--donor-ref-salt",
        SALT_HEX,
        "--donor-label",
        "Jane Doe",
        account=donor,
    )

    assert result.exit_code == 0, result.stderr
    logs = list(registry.ProjectDonation.range(0, registry.chain_manager.blocks.height + 1))
    assert [(log.donor, log.amount, bytes(log.donorRef)) for log in logs] == [
        (donor.address, 10**16, keccak(bytes.fromhex(SALT_HEX) + b"Jane Doe"))
    ]


def test_donate_into_grant(run, client, resolve, grant_maker, donor):
    grant_id, _ = client.create_grant(resolve(), grant_maker)

    result = run("donate", "25", "--grant", grant_id, account=donor)

    assert result.exit_code == 0, result.stderr
    assert [(funder.address, funder.contribution) for funder in client.grant(grant_id).funders] == [
        (donor.address, 25 * USDC_UNIT)
    ]


def test_donate_requires_project_or_grant(run, donor):
    result = run("donate", "1", "--project", 1, "--grant", 1, account=donor)

    assert result.exit_code == 2
    assert "--project / --grant: invalid value 'both': needs exactly one" in result.stderr


def test_project_register_and_verify(run, client, ngo, registrar, tmp_path):
    metadata = tmp_path / "project.md"
    metadata.write_text("# Night shelter\n", encoding="utf-8")

    registered = run(
        "project",
        "register",
        "--payout",
        ngo.alias,
        "--metadata-file",
        metadata,
        "--metadata-uri",
        "ipfs://bafy-project",
        account=ngo,
    )
    rejected = run("project", "verify", 1, account=ngo)
    verified = run("project", "verify", 1, account=registrar)

    assert registered.exit_code == 0, registered.stderr
    assert "Registered project 1" in registered.stdout
    assert rejected.exit_code == 2
    assert "not the registrar" in rejected.stderr
    assert verified.exit_code == 0, verified.stderr
    assert client.registry.getProject(1).status == 1


def help_text(*command: str) -> str:
    """Return the `--help` page of `command`, with its line breaks joined."""
    result = CliRunner(mix_stderr=False).invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.stderr
    return " ".join(result.stdout.split())


@pytest.mark.parametrize(
    "command",
    [
        ("deploy",),
        ("project", "register"),
        ("grant", "create"),
        ("grant", "fund"),
        ("evidence", "submit"),
        ("attest", "approve"),
        ("attest", "reject"),
        ("reclaim",),
        ("refund",),
        ("withdraw",),
        ("donate",),
    ],
)
def test_sending_command_help_explains_account(command):
    text = help_text(*command)

    assert (
        "--account ACCOUNT Account that signs and pays for the transaction: an alias from "
        "`ape accounts list`, or TEST::0 to TEST::9 on local chains. Always pass it: without "
        "it, ape asks for an account interactively." in text
    )


@pytest.mark.parametrize("command", [("grant", "show"), ("grant", "list")])
def test_reading_command_has_no_account(command):
    assert "--account" not in help_text(*command)


def test_attest_approve_help_requires_one_evidence_form():
    text = help_text("attest", "approve")

    assert "Pass exactly one of --evidence-file and --evidence-hash." in text


def test_attest_reject_help_requires_one_of_each_form():
    text = help_text("attest", "reject")

    assert (
        "Pass exactly one of --evidence-file and --evidence-hash, and exactly one of "
        "--reason-file and --reason-hash." in text
    )


@pytest.mark.parametrize(
    ("command", "sentence"),
    [
        (
            ("grant", "fund"),
            'Add AMOUNT to a grant, in token units such as "2,500 USDC" or "0.5 ETH" (not wei).',
        ),
        (
            ("donate",),
            'AMOUNT is in token units, such as "2,500 USDC" or "0.5 ETH", not in base units '
            "such as wei.",
        ),
    ],
)
def test_amount_help_says_token_units(command, sentence):
    text = help_text(*command)

    assert sentence in text
    assert "whole tokens" not in text
