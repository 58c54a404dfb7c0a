"""The read side of FundTrail: an index of every event, the books rebuilt from it, the
reconciliation audit, statements and the dashboard.

`open_ledger` ties a ledger database to one deployment; `Indexer.sync` brings it up to date.
"""

import logging
from pathlib import Path

from fundtrail.contracts import ESCROW, REGISTRY
from fundtrail.deployments import Deployment
from fundtrail.errors import DeploymentError
from fundtrail.ledger.decode import EventDecoder
from fundtrail.ledger.indexer import Indexer, Ledger, RangePolicy, connect
from fundtrail.ledger.reader import ChainReader

logger = logging.getLogger(__name__)

DATA_FOLDER = Path(".fundtrail/ledger")
"""Folder of the default SQLite ledgers, relative to the working folder."""


def default_database(deployment: Deployment) -> Path:
    """Return the SQLite file of `deployment`: one per chain and escrow, so a redeployment starts
    a new ledger."""
    escrow = deployment.contracts[ESCROW].address
    return DATA_FOLDER / f"{deployment.chain_id}-{escrow}.sqlite"


def contract_abis() -> dict[str, list[dict]]:
    """Return the compiled ABIs of the escrow and the registry, from ape's project."""
    from ape import project

    try:
        contract_types = {name: getattr(project, name).contract_type for name in (ESCROW, REGISTRY)}
    except AttributeError:
        raise DeploymentError(
            f"The ape project in {Path.cwd()} has no {ESCROW} contract. FundTrail reads the "
            "contracts' ABIs from its own ape project, so run fundtrail from the FundTrail "
            "repository folder."
        ) from None
    return {
        name: [entry.model_dump(mode="json", by_alias=True) for entry in contract_type.abi]
        for name, contract_type in contract_types.items()
    }


def open_ledger(
    deployment: Deployment,
    web3,
    *,
    database: str | None = None,
    confirmations: int = 0,
    policy: RangePolicy = RangePolicy(),
    abis: dict[str, list[dict]] | None = None,
) -> Indexer:
    """Return an indexer for `deployment`'s ledger in `database` (a path or SQLAlchemy URL)."""
    # The ABIs come first: outside the repository they are missing, and nothing should be
    # created there before that error.
    abis = abis or contract_abis()
    if database is None:
        path = default_database(deployment)
        path.parent.mkdir(parents=True, exist_ok=True)
        database = str(path)
    escrow = deployment.contracts[ESCROW]
    registry = deployment.contracts[REGISTRY]
    ledger = Ledger(
        connect(database),
        chain_id=deployment.chain_id,
        escrow=escrow.address,
        registry=registry.address,
        start_block=min(escrow.block, registry.block),
    )
    decoder = EventDecoder(
        {"escrow": (escrow.address, abis[ESCROW]), "registry": (registry.address, abis[REGISTRY])}
    )
    return Indexer(ledger, ChainReader(web3), decoder, confirmations=confirmations, policy=policy)
