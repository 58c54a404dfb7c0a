"""`ape run demo`: the `fundtrail demo` command, a whole grant lifecycle on a local chain."""

from fundtrail.cli import demo as cli

__all__ = ["cli"]
