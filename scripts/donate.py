"""`ape run donate`: the `fundtrail donate` command, for use inside the ape project."""

from fundtrail.cli import donate as cli

__all__ = ["cli"]
