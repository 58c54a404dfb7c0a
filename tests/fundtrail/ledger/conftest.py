"""Fixtures for the ledger tests: a deployment record of the test contracts and its indexer,
and a ledger of the demo's whole lifecycle."""

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from fundtrail.contracts import ESCROW, REGISTRY
from fundtrail.deployments import ContractRecord, Deployment, DeploymentsFile
from fundtrail.ledger import contract_abis, open_ledger, schema
from fundtrail.ledger.books import Books, rebuild
from fundtrail.ledger.indexer import connect

NO_TX = "0x" + "00" * 32


@pytest.fixture(scope="session")
def abis():
    return contract_abis()


def deployment_of(escrow_address: str, registry_address: str, chain_id: int, block: int = 0):
    """A deployment record for contracts that a test deployed itself."""

    def record(address):
        return ContractRecord(address=address, block=block, tx_hash=NO_TX)

    return Deployment(
        network="ethereum:local:test",
        chain_id=chain_id,
        contracts={ESCROW: record(escrow_address), REGISTRY: record(registry_address)},
        tokens={},
    )


@pytest.fixture(scope="session")
def make_deployment():
    """`make_deployment(escrow, registry, chain_id, block=0)`: `deployment_of` as a fixture, for
    test modules, which cannot import this conftest by name."""
    return deployment_of


@pytest.fixture
def deployment(escrow, registry, chain):
    return deployment_of(escrow.address, registry.address, chain.chain_id)


@pytest.fixture
def make_indexer(deployment, chain, abis, tmp_path):
    """`make_indexer(**options)` opens the test deployment's ledger in a fresh SQLite file."""

    def make(database=None, **options):
        return open_ledger(
            deployment,
            chain.provider.web3,
            database=database or str(tmp_path / "ledger.sqlite"),
            abis=abis,
            **options,
        )

    return make


POSTGRES_URL_ENV_VAR = "FUNDTRAIL_TEST_POSTGRES_URL"
"""Set by .ci/run to the server it started; without it, the fixture starts its own."""
POSTGRES_PORT = 8686
ROOT = Path(__file__).parents[3]


@pytest.fixture(scope="session")
def postgres_server():
    """The URL of a PostgreSQL database for the ledger tests, from .ci/run or started here."""
    url = os.environ.get(POSTGRES_URL_ENV_VAR)
    if url:
        yield url
        return
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        message = "PostgreSQL is not installed: run `apt-get install -y postgresql`."
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # As root, the server runs as the `postgres` user, which cannot enter pytest's private
    # temporary folders. This folder is readable by all, because it contains test data only.
    folder = Path(tempfile.mkdtemp(prefix="fundtrail-postgres-"))
    folder.chmod(0o755)
    script = ROOT / "toolchain" / "postgres.sh"
    started = subprocess.run(
        [script, "start", folder / "cluster", str(POSTGRES_PORT)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if started.returncode != 0:
        pytest.fail(f"toolchain/postgres.sh start failed: {started.stderr}")
    yield started.stdout.strip()
    subprocess.run([script, "stop", folder / "cluster"], check=True, timeout=60)
    folder.rmdir()


@pytest.fixture
def postgres_url(postgres_server):
    """`postgres_server`, emptied of every ledger table."""
    engine = connect(postgres_server)
    schema.metadata.drop_all(engine)
    engine.dispose()
    return postgres_server


@dataclass
class DemoLedger:
    result: object
    """The `DemoResult` of `run_demo`."""
    deployments_path: Path
    """A deployments file that records the demo's deployment."""
    database: str
    """The SQLite file the indexer wrote."""
    indexer: object
    books: Books


@pytest.fixture(scope="module")
def demo_ledger(tmp_path_factory, chain, abis):
    """The demo run on the test chain, with every event indexed and the books rebuilt.

    Module-scoped, because the demo takes a few seconds and the tests only read its chain and
    ledger.
    """
    from ape import accounts

    from fundtrail.demo import run_demo

    folder = tmp_path_factory.mktemp("demo-ledger")
    result = run_demo(accounts.test_accounts)
    deployments_path = folder / "deployments.json"
    DeploymentsFile(deployments_path).save(result.deployment)
    database = str(folder / "ledger.sqlite")
    indexer = open_ledger(result.deployment, chain.provider.web3, database=database, abis=abis)
    indexer.sync()
    return DemoLedger(result, deployments_path, database, indexer, rebuild(indexer.ledger.events()))


@pytest.fixture
def index_contracts(tmp_path, chain, abis):
    """`index_contracts(escrow_address, registry_address)` returns an indexer of those contracts
    on a fresh SQLite file."""
    counter = iter(range(100))

    def open_for(escrow_address: str, registry_address: str):
        deployment = deployment_of(escrow_address, registry_address, chain.chain_id)
        database = tmp_path / f"ledger-{next(counter)}.sqlite"
        return open_ledger(deployment, chain.provider.web3, database=str(database), abis=abis)

    return open_for
