"""`ape run project`: the `fundtrail project` command, for use inside the ape project."""

from fundtrail.cli import project as cli

__all__ = ["cli"]
