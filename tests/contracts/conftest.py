"""Escrow fixtures and assertion helpers for the MilestoneEscrow tests.

The roles, contracts, tokens and `make_terms` come from tests/conftest.py. This file adds
grants in known states, exact revert and event matchers, and `assert_books`, which checks the
escrow's accounting identities.
"""

from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum

import ape
import eth_abi
import pytest
from ape.exceptions import CustomError
from ape.types.events import MockContractLog
from ape.utils import ZERO_ADDRESS
from eth_utils import keccak
from hexbytes import HexBytes
from web3.exceptions import ContractLogicError as Web3ContractLogicError

ETH = ZERO_ADDRESS
DAY = 24 * 60 * 60
MAX_UINT256 = 2**256 - 1
MAX_UINT128 = 2**128 - 1

EVIDENCE = b"\xe1" * 32
EVIDENCE_2 = b"\xe2" * 32
EVIDENCE_URI = "ipfs://bafy-evidence-1"
REASON = b"\x5e" * 32

# Amounts of the default grants, one per milestone.
ETH_AMOUNTS = (1_000, 2_000, 3_000)
USDC_AMOUNTS = (1_000 * 10**6, 2_000 * 10**6, 3_000 * 10**6)


class GrantStatus(IntEnum):
    FUNDING = 0
    FUNDING_FAILED = 1
    ACTIVE = 2
    COMPLETED = 3


class MilestoneStatus(IntEnum):
    AWAITING_EVIDENCE = 0
    EVIDENCE_SUBMITTED = 1
    RELEASED = 2
    RECLAIMED = 3


class PayoutKind(IntEnum):
    RELEASE = 0
    RECLAIM = 1
    REFUND = 2


# Milestone index that Payout events of refunds carry.
NO_MILESTONE = MAX_UINT256


def selector(signature):
    """Return the 4-byte selector of an error or function signature such as "Foo(uint256)"."""
    return keccak(text=signature)[:4]


def address_of(account):
    return getattr(account, "address", account)


@dataclass(frozen=True)
class Grant:
    """A created grant: its id, the terms it was created with and its token contract.

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
# Matchers
# ---------------------------------------------------------------------------------------------


def encode_error(error, inputs):
    """Return the revert data of the custom error class `error` with the given `inputs`."""
    abi = error.abi
    assert set(inputs) == {item.name for item in abi.inputs}, f"{abi.name} needs every input"
    types = [item.canonical_type for item in abi.inputs]
    values = [address_of(inputs[item.name]) for item in abi.inputs]
    return selector(abi.selector) + eth_abi.encode(types, values)


@contextmanager
def reverts(error, **inputs):
    """Expect a revert with exactly the custom error `error` and exactly these `inputs`.

    `ape.reverts` alone accepts a revert without any custom error, and it skips the inputs it
    is not given, so this helper checks the error class and the whole input dict itself.
    ape decodes a custom error only against the ABI of the called contract. An error that a
    token raised and the escrow passed on arrives as raw revert data, so the helper compares
    that data with the encoding of `error` and `inputs`.
    """
    with ape.reverts() as info:
        yield info
    if isinstance(info.value, CustomError):
        assert isinstance(info.value, error), f"expected {error.__name__}, got {info.value!r}"
        assert info.value.inputs == inputs
    else:
        assert HexBytes(info.value.revert_message) == encode_error(error, inputs)


def assert_view_reverts(error, view, *args, **inputs):
    """Call the view method `view` with `args` and check that it reverts with exactly `error`
    and `inputs`.

    On anvil 1.7, ape reports a reverted eth_call as undecoded text ("custom error 0x...: ...")
    that drops trailing spaces of the data. In that case this helper repeats the eth_call
    through web3 and compares the raw revert data instead.
    """
    with ape.reverts() as info:
        view(*args)
    if isinstance(info.value, CustomError):
        assert isinstance(info.value, error), f"expected {error.__name__}, got {info.value!r}"
        assert info.value.inputs == inputs
        return

    request = {"to": view.contract.address, "data": view.encode_input(*args)}
    with pytest.raises(Web3ContractLogicError) as raw:
        ape.chain.provider.web3.eth.call(request)
    assert HexBytes(raw.value.data) == encode_error(error, inputs)


def log(event, *args):
    """Return a mock of `event` that names every argument, so a comparison checks them all.

    ape compares a mock only on the arguments it was given, so a short argument list would
    silently weaken the assertion.
    """
    assert len(args) == len(event.abi.inputs), f"{event.name} takes {len(event.abi.inputs)} arguments"
    return event(*args)


def _as_decoded(value):
    """Convert terms to the form ape decodes them in: lowercase addresses and tuples."""
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return value.lower()
    if isinstance(value, (list, tuple)):
        return tuple(_as_decoded(item) for item in value)
    return value


def grant_created_log(escrow, grant_id, creator, terms):
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


def balance_of(token, account):
    """Return the ETH balance of `account` for ETH, else its balance of the token contract."""
    if address_of(token) == ETH:
        return ape.chain.provider.get_balance(address_of(account))
    return token.balanceOf(account)


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


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def fund(escrow):
    """`fund(grant, payer, amount, funder=None)` adds `amount` from `payer`, approving the
    escrow first for an ERC-20 grant. With `funder`, it calls fundFor instead of fund."""

    def _fund(grant, payer, amount, funder=None):
        value = amount if grant.token_address == ETH else 0
        if grant.token_address != ETH:
            grant.token.approve(escrow, amount, sender=payer)
        if funder is None:
            return escrow.fund(grant.id, amount, value=value, sender=payer)
        return escrow.fundFor(grant.id, address_of(funder), amount, value=value, sender=payer)

    return _fund


@pytest.fixture
def create_grant(escrow, grant_maker, make_terms, fund):
    """`create_grant(funded=False, token=ETH, **terms)` creates a grant with `make_terms`
    arguments and, with `funded=True`, funds it in full from the grant maker."""

    def _create(funded=False, token=ETH, **terms_kwargs):
        terms = make_terms(token=token, **terms_kwargs)
        escrow.createGrant(terms, sender=grant_maker)
        grant = Grant(id=escrow.grantCount(), terms=terms, token=token)
        if funded:
            fund(grant, grant_maker, grant.total)
        return grant

    return _create


@pytest.fixture
def eth_grant(create_grant):
    """A 2-of-3 ETH grant of 1,000, 2,000 and 3,000 wei, created and not funded."""
    return create_grant(amounts=ETH_AMOUNTS)


@pytest.fixture
def funded_eth_grant(create_grant):
    """The default ETH grant, funded in full by the grant maker."""
    return create_grant(funded=True, amounts=ETH_AMOUNTS)


@pytest.fixture
def funded_usdc_grant(create_grant, usdc):
    """A 2-of-3 grant of 1,000, 2,000 and 3,000 USDC, funded in full by the grant maker."""
    return create_grant(funded=True, token=usdc, amounts=USDC_AMOUNTS)


@pytest.fixture
def release(escrow, ngo, attestors):
    """`release(grant, index)` submits EVIDENCE for the milestone and approves it with the
    first `threshold` attestors, and returns the receipt of the releasing approval."""

    def _release(grant, index, evidence=EVIDENCE):
        escrow.submitEvidence(grant.id, index, evidence, EVIDENCE_URI, sender=ngo)
        receipt = None
        for attestor in attestors[: grant.threshold]:
            receipt = escrow.approve(grant.id, index, evidence, sender=attestor)
        return receipt

    return _release


@pytest.fixture
def books_balance_at_end(escrow):
    """Check the accounting identities once more on the final state of a test. The escrow test
    modules use it through `pytestmark`; the balance check is `>=` here, because a test may
    have forced ETH into the escrow."""
    yield
    assert_books(escrow, exact=False)
