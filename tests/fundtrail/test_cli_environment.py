"""The `fundtrail` command finds the project's solc-js launcher and anvil without the Makefile."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRINT_SOLCX_PATH = "import os, fundtrail.cli; print(os.environ.get('SOLCX_BINARY_PATH'))"


def run_in(folder: Path, environment: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", PRINT_SOLCX_PATH],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def without_solcx_path() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "SOLCX_BINARY_PATH"}


def test_cli_points_solcx_at_repository_launcher():
    assert run_in(ROOT, without_solcx_path()) == str(ROOT / ".solcx")


def test_cli_keeps_solcx_path_from_environment(tmp_path):
    environment = {**without_solcx_path(), "SOLCX_BINARY_PATH": str(tmp_path)}

    assert run_in(ROOT, environment) == str(tmp_path)


def test_cli_leaves_solcx_path_unset_elsewhere(tmp_path):
    assert run_in(tmp_path, without_solcx_path()) == "None"


PRINT_ANVIL = "import shutil, fundtrail.cli; print(shutil.which('anvil'))"
NPM_ANVIL = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"


def without_anvil_on_path() -> dict[str, str]:
    folders = os.environ.get("PATH", "").split(os.pathsep)
    kept = [folder for folder in folders if not (Path(folder) / "anvil").exists()]
    return {**os.environ, "PATH": os.pathsep.join(kept)}


def which_anvil_in(folder: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", PRINT_ANVIL],
        cwd=folder,
        env=without_anvil_on_path(),
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_cli_puts_npm_anvil_on_path():
    assert which_anvil_in(ROOT) == str(NPM_ANVIL)


def test_cli_leaves_path_alone_elsewhere(tmp_path):
    assert which_anvil_in(tmp_path) == "None"
