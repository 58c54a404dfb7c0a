"""Constants, enums and assertion helpers shared by the MilestoneEscrow and DonationRegistry tests.

Every helper is a plain function, so test modules import them from here. The fixtures live in
conftest.py next to this file and in tests/conftest.py.
"""

import ast
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum

import ape
import eth_abi
import pytest
from ape.exceptions import CustomError
from ape.types.events import MockContractLog
from ape.utils import ZERO_ADDRESS
from eth_utils import keccak, to_hex
from hexbytes import HexBytes
from web3.exceptions import ContractLogicError as Web3ContractLogicError

# The zero address stands for ETH wherever the contracts take a token address.
ETH = ZERO_ADDRESS
DAY = 24 * 60 * 60
MAX_UINT256 = 2**256 - 1
MAX_UINT128 = 2**128 - 1

EVIDENCE = b"\xe1" * 32
EVIDENCE_2 = b"\xe2" * 32
EVIDENCE_URI = "ipfs://bafy-evidence-1"
REASON = b"\x5e" * 32

# Amounts of the default escrow grants, one per milestone.
ETH_AMOUNTS = (1_000, 2_000, 3_000)
USDC_AMOUNTS = (1_000 * 10**6, 2_000 * 10**6, 3_000 * 10**6)

# Milestone index that the escrow records in the Payout event of a refund.
NO_MILESTONE = MAX_UINT256

NO_REF = b"\x00" * 32
DONOR_REF = b"\xd0" * 32
METADATA_HASH = b"\x4d" * 32
METADATA_URI = "ipfs://bafy-project"


class GrantStatus(IntEnum):
    """IMilestoneEscrow.GrantStatus."""

    FUNDING = 0
    FUNDING_FAILED = 1
    ACTIVE = 2
    COMPLETED = 3


class MilestoneStatus(IntEnum):
    """IMilestoneEscrow.MilestoneStatus."""

    AWAITING_EVIDENCE = 0
    EVIDENCE_SUBMITTED = 1
    RELEASED = 2
    RECLAIMED = 3


class PayoutKind(IntEnum):
    """IMilestoneEscrow.PayoutKind."""

    RELEASE = 0
    RECLAIM = 1
    REFUND = 2


class SignatureState(IntEnum):
    """IMilestoneEscrow.SignatureState."""

    UNUSED = 0
    USED = 1
    REVOKED = 2


class ProjectStatus(IntEnum):
    """IDonationRegistry.ProjectStatus."""

    PENDING = 0
    VERIFIED = 1
    SUSPENDED = 2


def address_of(account):
    """Return the address of an ape account or contract, and any other value unchanged."""
    return getattr(account, "address", account)


def selector(signature):
    """Return the 4-byte selector of an error or function signature such as "Foo(uint256)"."""
    return keccak(text=signature)[:4]


def balance_of(token, account):
    """Return the ETH balance of `account` for ETH, else its balance of the token contract."""
    if address_of(token) == ETH:
        return ape.chain.provider.get_balance(address_of(account))
    return token.balanceOf(account)


def gas_paid_in(token, receipt):
    """Return what the gas of `receipt` cost its sender in `token`: the fees for ETH, 0 for an ERC-20."""
    if address_of(token) == ETH:
        return receipt.total_fees_paid
    return 0


@dataclass(frozen=True)
class Grant:
    """A created escrow grant: its id, the terms it was created with and its token contract.

    `token` is the token contract, or ETH (the zero address) for an ETH grant.
    """

    id: int
    terms: tuple
    token: object

    @property
    def token_address(self):
        return address_of(self.token)

    @property
    def funding_deadline(self):
        return self.terms[2]

    @property
    def threshold(self):
        return self.terms[3]

    @property
    def attestors(self):
        return self.terms[4]

    @property
    def amounts(self):
        return [amount for amount, _ in self.terms[5]]

    @property
    def deadlines(self):
        return [deadline for _, deadline in self.terms[5]]

    @property
    def total(self):
        return sum(self.amounts)


# ---------------------------------------------------------------------------------------------
# Reverts
# ---------------------------------------------------------------------------------------------


def _check_input_names(error, inputs):
    names = {item.name for item in error.abi.inputs}
    assert set(inputs) == names, f"{error.abi.selector} takes the inputs {sorted(names)}, got {sorted(inputs)}"


def encode_error(error, inputs):
    """Return the revert data of the custom error class `error` with the given `inputs`."""
    _check_input_names(error, inputs)
    abi = error.abi
    types = [item.canonical_type for item in abi.inputs]
    values = [address_of(inputs[item.name]) for item in abi.inputs]
    return selector(abi.selector) + eth_abi.encode(types, values)


def _assert_same_error(raised, error, inputs):
    """Check that the decoded custom error `raised` has the signature of `error` and exactly `inputs`.

    The comparison uses the signature and not the Python class, because ape builds one class per
    contract and may decode an error that a nested call raised with the ABI of another contract.
    """
    assert raised.abi.selector == error.abi.selector, f"expected {error.abi.selector}, got {raised!r}"
    assert dict(raised.inputs) == {name: address_of(value) for name, value in inputs.items()}


def _assert_revert_data(revert_data, error, inputs):
    """Decode raw revert data with the ABI of the contract that declares `error`, and check it."""
    decoded = ape.networks.provider.network.ecosystem.decode_custom_error(revert_data, error.contract.address)
    assert decoded is not None, (
        f"expected {error.abi.selector}, but the revert data {revert_data.to_0x_hex()} "
        f"matches no error of {error.contract.address}"
    )
    _assert_same_error(decoded, error, inputs)
    # The decoder ignores trailing bytes, so the data itself must match as well.
    assert revert_data == encode_error(error, inputs)


@contextmanager
def reverts(error, **inputs):
    """Expect a revert with exactly the custom error `error` and exactly these `inputs`.

    `error` is an error class of a deployed contract, such as `escrow.GrantNotFound`, and every
    one of its inputs must be given. `ape.reverts` alone accepts a revert without any custom
    error and skips the inputs it is not given. ape decodes a custom error only against the ABI
    of the called contract, and on some providers of the last contract in the trace. So an
    error that a token or the escrow raised under another contract can arrive as raw revert
    data. That data is decoded here with the ABI of the contract that declares `error` and
    compared byte for byte with the encoding of `error` and `inputs`.

    For a reverting view call, use `assert_view_reverts`, which also works on anvil.
    """
    _check_input_names(error, inputs)
    with ape.reverts() as info:
        yield info

    raised = info.value
    if isinstance(raised, CustomError):
        _assert_same_error(raised, error, inputs)
        return

    revert_data = raised.revert_message or ""
    # ape 0.8.51's in-process provider turns py-evm's revert bytes into hex only when their
    # Python repr is b'...'. Bytes that contain a ' and no " arrive as a b"..." literal instead.
    if revert_data.startswith('b"'):
        revert_data = HexBytes(ast.literal_eval(revert_data)).to_0x_hex()
    assert revert_data.startswith("0x"), f"expected {error.abi.selector}, but the revert was {raised!r}"
    _assert_revert_data(HexBytes(revert_data), error, inputs)


def assert_view_reverts(error, view, *args, **inputs):
    """Call the view method `view` with `args` and check that it reverts with exactly `error`
    and `inputs`.

    On anvil 1.7, ape-foundry 0.8 reports a reverted eth_call as undecoded text ("custom error
    0x...: ...") that drops trailing spaces of the data. In that case this helper repeats the
    eth_call through web3, which keeps the raw revert data, and checks that data instead.
    """
    _check_input_names(error, inputs)
    with ape.reverts() as info:
        view(*args)

    if isinstance(info.value, CustomError):
        _assert_same_error(info.value, error, inputs)
        return

    request = {"to": view.contract.address, "data": view.encode_input(*args)}
    with pytest.raises(Web3ContractLogicError) as raw:
        ape.chain.provider.web3.eth.call(request)
    _assert_revert_data(HexBytes(raw.value.data), error, inputs)


def fees_of_reverted_transaction(chain, revert):
    """Return the gas fees that the sender paid for the reverted transaction caught in `revert`.

    ape's in-process chain and anvil both mine a transaction that reverts, so its sender pays
    gas but keeps any value sent.
    """
    receipt = chain.get_receipt(to_hex(HexBytes(revert.value.txn.txn_hash)))
    assert receipt.failed
    return receipt.total_fees_paid


# ---------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------


def expected_event(event, **arguments):
    """Build a mock log of `event` from a value for every one of its inputs.

    ape compares a mock log only on the arguments it was given and skips those that are None,
    so requiring all of them, and none None, makes `receipt.events == [...]` a check of whole
    events.
    """
    names = [abi_input.name for abi_input in event.abi.inputs]
    unknown = sorted(set(arguments) - set(names))
    missing = [name for name in names if arguments.get(name) is None]
    if unknown or missing:
        raise ValueError(f"expected_event({event.name}) has unknown inputs {unknown} and no value for {missing}")
    return event(**arguments)


def expected_transfer(token, sender, receiver, amount):
    """Return the ERC-20 Transfer log of `amount` tokens from `sender` to `receiver`."""
    return expected_event(token.Transfer, **{"from": sender, "to": receiver, "value": amount})


def transfer_events(token, sender, receiver, amount):
    """Return the Transfer logs that a payment adds to a receipt: one for an ERC-20, none for ETH."""
    if address_of(token) == ETH:
        return []
    return [expected_transfer(token, sender, receiver, amount)]


def _as_decoded(value):
    """Convert terms to the form ape decodes them in: lowercase addresses and tuples."""
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return value.lower()
    if isinstance(value, (list, tuple)):
        return tuple(_as_decoded(item) for item in value)
    return value


def expected_grant_created(escrow, grant_id, creator, terms):
    """Return the expected GrantCreated log with the full terms.

    ape 0.8.51 fails to build a mock from a struct argument (its StructParser raises a
    TypeError), so this mock is built directly.
    """
    return MockContractLog(
        contract_address=escrow.address,
        event_name="GrantCreated",
        event_arguments={
            "grantId": grant_id,
            "creator": address_of(creator),
            "recipient": terms[0],
            "terms": _as_decoded(terms),
        },
    )


# ---------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------


def assert_books(escrow, eth_surplus=0, exact=True):
    """Check the escrow's accounting over every grant created so far.

    For each grant, funded == released + reclaimed + held. For each token, the held amounts
    of its grants add up to totalHeld(token), and the escrow's balance equals totalHeld plus
    totalCredits (for ETH, plus `eth_surplus`, the ETH forced in that the books never count).
    With `exact=False` the balance only has to cover totalHeld plus totalCredits.
    """
    held_by_token = {}
    for grant_id in range(1, escrow.grantCount() + 1):
        grant = escrow.getGrant(grant_id)
        assert grant.funded == grant.released + grant.reclaimed + grant.held, f"grant {grant_id}"
        held_by_token[grant.token] = held_by_token.get(grant.token, 0) + grant.held

    for token_address, held in held_by_token.items():
        assert escrow.totalHeld(token_address) == held, f"totalHeld({token_address})"
        owed = held + escrow.totalCredits(token_address)
        if token_address == ETH:
            balance = escrow.balance
            owed += eth_surplus
        else:
            balance = ape.project.MockERC20.at(token_address).balanceOf(escrow)
        if exact:
            assert balance == owed, f"escrow balance of {token_address}"
        else:
            assert balance >= owed, f"escrow balance of {token_address}"


def register_project(registry, admin, payout, sender, metadata_hash=METADATA_HASH, metadata_uri=METADATA_URI):
    """Register a project and return its id, read from the ProjectRegistered event."""
    receipt = registry.registerProject(admin, payout, metadata_hash, metadata_uri, sender=sender)
    (registered,) = receipt.events.filter(registry.ProjectRegistered)
    return registered.projectId
