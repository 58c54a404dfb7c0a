"""Ledger indexes of the contracts on the in-process chain, for the read-side tests."""

import pytest

from fundtrail.contracts import ESCROW, REGISTRY
from fundtrail.deployments import ContractRecord, Deployment
from fundtrail.ledger import open_ledger

NETWORK = "ethereum:local:test"


def deployment_of(escrow_address: str, registry_address: str, chain_id: int, tokens=None) -> Deployment:
    """Return a deployment record of an escrow and registry, read from block 0."""
    records = {
        ESCROW: ContractRecord(escrow_address, 0, "0x" + "00" * 32),
        REGISTRY: ContractRecord(registry_address, 0, "0x" + "00" * 32),
    }
    return Deployment(NETWORK, chain_id, records, dict(tokens or {}))


@pytest.fixture
def open_index(tmp_path, chain):
    """`open_index(escrow_address, registry_address)` returns an indexer on a fresh SQLite file."""
    counter = iter(range(100))

    def open_for(escrow_address: str, registry_address: str):
        deployment = deployment_of(escrow_address, registry_address, chain.chain_id)
        database = tmp_path / f"ledger-{next(counter)}.sqlite"
        return open_ledger(deployment, chain.provider.web3, database=str(database))

    return open_for
