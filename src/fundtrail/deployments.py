"""The deployments file: where FundTrail's contracts and known tokens live on each network.

The file is JSON with one entry per ape network choice, such as "ethereum:sepolia:node":

    {
      "networks": {
        "ethereum:sepolia:node": {
          "chain_id": 11155111,
          "contracts": {"MilestoneEscrow": {"address": "0x...", "block": 123, "tx_hash": "0x..."}},
          "tokens": {"USDC": "0x..."}
        }
      },
      "version": 1
    }

NOTE: `save` reads the file, changes one entry and writes it back, with no lock. Two processes
that save at the same moment can lose one of the two entries, so deploy one network at a time.
"""

import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fundtrail.errors import DeploymentError

logger = logging.getLogger(__name__)

DEFAULT_PATH = Path(".fundtrail/deployments.json")
"""The deployments file, relative to the working folder, unless FUNDTRAIL_DEPLOYMENTS is set."""

ENV_VAR = "FUNDTRAIL_DEPLOYMENTS"
"""Environment variable that overrides `DEFAULT_PATH`."""

FORMAT_VERSION = 1
"""Version of the file's layout, stored in the file so that later versions can migrate it."""


def is_in_process(network: str) -> bool:
    """Return whether `network` is ape's in-process chain, such as "ethereum:local:test".

    That chain lives only as long as the command that started it, so nothing deployed there
    is left for a later command.
    """
    return network.split(":")[1:] == ["local", "test"]


def deploy_advice(network: str) -> str:
    """Return the sentences that tell the user how to get a deployment for `network`."""
    if is_in_process(network):
        return (
            f"{network} is ape's in-process chain, the default without --network, and it "
            "disappears when each command ends, so no later command can use a deployment "
            "there. Deploy to a chain that keeps running, such as the anvil of `make anvil` "
            "(see docs/local-chains.md), and pass its --network."
        )
    return f"Run `fundtrail deploy --network {network}` first."


@dataclass
class ContractRecord:
    """One deployed contract."""

    address: str
    """The contract's checksum address."""
    block: int
    """Number of the block that contains the deployment."""
    tx_hash: str
    """Hash of the deployment transaction, as "0x" and 64 hex digits."""


@dataclass
class Deployment:
    """The contracts and tokens recorded for one network."""

    network: str
    """The ape network choice, such as "ethereum:local:test"."""
    chain_id: int
    """The chain id the contracts were deployed to, to detect a different chain later."""
    contracts: dict[str, ContractRecord] = field(default_factory=dict)
    """Deployed contracts by contract name, such as "MilestoneEscrow"."""
    tokens: dict[str, str] = field(default_factory=dict)
    """Token addresses by symbol, such as "USDC", for grant specs that name a token by symbol."""

    def contract(self, name: str) -> ContractRecord:
        """Return the record of contract `name`, or raise `DeploymentError` naming the fix."""
        try:
            return self.contracts[name]
        except KeyError:
            raise DeploymentError(
                f"No {name} deployment recorded for network {self.network}. "
                + deploy_advice(self.network)
            ) from None

    def token_address(self, symbol: str) -> str | None:
        """Return the address recorded for token `symbol`, ignoring case, or None if unknown."""
        for known, address in self.tokens.items():
            if known.casefold() == symbol.casefold():
                return address
        return None


class DeploymentsFile:
    """The deployments file at `path`, or at `$FUNDTRAIL_DEPLOYMENTS`, or at `DEFAULT_PATH`."""

    def __init__(self, path: Path | None = None):
        if path is None:
            path = Path(os.environ.get(ENV_VAR) or DEFAULT_PATH)
        self.path = Path(path)
        """Where the file is read from and written to."""

    def load(self, network: str) -> Deployment:
        """Return the deployment recorded for `network`.

        Raise `DeploymentError` naming the network, the file and the fix if the file or the
        entry is missing or unreadable.
        """
        if not self.path.exists():
            raise DeploymentError(
                f"No deployments file at {self.path}, so nothing is recorded for network "
                f"{network}. {deploy_advice(network)} Or set {ENV_VAR} to the deployments file "
                "you meant."
            )
        entries = self._read()
        if network not in entries:
            raise DeploymentError(self._missing_network_message(network, sorted(entries)))
        return self._parse(network, entries[network])

    def _missing_network_message(self, network: str, recorded: list[str]) -> str:
        """Explain that `network` has no entry, and point to a recorded network if one can help.

        Deploying is suggested only when no other network is recorded, because a missing or
        mistyped --network is the more likely mistake. A recorded in-process chain is never
        suggested, because its deployment ended with the command that made it.
        """
        message = (
            f"No deployment recorded for network {network} in {self.path} "
            f"(recorded networks: {', '.join(recorded) or 'none'}). "
        )
        usable = [known for known in recorded if not is_in_process(known)]
        if not usable:
            return (
                message
                + deploy_advice(network)
                + f" Or set {ENV_VAR} to the deployments file you meant."
            )

        if len(usable) == 1:
            message += f"Add `--network {usable[0]}` to use the deployment recorded there"
        else:
            message += (
                f"Add --network with one of {', '.join(usable)}, such as "
                f"`--network {usable[0]}`, to use the deployment recorded there"
            )
        message += f", or set {ENV_VAR} to the deployments file you meant."
        if is_in_process(network):
            message += (
                f" {network} is ape's in-process chain, the default without --network, and it "
                "disappears when each command ends."
            )
        return message

    def save(self, deployment: Deployment) -> None:
        """Record `deployment`, replacing any earlier entry for its network and keeping the rest.

        The file is written to a temporary file next to it and then renamed over it, so a crash
        leaves either the old file or the new one, never half of one.
        """
        entries = self._read()
        entry = asdict(deployment)
        del entry["network"]
        entries[deployment.network] = entry
        document = {"networks": entries, "version": FORMAT_VERSION}
        text = json.dumps(document, indent=2, sort_keys=True)

        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(text + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        logger.debug("Saved the %s deployment to %s", deployment.network, self.path)

    def networks(self) -> list[str]:
        """Return the networks with a recorded deployment, sorted, or none if there is no file."""
        return sorted(self._read())

    def _read(self) -> dict[str, dict]:
        """Return the entries by network, or none if the file does not exist yet."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as error:
            raise DeploymentError(
                f"Cannot read the deployments file {self.path} ({error.strerror or error}). "
                "Check that it is a file you may read."
            ) from error

        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise DeploymentError(
                f"The deployments file {self.path} is not valid JSON ({error}). Fix the file, "
                "or move it away and deploy again."
            ) from error
        if not isinstance(data, dict) or not isinstance(data.get("networks"), dict):
            raise DeploymentError(
                f"The deployments file {self.path} has no 'networks' object. Fix the file, or "
                "move it away and deploy again."
            )
        if data.get("version") != FORMAT_VERSION:
            raise DeploymentError(
                f"The deployments file {self.path} has version {data.get('version')!r}, but "
                f"this FundTrail reads version {FORMAT_VERSION}. Use the FundTrail release that "
                "wrote it, or deploy again to a new file."
            )
        return data["networks"]

    def _parse(self, network: str, entry: object) -> Deployment:
        try:
            contracts = {
                name: ContractRecord(
                    address=_require(record["address"], str),
                    block=_require(record["block"], int),
                    tx_hash=_require(record["tx_hash"], str),
                )
                for name, record in entry["contracts"].items()
            }
            tokens = {
                _require(symbol, str): _require(address, str)
                for symbol, address in entry["tokens"].items()
            }
            return Deployment(network, _require(entry["chain_id"], int), contracts, tokens)
        except (KeyError, TypeError, AttributeError) as error:
            raise DeploymentError(
                f"The {network} entry in the deployments file {self.path} is malformed "
                f"({type(error).__name__}: {error}). Fix the entry, or deploy to {network} again."
            ) from error


def _require(value: object, kind: type) -> object:
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"expected {kind.__name__}, found {value!r}")
    return value
