"""Turn raw `eth_getLogs` entries into named events with plain JSON-ready arguments.

Raw logs are decoded with eth-abi against each contract's event ABI, without web3's result
formatters: an index of tens of thousands of events spends most of its time here.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

from fundtrail.errors import FundTrailError

ACCOUNT_ARGS = (
    "funder",
    "donor",
    "account",
    "creator",
    "recipient",
    "attestor",
    "submitter",
    "signer",
    "caller",
    "admin",
    "newOwner",
)
"""Argument names that name the party of an event, in order of preference. The first one an
event has fills the `account` column."""


class LogDecodeError(FundTrailError):
    """A log from a FundTrail contract matches none of its events."""


@dataclass(frozen=True)
class Log:
    """One raw log, normalised from the JSON-RPC response."""

    address: str
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    block_hash: str
    block_timestamp: int | None
    tx_hash: str
    log_index: int


@dataclass(frozen=True)
class Event:
    """One decoded event."""

    contract: str
    """Which FundTrail contract emitted it: `escrow` or `registry`."""
    name: str
    args: dict[str, Any]
    """Arguments by name: ints, checksum addresses, bytes as 0x-prefixed hex, structs as dicts."""
    block_number: int
    block_hash: str
    block_timestamp: int | None
    tx_hash: str
    log_index: int


def _canonical_type(abi_input: dict) -> str:
    """Return the ABI type string, with tuples spelled out as eth-abi expects."""
    kind = abi_input["type"]
    if not kind.startswith("tuple"):
        return kind
    inner = ",".join(_canonical_type(component) for component in abi_input["components"])
    return f"({inner}){kind[len('tuple'):]}"


def _plain(value: Any, abi_input: dict) -> Any:
    """Convert a decoded value into JSON-ready form, naming struct fields."""
    kind = abi_input["type"]
    if kind.endswith("]"):
        element = dict(abi_input, type=kind[: kind.rindex("[")])
        return [_plain(item, element) for item in value]
    if kind == "tuple":
        return {
            component["name"]: _plain(item, component)
            for item, component in zip(value, abi_input["components"], strict=True)
        }
    if kind == "address":
        return to_checksum_address(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


class _EventDecoder:
    """Decodes the logs of one event."""

    def __init__(self, contract: str, abi: dict):
        self.contract = contract
        self.name = abi["name"]
        self.inputs = abi["inputs"]
        types = [_canonical_type(item) for item in self.inputs]
        self.signature = f"{self.name}({','.join(types)})"
        self.topic = keccak(text=self.signature)
        self._indexed = [(item, t) for item, t in zip(self.inputs, types) if item.get("indexed")]
        self._data = [(item, t) for item, t in zip(self.inputs, types) if not item.get("indexed")]
        self._data_types = [t for _, t in self._data]

    def decode(self, log: Log) -> Event:
        args: dict[str, Any] = {}
        # Indexed arguments of the value types FundTrail uses are ABI-encoded in one topic each.
        for (item, kind), topic in zip(self._indexed, log.topics[1:], strict=True):
            args[item["name"]] = _plain(abi_decode([kind], topic)[0], item)
        for (item, _), value in zip(self._data, abi_decode(self._data_types, log.data), strict=True):
            args[item["name"]] = _plain(value, item)
        ordered = {item["name"]: args[item["name"]] for item in self.inputs}
        return Event(
            contract=self.contract,
            name=self.name,
            args=ordered,
            block_number=log.block_number,
            block_hash=log.block_hash,
            block_timestamp=log.block_timestamp,
            tx_hash=log.tx_hash,
            log_index=log.log_index,
        )


class EventDecoder:
    """Decodes the logs of a set of contracts, each known by address and event ABI."""

    def __init__(self, contracts: dict[str, tuple[str, Iterable[dict]]]):
        """`contracts` maps a label such as `escrow` to (address, ABI entries)."""
        self._by_address: dict[str, dict[bytes, _EventDecoder]] = {}
        for label, (address, abi) in contracts.items():
            decoders = (_EventDecoder(label, entry) for entry in abi if entry["type"] == "event")
            self._by_address[address.lower()] = {item.topic: item for item in decoders}
        self.addresses = [to_checksum_address(address) for address, _ in contracts.values()]

    def decode(self, log: Log) -> Event:
        decoders = self._by_address.get(log.address.lower())
        decoder = decoders.get(log.topics[0]) if decoders and log.topics else None
        if decoder is None:
            raise LogDecodeError(
                f"The log {log.log_index} of block {log.block_number} at {log.address} matches "
                "none of the events of the contracts being indexed. The ABI used to index is "
                "older than the deployed contract: recompile with `make compile`."
            )
        return decoder.decode(log)


def _int(value: Any) -> int:
    return value if isinstance(value, int) else int(value, 16)


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return bytes.fromhex(value.removeprefix("0x"))


def _hex(value: Any) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else value.lower()


def parse_log(raw: dict) -> Log:
    """Normalise one entry of an `eth_getLogs` result, from a node or from ape's test chain."""
    timestamp = raw.get("blockTimestamp")
    return Log(
        address=raw["address"],
        topics=tuple(_bytes(topic) for topic in raw["topics"]),
        data=_bytes(raw["data"]),
        block_number=_int(raw["blockNumber"]),
        block_hash=_hex(raw["blockHash"]),
        block_timestamp=None if timestamp is None else _int(timestamp),
        tx_hash=_hex(raw["transactionHash"]),
        log_index=_int(raw["logIndex"]),
    )
