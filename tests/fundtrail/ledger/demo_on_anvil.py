"""Run the demo on the anvil at $APE_FOUNDRY_HOST and save its deployment to a file.

The anvil audit test runs this as a subprocess, because its own ape session is connected to
the in-process chain. Usage: python demo_on_anvil.py DEPLOYMENTS_FILE
"""

import sys
from pathlib import Path

from ape import accounts, chain, networks

from fundtrail.contracts import ESCROW, REGISTRY
from fundtrail.demo import STABLECOIN_SYMBOL, run_demo
from fundtrail.deployments import ContractRecord, Deployment, DeploymentsFile

NETWORK = "ethereum:local:foundry"


def creation_record(address: str) -> ContractRecord:
    """Return the record of the contract at `address`, found among the chain's receipts."""
    for block in chain.blocks.range(0, chain.blocks.height + 1):
        for transaction in block.transactions:
            receipt = chain.get_receipt(transaction.txn_hash.hex())
            if receipt.contract_address == address:
                return ContractRecord(address, receipt.block_number, receipt.txn_hash)
    raise LookupError(f"No deployment of {address} on this chain")


def main(path: Path) -> None:
    with networks.parse_network_choice(NETWORK):
        result = run_demo(accounts.test_accounts)
        client = result.client
        contracts = {
            ESCROW: creation_record(client.escrow.address),
            REGISTRY: creation_record(client.registry.address),
        }
        tokens = {STABLECOIN_SYMBOL: result.stablecoin.address}
        DeploymentsFile(path).save(Deployment(NETWORK, chain.chain_id, contracts, tokens))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
