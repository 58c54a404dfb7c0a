"""`ape run index`: the `fundtrail index` command, for use inside the ape project."""

from fundtrail.cli_ledger import index as cli

__all__ = ["cli"]
