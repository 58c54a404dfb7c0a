"""The offline signing commands, `attest verify`, `grant export` and `relay`.

Chain commands run as in test_cli.py, against the in-process test chain. The signing and
verifying commands run without --network, as they would on an offline machine.
"""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from eth_account import Account

from fundtrail.cli import cli
from fundtrail.grants import MilestoneStatus

NETWORK = "ethereum:local:test"
URI = "ipfs://bafy-hotline-report"


@pytest.fixture
def run_online(invoke_cli, deployments):
    """`run_online(*args, account=...)` runs a command connected to the test chain."""

    def invoke(*args, account=None):
        argv = [*args, "--network", NETWORK, "--deployments", deployments]
        if account is not None:
            argv += ["--account", account.alias]
        return invoke_cli(argv)

    return invoke


def run_offline(*args, input=None):
    """Run a command with no --network option, as on a machine with no connection."""
    return CliRunner(mix_stderr=False).invoke(
        cli, [str(arg) for arg in args], input=input, env={"COLUMNS": "300"}
    )


@pytest.fixture
def snapshot_path(run_online, grant_id, tmp_path):
    path = tmp_path / "grant.json"
    result = run_online("grant", "export", grant_id, "--out", path)
    assert result.exit_code == 0, result.stderr
    return path


@pytest.fixture
def keystore(tmp_path, attestors):
    """A keystore of the second attestor's key, and a file with its password."""
    keyfile = Account.encrypt(attestors[1].private_key, "s3cret", kdf="pbkdf2", iterations=2)
    path = tmp_path / "attestor.keystore.json"
    path.write_text(json.dumps(keyfile), encoding="utf-8")
    password_file = tmp_path / "password.txt"
    password_file.write_text("s3cret\n", encoding="utf-8")
    return path, password_file


def flat(output: str) -> str:
    """Join text that rich wrapped over lines or table rows, to search it for whole sentences."""
    return " ".join(re.sub(r"[│┃]", " ", output).split())


def sign_approval(snapshot_path, account, out, *extra):
    return run_offline(
        "attest", "sign", snapshot_path, "--milestone", 0, "--account", account.alias,
        "--out", out, *extra,
    )


def test_grant_export_writes_snapshot(run_online, grant_id, tmp_path, escrow, chain):
    path = tmp_path / "grant.json"

    result = run_online("grant", "export", grant_id, "--out", path)

    assert result.exit_code == 0, result.stderr
    assert f"Exported grant {grant_id} of escrow {escrow.address} on chain {chain.chain_id}" in (
        result.stdout
    )
    data = json.loads(path.read_text())
    assert (data["format"], data["grant_id"], data["escrow"]) == (
        "fundtrail-grant-snapshot",
        grant_id,
        escrow.address,
    )


def test_offline_signing_releases_milestone(
    run_online, snapshot_path, keystore, tmp_path, client, grant_id, ngo, attestors, stranger,
    evidence_file, evidence_hash, usdc,
):
    keystore_path, password_file = keystore
    evidence_sig = tmp_path / "evidence.sig.json"
    first_sig = tmp_path / "approval-1.sig.json"
    second_sig = tmp_path / "approval-2.sig.json"
    balance_before = usdc.balanceOf(ngo)

    signed_evidence = run_offline(
        "evidence", "sign", snapshot_path, "--milestone", 0, evidence_file, "--uri", URI,
        "--account", ngo.alias, "--out", evidence_sig,
    )
    first = sign_approval(snapshot_path, attestors[0], first_sig, "--evidence-file", evidence_file)
    second = run_offline(
        "attest", "sign", snapshot_path, "--milestone", 0, "--evidence-hash",
        "0x" + evidence_hash.hex(), "--keystore", keystore_path, "--password-file", password_file,
        "--expires", "2d", "--out", second_sig,
    )
    verified = run_offline("attest", "verify", second_sig, "--snapshot", snapshot_path)
    relayed = run_online("relay", evidence_sig, first_sig, second_sig, account=stranger)
    again = run_online("relay", evidence_sig, first_sig, second_sig, account=stranger)

    for result in (signed_evidence, first, second, relayed, again):
        assert result.exit_code == 0, result.stderr
    assert f"as {ngo.address}" in signed_evidence.stdout
    assert f"fundtrail relay {first_sig} --network NETWORK --account ACCOUNT`" in first.stdout
    assert f"as {attestors[1].address}" in second.stdout
    # The snapshot predates the evidence, so whether the approval counts is only known on-chain.
    assert verified.exit_code == 3, verified.stderr
    assert f"Not verified: {second_sig} passed every check that can run offline" in (
        flat(verified.stdout)
    )
    assert f"Evidence for milestone 0 of grant {grant_id}\n" in relayed.stdout
    assert f"2 approvals for milestone 0 of grant {grant_id}, released\n" in relayed.stdout
    assert "Dropped" not in relayed.stdout
    assert "Nothing left to submit." in again.stdout
    assert again.stdout.count("already used on-chain") == 3
    milestone = client.grant(grant_id).milestones[0]
    assert milestone.status == MilestoneStatus.Released
    assert milestone.evidence_uri == URI
    assert usdc.balanceOf(ngo) == balance_before + 1_000 * 10**6


def test_sign_uses_snapshot_evidence_by_default(
    run_online, client, grant_id, submitted, attestors, tmp_path
):
    snapshot_path = tmp_path / "grant.json"
    run_online("grant", "export", grant_id, "--out", snapshot_path)
    out = tmp_path / "approval.sig.json"

    result = sign_approval(snapshot_path, attestors[0], out)

    assert result.exit_code == 0, result.stderr
    assert json.loads(out.read_text())["message"]["evidenceHash"] == "0x" + submitted.hex()


def test_sign_requires_evidence_when_snapshot_has_none(snapshot_path, attestors, tmp_path):
    out = tmp_path / "approval.sig.json"

    result = sign_approval(snapshot_path, attestors[0], out)

    assert result.exit_code == 2
    assert (
        "--evidence-file / --evidence-hash: missing, and milestone 0 had no evidence when the "
        "snapshot was exported. Pass the evidence file you reviewed, or its hash." in result.stderr
    )
    assert not out.exists()


def test_sign_help_marks_evidence_optional():
    result = run_offline("attest", "sign", "--help")

    assert result.exit_code == 0
    assert "Give this or --evidence-hash" not in result.stdout
    assert flat(result.stdout).count("Defaults to the evidence that was current when") == 2


def test_sign_rejects_non_attestor(snapshot_path, stranger, evidence_file, tmp_path, grant_id):
    out = tmp_path / "approval.sig.json"

    result = sign_approval(snapshot_path, stranger, out, "--evidence-file", evidence_file)

    assert result.exit_code == 2
    assert (
        f"--account / --keystore: invalid value '{stranger.address}': not an attestor of grant "
        f"{grant_id}" in result.stderr
    )
    assert not out.exists()


def test_sign_rejects_malformed_snapshot(attestors, evidence_file, tmp_path):
    snapshot_path = tmp_path / "grant.json"
    snapshot_path.write_text('{"grant_id": 1', encoding="utf-8")

    result = sign_approval(
        snapshot_path, attestors[0], tmp_path / "a.json", "--evidence-file", evidence_file
    )

    assert result.exit_code == 2
    assert f"{snapshot_path}: not valid JSON" in result.stderr
    assert "Export the grant again with `fundtrail grant export" in result.stderr


def test_sign_rejects_keystore_with_wrong_password(
    snapshot_path, keystore, evidence_file, tmp_path
):
    keystore_path, _ = keystore
    out = tmp_path / "approval.sig.json"

    result = run_offline(
        "attest", "sign", snapshot_path, "--milestone", 0, "--evidence-file", evidence_file,
        "--keystore", keystore_path, "--out", out, input="wrong\n",
    )

    assert result.exit_code == 2
    assert f"password: invalid value '(hidden)': it does not unlock the keystore" in result.stderr
    assert not out.exists()


def test_evidence_sign_rejects_email_in_uri(snapshot_path, ngo, evidence_file, tmp_path):
    out = tmp_path / "evidence.sig.json"

    result = run_offline(
        "evidence", "sign", snapshot_path, "--milestone", 0, evidence_file, "--uri",
        "https://example.org/report?from=jane.doe@example.org", "--account", ngo.alias,
        "--out", out,
    )

    assert result.exit_code == 2
    assert "evidence URI: found what looks like an e-mail address" in result.stderr
    assert "--allow-personal-data" in result.stderr
    assert "jane.doe@example.org" not in result.stderr
    assert not out.exists()


def test_verify_reports_tampered_file(snapshot_path, attestors, evidence_file, tmp_path):
    out = tmp_path / "approval.sig.json"
    sign_approval(snapshot_path, attestors[0], out, "--evidence-file", evidence_file)
    data = json.loads(out.read_text())
    data["message"]["expiry"] = data["typed_data"]["message"]["expiry"] = 4_000_000_000
    out.write_text(json.dumps(data), encoding="utf-8")

    result = run_offline("attest", "verify", out)

    assert result.exit_code == 2
    assert f"Invalid: {out}: digest is {data['digest']}, but the typed data hashes to" in (
        result.stderr
    )


def test_verify_reports_expired(snapshot_path, attestors, evidence_file, tmp_path):
    out = tmp_path / "approval.sig.json"
    signed = sign_approval(
        snapshot_path, attestors[0], out, "--evidence-file", evidence_file, "--expires", "2s"
    )
    fresh = run_offline("attest", "verify", out)
    time.sleep(2.5)

    result = run_offline("attest", "verify", out)

    assert signed.exit_code == 0, signed.stderr
    assert fresh.exit_code == 0, fresh.stderr
    assert result.exit_code == 2
    assert f"Invalid: {out}: expired at " in result.stderr
    assert "the signer must sign again" in result.stderr


def test_sign_rejects_past_expiry(snapshot_path, attestors, evidence_file, tmp_path):
    out = tmp_path / "approval.sig.json"

    result = sign_approval(
        snapshot_path, attestors[0], out, "--evidence-file", evidence_file, "--expires", "1"
    )

    assert result.exit_code == 2
    assert "--expires: invalid value '1'" in result.stderr
    assert not out.exists()


def test_verify_reports_non_attestor_against_snapshot(
    snapshot_path, attestors, stranger, evidence_file, tmp_path, grant_id
):
    out = tmp_path / "approval.sig.json"
    sign_approval(snapshot_path, attestors[0], out, "--evidence-file", evidence_file)
    data = json.loads(snapshot_path.read_text())
    data["attestors"][0] = stranger.address
    other_snapshot = tmp_path / "other-grant.json"
    other_snapshot.write_text(json.dumps(data), encoding="utf-8")

    result = run_offline("attest", "verify", out, "--snapshot", other_snapshot)

    assert result.exit_code == 2
    assert f"{attestors[0].address} is not an attestor of grant {grant_id}" in result.stderr


def test_verify_names_malformed_file(tmp_path):
    path = tmp_path / "approval.sig.json"
    path.write_text("not json", encoding="utf-8")

    result = run_offline("attest", "verify", path)

    assert result.exit_code == 2
    assert f"{path}: not valid JSON" in result.stderr
    assert "Ask the signer to sign again with `fundtrail attest sign`" in result.stderr


def test_verify_passes_eoa_signature(snapshot_path, attestors, evidence_file, tmp_path):
    out = tmp_path / "approval.sig.json"
    sign_approval(snapshot_path, attestors[0], out, "--evidence-file", evidence_file)

    result = run_offline("attest", "verify", out)

    assert result.exit_code == 0, result.stderr
    assert f"Valid signature: {out} passed every check that needs no snapshot." in " ".join(
        result.stdout.split()
    )


def test_verify_leaves_contract_signer_unverified(
    snapshot_path, attestors, evidence_file, tmp_path
):
    out = tmp_path / "approval.sig.json"
    sign_approval(snapshot_path, attestors[0], out, "--evidence-file", evidence_file)
    data = json.loads(out.read_text())
    data["signer_type"] = "contract"
    data["signature"] = "0x" + "00" * 100
    out.write_text(json.dumps(data), encoding="utf-8")
    signer = attestors[0].address

    result = run_offline("attest", "verify", out)

    assert result.exit_code == 3, result.stderr
    output = flat(result.stdout)
    assert f"cannot be verified offline. The file states that {signer} is a contract" in output
    assert "the escrow asks it on-chain through ERC-1271" in output
    assert "Valid:" not in output
    assert f"Not verified: {out} passed every check that can run offline" in output


def test_verify_names_other_eoa_of_contract_signature(
    snapshot_path, attestors, evidence_file, tmp_path
):
    out = tmp_path / "approval.sig.json"
    sign_approval(snapshot_path, attestors[0], out, "--evidence-file", evidence_file)
    data = json.loads(out.read_text())
    data["signer_type"] = "contract"
    other_key_signature = Account.unsafe_sign_hash(
        bytes.fromhex(data["digest"][2:]), attestors[1].private_key
    ).signature
    data["signature"] = "0x" + bytes(other_key_signature).hex()
    out.write_text(json.dumps(data), encoding="utf-8")

    result = run_offline("attest", "verify", out)

    assert result.exit_code == 3, result.stderr
    assert (
        f"As an ECDSA signature it recovers to the EOA {attestors[1].address}, not to "
        f"{attestors[0].address}" in flat(result.stdout)
    )


def test_verify_mismatch_hint_keeps_file_invalid(
    snapshot_path, attestors, evidence_file, tmp_path
):
    out = tmp_path / "approval.sig.json"
    sign_approval(snapshot_path, attestors[0], out, "--evidence-file", evidence_file)
    data = json.loads(out.read_text())
    data["signature"] = "0x" + bytes(
        Account.unsafe_sign_hash(bytes.fromhex(data["digest"][2:]), attestors[1].private_key)
        .signature
    ).hex()
    out.write_text(json.dumps(data), encoding="utf-8")

    result = run_offline("attest", "verify", out)

    assert result.exit_code == 2
    assert f"the signature was made by {attestors[1].address}" in result.stderr
    assert "The escrow will reject this file. Changing its signer_type does not make the " in (
        flat(result.stderr)
    )


def test_relay_drops_signature_from_other_chain(
    run_online, snapshot_path, attestors, evidence_file, tmp_path, stranger, chain
):
    data = json.loads(snapshot_path.read_text())
    data["chain_id"] = data["domain"]["chainId"] = 5
    other_chain = tmp_path / "grant-chain-5.json"
    other_chain.write_text(json.dumps(data), encoding="utf-8")
    out = tmp_path / "approval.sig.json"
    signed = sign_approval(other_chain, attestors[0], out, "--evidence-file", evidence_file)
    nonce = stranger.nonce

    result = run_online("relay", out, account=stranger)

    assert signed.exit_code == 0, signed.stderr
    assert result.exit_code == 2
    assert f"wrong chain: signed for chain 5, but the network is chain {chain.chain_id}" in (
        result.stdout
    )
    assert f"{out}  invalid" in result.stdout
    assert "Invalid: 1 file was dropped as invalid" in result.stderr
    assert stranger.nonce == nonce


def test_relay_exits_zero_for_waiting_and_used(
    run_online, snapshot_path, attestors, evidence_file, tmp_path, stranger, ngo
):
    evidence_sig = tmp_path / "evidence.sig.json"
    approval_sig = tmp_path / "approval.sig.json"
    run_offline(
        "evidence", "sign", snapshot_path, "--milestone", 0, evidence_file, "--uri", URI,
        "--account", ngo.alias, "--out", evidence_sig,
    )
    sign_approval(snapshot_path, attestors[0], approval_sig, "--evidence-file", evidence_file)

    first = run_online("relay", evidence_sig, approval_sig, account=stranger)
    again = run_online("relay", evidence_sig, approval_sig, account=stranger)

    assert first.exit_code == 0, first.stderr
    assert "has 1 valid approvals of" in first.stdout
    assert "needs 1 more, so none were sent" in first.stdout
    assert again.exit_code == 0, again.stderr
    assert "already used on-chain" in again.stdout
    assert "invalid" not in again.stdout + again.stderr


def test_relay_rejects_malformed_file(run_online, tmp_path, stranger):
    path = tmp_path / "approval.sig.json"
    path.write_text("{", encoding="utf-8")
    nonce = stranger.nonce

    result = run_online("relay", path, account=stranger)

    assert result.exit_code == 2
    assert f"{path}: not valid JSON" in result.stderr
    assert stranger.nonce == nonce


def test_attest_revoke_blocks_relay(
    run_online, snapshot_path, attestors, evidence_file, tmp_path, stranger
):
    out = tmp_path / "approval.sig.json"
    sign_approval(snapshot_path, attestors[0], out, "--evidence-file", evidence_file)

    refused = run_online("attest", "revoke", out, account=stranger)
    revoked = run_online("attest", "revoke", out, account=attestors[0])
    relayed = run_online("relay", out, account=stranger)

    assert refused.exit_code == 2
    assert f"the signature in {out} is {attestors[0].address}'s" in refused.stderr
    assert revoked.exit_code == 0, revoked.stderr
    assert relayed.exit_code == 2
    assert "revoked on-chain" in relayed.stdout


def test_sign_connects_to_no_chain(snapshot_path, attestors, evidence_file, tmp_path):
    out = tmp_path / "approval.sig.json"
    # A fresh interpreter, where no provider was connected before the command ran.
    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from ape import networks\n"
        "from fundtrail.cli import cli\n"
        "result = CliRunner().invoke(cli, sys.argv[1:])\n"
        "print(result.output)\n"
        "assert result.exit_code == 0, result.output\n"
        "assert networks.active_provider is None, networks.active_provider\n"
    )
    argv = [
        "attest", "sign", snapshot_path, "--milestone", "0", "--evidence-file", evidence_file,
        "--account", attestors[0].alias, "--out", out,
    ]

    completed = subprocess.run(
        [sys.executable, "-c", script, *map(str, argv)],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert json.loads(out.read_text())["signer"] == attestors[0].address


def test_verify_passes_evidence_against_snapshot(snapshot_path, ngo, evidence_file, tmp_path):
    out = tmp_path / "evidence.sig.json"
    signed = run_offline(
        "evidence", "sign", snapshot_path, "--milestone", 0, evidence_file, "--uri", URI,
        "--account", ngo.alias, "--out", out,
    )

    result = run_offline("attest", "verify", out, "--snapshot", snapshot_path)

    assert signed.exit_code == 0, signed.stderr
    assert result.exit_code == 0, result.stderr
    assert f"Valid: {out} passed every check." in flat(result.stdout)
