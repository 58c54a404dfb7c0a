"""`ape run audit`: the `fundtrail audit` command, for use inside the ape project."""

from fundtrail.cli_ledger import audit as cli

__all__ = ["cli"]
