"""The co-funded grant and project that the statement and report tests read, and helpers.

The roles follow tests/conftest.py. Amounts are in USDC base units (6 decimals).
"""

from eth_utils import keccak

from fundtrail.donor import donor_commitment
from fundtrail.ledger.statements import Source, load_books
from fundtrail.signing import (
    EVIDENCE_SUBMISSION,
    MILESTONE_APPROVAL,
    ApeAccountSigner,
    approval_message,
    evidence_message,
    sign_message,
)
from fundtrail.snapshot import export_snapshot
from fundtrail.units import TokenInfo

DAY = 24 * 60 * 60
USDC = 10**6
GRANT_MAKER_SHARE = 3_999_999_999
DONOR_SHARE = 2_000_000_001
DIRECT_GIFT = 250 * USDC
EVIDENCE = [keccak(text=f"evidence {index}") for index in range(3)]
BAD_EVIDENCE = keccak(text="evidence the attestors reject")
REASON = keccak(text="the report covers the wrong month")
DONOR_REF = donor_commitment(b"salt kept by the donor", "gift into grant")
GIFT_REF = donor_commitment(b"another salt of the direct donor", "direct gift")
METADATA = keccak(text="project description")


def hex32(value: bytes) -> str:
    return "0x" + value.hex()


def usdc_info(usdc) -> TokenInfo:
    return TokenInfo(usdc.address, "USDC", 6)


def read_ledger(indexer):
    indexer.sync()
    return load_books(indexer.ledger), Source.from_ledger(indexer.ledger)


# A co-funded USDC grant of 1,000 + 2,000 + 3,000. The grant maker funds first, and the donor
# gives through the registry. Two milestones are released: the second after one rejected
# evidence, with relayed evidence and one relayed approval. The third is reclaimed after its deadline. The NGO also
# runs a verified project, which the donor gives to directly.


def run_cofunded(client, resolved, grant_maker, donor, ngo, attestors, registrar, stranger, chain):
    """Run the co-funded scenario, and return the grant id, the project id and the receipts by step."""
    receipts = {}
    project_id, receipts["register"] = client.register_project(
        ngo.address, ngo.address, METADATA, "ipfs://bafy-project", ngo
    )
    receipts["verify"] = client.verify_project(project_id, registrar)
    _, receipts["gift"] = client.donate(project_id, client.token_info("USDC").address, DIRECT_GIFT, GIFT_REF, donor)

    grant_id, receipts["create"] = client.create_grant(resolved, grant_maker)
    receipts["fund"] = client.fund(grant_id, GRANT_MAKER_SHARE, grant_maker)
    _, receipts["donate"] = client.donate_to_grant(grant_id, DONOR_SHARE, DONOR_REF, donor)

    receipts["evidence0"] = client.submit_evidence(grant_id, 0, EVIDENCE[0], "ipfs://bafy-e0", ngo)
    receipts["approve0a"] = client.approve(grant_id, 0, EVIDENCE[0], attestors[0])
    receipts["release0"] = client.approve(grant_id, 0, EVIDENCE[0], attestors[1])

    receipts["bad"] = client.submit_evidence(grant_id, 1, BAD_EVIDENCE, "ipfs://bafy-bad", ngo)
    receipts["reject1a"] = client.reject(grant_id, 1, BAD_EVIDENCE, REASON, attestors[0])
    receipts["reject1b"] = client.reject(grant_id, 1, BAD_EVIDENCE, REASON, attestors[2])
    snapshot = export_snapshot(client, grant_id)
    expiry = snapshot.block_timestamp + 7 * DAY
    message = evidence_message(ngo.address, grant_id, 1, EVIDENCE[1], "ipfs://bafy-e1", expiry)
    signed = sign_message(ApeAccountSigner(ngo), EVIDENCE_SUBMISSION, snapshot.eip712_domain, message)
    receipts["evidence1"] = client.submit_evidence_with_signature(
        grant_id, 1, EVIDENCE[1], "ipfs://bafy-e1", expiry, signed.signature_bytes, stranger
    )
    receipts["approve1"] = client.approve(grant_id, 1, EVIDENCE[1], attestors[1])
    message = approval_message(attestors[2].address, grant_id, 1, EVIDENCE[1], expiry)
    signed = sign_message(ApeAccountSigner(attestors[2]), MILESTONE_APPROVAL, snapshot.eip712_domain, message)
    receipts["release1"] = client.approve_with_signatures(
        grant_id, 1, EVIDENCE[1], [(attestors[2].address, expiry, signed.signature_bytes)], stranger
    )

    chain.pending_timestamp = client.grant(grant_id).milestones[2].deadline
    receipts["reclaim2"] = client.reclaim(grant_id, 2, stranger)
    return grant_id, project_id, receipts
