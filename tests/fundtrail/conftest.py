"""Clients, grants and evidence in known states for the client and CLI tests."""

import pytest
from grant_setup import spec_data

from fundtrail.accounts import resolve_account
from fundtrail.client import FundTrail
from fundtrail.evidence import hash_file
from fundtrail.spec import GrantSpec


@pytest.fixture
def client(escrow, registry, usdc):
    return FundTrail(escrow, registry, tokens={"USDC": usdc.address})


@pytest.fixture
def resolve(client):
    """`resolve(**changes)` returns the ResolvedGrant of `SPEC` with `changes` applied."""

    def resolve_spec(**changes):
        spec = GrantSpec.from_data(spec_data(**changes))
        token = client.token_info(spec.token)
        return spec.resolve(now=client.now(), token=token, resolve_account=resolve_account)

    return resolve_spec


@pytest.fixture
def grant_id(client, resolve, grant_maker):
    """A USDC grant funded in full by the grant maker, so its milestones are open."""
    created, _ = client.create_grant(resolve(), grant_maker, fund=True)
    return created


@pytest.fixture
def evidence_file(tmp_path):
    path = tmp_path / "hotline-report.md"
    path.write_text(
        "# Hotline staffing report\n\nStaffed around the clock in January.\n", encoding="utf-8"
    )
    return path


@pytest.fixture
def evidence_hash(evidence_file):
    return hash_file(evidence_file)


@pytest.fixture
def submitted(client, grant_id, ngo, evidence_hash):
    """Milestone 0 of `grant_id` with `evidence_hash` awaiting attestation."""
    client.submit_evidence(grant_id, 0, evidence_hash, "ipfs://bafy-evidence-0", ngo)
    return evidence_hash
