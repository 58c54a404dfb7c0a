"""`ape run keeper`: the `fundtrail keeper` service."""

from fundtrail.cli import keeper as cli

__all__ = ["cli"]
