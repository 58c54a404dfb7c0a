"""Raw JSON-RPC reads for the indexer: the head, logs over a block range, and block headers.

Requests to a node go through the web3 provider's `make_request` rather than `web3.eth`, to skip
web3's result formatters, which cost more than the decoding itself on large log responses. ape's
in-process chain only understands requests that went through those formatters, so there the
reader uses `web3.eth`.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import requests

from fundtrail.errors import FundTrailError

logger = logging.getLogger(__name__)


class RangeRejected(Exception):
    """The provider refused an `eth_getLogs` request, or its response was too large to send."""


class ChainReadError(FundTrailError):
    """The chain returned an error for a read that a smaller request cannot fix."""


@dataclass(frozen=True)
class BlockHeader:
    number: int
    hash: str
    timestamp: int


def _int(value) -> int:
    return value if isinstance(value, int) else int(value, 16)


def _hex(value) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else str(value).lower()


class ChainReader:
    """Reads from the node behind a web3 instance."""

    def __init__(self, web3):
        from web3.providers.eth_tester import EthereumTesterProvider

        self._web3 = web3
        self._provider = web3.provider
        self._raw = not isinstance(web3.provider, EthereumTesterProvider)

    def chain_id(self) -> int:
        return self._web3.eth.chain_id

    def head(self) -> int:
        return self._web3.eth.block_number

    def _tester_header(self, number: int) -> BlockHeader | None:
        from web3.exceptions import BlockNotFound

        try:
            block = self._web3.eth.get_block(number)
        except BlockNotFound:
            return None
        return BlockHeader(number, _hex(block["hash"]), block["timestamp"])

    def get_logs(self, addresses: list[str], start: int, end: int) -> list[dict]:
        """Return the raw logs of `addresses` from block `start` to `end`, both included.

        Raises `RangeRejected` when the provider refuses the range: a JSON-RPC error (such as a
        result or block-range limit), an HTTP error status (such as 413), or a timeout.
        """
        if not self._raw:
            try:
                return self._web3.eth.get_logs({"address": addresses, "fromBlock": start, "toBlock": end})
            except ValueError as error:
                raise RangeRejected(str(error)) from error
        params = [{"address": addresses, "fromBlock": hex(start), "toBlock": hex(end)}]
        try:
            response = self._provider.make_request("eth_getLogs", params)
        except (requests.HTTPError, requests.Timeout) as error:
            raise RangeRejected(str(error)) from error
        if "error" in response:
            raise RangeRejected(str(response["error"]))
        return response["result"]

    def headers(self, numbers: Iterable[int]) -> dict[int, BlockHeader | None]:
        """Return the header of each block number, or None for a block the chain does not have.

        Uses one JSON-RPC batch where the provider supports it.
        """
        numbers = sorted(set(numbers))
        if not self._raw:
            return {number: self._tester_header(number) for number in numbers}
        requests_ = [("eth_getBlockByNumber", [hex(number), False]) for number in numbers]
        batch = getattr(self._provider, "make_batch_request", None)
        responses = None
        if batch is not None and len(requests_) > 1:
            try:
                responses = batch(requests_)
            except NotImplementedError:
                responses = None
        if not isinstance(responses, list):
            responses = [self._provider.make_request(*request) for request in requests_]
        headers: dict[int, BlockHeader | None] = {}
        for number, response in zip(numbers, responses, strict=True):
            if "error" in response:
                raise ChainReadError(f"eth_getBlockByNumber({number}) failed: {response['error']}")
            block = response["result"]
            headers[number] = (
                None
                if block is None
                else BlockHeader(number, _hex(block["hash"]), _int(block["timestamp"]))
            )
        return headers
