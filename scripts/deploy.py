"""`ape run deploy`: the `fundtrail deploy` command, for use inside the ape project."""

from fundtrail.cli import deploy as cli

__all__ = ["cli"]
