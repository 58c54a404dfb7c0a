"""MilestoneEscrow's EIP-712 signatures: the domain, approvals relayed in batches, evidence
submitted by signature, revocation, and every reason a signature is rejected.

Signatures are made in Python with eth-account from typed data built here, independently of
the contract, and one test per type checks that both sides compute the same digest.
"""

from dataclasses import dataclass

import pytest
from assertions import (
    DAY,
    ETH,
    EVIDENCE,
    EVIDENCE_2,
    EVIDENCE_URI,
    REASON,
    MilestoneStatus,
    PayoutKind,
    SignatureState,
    assert_books,
    expected_event,
    expected_transfer,
    reverts,
)
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys import keys
from eth_utils import keccak
from hexbytes import HexBytes

pytestmark = pytest.mark.usefixtures("books_balance_at_end")

DOMAIN_NAME = "FundTrail MilestoneEscrow"
DOMAIN_VERSION = "1"
# EIP-5267 field bitmap 0x0f: the domain sets name, version, chainId and verifyingContract, but no salt.
DOMAIN_FIELDS = b"\x0f"

# Order of the secp256k1 group. A signature (r, s) and its twin (r, n - s) with the other
# recovery id recover the same key, so ECDSA verifiers that accept both are malleable.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# Expiry of signatures in tests that are not about expiry: 2100-01-01 00:00:00 UTC. A fixed
# expiry keeps every digest the same from run to run, so a failure that involves a digest
# reproduces. Tests of the expiry rule sign with an expiry relative to the chain time instead.
FAR_EXPIRY = 4_102_444_800

EIP712_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
MILESTONE_APPROVAL_TYPE = [
    {"name": "attestor", "type": "address"},
    {"name": "grantId", "type": "uint256"},
    {"name": "milestoneIndex", "type": "uint256"},
    {"name": "evidenceHash", "type": "bytes32"},
    {"name": "expiry", "type": "uint64"},
]
EVIDENCE_SUBMISSION_TYPE = [
    {"name": "recipient", "type": "address"},
    {"name": "grantId", "type": "uint256"},
    {"name": "milestoneIndex", "type": "uint256"},
    {"name": "evidenceHash", "type": "bytes32"},
    {"name": "evidenceUri", "type": "string"},
    {"name": "expiry", "type": "uint64"},
]


def encode_type(primary_type, fields):
    """Return the EIP-712 type string, such as "MilestoneApproval(address attestor,...)"."""
    members = ",".join(f"{field['type']} {field['name']}" for field in fields)
    return f"{primary_type}({members})"


def typed_data(domain, primary_type, fields, message):
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN_TYPE, primary_type: fields},
        "primaryType": primary_type,
        "domain": domain,
        "message": message,
    }


def typed_data_digest(full_message):
    """Return the EIP-712 digest: keccak256("\\x19\\x01" || domainSeparator || hashStruct)."""
    signable = encode_typed_data(full_message=full_message)
    return HexBytes(keccak(b"\x19" + signable.version + signable.header + signable.body))


def split_signature(signature):
    """Return (r, s, v) of a 65-byte signature r || s || v."""
    return int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]


def recover_signer(digest, r, s, v):
    """Return the address that `ecrecover` finds for (r, s, v), without the low-s rule."""
    signature = keys.Signature(vrs=(v - 27, r, s))
    return signature.recover_public_key_from_msg_hash(bytes(digest)).to_checksum_address()


@dataclass(frozen=True)
class SignedApproval:
    """An attestor's offline approval, and the digest that was signed for it."""

    attestor: str
    expiry: int
    signature: bytes
    digest: HexBytes

    def struct(self, signature=None):
        """Return the SignedApproval tuple for approveWithSignatures, optionally with other
        signature bytes."""
        return (self.attestor, self.expiry, self.signature if signature is None else signature)


@dataclass(frozen=True)
class SignedEvidence:
    """A recipient's offline evidence submission, and the digest that was signed for it."""

    grant_id: int
    milestone_index: int
    evidence_hash: bytes
    evidence_uri: str
    expiry: int
    signature: bytes
    digest: HexBytes

    def arguments(self, **changes):
        """Return the arguments of submitEvidenceWithSignature, with `changes` applied."""
        values = {
            "grant_id": self.grant_id,
            "milestone_index": self.milestone_index,
            "evidence_hash": self.evidence_hash,
            "evidence_uri": self.evidence_uri,
            "expiry": self.expiry,
            "signature": self.signature,
        }
        values.update(changes)
        return tuple(values.values())


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def escrow_domain(escrow, chain):
    """The escrow's EIP-712 domain as eth-account takes it."""
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain.chain_id,
        "verifyingContract": escrow.address,
    }


@pytest.fixture
def sign_approval(escrow_domain):
    """`sign_approval(signer, grant_id, ...)` signs a MilestoneApproval with `signer`'s key.

    `attestor` is the attestor named in the message (the signer by default), and `domain`
    replaces the escrow's domain. The expiry defaults to FAR_EXPIRY.
    """

    def _sign(
        signer,
        grant_id,
        milestone_index=0,
        evidence_hash=EVIDENCE,
        expiry=None,
        attestor=None,
        domain=None,
    ):
        attestor_address = (attestor or signer).address
        expiry = FAR_EXPIRY if expiry is None else expiry
        message = {
            "attestor": attestor_address,
            "grantId": grant_id,
            "milestoneIndex": milestone_index,
            "evidenceHash": evidence_hash,
            "expiry": expiry,
        }
        full_message = typed_data(
            domain or escrow_domain, "MilestoneApproval", MILESTONE_APPROVAL_TYPE, message
        )
        signed = Account.sign_typed_data(signer.private_key, full_message=full_message)
        digest = typed_data_digest(full_message)
        return SignedApproval(attestor_address, expiry, bytes(signed.signature), digest)

    return _sign


@pytest.fixture
def sign_evidence(escrow_domain, ngo):
    """`sign_evidence(grant_id, ...)` signs an EvidenceSubmission for the grant's recipient,
    the NGO. `signer` replaces the NGO as the key that signs it. The expiry defaults to
    FAR_EXPIRY."""

    def _sign(
        grant_id,
        milestone_index=0,
        evidence_hash=EVIDENCE,
        evidence_uri=EVIDENCE_URI,
        expiry=None,
        signer=ngo,
    ):
        expiry = FAR_EXPIRY if expiry is None else expiry
        message = {
            "recipient": ngo.address,
            "grantId": grant_id,
            "milestoneIndex": milestone_index,
            "evidenceHash": evidence_hash,
            "evidenceUri": evidence_uri,
            "expiry": expiry,
        }
        full_message = typed_data(escrow_domain, "EvidenceSubmission", EVIDENCE_SUBMISSION_TYPE, message)
        signed = Account.sign_typed_data(signer.private_key, full_message=full_message)
        return SignedEvidence(
            grant_id,
            milestone_index,
            evidence_hash,
            evidence_uri,
            expiry,
            bytes(signed.signature),
            typed_data_digest(full_message),
        )

    return _sign


@pytest.fixture
def submitted(escrow, funded_eth_grant, ngo):
    """The funded 2-of-3 ETH grant with EVIDENCE pending on milestone 0 (1,000 wei)."""
    escrow.submitEvidence(funded_eth_grant.id, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)
    return funded_eth_grant


def assert_nothing_approved(escrow, grant, approvals):
    """Check that milestone 0 still has no approvals and that every approval is unused."""
    milestone = escrow.getMilestone(grant.id, 0)
    assert milestone.status == MilestoneStatus.EVIDENCE_SUBMITTED
    assert (milestone.approvals, milestone.approvalCount) == (0, 0)
    for approval in approvals:
        assert escrow.signatureState(approval.attestor, approval.digest) == SignatureState.UNUSED


# ---------------------------------------------------------------------------------------------
# Domain and digests
# ---------------------------------------------------------------------------------------------


def test_eip712_domain_fields(escrow, chain):
    fields, name, version, chain_id, verifying_contract, salt, extensions = escrow.eip712Domain()

    assert fields == DOMAIN_FIELDS
    assert name == DOMAIN_NAME
    assert version == DOMAIN_VERSION
    assert chain_id == chain.chain_id
    assert verifying_contract == escrow.address
    assert salt == b"\x00" * 32
    assert list(extensions) == []


def test_typehashes_match_type_strings(escrow):
    approval_type = encode_type("MilestoneApproval", MILESTONE_APPROVAL_TYPE)
    evidence_type = encode_type("EvidenceSubmission", EVIDENCE_SUBMISSION_TYPE)

    assert approval_type == (
        "MilestoneApproval(address attestor,uint256 grantId,uint256 milestoneIndex,"
        "bytes32 evidenceHash,uint64 expiry)"
    )
    assert evidence_type == (
        "EvidenceSubmission(address recipient,uint256 grantId,uint256 milestoneIndex,"
        "bytes32 evidenceHash,string evidenceUri,uint64 expiry)"
    )
    assert escrow.MILESTONE_APPROVAL_TYPEHASH() == keccak(text=approval_type)
    assert escrow.EVIDENCE_SUBMISSION_TYPEHASH() == keccak(text=evidence_type)


def test_approval_digest_matches_contract(escrow, sign_approval, attestors):
    approval = sign_approval(
        attestors[1], grant_id=7, milestone_index=2, evidence_hash=EVIDENCE_2, expiry=123_456
    )

    assert approval.digest == escrow.hashMilestoneApproval(attestors[1], 7, 2, EVIDENCE_2, 123_456)
    assert recover_signer(approval.digest, *split_signature(approval.signature)) == attestors[1].address


def test_evidence_digest_matches_contract(escrow, sign_evidence, ngo):
    evidence = sign_evidence(grant_id=7, milestone_index=2, evidence_uri="ipfs://bafy-other", expiry=123_456)

    assert evidence.digest == escrow.hashEvidenceSubmission(ngo, 7, 2, EVIDENCE, "ipfs://bafy-other", 123_456)
    assert recover_signer(evidence.digest, *split_signature(evidence.signature)) == ngo.address


# ---------------------------------------------------------------------------------------------
# approveWithSignatures: accepted signatures
# ---------------------------------------------------------------------------------------------


def test_one_signature_below_quorum_records_approval(escrow, submitted, sign_approval, attestors, stranger):
    approval = sign_approval(attestors[1], submitted.id)
    assert escrow.signatureState(attestors[1], approval.digest) == SignatureState.UNUSED

    tx = escrow.approveWithSignatures(submitted.id, 0, EVIDENCE, [approval.struct()], sender=stranger)

    assert tx.events == [
        expected_event(escrow.SignatureRelayed, grantId=submitted.id, signer=attestors[1], relayer=stranger, digest=approval.digest),
        expected_event(escrow.MilestoneApproved, grantId=submitted.id, milestoneIndex=0, attestor=attestors[1], evidenceHash=EVIDENCE, approvalCount=1),
    ]
    milestone = escrow.getMilestone(submitted.id, 0)
    assert (milestone.approvals, milestone.approvalCount) == (0b010, 1)
    assert milestone.status == MilestoneStatus.EVIDENCE_SUBMITTED
    assert escrow.signatureState(attestors[1], approval.digest) == SignatureState.USED


def test_two_signatures_release_in_one_transaction(
    escrow, submitted, sign_approval, attestors, grant_maker, ngo
):
    first = sign_approval(attestors[0], submitted.id)
    second = sign_approval(attestors[2], submitted.id)
    ngo_before = ngo.balance

    tx = escrow.approveWithSignatures(
        submitted.id, 0, EVIDENCE, [first.struct(), second.struct()], sender=grant_maker
    )

    assert tx.events == [
        expected_event(escrow.SignatureRelayed, grantId=submitted.id, signer=attestors[0], relayer=grant_maker, digest=first.digest),
        expected_event(escrow.MilestoneApproved, grantId=submitted.id, milestoneIndex=0, attestor=attestors[0], evidenceHash=EVIDENCE, approvalCount=1),
        expected_event(escrow.SignatureRelayed, grantId=submitted.id, signer=attestors[2], relayer=grant_maker, digest=second.digest),
        expected_event(escrow.MilestoneApproved, grantId=submitted.id, milestoneIndex=0, attestor=attestors[2], evidenceHash=EVIDENCE, approvalCount=2),
        expected_event(escrow.MilestoneReleased, grantId=submitted.id, milestoneIndex=0, recipient=ngo, evidenceHash=EVIDENCE, amount=1_000),
        expected_event(escrow.Payout, grantId=submitted.id, account=ngo, token=ETH, kind=PayoutKind.RELEASE, milestoneIndex=0, amount=1_000, credited=False),
    ]
    milestone = escrow.getMilestone(submitted.id, 0)
    assert milestone.status == MilestoneStatus.RELEASED
    assert (milestone.approvals, milestone.approvalCount) == (0b101, 2)
    assert ngo.balance == ngo_before + 1_000
    assert escrow.getGrant(submitted.id).released == 1_000
    assert escrow.signatureState(attestors[0], first.digest) == SignatureState.USED
    assert escrow.signatureState(attestors[2], second.digest) == SignatureState.USED
    assert_books(escrow)


def test_onchain_approval_then_signature_releases(escrow, submitted, sign_approval, attestors, stranger, ngo):
    escrow.approve(submitted.id, 0, EVIDENCE, sender=attestors[0])
    approval = sign_approval(attestors[1], submitted.id)

    tx = escrow.approveWithSignatures(submitted.id, 0, EVIDENCE, [approval.struct()], sender=stranger)

    assert tx.events == [
        expected_event(escrow.SignatureRelayed, grantId=submitted.id, signer=attestors[1], relayer=stranger, digest=approval.digest),
        expected_event(escrow.MilestoneApproved, grantId=submitted.id, milestoneIndex=0, attestor=attestors[1], evidenceHash=EVIDENCE, approvalCount=2),
        expected_event(escrow.MilestoneReleased, grantId=submitted.id, milestoneIndex=0, recipient=ngo, evidenceHash=EVIDENCE, amount=1_000),
        expected_event(escrow.Payout, grantId=submitted.id, account=ngo, token=ETH, kind=PayoutKind.RELEASE, milestoneIndex=0, amount=1_000, credited=False),
    ]
    milestone = escrow.getMilestone(submitted.id, 0)
    assert milestone.status == MilestoneStatus.RELEASED
    assert milestone.approvals == 0b011


def test_signature_then_onchain_approval_releases(escrow, submitted, sign_approval, attestors, stranger, ngo):
    approval = sign_approval(attestors[2], submitted.id)
    escrow.approveWithSignatures(submitted.id, 0, EVIDENCE, [approval.struct()], sender=stranger)

    tx = escrow.approve(submitted.id, 0, EVIDENCE, sender=attestors[0])

    assert tx.events == [
        expected_event(escrow.MilestoneApproved, grantId=submitted.id, milestoneIndex=0, attestor=attestors[0], evidenceHash=EVIDENCE, approvalCount=2),
        expected_event(escrow.MilestoneReleased, grantId=submitted.id, milestoneIndex=0, recipient=ngo, evidenceHash=EVIDENCE, amount=1_000),
        expected_event(escrow.Payout, grantId=submitted.id, account=ngo, token=ETH, kind=PayoutKind.RELEASE, milestoneIndex=0, amount=1_000, credited=False),
    ]
    assert escrow.getMilestone(submitted.id, 0).approvals == 0b101


def test_relaying_attestor_is_not_counted(escrow, submitted, sign_approval, attestors, ngo):
    approval = sign_approval(attestors[1], submitted.id)

    tx = escrow.approveWithSignatures(submitted.id, 0, EVIDENCE, [approval.struct()], sender=attestors[0])

    assert tx.events == [
        expected_event(escrow.SignatureRelayed, grantId=submitted.id, signer=attestors[1], relayer=attestors[0], digest=approval.digest),
        expected_event(escrow.MilestoneApproved, grantId=submitted.id, milestoneIndex=0, attestor=attestors[1], evidenceHash=EVIDENCE, approvalCount=1),
    ]
    milestone = escrow.getMilestone(submitted.id, 0)
    assert (milestone.approvals, milestone.approvalCount) == (0b010, 1)
    assert milestone.status == MilestoneStatus.EVIDENCE_SUBMITTED

    # The relaying attestor has not approved yet, so its own approval is still accepted and is
    # the one that releases.
    tx = escrow.approve(submitted.id, 0, EVIDENCE, sender=attestors[0])

    assert tx.events == [
        expected_event(escrow.MilestoneApproved, grantId=submitted.id, milestoneIndex=0, attestor=attestors[0], evidenceHash=EVIDENCE, approvalCount=2),
        expected_event(escrow.MilestoneReleased, grantId=submitted.id, milestoneIndex=0, recipient=ngo, evidenceHash=EVIDENCE, amount=1_000),
        expected_event(escrow.Payout, grantId=submitted.id, account=ngo, token=ETH, kind=PayoutKind.RELEASE, milestoneIndex=0, amount=1_000, credited=False),
    ]
    assert escrow.getMilestone(submitted.id, 0).approvals == 0b011


def test_signatures_relayed_by_stranger_release(escrow, submitted, sign_approval, attestors, stranger, ngo):
    approvals = [sign_approval(attestor, submitted.id) for attestor in attestors[1:]]
    ngo_before = ngo.balance

    tx = escrow.approveWithSignatures(
        submitted.id, 0, EVIDENCE, [approval.struct() for approval in approvals], sender=stranger
    )

    assert tx.events == [
        expected_event(escrow.SignatureRelayed, grantId=submitted.id, signer=attestors[1], relayer=stranger, digest=approvals[0].digest),
        expected_event(escrow.MilestoneApproved, grantId=submitted.id, milestoneIndex=0, attestor=attestors[1], evidenceHash=EVIDENCE, approvalCount=1),
        expected_event(escrow.SignatureRelayed, grantId=submitted.id, signer=attestors[2], relayer=stranger, digest=approvals[1].digest),
        expected_event(escrow.MilestoneApproved, grantId=submitted.id, milestoneIndex=0, attestor=attestors[2], evidenceHash=EVIDENCE, approvalCount=2),
        expected_event(escrow.MilestoneReleased, grantId=submitted.id, milestoneIndex=0, recipient=ngo, evidenceHash=EVIDENCE, amount=1_000),
        expected_event(escrow.Payout, grantId=submitted.id, account=ngo, token=ETH, kind=PayoutKind.RELEASE, milestoneIndex=0, amount=1_000, credited=False),
    ]
    assert escrow.getMilestone(submitted.id, 0).status == MilestoneStatus.RELEASED
    assert ngo.balance == ngo_before + 1_000
    assert escrow.creditOf(stranger, ETH) == 0


def test_signature_for_usdc_grant_transfers_tokens(
    escrow, funded_usdc_grant, sign_approval, attestors, ngo, stranger, usdc
):
    grant = funded_usdc_grant
    escrow.submitEvidence(grant.id, 1, EVIDENCE, EVIDENCE_URI, sender=ngo)
    approvals = [sign_approval(attestor, grant.id, milestone_index=1) for attestor in attestors[:2]]

    tx = escrow.approveWithSignatures(
        grant.id, 1, EVIDENCE, [approval.struct() for approval in approvals], sender=stranger
    )

    amount = grant.amounts[1]
    assert tx.events == [
        expected_event(escrow.SignatureRelayed, grantId=grant.id, signer=attestors[0], relayer=stranger, digest=approvals[0].digest),
        expected_event(escrow.MilestoneApproved, grantId=grant.id, milestoneIndex=1, attestor=attestors[0], evidenceHash=EVIDENCE, approvalCount=1),
        expected_event(escrow.SignatureRelayed, grantId=grant.id, signer=attestors[1], relayer=stranger, digest=approvals[1].digest),
        expected_event(escrow.MilestoneApproved, grantId=grant.id, milestoneIndex=1, attestor=attestors[1], evidenceHash=EVIDENCE, approvalCount=2),
        expected_event(escrow.MilestoneReleased, grantId=grant.id, milestoneIndex=1, recipient=ngo, evidenceHash=EVIDENCE, amount=amount),
        expected_transfer(usdc, escrow, ngo, amount),
        expected_event(escrow.Payout, grantId=grant.id, account=ngo, token=usdc, kind=PayoutKind.RELEASE, milestoneIndex=1, amount=amount, credited=False),
    ]
    assert usdc.balanceOf(ngo) == amount


# ---------------------------------------------------------------------------------------------
# approveWithSignatures: rejected signatures
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signed_field",
    ["chainId", "verifyingContract", "grantId", "milestoneIndex", "evidenceHash"],
)
def test_signature_for_other_data_is_invalid(
    escrow, submitted, sign_approval, escrow_domain, attestors, stranger, signed_field
):
    # Each case signs one field with a different value than the relayed call uses, so the
    # contract computes another digest and recovers another address.
    signed_values = {
        "chainId": {"domain": {**escrow_domain, "chainId": escrow_domain["chainId"] + 1}},
        "verifyingContract": {"domain": {**escrow_domain, "verifyingContract": stranger.address}},
        "grantId": {"grant_id": submitted.id + 1},
        "milestoneIndex": {"milestone_index": 1},
        "evidenceHash": {"evidence_hash": EVIDENCE_2},
    }[signed_field]
    arguments = {"grant_id": submitted.id, **signed_values}
    approval = sign_approval(attestors[0], **arguments)
    expected_digest = escrow.hashMilestoneApproval(attestors[0], submitted.id, 0, EVIDENCE, approval.expiry)
    assert approval.digest != expected_digest

    with reverts(escrow.InvalidSignature, signer=attestors[0].address):
        escrow.approveWithSignatures(submitted.id, 0, EVIDENCE, [approval.struct()], sender=stranger)

    assert escrow.signatureState(attestors[0], expected_digest) == SignatureState.UNUSED
    assert_nothing_approved(escrow, submitted, [approval])


def test_signature_valid_before_expiry(
    escrow, chain, submitted, sign_approval, attestors, stranger
):
    approval = sign_approval(attestors[0], submitted.id, expiry=chain.pending_timestamp + DAY)
    chain.pending_timestamp = approval.expiry - 1

    tx = escrow.approveWithSignatures(submitted.id, 0, EVIDENCE, [approval.struct()], sender=stranger)

    assert tx.timestamp == approval.expiry - 1
    assert tx.events == [
        expected_event(escrow.SignatureRelayed, grantId=submitted.id, signer=attestors[0], relayer=stranger, digest=approval.digest),
        expected_event(escrow.MilestoneApproved, grantId=submitted.id, milestoneIndex=0, attestor=attestors[0], evidenceHash=EVIDENCE, approvalCount=1),
    ]


@pytest.mark.parametrize("seconds_after_expiry", [0, 1])
def test_signature_expires_at_expiry(
    escrow, chain, submitted, sign_approval, attestors, stranger, seconds_after_expiry
):
    approval = sign_approval(attestors[0], submitted.id, expiry=chain.pending_timestamp + DAY)
    chain.pending_timestamp = approval.expiry + seconds_after_expiry

    with reverts(escrow.SignatureExpired, signer=attestors[0].address, expiry=approval.expiry):
        escrow.approveWithSignatures(submitted.id, 0, EVIDENCE, [approval.struct()], sender=stranger)

    assert_nothing_approved(escrow, submitted, [approval])


def test_replayed_signature_reverts(escrow, submitted, sign_approval, attestors, stranger):
    approval = sign_approval(attestors[0], submitted.id)
    escrow.approveWithSignatures(submitted.id, 0, EVIDENCE, [approval.struct()], sender=stranger)

    with reverts(escrow.SignatureAlreadyUsed, signer=attestors[0].address, digest=approval.digest):
        escrow.approveWithSignatures(submitted.id, 0, EVIDENCE, [approval.struct()], sender=stranger)

    milestone = escrow.getMilestone(submitted.id, 0)
    assert (milestone.approvals, milestone.approvalCount) == (0b001, 1)


def test_high_s_signature_is_invalid(escrow, submitted, sign_approval, attestors, stranger):
    approval = sign_approval(attestors[0], submitted.id)
    r, s, v = split_signature(approval.signature)
    high_s = SECP256K1_N - s
    flipped_v = 27 if v == 28 else 28
    # The twin still recovers the attestor with a plain ecrecover, so only the low-s rule
    # can reject it.
    assert recover_signer(approval.digest, r, high_s, flipped_v) == attestors[0].address
    malleated = r.to_bytes(32, "big") + high_s.to_bytes(32, "big") + bytes([flipped_v])

    with reverts(escrow.InvalidSignature, signer=attestors[0].address):
        escrow.approveWithSignatures(submitted.id, 0, EVIDENCE, [approval.struct(malleated)], sender=stranger)

    assert_nothing_approved(escrow, submitted, [approval])


def test_compact_signature_is_invalid(escrow, submitted, sign_approval, attestors, stranger):
    approval = sign_approval(attestors[0], submitted.id)
    r, s, v = split_signature(approval.signature)
    # EIP-2098 stores the recovery id in the top bit of s: r || (yParity << 255 | s).
    compact = r.to_bytes(32, "big") + ((v - 27) << 255 | s).to_bytes(32, "big")
    assert len(compact) == 64

    with reverts(escrow.InvalidSignature, signer=attestors[0].address):
        escrow.approveWithSignatures(submitted.id, 0, EVIDENCE, [approval.struct(compact)], sender=stranger)

    assert_nothing_approved(escrow, submitted, [approval])


def test_same_signature_twice_in_batch_reverts(escrow, submitted, sign_approval, attestors, stranger):
    approval = sign_approval(attestors[0], submitted.id)

    with reverts(escrow.SignatureAlreadyUsed, signer=attestors[0].address, digest=approval.digest):
        escrow.approveWithSignatures(
            submitted.id, 0, EVIDENCE, [approval.struct(), approval.struct()], sender=stranger
        )

    assert_nothing_approved(escrow, submitted, [approval])


def test_one_attestor_twice_in_batch_reverts(
    escrow, submitted, sign_approval, attestors, stranger
):
    first = sign_approval(attestors[0], submitted.id, expiry=FAR_EXPIRY)
    second = sign_approval(attestors[0], submitted.id, expiry=FAR_EXPIRY + 1)
    assert first.digest != second.digest

    with reverts(
        escrow.AlreadyAttested,
        grantId=submitted.id,
        milestoneIndex=0,
        attestor=attestors[0].address,
    ):
        escrow.approveWithSignatures(
            submitted.id, 0, EVIDENCE, [first.struct(), second.struct()], sender=stranger
        )

    assert_nothing_approved(escrow, submitted, [first, second])


def test_signature_after_own_approval_reverts(
    escrow, submitted, sign_approval, attestors, stranger
):
    escrow.approve(submitted.id, 0, EVIDENCE, sender=attestors[0])
    approval = sign_approval(attestors[0], submitted.id)

    with reverts(
        escrow.AlreadyAttested,
        grantId=submitted.id,
        milestoneIndex=0,
        attestor=attestors[0].address,
    ):
        escrow.approveWithSignatures(submitted.id, 0, EVIDENCE, [approval.struct()], sender=stranger)

    assert escrow.signatureState(attestors[0], approval.digest) == SignatureState.UNUSED


def test_signature_of_non_attestor_reverts(escrow, submitted, sign_approval, stranger, grant_maker):
    approval = sign_approval(stranger, submitted.id)

    with reverts(escrow.NotAttestor, grantId=submitted.id, caller=stranger.address):
        escrow.approveWithSignatures(submitted.id, 0, EVIDENCE, [approval.struct()], sender=grant_maker)

    assert_nothing_approved(escrow, submitted, [approval])


def test_signature_by_other_attestor_is_invalid(
    escrow, submitted, sign_approval, attestors, stranger
):
    # attestors[1] is an attestor too, but a signature counts only for the address that signed.
    approval = sign_approval(attestors[1], submitted.id, attestor=attestors[0])
    assert approval.attestor == attestors[0].address

    with reverts(escrow.InvalidSignature, signer=attestors[0].address):
        escrow.approveWithSignatures(submitted.id, 0, EVIDENCE, [approval.struct()], sender=stranger)

    assert_nothing_approved(escrow, submitted, [approval])
    assert escrow.signatureState(attestors[1], approval.digest) == SignatureState.UNUSED


def test_revoked_signature_reverts(escrow, submitted, sign_approval, attestors, stranger):
    approval = sign_approval(attestors[0], submitted.id)
    escrow.revokeSignature(approval.digest, sender=attestors[0])

    with reverts(escrow.SignatureWasRevoked, signer=attestors[0].address, digest=approval.digest):
        escrow.approveWithSignatures(submitted.id, 0, EVIDENCE, [approval.struct()], sender=stranger)

    assert escrow.getMilestone(submitted.id, 0).approvals == 0
    assert escrow.signatureState(attestors[0], approval.digest) == SignatureState.REVOKED


def test_empty_batch_reverts(escrow, submitted, stranger):
    with reverts(escrow.EmptySignatureBatch):
        escrow.approveWithSignatures(submitted.id, 0, EVIDENCE, [], sender=stranger)


def test_signature_after_release_reverts_batch(
    escrow, submitted, sign_approval, attestors, stranger, ngo
):
    approvals = [sign_approval(attestor, submitted.id) for attestor in attestors]
    ngo_before = ngo.balance
    escrow_before = escrow.balance

    with reverts(
        escrow.MilestoneAlreadySettled,
        grantId=submitted.id,
        milestoneIndex=0,
        status=MilestoneStatus.RELEASED,
    ):
        escrow.approveWithSignatures(
            submitted.id, 0, EVIDENCE, [approval.struct() for approval in approvals], sender=stranger
        )

    assert_nothing_approved(escrow, submitted, approvals)
    assert ngo.balance == ngo_before
    assert escrow.balance == escrow_before
    assert escrow.getGrant(submitted.id).released == 0


def test_failed_batch_rolls_back_earlier_signatures(escrow, submitted, sign_approval, attestors, stranger):
    valid = sign_approval(attestors[0], submitted.id)
    forged = sign_approval(stranger, submitted.id, attestor=attestors[1])

    with reverts(escrow.InvalidSignature, signer=attestors[1].address):
        escrow.approveWithSignatures(
            submitted.id, 0, EVIDENCE, [valid.struct(), forged.struct()], sender=stranger
        )

    assert_nothing_approved(escrow, submitted, [valid, forged])

    # The valid signature was not spent, so it can still be relayed alone.
    escrow.approveWithSignatures(submitted.id, 0, EVIDENCE, [valid.struct()], sender=stranger)
    assert escrow.getMilestone(submitted.id, 0).approvals == 0b001


def test_signature_for_replaced_evidence_reverts(escrow, submitted, sign_approval, attestors, ngo, stranger):
    approval = sign_approval(attestors[0], submitted.id, evidence_hash=EVIDENCE)
    escrow.submitEvidence(submitted.id, 0, EVIDENCE_2, "ipfs://bafy-evidence-2", sender=ngo)

    # Relayed with the hash it signed, the approval no longer matches the current evidence.
    with reverts(
        escrow.EvidenceMismatch,
        grantId=submitted.id,
        milestoneIndex=0,
        current=EVIDENCE_2,
        given=EVIDENCE,
    ):
        escrow.approveWithSignatures(submitted.id, 0, EVIDENCE, [approval.struct()], sender=stranger)

    # Relayed with the current hash, the contract computes another digest.
    with reverts(escrow.InvalidSignature, signer=attestors[0].address):
        escrow.approveWithSignatures(submitted.id, 0, EVIDENCE_2, [approval.struct()], sender=stranger)

    assert escrow.signatureState(attestors[0], approval.digest) == SignatureState.UNUSED
    assert escrow.getMilestone(submitted.id, 0).approvals == 0


def test_signature_after_milestone_deadline_reverts(
    escrow, chain, submitted, sign_approval, attestors, stranger
):
    deadline = submitted.deadlines[0]
    approval = sign_approval(attestors[0], submitted.id, expiry=deadline + DAY)
    chain.pending_timestamp = deadline

    with reverts(escrow.MilestoneDeadlinePassed, grantId=submitted.id, milestoneIndex=0, deadline=deadline):
        escrow.approveWithSignatures(submitted.id, 0, EVIDENCE, [approval.struct()], sender=stranger)

    assert_nothing_approved(escrow, submitted, [approval])


def test_signature_without_pending_evidence_reverts(
    escrow, funded_eth_grant, sign_approval, attestors, stranger
):
    approval = sign_approval(attestors[0], funded_eth_grant.id)

    with reverts(escrow.NoPendingEvidence, grantId=funded_eth_grant.id, milestoneIndex=0):
        escrow.approveWithSignatures(funded_eth_grant.id, 0, EVIDENCE, [approval.struct()], sender=stranger)

    assert escrow.signatureState(attestors[0], approval.digest) == SignatureState.UNUSED


# ---------------------------------------------------------------------------------------------
# revokeSignature
# ---------------------------------------------------------------------------------------------


def test_revoke_marks_signature_revoked(escrow, submitted, sign_approval, attestors):
    approval = sign_approval(attestors[0], submitted.id)

    tx = escrow.revokeSignature(approval.digest, sender=attestors[0])

    assert tx.events == [expected_event(escrow.SignatureRevoked, signer=attestors[0], digest=approval.digest)]
    assert escrow.signatureState(attestors[0], approval.digest) == SignatureState.REVOKED


def test_revoke_twice_reverts(escrow, submitted, sign_approval, attestors):
    approval = sign_approval(attestors[0], submitted.id)
    escrow.revokeSignature(approval.digest, sender=attestors[0])

    with reverts(escrow.SignatureWasRevoked, signer=attestors[0].address, digest=approval.digest):
        escrow.revokeSignature(approval.digest, sender=attestors[0])


def test_revoke_used_signature_reverts(escrow, submitted, sign_approval, attestors, stranger):
    approval = sign_approval(attestors[0], submitted.id)
    escrow.approveWithSignatures(submitted.id, 0, EVIDENCE, [approval.struct()], sender=stranger)

    with reverts(escrow.SignatureAlreadyUsed, signer=attestors[0].address, digest=approval.digest):
        escrow.revokeSignature(approval.digest, sender=attestors[0])

    assert escrow.signatureState(attestors[0], approval.digest) == SignatureState.USED


def test_revoke_affects_only_caller(
    escrow, submitted, sign_approval, attestors, stranger
):
    approval = sign_approval(attestors[0], submitted.id)

    tx = escrow.revokeSignature(approval.digest, sender=stranger)

    assert tx.events == [expected_event(escrow.SignatureRevoked, signer=stranger, digest=approval.digest)]
    assert escrow.signatureState(stranger, approval.digest) == SignatureState.REVOKED
    assert escrow.signatureState(attestors[0], approval.digest) == SignatureState.UNUSED

    tx = escrow.approveWithSignatures(submitted.id, 0, EVIDENCE, [approval.struct()], sender=stranger)

    assert tx.events == [
        expected_event(escrow.SignatureRelayed, grantId=submitted.id, signer=attestors[0], relayer=stranger, digest=approval.digest),
        expected_event(escrow.MilestoneApproved, grantId=submitted.id, milestoneIndex=0, attestor=attestors[0], evidenceHash=EVIDENCE, approvalCount=1),
    ]


def test_revoke_then_new_signature_works(escrow, submitted, sign_approval, attestors, stranger):
    revoked = sign_approval(attestors[0], submitted.id, expiry=FAR_EXPIRY)
    escrow.revokeSignature(revoked.digest, sender=attestors[0])
    replacement = sign_approval(attestors[0], submitted.id, expiry=FAR_EXPIRY + 1)

    escrow.approveWithSignatures(submitted.id, 0, EVIDENCE, [replacement.struct()], sender=stranger)

    assert escrow.getMilestone(submitted.id, 0).approvals == 0b001
    assert escrow.signatureState(attestors[0], replacement.digest) == SignatureState.USED
    assert escrow.signatureState(attestors[0], revoked.digest) == SignatureState.REVOKED


# ---------------------------------------------------------------------------------------------
# submitEvidenceWithSignature
# ---------------------------------------------------------------------------------------------


def test_signed_evidence_is_submitted_for_recipient(escrow, funded_eth_grant, sign_evidence, ngo, stranger):
    evidence = sign_evidence(funded_eth_grant.id)

    tx = escrow.submitEvidenceWithSignature(*evidence.arguments(), sender=stranger)

    assert tx.events == [
        expected_event(escrow.SignatureRelayed, grantId=funded_eth_grant.id, signer=ngo, relayer=stranger, digest=evidence.digest),
        expected_event(escrow.EvidenceSubmitted, grantId=funded_eth_grant.id, milestoneIndex=0, submitter=ngo, evidenceHash=EVIDENCE, evidenceUri=EVIDENCE_URI),
    ]
    milestone = escrow.getMilestone(funded_eth_grant.id, 0)
    assert milestone.status == MilestoneStatus.EVIDENCE_SUBMITTED
    assert milestone.evidenceHash == EVIDENCE
    assert escrow.signatureState(ngo, evidence.digest) == SignatureState.USED


def test_signed_evidence_clears_earlier_votes(escrow, submitted, sign_evidence, attestors, ngo, stranger):
    escrow.approve(submitted.id, 0, EVIDENCE, sender=attestors[0])
    escrow.reject(submitted.id, 0, EVIDENCE, REASON, sender=attestors[1])
    evidence = sign_evidence(submitted.id, evidence_hash=EVIDENCE_2)

    escrow.submitEvidenceWithSignature(*evidence.arguments(), sender=stranger)

    milestone = escrow.getMilestone(submitted.id, 0)
    assert milestone.evidenceHash == EVIDENCE_2
    assert (milestone.approvals, milestone.rejections) == (0, 0)


@pytest.mark.parametrize("signer_role", ["stranger", "attestor"])
def test_evidence_signed_by_other_key_is_invalid(
    escrow, funded_eth_grant, sign_evidence, ngo, stranger, attestors, signer_role
):
    signer = {"stranger": stranger, "attestor": attestors[0]}[signer_role]
    evidence = sign_evidence(funded_eth_grant.id, signer=signer)

    with reverts(escrow.InvalidSignature, signer=ngo.address):
        escrow.submitEvidenceWithSignature(*evidence.arguments(), sender=stranger)

    assert escrow.getMilestone(funded_eth_grant.id, 0).status == MilestoneStatus.AWAITING_EVIDENCE
    assert escrow.signatureState(ngo, evidence.digest) == SignatureState.UNUSED


def test_evidence_with_changed_uri_is_invalid(escrow, funded_eth_grant, sign_evidence, ngo, stranger):
    evidence = sign_evidence(funded_eth_grant.id)

    with reverts(escrow.InvalidSignature, signer=ngo.address):
        escrow.submitEvidenceWithSignature(
            *evidence.arguments(evidence_uri="ipfs://bafy-substituted"), sender=stranger
        )

    assert escrow.getMilestone(funded_eth_grant.id, 0).status == MilestoneStatus.AWAITING_EVIDENCE


def test_evidence_with_changed_expiry_is_invalid(escrow, funded_eth_grant, sign_evidence, ngo, stranger):
    evidence = sign_evidence(funded_eth_grant.id)

    with reverts(escrow.InvalidSignature, signer=ngo.address):
        escrow.submitEvidenceWithSignature(*evidence.arguments(expiry=evidence.expiry + DAY), sender=stranger)


def test_replayed_evidence_signature_reverts(escrow, funded_eth_grant, sign_evidence, ngo, stranger):
    evidence = sign_evidence(funded_eth_grant.id)
    escrow.submitEvidenceWithSignature(*evidence.arguments(), sender=stranger)
    # The NGO replaces the evidence, so a replay of the old signature would bring the old evidence back.
    escrow.submitEvidence(funded_eth_grant.id, 0, EVIDENCE_2, "ipfs://bafy-evidence-2", sender=ngo)

    with reverts(escrow.SignatureAlreadyUsed, signer=ngo.address, digest=evidence.digest):
        escrow.submitEvidenceWithSignature(*evidence.arguments(), sender=stranger)

    assert escrow.getMilestone(funded_eth_grant.id, 0).evidenceHash == EVIDENCE_2


@pytest.mark.parametrize("seconds_after_expiry", [0, 1])
def test_expired_evidence_signature_reverts(
    escrow, chain, funded_eth_grant, sign_evidence, ngo, stranger, seconds_after_expiry
):
    evidence = sign_evidence(funded_eth_grant.id, expiry=chain.pending_timestamp + DAY)
    chain.pending_timestamp = evidence.expiry + seconds_after_expiry

    with reverts(escrow.SignatureExpired, signer=ngo.address, expiry=evidence.expiry):
        escrow.submitEvidenceWithSignature(*evidence.arguments(), sender=stranger)

    assert escrow.signatureState(ngo, evidence.digest) == SignatureState.UNUSED


def test_evidence_signature_valid_before_expiry(
    escrow, chain, funded_eth_grant, sign_evidence, ngo, stranger
):
    evidence = sign_evidence(funded_eth_grant.id, expiry=chain.pending_timestamp + DAY)
    chain.pending_timestamp = evidence.expiry - 1

    escrow.submitEvidenceWithSignature(*evidence.arguments(), sender=stranger)

    assert escrow.getMilestone(funded_eth_grant.id, 0).evidenceHash == EVIDENCE


def test_revoked_evidence_signature_reverts(escrow, funded_eth_grant, sign_evidence, ngo, stranger):
    evidence = sign_evidence(funded_eth_grant.id)
    escrow.revokeSignature(evidence.digest, sender=ngo)

    with reverts(escrow.SignatureWasRevoked, signer=ngo.address, digest=evidence.digest):
        escrow.submitEvidenceWithSignature(*evidence.arguments(), sender=stranger)


def test_signed_evidence_on_underfunded_grant_reverts(escrow, eth_grant, sign_evidence, ngo, donor, stranger):
    escrow.fund(eth_grant.id, 5_999, value=5_999, sender=donor)
    evidence = sign_evidence(eth_grant.id)

    with reverts(escrow.GrantNotFullyFunded, grantId=eth_grant.id, funded=5_999, total=6_000):
        escrow.submitEvidenceWithSignature(*evidence.arguments(), sender=stranger)

    assert escrow.signatureState(ngo, evidence.digest) == SignatureState.UNUSED


def test_signed_zero_evidence_hash_reverts(escrow, funded_eth_grant, sign_evidence, ngo, stranger):
    evidence = sign_evidence(funded_eth_grant.id, evidence_hash=b"\x00" * 32)

    with reverts(escrow.ZeroEvidenceHash):
        escrow.submitEvidenceWithSignature(*evidence.arguments(), sender=stranger)

    assert escrow.signatureState(ngo, evidence.digest) == SignatureState.UNUSED


def test_signed_rejected_evidence_reverts(escrow, submitted, sign_evidence, attestors, ngo, stranger):
    for attestor in attestors[:2]:
        escrow.reject(submitted.id, 0, EVIDENCE, REASON, sender=attestor)
    evidence = sign_evidence(submitted.id, evidence_hash=EVIDENCE)

    with reverts(escrow.EvidenceHashRejected, grantId=submitted.id, milestoneIndex=0, evidenceHash=EVIDENCE):
        escrow.submitEvidenceWithSignature(*evidence.arguments(), sender=stranger)

    assert escrow.signatureState(ngo, evidence.digest) == SignatureState.UNUSED


def test_signed_evidence_already_pending_reverts(escrow, submitted, sign_evidence, ngo, stranger):
    evidence = sign_evidence(submitted.id, evidence_uri="ipfs://again")

    with reverts(
        escrow.EvidenceAlreadySubmitted,
        grantId=submitted.id,
        milestoneIndex=0,
        evidenceHash=EVIDENCE,
    ):
        escrow.submitEvidenceWithSignature(*evidence.arguments(), sender=stranger)


def test_signed_evidence_after_deadline_reverts(
    escrow, chain, funded_eth_grant, sign_evidence, ngo, stranger
):
    deadline = funded_eth_grant.deadlines[0]
    evidence = sign_evidence(funded_eth_grant.id, expiry=deadline + DAY)
    chain.pending_timestamp = deadline

    with reverts(
        escrow.MilestoneDeadlinePassed,
        grantId=funded_eth_grant.id,
        milestoneIndex=0,
        deadline=deadline,
    ):
        escrow.submitEvidenceWithSignature(*evidence.arguments(), sender=stranger)


def test_signed_evidence_for_unknown_grant_reverts(escrow, funded_eth_grant, sign_evidence, stranger):
    unknown_id = funded_eth_grant.id + 1
    evidence = sign_evidence(unknown_id)

    with reverts(escrow.GrantNotFound, grantId=unknown_id):
        escrow.submitEvidenceWithSignature(*evidence.arguments(), sender=stranger)


# ---------------------------------------------------------------------------------------------
# Offline flow
# ---------------------------------------------------------------------------------------------


def test_offline_flow_releases_milestone(
    escrow, funded_eth_grant, sign_evidence, sign_approval, ngo, attestors, stranger
):
    grant = funded_eth_grant
    offline_parties = [ngo, *attestors]
    balances_before = {party.address: party.balance for party in offline_parties}
    nonces_before = {party.address: party.nonce for party in offline_parties}
    evidence = sign_evidence(grant.id, milestone_index=1)
    approvals = [sign_approval(attestor, grant.id, milestone_index=1) for attestor in attestors[1:]]

    escrow.submitEvidenceWithSignature(*evidence.arguments(), sender=stranger)
    tx = escrow.approveWithSignatures(
        grant.id, 1, EVIDENCE, [approval.struct() for approval in approvals], sender=stranger
    )

    assert tx.events == [
        expected_event(escrow.SignatureRelayed, grantId=grant.id, signer=attestors[1], relayer=stranger, digest=approvals[0].digest),
        expected_event(escrow.MilestoneApproved, grantId=grant.id, milestoneIndex=1, attestor=attestors[1], evidenceHash=EVIDENCE, approvalCount=1),
        expected_event(escrow.SignatureRelayed, grantId=grant.id, signer=attestors[2], relayer=stranger, digest=approvals[1].digest),
        expected_event(escrow.MilestoneApproved, grantId=grant.id, milestoneIndex=1, attestor=attestors[2], evidenceHash=EVIDENCE, approvalCount=2),
        expected_event(escrow.MilestoneReleased, grantId=grant.id, milestoneIndex=1, recipient=ngo, evidenceHash=EVIDENCE, amount=2_000),
        expected_event(escrow.Payout, grantId=grant.id, account=ngo, token=ETH, kind=PayoutKind.RELEASE, milestoneIndex=1, amount=2_000, credited=False),
    ]
    assert ngo.balance == balances_before[ngo.address] + 2_000
    for attestor in attestors:
        assert attestor.balance == balances_before[attestor.address]
    for party in offline_parties:
        assert party.nonce == nonces_before[party.address]
    assert escrow.getMilestone(grant.id, 1).status == MilestoneStatus.RELEASED
    assert_books(escrow)
