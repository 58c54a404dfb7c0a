"""A Safe 1.4.1 multisig as a grant attestor: its ERC-1271 signature counts as one approval,
needs the Safe's own owner threshold, and is spent once like any other signature.

The grant's attestors are [Safe, attestors[0], attestors[1]] with a threshold of 2, and the Safe
is a 2-of-3 wallet of three generated test accounts that never send a transaction.
"""


import ape
import eth_abi
import pytest
from assertions import (
    ETH,
    EVIDENCE,
    EVIDENCE_URI,
    MilestoneStatus,
    PayoutKind,
    SignatureState,
    assert_books,
    expected_event,
    reverts,
)
from eth_account import Account
from hexbytes import HexBytes
from safe import (
    SAFE_VERSION,
    SafeDeployment,
    erc1271_signature,
    exec_transaction,
    fallback_handler_of,
    safe_message_hash,
    sign_hash_as_owners,
)

pytestmark = pytest.mark.usefixtures("books_balance_at_end")

SAFE_THRESHOLD = 2
# Expiry of every signature here: 2100-01-01 00:00:00 UTC. A fixed expiry keeps every digest
# the same from run to run, so a failure that involves a digest reproduces.
EXPIRY = 4_102_444_800
# Return value of a successful isValidSignature(bytes32,bytes) call, per ERC-1271. It is also
# the selector of that function.
ERC1271_MAGIC_VALUE = HexBytes("0x1626ba7e")


# The Safe contracts are module-scoped because deploying them for every test made this file
# about three times slower on the in-process chain. ape restores the chain to this module's
# snapshot after each test, so no test observes another test's changes.
@pytest.fixture(scope="module")
def safe_deployment(deployer):
    return SafeDeployment.deploy(deployer)


@pytest.fixture(scope="module")
def safe_owners(accounts):
    """Three owners that only sign offline, so they need no ETH."""
    return [accounts.generate_test_account() for _ in range(3)]


@pytest.fixture(scope="module")
def safe(safe_deployment, deployer, safe_owners):
    """A 2-of-3 Safe proxy with the CompatibilityFallbackHandler."""
    return safe_deployment.create_safe(deployer, safe_owners, SAFE_THRESHOLD)


@pytest.fixture
def safe_grant(escrow, create_grant, safe, attestors, ngo):
    """A funded 2-of-3 ETH grant with attestors [Safe, attestors[0], attestors[1]] and
    EVIDENCE pending on milestone 0 (1,000 wei)."""
    grant = create_grant(funded=True, attestors=[safe, attestors[0], attestors[1]], threshold=2)
    escrow.submitEvidence(grant.id, 0, EVIDENCE, EVIDENCE_URI, sender=ngo)
    return grant


def approval_digest(escrow, attestor, grant, expiry=EXPIRY):
    """Return the escrow's digest of `attestor`'s approval of EVIDENCE on milestone 0."""
    return HexBytes(escrow.hashMilestoneApproval(attestor, grant.id, 0, EVIDENCE, expiry))


def safe_approval(escrow, safe, owners, grant, expiry=EXPIRY):
    """Return the SignedApproval tuple of `safe`, signed by `owners`, and its digest."""
    digest = approval_digest(escrow, safe, grant, expiry)
    return (safe.address, expiry, erc1271_signature(safe, owners, digest)), digest


def eoa_approval(escrow, attestor, grant, expiry=EXPIRY):
    """Return the SignedApproval tuple of an EOA attestor and its digest.

    The attestor signs the escrow's digest directly. That the digest equals the EIP-712 hash
    of the typed data is tested in test_milestone_escrow_signatures.py.
    """
    digest = approval_digest(escrow, attestor, grant, expiry)
    signature = Account.unsafe_sign_hash(digest, attestor.private_key).signature
    return (attestor.address, expiry, bytes(signature)), digest


def call_is_valid_signature(safe, digest, signature):
    """Call the Safe's isValidSignature(bytes32,bytes), which its fallback handler serves, and
    return the raw return data. The Safe ABI lacks the handler's functions, so the call is
    encoded here."""
    calldata = ERC1271_MAGIC_VALUE + eth_abi.encode(["bytes32", "bytes"], [bytes(digest), signature])
    call = ape.chain.provider.network.ecosystem.create_transaction(receiver=safe.address, data=calldata)
    return HexBytes(ape.chain.provider.send_call(call))


# ---------------------------------------------------------------------------------------------
# Safe signatures in approveWithSignatures
# ---------------------------------------------------------------------------------------------


def test_safe_signature_counts_as_one_approval(escrow, safe, safe_owners, safe_grant, stranger):
    approval, digest = safe_approval(escrow, safe, safe_owners[1:], safe_grant)

    tx = escrow.approveWithSignatures(safe_grant.id, 0, EVIDENCE, [approval], sender=stranger)

    assert tx.events == [
        expected_event(escrow.SignatureRelayed, grantId=safe_grant.id, signer=safe, relayer=stranger, digest=digest),
        expected_event(escrow.MilestoneApproved, grantId=safe_grant.id, milestoneIndex=0, attestor=safe, evidenceHash=EVIDENCE, approvalCount=1),
    ]
    milestone = escrow.getMilestone(safe_grant.id, 0)
    assert (milestone.approvals, milestone.approvalCount) == (0b001, 1)
    assert milestone.status == MilestoneStatus.EVIDENCE_SUBMITTED
    assert escrow.signatureState(safe, digest) == SignatureState.USED


def test_safe_and_attestor_signatures_release(
    escrow, safe, safe_owners, safe_grant, attestors, stranger, ngo
):
    from_safe, safe_digest = safe_approval(escrow, safe, safe_owners[:2], safe_grant)
    from_attestor, attestor_digest = eoa_approval(escrow, attestors[1], safe_grant)
    ngo_before = ngo.balance

    tx = escrow.approveWithSignatures(safe_grant.id, 0, EVIDENCE, [from_safe, from_attestor], sender=stranger)

    assert tx.events == [
        expected_event(escrow.SignatureRelayed, grantId=safe_grant.id, signer=safe, relayer=stranger, digest=safe_digest),
        expected_event(escrow.MilestoneApproved, grantId=safe_grant.id, milestoneIndex=0, attestor=safe, evidenceHash=EVIDENCE, approvalCount=1),
        expected_event(escrow.SignatureRelayed, grantId=safe_grant.id, signer=attestors[1], relayer=stranger, digest=attestor_digest),
        expected_event(escrow.MilestoneApproved, grantId=safe_grant.id, milestoneIndex=0, attestor=attestors[1], evidenceHash=EVIDENCE, approvalCount=2),
        expected_event(escrow.MilestoneReleased, grantId=safe_grant.id, milestoneIndex=0, recipient=ngo, evidenceHash=EVIDENCE, amount=1_000),
        expected_event(escrow.Payout, grantId=safe_grant.id, account=ngo, token=ETH, kind=PayoutKind.RELEASE, milestoneIndex=0, amount=1_000, credited=False),
    ]
    milestone = escrow.getMilestone(safe_grant.id, 0)
    assert milestone.status == MilestoneStatus.RELEASED
    assert milestone.approvals == 0b101
    assert ngo.balance == ngo_before + 1_000
    assert_books(escrow)


@pytest.mark.parametrize(
    "defect",
    ["one_owner", "descending_owner_order", "raw_digest_signed", "non_owner_signer"],
)
def test_defective_safe_signature_is_invalid(escrow, safe, safe_owners, safe_grant, stranger, defect):
    digest = approval_digest(escrow, safe, safe_grant)
    message_hash = safe_message_hash(safe, eth_abi.encode(["bytes32"], [bytes(digest)]))
    if defect == "one_owner":
        signature = sign_hash_as_owners(safe_owners[:1], message_hash)
    elif defect == "descending_owner_order":
        ascending = sign_hash_as_owners(safe_owners[:2], message_hash)
        signature = ascending[65:] + ascending[:65]
    elif defect == "raw_digest_signed":
        signature = sign_hash_as_owners(safe_owners[:2], digest)
    else:
        signature = sign_hash_as_owners([safe_owners[0], stranger], message_hash)

    with reverts(escrow.InvalidSignature, signer=safe.address):
        escrow.approveWithSignatures(
            safe_grant.id, 0, EVIDENCE, [(safe.address, EXPIRY, signature)], sender=stranger
        )

    assert escrow.getMilestone(safe_grant.id, 0).approvals == 0
    assert escrow.signatureState(safe, digest) == SignatureState.UNUSED


def test_safe_signature_counts_once(escrow, safe, safe_owners, safe_grant, stranger):
    approval, digest = safe_approval(escrow, safe, safe_owners[:2], safe_grant)
    escrow.approveWithSignatures(safe_grant.id, 0, EVIDENCE, [approval], sender=stranger)

    with reverts(escrow.SignatureAlreadyUsed, signer=safe.address, digest=digest):
        escrow.approveWithSignatures(safe_grant.id, 0, EVIDENCE, [approval], sender=stranger)

    # Other owners sign the same digest: the signature bytes differ, the spent digest does not.
    resigned, _ = safe_approval(escrow, safe, safe_owners[1:], safe_grant)
    assert resigned != approval
    with reverts(escrow.SignatureAlreadyUsed, signer=safe.address, digest=digest):
        escrow.approveWithSignatures(safe_grant.id, 0, EVIDENCE, [resigned], sender=stranger)

    milestone = escrow.getMilestone(safe_grant.id, 0)
    assert (milestone.approvals, milestone.approvalCount) == (0b001, 1)
    assert milestone.status == MilestoneStatus.EVIDENCE_SUBMITTED


def test_safe_signature_twice_in_batch_reverts(escrow, safe, safe_owners, safe_grant, stranger):
    approval, digest = safe_approval(escrow, safe, safe_owners[:2], safe_grant)

    with reverts(escrow.SignatureAlreadyUsed, signer=safe.address, digest=digest):
        escrow.approveWithSignatures(safe_grant.id, 0, EVIDENCE, [approval, approval], sender=stranger)

    assert escrow.getMilestone(safe_grant.id, 0).approvals == 0
    assert escrow.signatureState(safe, digest) == SignatureState.UNUSED


def test_second_safe_signature_reverts(escrow, safe, safe_owners, safe_grant, stranger):
    first, _ = safe_approval(escrow, safe, safe_owners[:2], safe_grant)
    escrow.approveWithSignatures(safe_grant.id, 0, EVIDENCE, [first], sender=stranger)
    second, second_digest = safe_approval(escrow, safe, safe_owners[:2], safe_grant, expiry=EXPIRY + 1)

    with reverts(escrow.AlreadyAttested, grantId=safe_grant.id, milestoneIndex=0, attestor=safe.address):
        escrow.approveWithSignatures(safe_grant.id, 0, EVIDENCE, [second], sender=stranger)

    assert escrow.getMilestone(safe_grant.id, 0).approvalCount == 1
    assert escrow.signatureState(safe, second_digest) == SignatureState.UNUSED


# ---------------------------------------------------------------------------------------------
# The Safe acting by transaction
# ---------------------------------------------------------------------------------------------


def test_safe_transaction_approval_counts(
    escrow, safe, safe_owners, safe_grant, attestors, stranger, ngo
):
    call = escrow.approve.encode_input(safe_grant.id, 0, EVIDENCE)

    tx, safe_tx_hash = exec_transaction(safe, safe_owners[:2], escrow, call, sender=stranger)

    assert tx.events == [
        expected_event(escrow.MilestoneApproved, grantId=safe_grant.id, milestoneIndex=0, attestor=safe, evidenceHash=EVIDENCE, approvalCount=1),
        expected_event(safe.ExecutionSuccess, txHash=safe_tx_hash, payment=0),
    ]

    approval, digest = eoa_approval(escrow, attestors[0], safe_grant)
    tx = escrow.approveWithSignatures(safe_grant.id, 0, EVIDENCE, [approval], sender=stranger)

    assert tx.events == [
        expected_event(escrow.SignatureRelayed, grantId=safe_grant.id, signer=attestors[0], relayer=stranger, digest=digest),
        expected_event(escrow.MilestoneApproved, grantId=safe_grant.id, milestoneIndex=0, attestor=attestors[0], evidenceHash=EVIDENCE, approvalCount=2),
        expected_event(escrow.MilestoneReleased, grantId=safe_grant.id, milestoneIndex=0, recipient=ngo, evidenceHash=EVIDENCE, amount=1_000),
        expected_event(escrow.Payout, grantId=safe_grant.id, account=ngo, token=ETH, kind=PayoutKind.RELEASE, milestoneIndex=0, amount=1_000, credited=False),
    ]
    assert escrow.getMilestone(safe_grant.id, 0).approvals == 0b011


def test_safe_revokes_by_transaction(escrow, safe, safe_owners, safe_grant, stranger):
    approval, digest = safe_approval(escrow, safe, safe_owners[:2], safe_grant)
    call = escrow.revokeSignature.encode_input(digest)

    tx, safe_tx_hash = exec_transaction(safe, safe_owners[1:], escrow, call, sender=stranger)

    assert tx.events == [
        expected_event(escrow.SignatureRevoked, signer=safe, digest=digest),
        expected_event(safe.ExecutionSuccess, txHash=safe_tx_hash, payment=0),
    ]
    assert escrow.signatureState(safe, digest) == SignatureState.REVOKED

    with reverts(escrow.SignatureWasRevoked, signer=safe.address, digest=digest):
        escrow.approveWithSignatures(safe_grant.id, 0, EVIDENCE, [approval], sender=stranger)


# ---------------------------------------------------------------------------------------------
# The Safe itself
#
# These tests come last because they need none of the grant roles: if they ran first, ape
# would have to rebuild the module's Safe when the first grant test brings in those
# session-scoped fixtures.
# ---------------------------------------------------------------------------------------------


def test_safe_setup_two_of_three(safe, safe_deployment, safe_owners):
    assert safe.VERSION() == SAFE_VERSION
    assert sorted(safe.getOwners()) == sorted(owner.address for owner in safe_owners)
    assert safe.getThreshold() == SAFE_THRESHOLD
    assert fallback_handler_of(safe) == safe_deployment.fallback_handler.address


def test_safe_message_hash_matches_handler(safe, safe_deployment):
    message = eth_abi.encode(["bytes32"], [b"\xab" * 32])

    expected = safe_deployment.fallback_handler.getMessageHashForSafe(safe, message)

    assert safe_message_hash(safe, message) == expected


def test_safe_accepts_two_owner_signatures(safe, safe_owners):
    digest = b"\xab" * 32

    result = call_is_valid_signature(safe, digest, erc1271_signature(safe, safe_owners[:2], digest))

    assert result == ERC1271_MAGIC_VALUE + b"\x00" * 28


def test_safe_rejects_one_owner_signature(safe, safe_owners):
    digest = b"\xab" * 32

    # GS020 is Safe's error code for fewer signature bytes than its threshold needs.
    with ape.reverts("GS020"):
        call_is_valid_signature(safe, digest, erc1271_signature(safe, safe_owners[:1], digest))
