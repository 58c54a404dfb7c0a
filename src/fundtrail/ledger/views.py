"""The contracts' view functions and the escrow's balances, read at one block for the audit."""

from eth_utils import to_checksum_address
from web3.exceptions import BadFunctionCallOutput, ContractLogicError

from fundtrail.contracts import ESCROW, REGISTRY
from fundtrail.errors import FundTrailError
from fundtrail.ledger.books import ETH
from fundtrail.ledger.decode import json_ready
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

        NOTE: One `eth_call` per view, through web3's contract layer, costs about 8 ms of CPU:
        an audit of 301 grants takes about 40 s (docs/benchmarks.md). JSON-RPC batches would
        cut most of that.
        """
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
