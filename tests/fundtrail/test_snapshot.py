"""Grant snapshots: exported from the chain, saved, loaded and used to check signatures."""

import json

import pytest
from grant_setup import DAY, USDC_UNIT

from fundtrail.checks import PreconditionError
from fundtrail.errors import FileError
from fundtrail.signing import (
    EVIDENCE_SUBMISSION,
    MILESTONE_APPROVAL,
    ApeAccountSigner,
    CheckStatus,
    approval_message,
    evidence_message,
    sign_message,
    verify,
)
from fundtrail.snapshot import GrantSnapshot, export_snapshot

EXPIRY_IN = 7 * DAY


@pytest.fixture
def snapshot(client, grant_id):
    return export_snapshot(client, grant_id)


def sign_approval(snapshot, account, evidence_hash, index=0, expiry=None):
    expiry = expiry or snapshot.block_timestamp + EXPIRY_IN
    message = approval_message(account.address, snapshot.grant_id, index, evidence_hash, expiry)
    return sign_message(
        ApeAccountSigner(account), MILESTONE_APPROVAL, snapshot.eip712_domain, message
    )


def test_export_records_grant(snapshot, grant_id, escrow, chain, ngo, attestors, usdc):
    head = chain.blocks.head

    assert snapshot.chain_id == chain.chain_id
    assert snapshot.escrow == escrow.address
    assert snapshot.domain == {
        "name": "FundTrail MilestoneEscrow",
        "version": "1",
        "chainId": chain.chain_id,
        "verifyingContract": escrow.address,
    }
    assert snapshot.grant_id == grant_id
    assert snapshot.recipient == ngo.address
    assert snapshot.attestors == [attestor.address for attestor in attestors]
    assert snapshot.threshold == 2
    assert (snapshot.token.address, snapshot.token.symbol, snapshot.token.decimals) == (
        usdc.address,
        "USDC",
        6,
    )
    assert [(m.index, m.amount, m.status, m.evidence_hash) for m in snapshot.milestones] == [
        (0, 1_000 * USDC_UNIT, "AwaitingEvidence", None),
        (1, 2_000 * USDC_UNIT, "AwaitingEvidence", None),
        (2, 3_000 * USDC_UNIT, "AwaitingEvidence", None),
    ]
    assert [m.deadline for m in snapshot.milestones] == [
        escrow.getMilestone(grant_id, index).deadline for index in range(3)
    ]
    assert (snapshot.block_number, snapshot.block_timestamp) == (head.number, head.timestamp)


def test_export_records_current_evidence(client, grant_id, submitted, attestors):
    client.approve(grant_id, 0, submitted, attestors[1])

    milestone = export_snapshot(client, grant_id).milestones[0]

    assert milestone.status == "EvidenceSubmitted"
    assert milestone.evidence_hash == "0x" + submitted.hex()
    assert milestone.evidence_uri == "ipfs://bafy-evidence-0"
    assert milestone.approvals == [attestors[1].address]


def test_export_rejects_unknown_grant(client, grant_id):
    with pytest.raises(PreconditionError) as raised:
        export_snapshot(client, grant_id + 1)

    assert "no grant has this id" in str(raised.value)


def test_snapshot_round_trips(snapshot, tmp_path):
    path = tmp_path / "grant.json"

    snapshot.save(path)

    data = json.loads(path.read_text())
    assert (data["format"], data["version"]) == ("fundtrail-grant-snapshot", 1)
    # Amounts are strings, so JSON readers in other languages keep every digit.
    assert data["milestones"][0]["amount"] == str(1_000 * USDC_UNIT)
    assert GrantSnapshot.load(path) == snapshot


def test_load_rejects_chain_mismatch(snapshot, tmp_path):
    path = tmp_path / "grant.json"
    snapshot.save(path)
    data = json.loads(path.read_text())
    data["domain"]["chainId"] = 5
    path.write_text(json.dumps(data), encoding="utf-8")

    with pytest.raises(FileError) as raised:
        GrantSnapshot.load(path)

    message = str(raised.value)
    assert f"domain.chainId is 5, but chain_id is {snapshot.chain_id}" in message
    assert "Export the grant again with `fundtrail grant export" in message


def test_load_rejects_malformed_json(tmp_path):
    path = tmp_path / "grant.json"
    path.write_text("{'grant_id': 1}", encoding="utf-8")

    with pytest.raises(FileError) as raised:
        GrantSnapshot.load(path)

    assert str(raised.value).startswith(f"{path}: not valid JSON")


def test_load_names_invalid_field(snapshot, tmp_path):
    path = tmp_path / "grant.json"
    snapshot.save(path)
    data = json.loads(path.read_text())
    data["attestors"][1] = "0xnot-an-address"
    path.write_text(json.dumps(data), encoding="utf-8")

    with pytest.raises(FileError) as raised:
        GrantSnapshot.load(path)

    assert "attestors.1: Value error, '0xnot-an-address' is not an address" in str(raised.value)


def test_check_accepts_attestor_signature(snapshot, attestors, submitted, client, grant_id):
    current = export_snapshot(client, grant_id)
    approval = sign_approval(current, attestors[0], submitted)

    verification = verify(approval, now=current.block_timestamp, snapshot=current)

    assert verification.valid
    assert [(check.name, check.status) for check in verification.checks] == [
        ("typed data", CheckStatus.PASSED),
        ("signature", CheckStatus.PASSED),
        ("expiry", CheckStatus.PASSED),
        ("domain", CheckStatus.PASSED),
        ("grant", CheckStatus.PASSED),
        ("signer", CheckStatus.PASSED),
        ("milestone", CheckStatus.PASSED),
        ("evidence", CheckStatus.PASSED),
    ]


def test_check_notes_evidence_not_yet_current(snapshot, attestors, evidence_hash):
    approval = sign_approval(snapshot, attestors[0], evidence_hash)

    verification = verify(approval, now=snapshot.block_timestamp, snapshot=snapshot)

    assert verification.valid
    evidence_check = verification.checks[-1]
    assert evidence_check.status == CheckStatus.UNCHECKED
    assert evidence_check.detail == (
        "the snapshot's current evidence is none, so this approval of "
        f"0x{evidence_hash.hex()} counts only if that evidence is current when it is relayed"
    )
    assert evidence_check.detail.count(evidence_hash.hex()) == 1


def test_check_rejects_non_attestor(snapshot, stranger, evidence_hash, grant_id):
    approval = sign_approval(snapshot, stranger, evidence_hash)

    verification = verify(approval, now=snapshot.block_timestamp, snapshot=snapshot)

    assert not verification.valid
    assert verification.problems == [
        f"{stranger.address} is not an attestor of grant {grant_id}; its attestors are "
        + ", ".join(snapshot.attestors)
    ]


def test_check_rejects_evidence_from_non_recipient(snapshot, attestors, evidence_hash):
    expiry = snapshot.block_timestamp + EXPIRY_IN
    message = evidence_message(
        attestors[0].address, snapshot.grant_id, 0, evidence_hash, "ipfs://bafy-x", expiry
    )
    signed = sign_message(
        ApeAccountSigner(attestors[0]), EVIDENCE_SUBMISSION, snapshot.eip712_domain, message
    )

    verification = verify(signed, now=snapshot.block_timestamp, snapshot=snapshot)

    assert verification.problems == [
        f"{attestors[0].address} is not the recipient of grant {snapshot.grant_id}, "
        f"{snapshot.recipient}, who alone may submit evidence"
    ]


def test_check_rejects_other_chain(snapshot, attestors, evidence_hash):
    other = snapshot.model_copy(update={"domain": dict(snapshot.domain, chainId=5)})
    approval = sign_approval(other, attestors[0], evidence_hash)

    verification = verify(approval, now=snapshot.block_timestamp, snapshot=snapshot)

    assert verification.problems == [
        f"signed for chain 5 and escrow {snapshot.escrow}, but the snapshot is of chain "
        f"{snapshot.chain_id} and escrow {snapshot.escrow}"
    ]


def test_check_rejects_missing_milestone(snapshot, attestors, evidence_hash):
    approval = sign_approval(snapshot, attestors[0], evidence_hash, index=3)

    verification = verify(approval, now=snapshot.block_timestamp, snapshot=snapshot)

    assert verification.problems == [f"grant {snapshot.grant_id} has milestones 0 to 2"]


def test_check_rejects_passed_deadline(snapshot, attestors, evidence_hash):
    deadline = snapshot.milestones[0].deadline
    approval = sign_approval(snapshot, attestors[0], evidence_hash, expiry=deadline + DAY)

    verification = verify(approval, now=deadline, snapshot=snapshot)

    assert len(verification.problems) == 1
    assert verification.problems[0].startswith("milestone 0 passed its deadline")
