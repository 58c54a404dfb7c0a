"""`ape run withdraw`: the `fundtrail withdraw` command, for use inside the ape project."""

from fundtrail.cli import withdraw as cli

__all__ = ["cli"]
