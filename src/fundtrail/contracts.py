"""Contract instances for FundTrail's contracts and for the ERC-20 tokens grants are paid in.

NOTE: The contract types come from ape's local project, so FundTrail must run from the
repository (or an ape project that compiles the same contracts). Outside it, `project` has no
`MilestoneEscrow` and loading a deployment fails with ape's `ProjectError`.
"""

import logging

from fundtrail.deployments import ContractRecord, Deployment

logger = logging.getLogger(__name__)

ESCROW = "MilestoneEscrow"
REGISTRY = "DonationRegistry"

# The part of ERC-20 that FundTrail calls. Tokens such as USDT return nothing from `approve`,
# which is harmless here: ape does not decode what a transaction returns.
_ERC20_ABI = [
    {
        "type": "function",
        "name": name,
        "stateMutability": "view",
        "inputs": inputs,
        "outputs": outputs,
    }
    for name, inputs, outputs in (
        ("decimals", [], [{"name": "", "type": "uint8"}]),
        ("symbol", [], [{"name": "", "type": "string"}]),
        ("balanceOf", [{"name": "account", "type": "address"}], [{"name": "", "type": "uint256"}]),
        (
            "allowance",
            [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}],
            [{"name": "", "type": "uint256"}],
        ),
    )
] + [
    {
        "type": "function",
        "name": "approve",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "spender", "type": "address"}, {"name": "amount", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    }
]


def escrow_at(address: str):
    from ape import project

    return project.MilestoneEscrow.at(address)


def registry_at(address: str):
    from ape import project

    return project.DonationRegistry.at(address)


def erc20_at(address: str):
    """Return a contract instance for the ERC-20 token at `address`, using a minimal ABI."""
    from ape import chain

    return chain.contracts.instance_at(address, abi=_ERC20_ABI, fetch_from_explorer=False)


def deploy_contracts(
    account, *, registrar: str, network: str, tokens: dict[str, str] | None = None
) -> Deployment:
    """Deploy the escrow, then the registry that feeds it, and return their records.

    `registrar` becomes the registry's owner, which verifies and suspends projects.
    `network` is the name the record is stored under, such as `ethereum:sepolia:node`.
    """
    from ape import chain, project

    escrow = account.deploy(project.MilestoneEscrow)
    registry = account.deploy(project.DonationRegistry, escrow.address, registrar)
    records = {
        name: _record(instance) for name, instance in ((ESCROW, escrow), (REGISTRY, registry))
    }
    logger.info(
        "Deployed %s at %s and %s at %s on %s",
        ESCROW,
        escrow.address,
        REGISTRY,
        registry.address,
        network,
    )

    return Deployment(
        network=network, chain_id=chain.chain_id, contracts=records, tokens=dict(tokens or {})
    )


def _record(instance) -> ContractRecord:
    from ape import chain

    receipt = chain.get_receipt(instance.txn_hash)
    return ContractRecord(
        address=instance.address, block=receipt.block_number, tx_hash=receipt.txn_hash
    )
