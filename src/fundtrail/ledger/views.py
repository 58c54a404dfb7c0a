"""The contracts' view functions and the escrow's balances, read at one block for the audit."""

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address
from web3.exceptions import BadFunctionCallOutput, ContractLogicError
from web3.providers.eth_tester import EthereumTesterProvider

from fundtrail.contracts import ESCROW, REGISTRY
from fundtrail.errors import FundTrailError
from fundtrail.ledger.books import ETH
from fundtrail.ledger.decode import canonical_type, json_ready
from fundtrail.ledger.indexer import Ledger

ERC20_BALANCE_ABI = [
    {
        "type": "function",
        "name": "balanceOf",
        "stateMutability": "view",
        "inputs": [{"name": "account", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    }
]


class ChainViewError(FundTrailError):
    """A view function or balance cannot be read at the requested block."""


class ViewReverted(ChainViewError):
    """A view function reverted, such as `getGrant` of an id that the contract does not have."""


def _revert_errors() -> tuple[type[Exception], ...]:
    # ape's in-process chain sends eth_call to eth-tester, which raises its own TransactionFailed
    # on a revert where a node behind web3 raises ContractLogicError.
    try:
        from eth_tester.exceptions import TransactionFailed
    except ImportError:
        return (ContractLogicError,)
    return (ContractLogicError, TransactionFailed)


class _ViewFunction:
    """One view function's address, selector and ABI types, for raw `eth_call`s."""

    def __init__(self, address: str, entry: dict):
        self.address = address
        input_types = [canonical_type(item) for item in entry["inputs"]]
        self._input_types = input_types
        self._selector = keccak(text=f"{entry['name']}({','.join(input_types)})")[:4]
        self._outputs = entry["outputs"]
        self._output_types = [canonical_type(item) for item in entry["outputs"]]

    def calldata(self, args: tuple) -> str:
        # Hashes arrive as 0x-prefixed hex, which eth-abi takes only as bytes.
        values = [
            bytes.fromhex(value.removeprefix("0x")) if kind.startswith("bytes") and isinstance(value, str) else value
            for kind, value in zip(self._input_types, args, strict=True)
        ]
        return "0x" + (self._selector + abi_encode(self._input_types, values)).hex()

    def result(self, data: str):
        values = abi_decode(self._output_types, bytes.fromhex(data.removeprefix("0x")))
        if len(self._outputs) == 1:
            return json_ready(values[0], self._outputs[0])
        return tuple(json_ready(item, output) for item, output in zip(values, self._outputs, strict=True))


class ChainViews:
    """The escrow's and the registry's view functions, and the escrow's balances, at any block.

    Every read is an `eth_call` (or `eth_getBalance`) with an explicit block number through
    web3, so that all values come from the same state as the ledger's last block.
    """

    def __init__(self, web3, *, escrow: str, registry: str, abis: dict[str, list[dict]] | None = None):
        if abis is None:
            from fundtrail.ledger import contract_abis

            abis = contract_abis()
        self.web3 = web3
        self.escrow_address = to_checksum_address(escrow)
        self.registry_address = to_checksum_address(registry)
        self._contracts = {
            ESCROW: web3.eth.contract(address=self.escrow_address, abi=abis[ESCROW]),
            REGISTRY: web3.eth.contract(address=self.registry_address, abi=abis[REGISTRY]),
        }
        # A node gets raw JSON-RPC `eth_call`s encoded with eth-abi, which cost a fraction of
        # web3's contract layer. ape's in-process chain only takes web3-formatted requests.
        self._raw = not isinstance(web3.provider, EthereumTesterProvider)
        self._functions = {
            (name, entry["name"]): _ViewFunction(address, entry)
            for name, address in ((ESCROW, self.escrow_address), (REGISTRY, self.registry_address))
            for entry in abis[name]
            if entry["type"] == "function"
        }

    @classmethod
    def of_ledger(cls, ledger: Ledger, web3, abis: dict[str, list[dict]] | None = None) -> "ChainViews":
        """Return the views of the contracts that `ledger` indexes."""
        meta = ledger.meta()
        return cls(web3, escrow=meta["escrow"], registry=meta["registry"], abis=abis)

    def escrow(self, function: str, *args, block: int):
        return self._call(ESCROW, function, args, block)

    def registry(self, function: str, *args, block: int):
        return self._call(REGISTRY, function, args, block)

    def _call(self, contract_name: str, function: str, args: tuple, block: int):
        """Call a view and return its result, with a struct as a dict and bytes as 0x hex.

        NOTE: Each view is one `eth_call` round trip; JSON-RPC batches would save the round
        trips to a remote node.
        """
        if self._raw:
            return self._raw_call(contract_name, function, args, block)
        contract = self._contracts[contract_name]
        try:
            result = getattr(contract.functions, function)(*args).call(block_identifier=block)
        except _revert_errors() as error:
            raise ViewReverted(
                f"{contract_name}.{function}{args} reverted at block {block}: {error}"
            ) from error
        outputs = contract.get_function_by_name(function).abi["outputs"]
        if len(outputs) == 1:
            return json_ready(result, outputs[0])
        return tuple(json_ready(item, output) for item, output in zip(result, outputs, strict=True))

    def _raw_call(self, contract_name: str, function: str, args: tuple, block: int):
        view = self._functions[(contract_name, function)]
        request = {"to": view.address, "data": view.calldata(args)}
        response = self.web3.provider.make_request("eth_call", [request, hex(block)])
        error = response.get("error")
        if error is not None:
            message = f"{contract_name}.{function}{args} reverted at block {block}: {error}"
            # Code 3 is the JSON-RPC code of a revert; other errors are failures of the node.
            if error.get("code") == 3 or "revert" in str(error.get("message", "")):
                raise ViewReverted(message)
            raise ChainViewError(f"{contract_name}.{function}{args} failed at block {block}: {error}")
        return view.result(response["result"])

    def timestamp(self, block: int) -> int:
        return self.web3.eth.get_block(block)["timestamp"]

    def balance(self, token: str, block: int) -> int:
        """Return the escrow's balance of `token` (the zero address for ETH) at `block`."""
        if token == ETH:
            return self.web3.eth.get_balance(self.escrow_address, block)
        # Checked first because eth-tester returns 0 for a call to an address without code.
        if not self.web3.eth.get_code(to_checksum_address(token), block):
            raise ChainViewError(
                f"Token {token} has no contract code at block {block}. Check the token addresses "
                "in the deployments file for this network."
            )
        erc20 = self.web3.eth.contract(address=to_checksum_address(token), abi=ERC20_BALANCE_ABI)
        try:
            return erc20.functions.balanceOf(self.escrow_address).call(block_identifier=block)
        except (*_revert_errors(), BadFunctionCallOutput) as error:
            raise ChainViewError(
                f"Failed to read the escrow's balance of token {token} at block {block}: "
                f"{error}. Check that the address is an ERC-20 token on this chain."
            ) from error
