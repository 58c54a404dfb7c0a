"""Turn the account names users write (ape aliases, test aliases, addresses) into addresses."""

import difflib
import logging

from fundtrail.errors import SpecError
from fundtrail.spec import resolve_address

logger = logging.getLogger(__name__)

TEST_ALIAS_PREFIX = "TEST::"
"""ape's prefix for its test accounts, as in `TEST::0`."""


def known_aliases() -> list[str]:
    """Return the aliases of ape's stored accounts and of its test accounts."""
    from ape import accounts

    aliases = list(accounts.aliases)
    aliases.extend(f"{TEST_ALIAS_PREFIX}{index}" for index in range(len(accounts.test_accounts)))
    return aliases


def load_account(field: str, alias: str):
    """Return the ape account behind `alias`, a stored account's alias or `TEST::<index>`.

    Raises `SpecError` naming `field` when no account has the alias, with the closest
    known aliases as suggestions.
    """
    from ape import accounts

    # `accounts.load` only searches stored accounts, so test aliases are looked up by index.
    prefix, _, index = alias.partition("::")
    if f"{prefix.upper()}::" == TEST_ALIAS_PREFIX and index.isdecimal():
        if int(index) < len(accounts.test_accounts):
            return accounts.test_accounts[int(index)]
    elif alias in set(accounts.aliases):
        return accounts.load(alias)

    raise SpecError(field, alias, "no account has this alias", _suggest(alias))


def resolve_account(value: str, field: str) -> str:
    """Return the checksum address for `value`: an address as it is, or an account alias.

    This is the `resolve_account` callback that `GrantSpec.resolve` takes. Raise `SpecError`
    naming `field` for a malformed address or an unknown alias.
    """
    text = str(value).strip()
    if text.lower().startswith("0x"):
        return resolve_address(text, field)

    address = load_account(field, text).address
    logger.debug("Resolved %s alias %s to %s", field, text, address)
    return address


def _suggest(alias: str) -> str:
    aliases = known_aliases()
    matches = difflib.get_close_matches(alias, aliases, n=3)
    if matches:
        return f"Did you mean {' or '.join(repr(match) for match in matches)}?"
    if aliases:
        return (
            "Known aliases: "
            + ", ".join(aliases[:12])
            + ". Add an account with `ape accounts import ALIAS`."
        )
    return "Add an account with `ape accounts import ALIAS`, or write its address."
