"""`ape run dashboard`: the `fundtrail dashboard` command, for use inside the ape project."""

from fundtrail.cli_ledger import dashboard as cli

__all__ = ["cli"]
