"""Clients, grants and evidence in known states for the client and CLI tests."""

import pytest
from click.testing import CliRunner
from grant_setup import spec_data

from fundtrail.accounts import resolve_account
from fundtrail.cli import cli
from fundtrail.client import FundTrail
from fundtrail.contracts import ESCROW, REGISTRY
from fundtrail.deployments import ContractRecord, Deployment, DeploymentsFile
from fundtrail.evidence import hash_file
from fundtrail.spec import GrantSpec

NETWORK = "ethereum:local:test"
"""The CLI tests' `--network`, which ape resolves to the provider this test session runs."""


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


@pytest.fixture
def deployments(tmp_path, escrow, registry, usdc, chain):
    """A deployments file that points at the session's escrow, registry and USDC."""
    path = tmp_path / "deployments.json"
    records = {
        ESCROW: ContractRecord(escrow.address, 0, escrow.txn_hash),
        REGISTRY: ContractRecord(registry.address, 0, registry.txn_hash),
    }
    DeploymentsFile(path).save(Deployment(NETWORK, chain.chain_id, records, {"USDC": usdc.address}))
    return path


@pytest.fixture
def invoke_cli(chain):
    """`invoke_cli(argv, env)` runs the `fundtrail` CLI in-process and returns click's result."""

    def invoke(argv, env=None):
        # NOTE: For `--network`, ape 0.8.51 connects a second provider object, finds the
        # session's provider already connected and disconnects the second one, and the test
        # provider's disconnect empties the chain's snapshot list. ape's per-test isolation
        # needs that list, so it is put back after every command.
        snapshots = list(chain._snapshots[chain.chain_id])
        try:
            # A wide terminal keeps hashes and addresses on one line in the tables.
            return CliRunner(mix_stderr=False).invoke(
                cli, [str(arg) for arg in argv], env={"COLUMNS": "300", **(env or {})}
            )
        finally:
            chain._snapshots[chain.chain_id] = snapshots

    return invoke
