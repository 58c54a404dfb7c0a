"""`ape run reclaim`: the `fundtrail reclaim` command, for use inside the ape project."""

from fundtrail.cli import reclaim as cli

__all__ = ["cli"]
