"""`ape run relay`: the `fundtrail relay` command, for use inside the ape project."""

from fundtrail.cli import relay_signatures as cli

__all__ = ["cli"]
