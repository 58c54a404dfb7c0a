"""Turn raw `eth_getLogs` entries into named events with plain JSON-ready arguments.

Raw logs are decoded against each contract's event ABI, without web3's result formatters: an
index of tens of thousands of events spends most of its time here. Static values are read
straight from their 32-byte words, and eth-abi decodes the rest.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.decoding import ContextFramesBytesIO, TupleDecoder
from eth_abi.registry import registry as abi_registry
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
    """Label of the FundTrail contract that emitted it: `escrow` or `registry`."""
    name: str
    args: dict[str, Any]
    """Arguments by name: ints, checksum addresses, bytes as 0x-prefixed hex, structs as dicts."""
    block_number: int
    block_hash: str
    block_timestamp: int | None
    tx_hash: str
    log_index: int


def canonical_type(abi_input: dict) -> str:
    """Return the ABI type string, with tuples spelled out as eth-abi expects."""
    kind = abi_input["type"]
    if not kind.startswith("tuple"):
        return kind
    inner = ",".join(canonical_type(component) for component in abi_input["components"])
    return f"({inner}){kind[len('tuple'):]}"


@lru_cache(maxsize=65_536)
def _checksum(address: str) -> str:
    # Logs repeat the same few addresses, and each checksum costs a keccak hash.
    return to_checksum_address(address)


def _scalar(value: Any) -> Any:
    return "0x" + value.hex() if isinstance(value, bytes) else value


def _converter(abi_input: dict) -> Callable[[Any], Any]:
    """Return the function that converts decoded values of `abi_input`'s type into JSON-ready
    form: arrays as lists, structs as dicts by field name, checksum addresses, bytes as
    0x-prefixed hex."""
    kind = abi_input["type"]
    if kind.endswith("]"):
        convert_item = _converter(dict(abi_input, type=kind[: kind.rindex("[")]))
        return lambda value: [convert_item(item) for item in value]
    if kind == "tuple":
        fields = [(component["name"], _converter(component)) for component in abi_input["components"]]
        return lambda value: {
            name: convert(item) for (name, convert), item in zip(fields, value, strict=True)
        }
    if kind == "address":
        return _checksum
    return _scalar


def json_ready(value: Any, abi_input: dict) -> Any:
    """Convert a value decoded for `abi_input` into the form the ledger stores in `args`."""
    return _converter(abi_input)(value)


_SLOW = object()
"""Marker that a word reader returns for a word it leaves to eth-abi."""

_ADDRESS_PADDING = bytes(12)


def _read_address(word: bytes) -> Any:
    return "0x" + word[12:].hex() if word[:12] == _ADDRESS_PADDING else _SLOW


def _read_bytes32(word: bytes) -> Any:
    return bytes(word)


def _read_bool(word: bytes) -> Any:
    value = int.from_bytes(word, "big")
    return value == 1 if value <= 1 else _SLOW


def _uint_reader(bits: int) -> Callable[[bytes], Any]:
    def read(word: bytes) -> Any:
        value = int.from_bytes(word, "big")
        return _SLOW if value >> bits else value

    return read


def _word_reader(kind: str) -> Callable[[bytes], Any] | None:
    """Return a reader of one 32-byte ABI word of `kind`, or None if `kind` has none.

    A reader returns exactly what `eth_abi.decode([kind], word)` returns for a well-formed word,
    and `_SLOW` for a word that eth-abi would reject, such as an address with non-zero padding,
    so that eth-abi decodes it and raises its own error. eth-abi decodes each static value of a
    row twice (once to check the offsets of dynamic values), which made it most of an index's
    time.
    """
    if kind == "address":
        return _read_address
    if kind == "bytes32":
        return _read_bytes32
    if kind == "bool":
        return _read_bool
    if kind.startswith("uint") and kind[4:].isdigit() and 8 <= int(kind[4:]) <= 256:
        return _uint_reader(int(kind[4:]))
    return None


class _EventDecoder:
    """Decodes the logs of one event."""

    def __init__(self, contract: str, abi: dict):
        self.contract = contract
        self.name = abi["name"]
        self.inputs = abi["inputs"]
        types = [canonical_type(item) for item in self.inputs]
        self.signature = f"{self.name}({','.join(types)})"
        self.topic = keccak(text=self.signature)
        self._indexed = [
            (item, t, _word_reader(t)) for item, t in zip(self.inputs, types) if item.get("indexed")
        ]
        data = [(item, t) for item, t in zip(self.inputs, types) if not item.get("indexed")]
        self._data_types = [t for _, t in data]
        # Built once here: `eth_abi.decode` builds the same decoder on every call.
        self._data_decoder = TupleDecoder(
            decoders=[abi_registry.get_decoder(t) for t in self._data_types]
        )
        readers = [_word_reader(t) for t in self._data_types]
        self._data_readers = readers if all(readers) else None
        # For each argument in declaration order: its name, whether it is indexed, its
        # position among the indexed or the data values, and its converter.
        self._layout = []
        positions = {True: 0, False: 0}
        for item in self.inputs:
            indexed = bool(item.get("indexed"))
            self._layout.append((item["name"], indexed, positions[indexed], _converter(item)))
            positions[indexed] += 1

    def _decode_topics(self, topics: tuple[bytes, ...]) -> list:
        # Indexed arguments of the value types FundTrail uses are ABI-encoded in one topic each.
        values = []
        for (_, kind, read), topic in zip(self._indexed, topics, strict=True):
            value = read(topic) if read is not None and len(topic) == 32 else _SLOW
            values.append(abi_decode([kind], topic)[0] if value is _SLOW else value)
        return values

    def _decode_data(self, data: bytes) -> tuple | list:
        readers = self._data_readers
        if readers is not None and len(data) == 32 * len(readers):
            values = [read(data[32 * i: 32 * i + 32]) for i, read in enumerate(readers)]
            if _SLOW not in values:
                return values
        return self._data_decoder(ContextFramesBytesIO(data))

    def decode(self, log: Log) -> Event:
        indexed = self._decode_topics(log.topics[1:])
        data = self._decode_data(log.data)
        args = {
            name: convert(indexed[position] if is_indexed else data[position])
            for name, is_indexed, position, convert in self._layout
        }
        return Event(
            contract=self.contract,
            name=self.name,
            args=args,
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
