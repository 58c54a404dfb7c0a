"""`ape run evidence`: the `fundtrail evidence` command, for use inside the ape project."""

from fundtrail.cli import evidence as cli

__all__ = ["cli"]
