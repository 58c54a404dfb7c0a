"""Relaying offline signatures to the escrow on the in-process test chain."""

import io
import json
import re
import shutil
from pathlib import Path

import pytest
from eth_account import Account
from rich.console import Console
from grant_setup import DAY, USDC_UNIT

from fundtrail.checks import PreconditionError
from fundtrail.grants import MilestoneStatus
from fundtrail import render
from fundtrail.relay import (
    INVALID_DROP_CATEGORIES,
    Dropped,
    Relayer,
    RelayReport,
    Submitted,
    Waiting,
    load_signature_files,
)
from fundtrail.signing import (
    CONTRACT,
    EVIDENCE_SUBMISSION,
    MILESTONE_APPROVAL,
    ApeAccountSigner,
    SignatureFile,
    approval_message,
    build_typed_data,
    evidence_message,
    sign_message,
    typed_data_digest,
)
from fundtrail.snapshot import export_snapshot

URI = "ipfs://bafy-evidence-signed"


@pytest.fixture
def snapshot(client, grant_id):
    return export_snapshot(client, grant_id)


@pytest.fixture
def sign(snapshot, tmp_path):
    """`sign(kind, account, evidence_hash, ...)` writes a signature file and returns its path."""
    counter = iter(range(1000))

    def write(kind, account, evidence_hash, *, index=0, expiry=None, uri=URI, domain=None):
        expiry = expiry or snapshot.block_timestamp + 7 * DAY
        if kind == MILESTONE_APPROVAL:
            message = approval_message(
                account.address, snapshot.grant_id, index, evidence_hash, expiry
            )
        else:
            message = evidence_message(
                account.address, snapshot.grant_id, index, evidence_hash, uri, expiry
            )
        signed = sign_message(
            ApeAccountSigner(account), kind, domain or snapshot.eip712_domain, message
        )
        path = tmp_path / f"{next(counter):02d}-{kind}-{account.address[:8]}.json"
        signed.save(path)
        return path

    return write


@pytest.fixture
def relay(client, stranger):
    """`relay(*paths)` relays the files as the stranger and returns the report."""

    def run(*paths, **options):
        return Relayer(client, stranger, **options).relay(load_signature_files(list(paths)))

    return run


def log(event, *args):
    """Return a mock of `event` with every argument, so the comparison checks them all."""
    expected = len(event.abi.inputs)
    assert len(args) == expected, f"{event.name} takes {expected} arguments"
    return event(*args)


def digest_of(path) -> bytes:
    return bytes.fromhex(json.loads(path.read_text())["digest"][2:])


def reasons(report) -> list[tuple[str, str]]:
    return [(item.path.name, item.reason) for item in report.dropped]


def test_relay_releases_milestone(
    relay, sign, client, grant_id, escrow, usdc, ngo, attestors, stranger, evidence_hash
):
    evidence = sign(EVIDENCE_SUBMISSION, ngo, evidence_hash)
    first = sign(MILESTONE_APPROVAL, attestors[2], evidence_hash)
    second = sign(MILESTONE_APPROVAL, attestors[0], evidence_hash)
    balance_before = usdc.balanceOf(ngo)

    report = relay(second, evidence, first)

    # Approvals go in ascending address order, whatever the order of the files.
    ordered = sorted(
        [(attestors[0], second), (attestors[2], first)], key=lambda pair: int(pair[0].address, 16)
    )
    assert report.dropped == []
    assert report.waiting == []
    assert report.failed == []
    assert [(item.kind, item.signers, item.released) for item in report.submitted] == [
        (EVIDENCE_SUBMISSION, (ngo.address,), False),
        (MILESTONE_APPROVAL, tuple(account.address for account, _ in ordered), True),
    ]
    assert report.submitted[0].receipt.events == [
        log(escrow.SignatureRelayed, grant_id, ngo, stranger, digest_of(evidence)),
        log(escrow.EvidenceSubmitted, grant_id, 0, ngo, evidence_hash, URI),
    ]
    amount = 1_000 * USDC_UNIT
    # The client reads USDC through a minimal ERC-20 ABI without events, so ape cannot decode
    # the Transfer on its own: every event the transaction may emit is named here.
    emitted = [
        escrow.SignatureRelayed,
        escrow.MilestoneApproved,
        escrow.MilestoneReleased,
        escrow.Payout,
        usdc.Transfer,
    ]
    assert report.submitted[1].receipt.decode_logs(emitted) == [
        log(escrow.SignatureRelayed, grant_id, ordered[0][0], stranger, digest_of(ordered[0][1])),
        log(escrow.MilestoneApproved, grant_id, 0, ordered[0][0], evidence_hash, 1),
        log(escrow.SignatureRelayed, grant_id, ordered[1][0], stranger, digest_of(ordered[1][1])),
        log(escrow.MilestoneApproved, grant_id, 0, ordered[1][0], evidence_hash, 2),
        log(escrow.MilestoneReleased, grant_id, 0, ngo, evidence_hash, amount),
        log(usdc.Transfer, escrow, ngo, amount),
        log(escrow.Payout, grant_id, ngo, usdc, 0, 0, amount, False),
    ]
    assert client.grant(grant_id).milestones[0].status == MilestoneStatus.Released
    assert usdc.balanceOf(ngo) == balance_before + amount


def test_relay_again_sends_nothing(relay, sign, ngo, attestors, stranger, evidence_hash):
    files = [
        sign(EVIDENCE_SUBMISSION, ngo, evidence_hash),
        sign(MILESTONE_APPROVAL, attestors[0], evidence_hash),
        sign(MILESTONE_APPROVAL, attestors[1], evidence_hash),
    ]
    relay(*files)
    nonce = stranger.nonce

    report = relay(*files)

    assert report.submitted == []
    assert report.failed == []
    assert report.waiting == []
    assert sorted(reasons(report)) == [
        (path.name, "already used on-chain: this signature was relayed before") for path in files
    ]
    assert report.invalid == []
    assert stranger.nonce == nonce


def test_relay_waits_for_quorum(relay, sign, client, grant_id, attestors, submitted, stranger):
    nonce = stranger.nonce

    report = relay(sign(MILESTONE_APPROVAL, attestors[1], submitted))

    assert report.submitted == []
    assert report.waiting == [Waiting(grant_id, 0, submitted, (attestors[1].address,), 2)]
    assert report.waiting[0].missing == 1
    assert stranger.nonce == nonce
    assert client.grant(grant_id).milestones[0].approval_count == 0


def test_relay_counts_on_chain_approvals(relay, sign, client, grant_id, attestors, submitted):
    client.approve(grant_id, 0, submitted, attestors[0])

    report = relay(sign(MILESTONE_APPROVAL, attestors[1], submitted))

    assert [(item.signers, item.released) for item in report.submitted] == [
        ((attestors[1].address,), True)
    ]


def test_relay_sends_only_needed_approvals(relay, sign, client, grant_id, attestors, submitted):
    files = {
        attestor.address: sign(MILESTONE_APPROVAL, attestor, submitted) for attestor in attestors
    }
    by_address = sorted(files, key=lambda address: int(address, 16))

    report = relay(*files.values())

    assert [item.signers for item in report.submitted] == [tuple(by_address[:2])]
    assert reasons(report) == [
        (files[by_address[2]].name, "not needed: the quorum is reached without this approval")
    ]
    assert client.grant(grant_id).milestones[0].status == MilestoneStatus.Released


def test_relay_drops_duplicate_signer(relay, sign, snapshot, attestors, submitted):
    start = snapshot.block_timestamp
    longer = sign(MILESTONE_APPROVAL, attestors[0], submitted, expiry=start + 9 * DAY)
    shorter = sign(MILESTONE_APPROVAL, attestors[0], submitted, expiry=start + 8 * DAY)
    copy = shorter.with_name("copy.json")
    shutil.copy(shorter, copy)

    report = relay(shorter, longer, copy)

    assert report.submitted == []
    assert sorted(reasons(report)) == sorted(
        [
            (copy.name, f"duplicate: the same signature as {shorter}"),
            (shorter.name, f"duplicate signer: {longer} carries {attestors[0].address}'s approval"),
        ]
    )
    assert [(item.signers, item.missing) for item in report.waiting] == [
        ((attestors[0].address,), 1)
    ]


def test_relay_drops_expired(relay, sign, snapshot, attestors, submitted, chain):
    path = sign(MILESTONE_APPROVAL, attestors[0], submitted, expiry=snapshot.block_timestamp + DAY)
    chain.pending_timestamp += 2 * DAY

    report = relay(path)

    assert len(report.dropped) == 1
    assert report.dropped[0].reason.startswith("expired: at ")
    assert report.waiting == []


def test_relay_drops_non_attestor(relay, sign, stranger, submitted, grant_id):
    path = sign(MILESTONE_APPROVAL, stranger, submitted)

    report = relay(path)

    assert report.dropped == [
        Dropped(
            path,
            MILESTONE_APPROVAL,
            stranger.address,
            f"not an attestor: {stranger.address} is not an attestor of grant {grant_id}",
        )
    ]
    assert report.invalid == report.dropped


def test_relay_drops_already_approved(relay, sign, client, grant_id, attestors, submitted):
    path = sign(MILESTONE_APPROVAL, attestors[0], submitted)
    client.approve(grant_id, 0, submitted, attestors[0])

    report = relay(path)

    assert reasons(report) == [
        (path.name, "already approved on-chain: the attestor approved it")
    ]


def test_relay_drops_revoked(relay, sign, client, attestors, submitted):
    path = sign(MILESTONE_APPROVAL, attestors[0], submitted)
    client.revoke_signature(digest_of(path), attestors[0])

    report = relay(path)

    assert reasons(report) == [(path.name, "revoked on-chain: the signer revoked this signature")]


def test_relay_drops_approval_of_other_evidence(relay, sign, attestors, submitted):
    # The approved evidence was never submitted, so the reason must not call it replaced.
    never_submitted = b"\x42" * 32
    path = sign(MILESTONE_APPROVAL, attestors[0], never_submitted)

    report = relay(path)

    assert reasons(report) == [
        (
            path.name,
            f"approves other evidence: the approval is of 0x{never_submitted.hex()}, but the "
            f"milestone's current evidence is 0x{submitted.hex()}",
        )
    ]
    assert report.invalid == []
    assert report.submitted == []


def test_relay_drops_other_chain(relay, sign, snapshot, attestors, submitted, chain):
    other = snapshot.model_copy(update={"domain": dict(snapshot.domain, chainId=5)})
    path = sign(MILESTONE_APPROVAL, attestors[0], submitted, domain=other.eip712_domain)

    report = relay(path)

    assert reasons(report) == [
        (path.name, f"wrong chain: signed for chain 5, but the network is chain {chain.chain_id}")
    ]


def test_relay_drops_tampered_file(relay, sign, attestors, submitted, stranger):
    path = sign(MILESTONE_APPROVAL, attestors[0], submitted)
    data = json.loads(path.read_text())
    data["message"]["attestor"] = data["typed_data"]["message"]["attestor"] = stranger.address
    data["signer"] = stranger.address
    path.write_text(json.dumps(data), encoding="utf-8")

    report = relay(path)

    assert len(report.dropped) == 1
    assert report.dropped[0].reason.startswith("bad signature: digest is 0x")
    assert report.dropped[0].invalid


def test_relay_drops_personal_data_uri(relay, sign, client, grant_id, ngo, evidence_hash):
    path = sign(EVIDENCE_SUBMISSION, ngo, evidence_hash, uri="mailto:jane.doe@example.org")

    report = relay(path)

    assert len(report.dropped) == 1
    assert report.dropped[0].reason.startswith(
        "personal data: evidence URI: found what looks like an e-mail address"
    )
    assert "jane.doe@example.org" not in report.dropped[0].reason
    assert client.grant(grant_id).milestones[0].status == MilestoneStatus.AwaitingEvidence
    assert relay(path, allow_personal_data=True).submitted[0].kind == EVIDENCE_SUBMISSION


def test_relay_submits_newest_evidence(relay, sign, client, grant_id, ngo, tmp_path):
    older = sign(EVIDENCE_SUBMISSION, ngo, b"\x01" * 32)
    newer = sign(EVIDENCE_SUBMISSION, ngo, b"\x02" * 32)
    data = json.loads(older.read_text())
    data["signed_at"] -= 60
    older.write_text(json.dumps(data), encoding="utf-8")

    report = relay(older, newer)

    assert [item.evidence_hash for item in report.submitted] == [b"\x02" * 32]
    assert reasons(report) == [
        (
            older.name,
            f"superseded: {newer} carries newer evidence 0x{'02' * 32} for the same milestone",
        )
    ]
    assert client.grant(grant_id).milestones[0].evidence_hash == b"\x02" * 32


def test_approve_with_signatures_rejects_empty_batch(client, grant_id, submitted, stranger):
    with pytest.raises(PreconditionError) as raised:
        client.approve_with_signatures(grant_id, 0, submitted, [], stranger)

    assert "the batch holds no signatures" in str(raised.value)


def test_revoke_signature_rejects_used(relay, sign, client, ngo, evidence_hash):
    path = sign(EVIDENCE_SUBMISSION, ngo, evidence_hash)
    relay(path)

    with pytest.raises(PreconditionError) as raised:
        client.revoke_signature(digest_of(path), ngo)

    assert f"{ngo.address}'s signature of this digest is already used" in str(raised.value)


def contract_approval(wallet, key_holder, domain, grant_id, evidence_hash, expiry) -> SignatureFile:
    """Return the wallet's approval, signed by `key_holder` as an ERC-1271 wallet signs.

    The signing commands make only EOA files, so a contract's file is written by hand, as a
    user completing the typed-data payload with a wallet would.
    """
    message = approval_message(wallet.address, grant_id, 0, evidence_hash, expiry)
    typed_data = build_typed_data(MILESTONE_APPROVAL, domain, message)
    digest = typed_data_digest(typed_data)
    signed = Account.unsafe_sign_hash(digest, key_holder.private_key)
    return SignatureFile(
        kind=MILESTONE_APPROVAL,
        signer=wallet.address,
        signer_type=CONTRACT,
        signature=signed.signature.to_0x_hex(),
        digest="0x" + digest.hex(),
        message=message,
        typed_data=typed_data,
    )


@pytest.fixture
def wallet(project, deployer, accounts):
    """An ERC-1271 wallet whose owner key is test account 9."""
    return deployer.deploy(project.MockERC1271Wallet, accounts[9].address)


@pytest.fixture
def wallet_grant(client, resolve, grant_maker, ngo, wallet, attestors, evidence_hash):
    """A funded grant whose first attestor is `wallet`, with milestone 0's evidence submitted."""
    resolved = resolve(attestors=[wallet.address, "TEST::3", "TEST::4"])
    grant, _ = client.create_grant(resolved, grant_maker, fund=True)
    client.submit_evidence(grant, 0, evidence_hash, "ipfs://bafy-evidence-0", ngo)
    return grant


def test_relay_counts_contract_wallet_approval(
    relay, client, wallet, wallet_grant, accounts, attestors, evidence_hash, tmp_path
):
    snapshot = export_snapshot(client, wallet_grant)
    expiry = snapshot.block_timestamp + 7 * DAY
    wallet_file = tmp_path / "wallet.json"
    contract_approval(
        wallet, accounts[9], snapshot.eip712_domain, wallet_grant, evidence_hash, expiry
    ).save(wallet_file)
    message = approval_message(attestors[0].address, wallet_grant, 0, evidence_hash, expiry)
    attestor_file = tmp_path / "attestor.json"
    sign_message(
        ApeAccountSigner(attestors[0]), MILESTONE_APPROVAL, snapshot.eip712_domain, message
    ).save(attestor_file)

    report = relay(wallet_file, attestor_file)

    assert report.dropped == []
    assert report.failed == []
    assert [(item.signers, item.released) for item in report.submitted] == [
        (tuple(sorted((wallet.address, attestors[0].address), key=lambda a: int(a, 16))), True)
    ]
    assert MilestoneStatus(client.escrow.getMilestone(wallet_grant, 0).status) == (
        MilestoneStatus.Released
    )


def test_relay_drops_contract_approval_by_wrong_key(
    relay, client, wallet, wallet_grant, stranger, evidence_hash, tmp_path
):
    snapshot = export_snapshot(client, wallet_grant)
    expiry = snapshot.block_timestamp + 7 * DAY
    wallet_file = tmp_path / "wallet.json"
    contract_approval(
        wallet, stranger, snapshot.eip712_domain, wallet_grant, evidence_hash, expiry
    ).save(wallet_file)

    report = relay(wallet_file)

    assert reasons(report) == [
        (
            "wallet.json",
            f"bad signature: the contract account {wallet.address} does not accept the "
            "signature (ERC-1271)",
        )
    ]
    assert report.submitted == []
    assert client.escrow.getMilestone(wallet_grant, 0).approvals == 0


# The relay report as `fundtrail relay` prints it. The values are fixed, so no chain is needed.

SIGNERS = (
    "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
)
REPORT_EVIDENCE = bytes.fromhex("74fbdaa498fca73f188b65d9eb5da0fd57fd6fe9ad0fcc0b02c1d2e3f4a5b6c7")
EVIDENCE_TX = "0x" + "e1" * 32
APPROVAL_TX = "0x" + "a2" * 32
STRANGER = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"
WRONG_CHAIN_REASON = "wrong chain: signed for chain 5, but the network is chain 31337"
# 132 characters, longer than the 66 columns left for a value at 80 columns.
BAD_SIGNATURE_REASON = (
    f"bad signature: the signature was made by {SIGNERS[1]}, not by the stated signer {STRANGER}"
)


def relay_report() -> RelayReport:
    return RelayReport(
        submitted=[
            Submitted(EVIDENCE_SUBMISSION, 1, 0, REPORT_EVIDENCE, (SIGNERS[0],), EVIDENCE_TX, False),
            Submitted(MILESTONE_APPROVAL, 1, 0, REPORT_EVIDENCE, SIGNERS, APPROVAL_TX, True),
        ],
        dropped=[
            Dropped(
                Path("inbox/approval-stranger.sig.json"),
                MILESTONE_APPROVAL,
                STRANGER,
                BAD_SIGNATURE_REASON,
            ),
            Dropped(
                Path("inbox/approval-again.sig.json"),
                MILESTONE_APPROVAL,
                SIGNERS[1],
                "already used on-chain: this signature was relayed before",
            ),
        ],
    )


def render_text(renderable, width: int) -> str:
    """Render as the CLI prints, without the padding that rich adds at the end of lines."""
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"


@pytest.mark.parametrize("width", [80, 200])
def test_relay_report_shows_full_values(width):
    text = render_text(render.relay_report_view(relay_report()), width)

    assert "Evidence for milestone 0 of grant 1\n" in text
    assert "2 approvals for milestone 0 of grant 1, released\n" in text
    assert text.count(f"Evidence   0x{REPORT_EVIDENCE.hex()}") == 2
    assert f"Signer     {SIGNERS[0]}" in text
    assert f"Signers    {SIGNERS[0]}\n             {SIGNERS[1]}\n" in text
    assert f"Tx hash    {EVIDENCE_TX}" in text
    assert f"Tx hash    {APPROVAL_TX}" in text
    assert re.findall(r"Released +(yes|no)", text) == ["no", "yes"]
    assert "inbox/approval-stranger.sig.json  invalid\n" in text
    assert f"Signer     {STRANGER}" in text
    assert "inbox/approval-again.sig.json\n" in text
    assert "Reason     already used on-chain: this signature was relayed before" in text


@pytest.mark.parametrize("width", [80, 200])
def test_relay_report_keeps_lines_within_width(width):
    text = render_text(render.relay_report_view(relay_report()), width)

    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    # A reason longer than its column wraps onto the next lines instead of being cut.
    assert BAD_SIGNATURE_REASON in re.sub(r"\s*\n\s*", " ", text)


def test_dropped_invalid_follows_category():
    def dropped(reason):
        return Dropped(Path("a.json"), MILESTONE_APPROVAL, STRANGER, reason)

    assert dropped(WRONG_CHAIN_REASON).invalid
    assert dropped("expired: at 2027-01-01T00:00:00Z").invalid
    assert not dropped("not needed: the quorum is reached without this approval").invalid
    assert not dropped("already used on-chain: this signature was relayed before").invalid
    assert "already used on-chain" not in INVALID_DROP_CATEGORIES
