"""A throwaway anvil chain for gas measurements, and the transactions the benchmark sends to it.

Every block gets its timestamp from a clock that this module keeps, and every key is derived
from a fixed label. So every run sends the same transactions with the same calldata, and gets
the same gas figures.
"""

import json
import logging
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.middleware import SignAndSendRawMiddlewareBuilder
from web3.types import TxReceipt

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / ".build" / "__local__.json"
"""ape's compiled project: the ABI and bytecode of every contract in contracts/."""

HARDFORK = "shanghai"
"""The EVM version the contracts are compiled for (ape-config.yaml)."""

GENESIS_TIMESTAMP = 1_767_225_600
"""Unix time of the first block: 2026-01-01 00:00:00 UTC."""

BLOCK_INTERVAL = 12
"""Seconds between two blocks, as on Ethereum mainnet."""

TRANSACTION_GAS_LIMIT = 15_000_000
"""Gas limit of every transaction. A fixed limit skips gas estimation. gasUsed does not depend
on it, because no contract here branches on the gas it has left."""

ACCOUNT_BALANCE = 10**24
"""Wei given to every account, enough for every transaction and ETH amount of the benchmark."""

START_TIMEOUT = 30.0
"""Seconds to wait for anvil to accept RPC requests before giving up."""


class BenchmarkError(Exception):
    """A benchmark that could not run or found a problem. The message states what to do next."""


def account_for(label: str) -> LocalAccount:
    """Return the account whose private key is the keccak-256 hash of `label`."""
    return Account.from_key(keccak(text=f"fundtrail gas benchmark: {label}"))


def load_artifacts(manifest: Path = MANIFEST) -> dict[str, dict]:
    """Return the ABI and deployment bytecode of each compiled contract, by contract name."""
    try:
        contract_types = json.loads(manifest.read_text(encoding="utf-8"))["contractTypes"]
    except FileNotFoundError as error:
        raise BenchmarkError(f"{manifest} not found. Run `make compile` first.") from error
    return {
        name: {"abi": contract["abi"], "bytecode": contract["deploymentBytecode"]["bytecode"]}
        for name, contract in contract_types.items()
        if contract.get("deploymentBytecode", {}).get("bytecode")
    }


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def anvil(port: int, executable: str = "anvil", *, tracing: bool = False) -> Iterator[Web3]:
    """Start a fresh anvil on 127.0.0.1:`port`, yield a connection to it, and stop it.

    With `tracing`, anvil records every EVM step, which `debug_traceTransaction` needs.
    Raise `BenchmarkError` when something already listens on the port, because measuring on a
    chain with unknown history would give other figures.
    """
    if _port_in_use(port):
        raise BenchmarkError(
            f"Port {port} is already in use. The benchmark needs a fresh anvil of its own: "
            "stop the program on that port or pass another port (GAS_ANVIL_PORT=...)."
        )
    command = [
        executable,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--hardfork", HARDFORK,
        "--timestamp", str(GENESIS_TIMESTAMP),
        "--chain-id", "31337",
    ]  # fmt: skip
    if tracing:
        command.append("--steps-tracing")
    try:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except FileNotFoundError as error:
        raise BenchmarkError(
            f"The anvil program `{executable}` was not found. Run `make setup`, which installs it "
            "from npm, and run the benchmark through `make gas`, which puts it on PATH."
        ) from error
    logger.info("Started anvil on port %s (pid %s)", port, process.pid)
    try:
        yield _connect(port, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        logger.info("Stopped anvil on port %s", port)


def _connect(port: int, process: subprocess.Popen) -> Web3:
    w3 = Web3(HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": 30}))
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            message = process.stderr.read().decode(errors="replace").strip()
            raise BenchmarkError(f"anvil exited with code {process.returncode}: {message}")
        if w3.is_connected():
            return w3
        time.sleep(0.1)
    raise BenchmarkError(
        f"anvil timed out: no response on port {port} within {START_TIMEOUT:.0f} s. Check that "
        "`anvil --version` runs."
    )


class Chain:
    """Deploys contracts and sends transactions, one block each, on a clock it controls."""

    def __init__(self, w3: Web3, artifacts: dict[str, dict]):
        self.w3 = w3
        self.artifacts = artifacts
        self.now = GENESIS_TIMESTAMP
        self._signers: dict[str, LocalAccount] = {}

    def add_account(self, label: str) -> LocalAccount:
        """Create the account for `label`, give it ETH, and let it send transactions."""
        account = account_for(label)
        self.w3.provider.make_request("anvil_setBalance", [account.address, hex(ACCOUNT_BALANCE)])
        self._signers[account.address] = account
        self.w3.middleware_onion.inject(
            SignAndSendRawMiddlewareBuilder.build(account), name=f"sign {label}", layer=0
        )
        return account

    def deploy(self, name: str, sender: LocalAccount, *arguments) -> Contract:
        """Deploy the compiled contract `name` and return it."""
        try:
            artifact = self.artifacts[name]
        except KeyError as error:
            raise BenchmarkError(
                f"No compiled contract named {name}. Run `make compile` first."
            ) from error
        factory = self.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        receipt = self.transact(factory.constructor(*arguments), sender, label=f"deploy {name}")
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])

    def transact(self, call, sender: LocalAccount, *, value: int = 0, label: str) -> TxReceipt:
        """Send `call` from `sender` in a block of its own and return the receipt.

        Raise `BenchmarkError` naming `label` when the transaction reverts.
        """
        self.advance(BLOCK_INTERVAL)
        transaction = {"from": sender.address, "value": value, "gas": TRANSACTION_GAS_LIMIT}
        tx_hash = call.transact(transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
        if receipt["status"] != 1:
            raise BenchmarkError(
                f"The transaction `{label}` reverted ({tx_hash.hex()}). The benchmark scenario no "
                "longer matches the contracts: fix the scenario in benchmarks/scenarios.py."
            )
        return receipt

    def measure(self, call, sender: LocalAccount, *, value: int = 0, label: str) -> TxReceipt:
        """Send `call` and return its receipt, whose gasUsed is the whole transaction's gas."""
        receipt = self.transact(call, sender, value=value, label=label)
        logger.debug("%s used %s gas", label, receipt["gasUsed"])
        return receipt

    def send_eth(self, sender: LocalAccount, to: str, amount: int) -> None:
        """Send `amount` wei from `sender` to `to`."""
        self.advance(BLOCK_INTERVAL)
        tx_hash = self.w3.eth.send_transaction(
            {"from": sender.address, "to": to, "value": amount, "gas": 100_000}
        )
        self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)

    def advance(self, seconds: int) -> None:
        """Move the clock on by `seconds`, which sets the timestamp of the next block."""
        self.now += seconds
        self.w3.provider.make_request("evm_setNextBlockTimestamp", [self.now])

    def travel_to(self, timestamp: int) -> None:
        """Move the clock so that the next block is mined at `timestamp` plus one interval."""
        if timestamp < self.now:
            raise BenchmarkError(f"Cannot move the clock back from {self.now} to {timestamp}.")
        self.now = timestamp
