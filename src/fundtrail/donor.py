"""Donor references: salted commitments that let a donor prove a gift without naming themselves.

A donation records `keccak256(salt || label)` on-chain. The donor keeps the salt and the label,
and can later show both to prove which donation was theirs. Nobody else can recover the label
from the hash, provided the salt is secret and long enough to rule out guessing.
"""

from eth_utils import keccak

from fundtrail.errors import SpecError

MIN_SALT_BYTES = 16
"""Shortest salt accepted, so that the label cannot be found by trying every salt."""

NO_DONOR_REF = b"\x00" * 32
"""The donor reference of a donation made without one."""


def donor_commitment(secret_salt: bytes, label: str) -> bytes:
    """Return `keccak256(secret_salt || label)`, with the label encoded as UTF-8."""
    if len(secret_salt) < MIN_SALT_BYTES:
        raise SpecError(
            "--donor-ref-salt",
            f"{len(secret_salt)} bytes",
            f"the salt is shorter than {MIN_SALT_BYTES} bytes, so the label could be guessed",
            "Use a random salt of at least 16 bytes, for example from "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`, and keep it secret.",
        )
    if not label:
        raise SpecError(
            "--donor-label", label, "the label is empty", "Pass a label you will recognise later."
        )
    return keccak(secret_salt + label.encode("utf-8"))
