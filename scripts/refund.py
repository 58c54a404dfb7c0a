"""`ape run refund`: the `fundtrail refund` command, for use inside the ape project."""

from fundtrail.cli import refund as cli

__all__ = ["cli"]
