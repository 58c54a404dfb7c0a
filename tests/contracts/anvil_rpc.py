"""A small JSON-RPC driver for one anvil process, built for the stateful escrow tests.

The state machine sends tens of thousands of transactions and reads hundreds of views after
each one, so it talks to anvil directly. Calldata is encoded with eth_abi from the compiled ABI,
and all the views of one check go to anvil in a single batch request. Every sender is an
impersonated account (`--auto-impersonate`), and gas is free (base fee and gas price zero), so
every ETH balance changes only by the values the contracts move.
"""

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import eth_abi
import requests
from eth_utils import keccak, to_checksum_address

ROOT = Path(__file__).resolve().parents[2]
ANVIL = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"

STARTUP_TIMEOUT_SECONDS = 20
REQUEST_TIMEOUT_SECONDS = 30
# Enough for a reclaim that pays a handful of funders; the block gas limit is 30 million.
TX_GAS = 5_000_000


class RpcError(Exception):
    """anvil returned an error object for a JSON-RPC request."""


def _type_of(param):
    """Return the canonical ABI type of one ABI parameter, with tuples spelled out."""
    kind = param["type"]
    if not kind.startswith("tuple"):
        return kind
    inner = ",".join(_type_of(component) for component in param["components"])
    return f"({inner}){kind[len('tuple') :]}"


@dataclass(frozen=True)
class Function:
    name: str
    selector: bytes
    inputs: list[str]
    outputs: list[str]


@dataclass(frozen=True)
class CustomError:
    name: str
    types: list[str]


class Codec:
    """Encodes calls and decodes results and custom errors with one contract's ABI."""

    def __init__(self, abi: list[dict]):
        self.functions = {}
        self.errors = {}
        self._encoded = {}
        for item in abi:
            if item["type"] == "function":
                inputs = [_type_of(param) for param in item["inputs"]]
                outputs = [_type_of(param) for param in item["outputs"]]
                signature = f"{item['name']}({','.join(inputs)})"
                self.functions[item["name"]] = Function(
                    item["name"], keccak(text=signature)[:4], inputs, outputs
                )
            elif item["type"] == "error":
                types = [_type_of(param) for param in item["inputs"]]
                signature = f"{item['name']}({','.join(types)})"
                self.errors[keccak(text=signature)[:4]] = CustomError(item["name"], types)

    def encode(self, name: str, *args) -> bytes:
        function = self.functions[name]
        return function.selector + eth_abi.encode(function.inputs, list(args))

    def encode_cached(self, name: str, *args) -> bytes:
        """Return `encode(name, *args)`, computed once per distinct call: eth_abi takes about
        0.2 ms per call, and the invariants repeat the same few hundred views every step."""
        key = (name, args)
        data = self._encoded.get(key)
        if data is None:
            data = self._encoded[key] = self.encode(name, *args)
        return data

    def decode(self, name: str, data: bytes):
        """Return the single output of `name`, or the tuple of its outputs."""
        outputs = self.functions[name].outputs
        # The common single uint or bool output is read directly, which is much faster.
        if len(outputs) == 1 and len(data) == 32 and (outputs[0].startswith("uint") or outputs[0] == "bool"):
            value = int.from_bytes(data, "big")
            return bool(value) if outputs[0] == "bool" else value
        values = eth_abi.decode(outputs, data)
        return values[0] if len(values) == 1 else values


def decode_error(codecs, data: bytes):
    """Return `(name, args)` of the custom error in revert `data`, searching every codec.

    Return `("<raw>", data)` when no ABI declares the selector, so the caller's assertion
    shows the raw bytes.
    """
    for codec in codecs:
        error = codec.errors.get(bytes(data[:4]))
        if error is not None:
            args = eth_abi.decode(error.types, bytes(data[4:]))
            assert eth_abi.encode(error.types, list(args)) == bytes(data[4:]), (
                f"trailing revert data {data.hex()}"
            )
            return error.name, tuple(_normalize(value) for value in args)
    return "<raw>", bytes(data)


def _normalize(value):
    """Make decoded addresses checksummed, so they compare equal to the model's addresses."""
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return to_checksum_address(value)
    return value


@dataclass
class Receipt:
    status: int
    logs: list[dict]
    revert_data: bytes
    timestamp: int


class AnvilChain:
    """One anvil process on 127.0.0.1, and the clock of the transactions sent to it.

    `timestamp` is the time of the latest block. Every transaction is mined in a block of its
    own at `next_timestamp`, which is one second later unless `warp` moved it, so the tests
    know the exact `block.timestamp` of each transaction.
    """

    def __init__(self, port: int, log_path: Path, genesis_timestamp: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.genesis_timestamp = genesis_timestamp
        self.process = None
        self.session = requests.Session()
        # The proxy variables of the test run must not catch calls to the local chain.
        self.session.trust_env = False
        self.timestamp = genesis_timestamp
        self.next_timestamp = genesis_timestamp + 1
        self._request_id = 0

    def start(self):
        if not ANVIL.exists():
            raise FileNotFoundError(f"{ANVIL} is missing; run `npm ci` (or `make setup`) to install anvil")
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    str(ANVIL),
                    "--host", "127.0.0.1",
                    "--port", str(self.port),
                    "--hardfork", "shanghai",
                    "--auto-impersonate",
                    "--base-fee", "0",
                    "--gas-price", "0",
                    "--timestamp", str(self.genesis_timestamp),
                    "--accounts", "1",
                    "--silent",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"anvil exited with {self.process.returncode}:\n{self.log_path.read_text()}"
                )
            try:
                self.rpc("eth_chainId")
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"anvil did not answer on port {self.port} within {STARTUP_TIMEOUT_SECONDS} s")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    # -- JSON-RPC ------------------------------------------------------------------------------

    def rpc(self, method, *params):
        self._request_id += 1
        payload = {"jsonrpc": "2.0", "id": self._request_id, "method": method, "params": list(params)}
        response = self.session.post(self.url, json=payload, timeout=REQUEST_TIMEOUT_SECONDS)
        body = response.json()
        if "error" in body:
            raise RpcError(f"{method} failed: {body['error']}")
        return body["result"]

    def batch(self, requests_):
        """Send `(method, params)` pairs in one batch request and return their results in order."""
        if not requests_:
            return []
        payload = [
            {"jsonrpc": "2.0", "id": index, "method": method, "params": list(params)}
            for index, (method, params) in enumerate(requests_)
        ]
        response = self.session.post(self.url, json=payload, timeout=REQUEST_TIMEOUT_SECONDS)
        answers = sorted(response.json(), key=lambda answer: answer["id"])
        results = []
        for (method, _), answer in zip(requests_, answers, strict=True):
            if "error" in answer:
                raise RpcError(f"{method} failed: {answer['error']}")
            results.append(answer["result"])
        return results

    # -- Transactions and time -----------------------------------------------------------------

    def send(self, sender: str, to: str | None, data: bytes, value: int = 0) -> Receipt:
        """Mine one transaction at `next_timestamp` and return its receipt.

        A transaction that reverts is mined as well, with status 0, so the test can check that it
        changed nothing. Its revert data comes from a trace of the top call.
        """
        self.rpc("evm_setNextBlockTimestamp", self.next_timestamp)
        transaction = {
            "from": sender,
            "data": "0x" + data.hex(),
            "value": hex(value),
            "gas": hex(TX_GAS),
            "gasPrice": "0x0",
        }
        if to is not None:
            transaction["to"] = to
        tx_hash = self.rpc("eth_sendTransaction", transaction)
        receipt = self._wait_for_receipt(tx_hash)
        self.timestamp = self.next_timestamp
        self.next_timestamp += 1
        status = int(receipt["status"], 16)
        revert_data = b""
        if status == 0:
            trace = self.rpc("debug_traceTransaction", tx_hash, {"tracer": "callTracer"})
            revert_data = bytes.fromhex(trace.get("output", "0x")[2:])
        return Receipt(status, receipt["logs"], revert_data, self.timestamp)

    def _wait_for_receipt(self, tx_hash):
        """Return the receipt of `tx_hash`. anvil may return from eth_sendTransaction a moment
        before the automined block is stored, so the receipt is polled for a bounded time."""
        deadline = time.monotonic() + REQUEST_TIMEOUT_SECONDS
        while True:
            receipt = self.rpc("eth_getTransactionReceipt", tx_hash)
            if receipt is not None:
                return receipt
            if time.monotonic() > deadline:
                raise TimeoutError(f"no receipt for {tx_hash} within {REQUEST_TIMEOUT_SECONDS} s")
            time.sleep(0.0002)

    def deploy(self, sender: str, bytecode: bytes, constructor_types=(), constructor_args=()) -> str:
        data = bytecode + eth_abi.encode(list(constructor_types), list(constructor_args))
        self.rpc("evm_setNextBlockTimestamp", self.next_timestamp)
        transaction = {"from": sender, "data": "0x" + data.hex(), "gas": hex(15_000_000), "gasPrice": "0x0"}
        receipt = self._wait_for_receipt(self.rpc("eth_sendTransaction", transaction))
        self.timestamp = self.next_timestamp
        self.next_timestamp += 1
        assert int(receipt["status"], 16) == 1, f"deployment from {sender} failed"
        return to_checksum_address(receipt["contractAddress"])

    def warp(self, timestamp: int):
        """Make the next transaction run at exactly `timestamp`.

        An empty block one second earlier is mined, so views read the state at `timestamp - 1`.
        """
        if timestamp < self.next_timestamp:
            raise ValueError(f"cannot go back in time from {self.next_timestamp} to {timestamp}")
        if timestamp - 1 > self.timestamp:
            self.rpc("evm_mine", timestamp - 1)
            self.timestamp = timestamp - 1
        self.next_timestamp = timestamp

    def snapshot(self) -> str:
        return self.rpc("evm_snapshot")

    def revert(self, snapshot_id: str, timestamp: int):
        """Go back to `snapshot_id`, taken when the latest block had `timestamp`."""
        assert self.rpc("evm_revert", snapshot_id) is True, f"evm_revert({snapshot_id}) failed"
        self.timestamp = timestamp
        self.next_timestamp = timestamp + 1

    def set_balance(self, account: str, wei: int):
        self.rpc("anvil_setBalance", account, hex(wei))
