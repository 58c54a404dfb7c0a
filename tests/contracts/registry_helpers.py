"""Helpers shared by the DonationRegistry tests: strict revert and event checks, and set-up steps."""

from contextlib import contextmanager
from enum import IntEnum

import ape
from ape.exceptions import CustomError
from eth_utils import to_hex
from hexbytes import HexBytes

ETH = "0x0000000000000000000000000000000000000000"
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
NO_REF = b"\x00" * 32
DONOR_REF = b"\xd0" * 32
METADATA_HASH = b"\x4d" * 32
METADATA_URI = "ipfs://bafy-project"


class ProjectStatus(IntEnum):
    """IDonationRegistry.ProjectStatus."""

    PENDING = 0
    VERIFIED = 1
    SUSPENDED = 2


class PayoutKind(IntEnum):
    """IMilestoneEscrow.PayoutKind."""

    RELEASE = 0
    RECLAIM = 1
    REFUND = 2


# Milestone index that the escrow records in the Payout event of a refund.
NO_MILESTONE = 2**256 - 1


@contextmanager
def reverts_with(error, **inputs):
    """Expect a revert with the custom error `error` and exactly the arguments `inputs`.

    `error` is an error class of a deployed contract, such as `registry.ZeroAdmin`. Unlike
    `ape.reverts` alone, this fails when the revert is not a custom error and when the error has
    an argument that `inputs` does not name. An error raised by a nested call, such as an escrow
    error under `registry.donateToGrant`, reaches ape undecoded on some providers, so it is
    decoded here with the ABI of the contract that declares `error`.
    """
    with ape.reverts() as revert:
        yield revert

    raised = revert.value
    if not isinstance(raised, CustomError):
        revert_data = raised.revert_message or ""
        assert revert_data.startswith("0x"), f"expected {error.__name__}, but the revert was {raised!r}"
        ecosystem = ape.networks.provider.network.ecosystem
        decoded = ecosystem.decode_custom_error(HexBytes(revert_data), error.contract.address)
        assert decoded is not None, (
            f"expected {error.__name__}, but the revert data {revert_data} "
            f"matches no error of {error.contract.address}"
        )
        raised = decoded

    assert type(raised).__name__ == error.__name__
    assert dict(raised.inputs) == {name: _address_or_value(value) for name, value in inputs.items()}


def _address_or_value(value):
    """Return the address of an ape account or contract, and any other value unchanged."""
    return getattr(value, "address", value)


def fees_of_reverted_transaction(chain, revert):
    """Return the gas fees that the sender paid for the reverted transaction caught in `revert`.

    ape's in-process chain and anvil both mine a transaction that reverts, so its sender pays
    gas but keeps any value sent.
    """
    receipt = chain.get_receipt(to_hex(HexBytes(revert.value.txn.txn_hash)))
    assert receipt.failed
    return receipt.total_fees_paid


def expected_event(event, **arguments):
    """Build a mock log of `event` from a value for every one of its inputs.

    ape compares a mock log only on the arguments it was given, so requiring all of them makes
    `receipt.events == [...]` a check of whole events.
    """
    names = [abi_input.name for abi_input in event.abi.inputs]
    missing = [name for name in names if arguments.get(name) is None]
    if missing:
        raise ValueError(f"expected_event({event.name}) is missing values for {missing}")
    return event(**arguments)


def register_project(registry, admin, payout, sender, metadata_hash=METADATA_HASH, metadata_uri=METADATA_URI):
    """Register a project and return its id, read from the ProjectRegistered event."""
    receipt = registry.registerProject(admin, payout, metadata_hash, metadata_uri, sender=sender)
    (registered,) = receipt.events.filter(registry.ProjectRegistered)
    return registered.projectId
