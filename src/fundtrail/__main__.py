"""Run the `fundtrail` command line as `python -m fundtrail`."""

from fundtrail.cli import cli

if __name__ == "__main__":
    cli()
