"""`ape run grant`: the `fundtrail grant` command, for use inside the ape project."""

from fundtrail.cli import grant as cli

__all__ = ["cli"]
