"""Ledgers of real contracts on the in-process chain, for the audit tests.

The test modules import these fixtures by name. They live here rather than in conftest.py so
that they sit beside the ledger's shared fixtures without depending on them.
"""

import pytest

from fundtrail.contracts import ESCROW, REGISTRY
from fundtrail.deployments import ContractRecord, Deployment
from fundtrail.demo import STABLECOIN_SYMBOL, run_demo
from fundtrail.ledger import open_ledger

NETWORK = "ethereum:local:test"


def record_deployment(escrow, registry, chain, tokens=None, block=0) -> Deployment:
    """Return the deployment record of `escrow` and `registry`, deployed at or after `block`."""
    records = {
        ESCROW: ContractRecord(escrow.address, block, escrow.txn_hash),
        REGISTRY: ContractRecord(registry.address, block, registry.txn_hash),
    }
    return Deployment(NETWORK, chain.chain_id, records, dict(tokens or {}))


@pytest.fixture
def demo(accounts):
    """The demo's whole lifecycle, run on the in-process chain: see `fundtrail.demo.run_demo`."""
    return run_demo(accounts)


@pytest.fixture
def demo_deployment(demo, chain) -> Deployment:
    client = demo.client
    return record_deployment(
        client.escrow,
        client.registry,
        chain,
        tokens={STABLECOIN_SYMBOL: demo.stablecoin.address},
        block=client.start_block,
    )


@pytest.fixture
def ledger_path(tmp_path):
    return tmp_path / "ledger.sqlite"


@pytest.fixture
def open_index(chain, ledger_path):
    """`open_index(deployment)` returns an indexer on the SQLite file `ledger_path`."""

    def open_for(deployment: Deployment):
        return open_ledger(deployment, chain.provider.web3, database=str(ledger_path))

    return open_for


@pytest.fixture
def demo_index(demo_deployment, open_index):
    """An indexer of the demo's contracts, synced to the head."""
    indexer = open_index(demo_deployment)
    indexer.sync()
    return indexer
