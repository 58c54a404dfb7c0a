"""`ape run attest`: the `fundtrail attest` command, for use inside the ape project."""

from fundtrail.cli import attest as cli

__all__ = ["cli"]
