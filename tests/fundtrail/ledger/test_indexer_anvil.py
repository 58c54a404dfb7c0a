"""The ledger against a real anvil process: the index's raw JSON-RPC reads, batched block
headers and a reorganisation made with anvil's snapshot and revert, and the audit's raw views.

The tests deploy the contracts and send their transactions with web3.py, so they need no ape
network. Their anvil runs on port 8670, apart from every other test's chain.
"""

import subprocess
import time
from pathlib import Path

import pytest
from web3 import HTTPProvider, Web3

from fundtrail.contracts import ESCROW, REGISTRY
from fundtrail.ledger import open_ledger
from fundtrail.ledger.schema import events
from fundtrail.ledger.views import ChainViewError, ChainViews, ViewReverted

pytestmark = pytest.mark.anvil

ROOT = Path(__file__).parents[3]
ANVIL = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
PORT = 8670
STARTUP_TIMEOUT_SECONDS = 30
METADATA_HASH = b"\x11" * 32


@pytest.fixture
def web3():
    process = subprocess.Popen(
        [ANVIL, "--host", "127.0.0.1", "--port", str(PORT), "--hardfork", "shanghai"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    connection = Web3(HTTPProvider(f"http://127.0.0.1:{PORT}", request_kwargs={"timeout": 10}))
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not connection.is_connected():
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail(f"anvil did not start on port {PORT}")
        time.sleep(0.1)
    yield connection
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def contracts(web3, project, abis):
    """The escrow and the registry, deployed by anvil's first account, as web3 contracts."""
    deployer = web3.eth.accounts[0]

    def deploy(name, *arguments):
        factory = web3.eth.contract(
            abi=abis[name], bytecode=getattr(project, name).contract_type.get_deployment_bytecode()
        )
        receipt = web3.eth.wait_for_transaction_receipt(
            factory.constructor(*arguments).transact({"from": deployer})
        )
        return web3.eth.contract(address=receipt.contractAddress, abi=abis[name])

    escrow = deploy(ESCROW)
    registry = deploy(REGISTRY, escrow.address, deployer)
    return escrow, registry


def register(web3, registry, uri: str):
    account = web3.eth.accounts[1]
    transaction = registry.functions.registerProject(account, account, METADATA_HASH, uri)
    return web3.eth.wait_for_transaction_receipt(transaction.transact({"from": account}))


def test_anvil_reorganisation_is_rolled_back_and_read_again(web3, contracts, abis, tmp_path, make_deployment):
    escrow, registry = contracts
    deployment = make_deployment(escrow.address, registry.address, web3.eth.chain_id)
    indexer = open_ledger(deployment, web3, database=str(tmp_path / "ledger.sqlite"), abis=abis)
    register(web3, registry, "ipfs://bafy-project-1")
    indexer.sync()
    fork = web3.eth.block_number
    snapshot = web3.provider.make_request("evm_snapshot", [])["result"]
    register(web3, registry, "ipfs://bafy-orphaned")
    register(web3, registry, "ipfs://bafy-orphaned-too")
    indexer.sync()
    web3.provider.make_request("evm_revert", [snapshot])
    canonical = register(web3, registry, "ipfs://bafy-canonical")
    web3.provider.make_request("anvil_mine", [hex(3)])

    result = indexer.sync()

    assert result.rolled_back_to == fork
    rows = indexer.ledger.events(events.c.event == "ProjectRegistered")
    assert [(row["block_number"], row["args"]["metadataUri"]) for row in rows] == [
        (fork, "ipfs://bafy-project-1"),
        (canonical.blockNumber, "ipfs://bafy-canonical"),
    ]
    block = web3.eth.get_block(canonical.blockNumber)
    assert rows[1]["timestamp"] == block.timestamp
    assert rows[1]["tx_hash"] == "0x" + canonical.transactionHash.hex()
    assert indexer.ledger.last_block == web3.eth.block_number


def test_anvil_restarted_empty_rolls_back_to_the_start(web3, contracts, abis, tmp_path, make_deployment):
    escrow, registry = contracts
    deployment = make_deployment(escrow.address, registry.address, web3.eth.chain_id, block=1)
    indexer = open_ledger(deployment, web3, database=str(tmp_path / "ledger.sqlite"), abis=abis)
    snapshot = web3.provider.make_request("evm_snapshot", [])["result"]
    register(web3, registry, "ipfs://bafy-project-1")
    web3.provider.make_request("anvil_mine", [hex(5)])
    indexer.sync()
    # Reverting to before the registration and mining fewer blocks leaves the index ahead of
    # the chain, as after an anvil restart with a shorter chain.
    web3.provider.make_request("evm_revert", [snapshot])

    result = indexer.sync()

    assert result.rolled_back_to == web3.eth.block_number
    # Only the registry's deployment, which set its owner, is left.
    assert [(row["event"], row["block_number"]) for row in indexer.ledger.events()] == [
        ("OwnershipTransferred", 2)
    ]


def test_views_tell_a_revert_from_a_node_failure(web3, contracts, abis):
    escrow, registry = contracts
    views = ChainViews(web3, escrow=escrow.address, registry=registry.address, abis=abis)
    head = web3.eth.block_number

    assert views.escrow("grantCount", block=head) == 0
    with pytest.raises(ViewReverted) as reverted:
        views.escrow("getGrant", 1, block=head)
    with pytest.raises(ChainViewError) as failed:
        views.escrow("grantCount", block=head + 1_000)

    assert str(reverted.value).startswith(f"MilestoneEscrow.getGrant(1,) reverted at block {head}: ")
    assert not isinstance(failed.value, ViewReverted)
    assert str(failed.value).startswith(f"MilestoneEscrow.grantCount() failed at block {head + 1_000}: ")
