"""The Makefile's test target, read with `make -n`, which prints its commands instead of running
them."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PERSISTENT_ANVIL = "http://127.0.0.1:8546"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def anvil_test_command(**variables: str) -> str:
    """Return the command of `make test` that runs the contract tests on anvil.

    The shell exports APE_FOUNDRY_HOST, as docs/local-chains.md tells users to do.
    """
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("TEST_ANVIL_HOST", "MAKEFLAGS")
    }
    environment["APE_FOUNDRY_HOST"] = PERSISTENT_ANVIL
    arguments = [f"{name}={value}" for name, value in variables.items()]
    result = subprocess.run(
        ["make", "-n", "test", *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    [command] = [line for line in result.stdout.splitlines() if "ethereum:local:foundry" in line]
    return command


def test_anvil_tests_ignore_shell_foundry_host():
    command = anvil_test_command()

    assert "APE_FOUNDRY_HOST=http://127.0.0.1:8545 " in command
    assert PERSISTENT_ANVIL not in command


def test_anvil_tests_use_test_anvil_host():
    command = anvil_test_command(TEST_ANVIL_HOST="http://127.0.0.1:8650")

    assert "APE_FOUNDRY_HOST=http://127.0.0.1:8650 " in command
