"""`ape run report`: the `fundtrail report` commands, for use inside the ape project."""

from fundtrail.cli_ledger import report as cli

__all__ = ["cli"]
