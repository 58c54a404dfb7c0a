"""EIP-712 typed data and signature files, checked against the escrow's own hashing."""

import json

import pytest
from eth_account import Account

from fundtrail.errors import FileError, SpecError
from fundtrail.signing import (
    CONTRACT,
    EVIDENCE_SUBMISSION,
    MILESTONE_APPROVAL,
    SECP256K1_N,
    ApeAccountSigner,
    CheckStatus,
    Domain,
    KeystoreSigner,
    SignatureFile,
    SigningError,
    approval_message,
    build_typed_data,
    ecdsa_problem,
    evidence_message,
    normalize_signature,
    recover_address,
    sign_message,
    typed_data_digest,
    verify,
)

EVIDENCE = bytes.fromhex("ab" * 32)
EXPIRY = 2_000_000_000
NOW = 1_900_000_000


@pytest.fixture
def domain(escrow):
    return Domain.from_eip5267(*escrow.eip712Domain())


@pytest.fixture
def approval(domain, attestors):
    """A signed approval of `EVIDENCE` for milestone 0 of grant 1 by the first attestor."""
    message = approval_message(attestors[0].address, 1, 0, EVIDENCE, EXPIRY)
    return sign_message(ApeAccountSigner(attestors[0]), MILESTONE_APPROVAL, domain, message)


def write_keystore(folder, account, password="correct horse"):
    # pbkdf2 with few iterations keeps the test fast; real keystores use scrypt.
    keyfile = Account.encrypt(account.private_key, password, kdf="pbkdf2", iterations=2)
    path = folder / "keystore.json"
    path.write_text(json.dumps(keyfile), encoding="utf-8")
    return path


def edited(signature_file, **changes):
    """Return a copy of `signature_file` as a dict with top-level fields replaced."""
    data = json.loads(signature_file.model_dump_json())
    data.update(changes)
    return SignatureFile.model_validate(data)


def test_domain_matches_escrow(domain, escrow, chain):
    assert domain.as_typed_data() == {
        "name": "FundTrail MilestoneEscrow",
        "version": "1",
        "chainId": chain.chain_id,
        "verifyingContract": escrow.address,
    }
    assert [field["name"] for field in domain.type_fields()] == [
        "name",
        "version",
        "chainId",
        "verifyingContract",
    ]


def test_approval_digest_matches_escrow(domain, escrow, attestors):
    message = approval_message(attestors[1].address, 7, 2, EVIDENCE, EXPIRY)

    digest = typed_data_digest(build_typed_data(MILESTONE_APPROVAL, domain, message))

    assert digest == bytes(escrow.hashMilestoneApproval(attestors[1], 7, 2, EVIDENCE, EXPIRY))


def test_evidence_digest_matches_escrow(domain, escrow, ngo):
    # A non-ASCII URI checks that the string is hashed as UTF-8, as Solidity does.
    uri = "ipfs://bafy-rapport-février"
    message = evidence_message(ngo.address, 3, 1, EVIDENCE, uri, EXPIRY)

    digest = typed_data_digest(build_typed_data(EVIDENCE_SUBMISSION, domain, message))

    assert digest == bytes(escrow.hashEvidenceSubmission(ngo, 3, 1, EVIDENCE, uri, EXPIRY))


def test_sign_message_writes_v4_payload(approval, domain, attestors, escrow):
    assert approval.signer == attestors[0].address
    assert approval.message == {
        "attestor": attestors[0].address,
        "grantId": 1,
        "milestoneIndex": 0,
        "evidenceHash": "0x" + "ab" * 32,
        "expiry": EXPIRY,
    }
    assert approval.typed_data["primaryType"] == "MilestoneApproval"
    assert approval.typed_data["domain"] == domain.as_typed_data()
    assert approval.typed_data["message"] == approval.message
    assert list(approval.typed_data["types"]) == ["EIP712Domain", "MilestoneApproval"]
    assert approval.digest_bytes == bytes(
        escrow.hashMilestoneApproval(attestors[0], 1, 0, EVIDENCE, EXPIRY)
    )
    assert len(approval.signature_bytes) == 65
    assert ecdsa_problem(approval.digest_bytes, approval.signature_bytes, approval.signer) is None


def test_keystore_signature_equals_ape_signature(approval, domain, attestors, tmp_path):
    signer = KeystoreSigner(write_keystore(tmp_path, attestors[0]), "correct horse")

    signed = sign_message(signer, MILESTONE_APPROVAL, domain, approval.message)

    assert signer.address == attestors[0].address
    # ECDSA signing is deterministic (RFC 6979), so both paths give the same bytes.
    assert signed.signature == approval.signature


def test_keystore_rejects_wrong_password(attestors, tmp_path):
    path = write_keystore(tmp_path, attestors[0])

    with pytest.raises(SpecError) as raised:
        KeystoreSigner(path, "wrong")

    assert f"does not unlock the keystore {path}" in str(raised.value)
    assert "wrong" not in str(raised.value).split("keystore")[0]


def test_sign_message_rejects_other_signer(domain, attestors):
    message = approval_message(attestors[1].address, 1, 0, EVIDENCE, EXPIRY)

    with pytest.raises(SigningError) as raised:
        sign_message(ApeAccountSigner(attestors[0]), MILESTONE_APPROVAL, domain, message)

    assert f"names {attestors[1].address} as its attestor" in str(raised.value)


def test_normalize_signature_lowers_high_s(approval):
    signature = approval.signature_bytes
    s = int.from_bytes(signature[32:64], "big")
    high = signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - signature[64]])

    problem = ecdsa_problem(approval.digest_bytes, high, approval.signer)

    assert "high s value" in problem
    assert normalize_signature(high) == signature
    assert normalize_signature(signature[:64] + bytes([signature[64] - 27])) == signature


def test_ecdsa_problem_names_actual_signer(approval, attestors):
    problem = ecdsa_problem(approval.digest_bytes, approval.signature_bytes, attestors[1].address)

    assert problem == (
        f"the signature was made by {attestors[0].address}, not by the stated signer "
        f"{attestors[1].address}"
    )


def test_ecdsa_problem_rejects_short_signature(approval):
    problem = ecdsa_problem(approval.digest_bytes, approval.signature_bytes[:64], approval.signer)

    assert problem == "the signature is 64 bytes long, but an EOA signature has 65"


def test_file_round_trips(approval, tmp_path):
    path = tmp_path / "approval.json"

    approval.save(path)

    data = json.loads(path.read_text())
    assert (data["format"], data["version"], data["kind"]) == (
        "fundtrail-signature",
        1,
        "milestone-approval",
    )
    assert SignatureFile.load(path) == approval


def test_load_rejects_malformed_json(tmp_path):
    path = tmp_path / "approval.json"
    path.write_text('{"kind": "milestone-approval",', encoding="utf-8")

    with pytest.raises(FileError) as raised:
        SignatureFile.load(path)

    message = str(raised.value)
    assert message.startswith(f"{path}: not valid JSON")
    assert "Ask the signer to sign again" in message


def test_load_rejects_other_json(tmp_path):
    path = tmp_path / "approval.json"
    path.write_text('{"networks": {}}', encoding="utf-8")

    with pytest.raises(FileError) as raised:
        SignatureFile.load(path)

    assert str(raised.value).startswith(f"{path}: not a FundTrail signature file")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"signer": "0x1234"}, "signer: '0x1234' is not an address"),
        ({"kind": "approval"}, "kind: 'approval' is neither"),
        ({"signer_type": "safe"}, "signer_type: 'safe' is neither 'eoa' nor 'contract'"),
        ({"digest": "0x12"}, "digest: '0x12' is not 0x followed by 64 hex digits"),
    ],
)
def test_load_names_invalid_field(approval, tmp_path, change, problem):
    path = tmp_path / "approval.json"
    approval.save(path)
    data = json.loads(path.read_text())
    data.update(change)
    path.write_text(json.dumps(data), encoding="utf-8")

    with pytest.raises(FileError) as raised:
        SignatureFile.load(path)

    assert problem in str(raised.value)


def test_load_names_missing_message_field(approval, tmp_path):
    path = tmp_path / "approval.json"
    approval.save(path)
    data = json.loads(path.read_text())
    del data["typed_data"]["message"]["expiry"]
    path.write_text(json.dumps(data), encoding="utf-8")

    with pytest.raises(FileError) as raised:
        SignatureFile.load(path)

    assert "typed_data.message.expiry: missing" in str(raised.value)


def test_verify_accepts_fresh_signature(approval):
    verification = verify(approval, now=NOW)

    assert verification.valid
    assert [(check.name, check.status) for check in verification.checks] == [
        ("typed data", CheckStatus.PASSED),
        ("signature", CheckStatus.PASSED),
        ("expiry", CheckStatus.PASSED),
    ]


def test_verify_reports_expired(approval):
    verification = verify(approval, now=EXPIRY)

    assert not verification.valid
    assert verification.problems == [
        "expired at 2033-05-18T03:33:20Z; the signer must sign again"
    ]


def test_verify_reports_changed_evidence(approval):
    message = dict(approval.message, evidenceHash="0x" + "cd" * 32)
    typed_data = dict(approval.typed_data, message=message)

    verification = verify(edited(approval, message=message, typed_data=typed_data), now=NOW)

    assert not verification.valid
    assert len(verification.problems) == 1
    assert verification.problems[0].startswith(f"digest is {approval.digest}, but the typed data")


def test_verify_reports_message_mismatch(approval):
    message = dict(approval.message, expiry=EXPIRY + 1)

    verification = verify(edited(approval, message=message), now=NOW)

    assert verification.problems == ["message and typed_data.message differ in expiry"]


def test_verify_reports_resigned_digest(approval, domain, attestors):
    # A file whose message and digest were changed together still fails: the signature
    # belongs to another digest, so it recovers to some other address.
    message = dict(approval.message, expiry=EXPIRY + 1)
    typed_data = build_typed_data(MILESTONE_APPROVAL, domain, message)
    digest = "0x" + typed_data_digest(typed_data).hex()

    verification = verify(
        edited(approval, message=message, typed_data=typed_data, digest=digest), now=NOW
    )

    assert not verification.valid
    assert verification.problems[0].startswith("the signature was made by ")
    assert f"not by the stated signer {attestors[0].address}" in verification.problems[0]


def test_verify_reports_changed_types(approval):
    types = json.loads(json.dumps(approval.typed_data["types"]))
    types["MilestoneApproval"][4]["type"] = "uint256"

    verification = verify(edited(approval, typed_data=dict(approval.typed_data, types=types)))

    assert verification.problems == [
        "typed_data.types differ from the escrow's MilestoneApproval and EIP712Domain types"
    ]


def test_verify_leaves_contract_signer_unchecked(approval):
    unsigned = edited(approval, signer_type=CONTRACT, signature="0x" + "00" * 10)

    verification = verify(unsigned, now=NOW)

    assert verification.valid
    assert not verification.complete
    signature_check = verification.checks[1]
    assert signature_check.status == CheckStatus.UNCHECKED
    assert signature_check.detail == (
        f"cannot be verified offline. The file states that {approval.signer} is a contract "
        "account (such as a Safe), and only that contract can check its signatures: the escrow "
        "asks it on-chain through ERC-1271 when the file is relayed."
    )


def test_verify_notes_contract_signature_that_recovers(approval):
    claimed = edited(approval, signer_type=CONTRACT)

    verification = verify(claimed, now=NOW)

    assert not verification.complete
    assert verification.checks[1].detail.endswith(
        f" It is also a valid ECDSA signature of {approval.signer}, which the escrow accepts "
        f"if {approval.signer} has no code."
    )


def test_verify_complete_when_every_check_passes(approval):
    assert verify(approval, now=NOW).complete


def test_recover_address_returns_signer(approval):
    assert recover_address(approval.digest_bytes, approval.signature_bytes) == approval.signer


def test_recover_address_rejects_short_signature(approval):
    assert recover_address(approval.digest_bytes, approval.signature_bytes[:64]) is None
