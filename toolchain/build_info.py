"""Compile the project's contracts into a Hardhat-style build-info file for slither.

slither cannot drive ape, and the project installs no native solc. This script therefore
compiles with the solc-js wrapper that `ape compile` uses (toolchain/solc.js). It writes the
standard JSON input and output the way Hardhat does, as `<out>/build-info/<name>.json` with
the keys `solcVersion`, `input` and `output`, which crytic-compile reads for slither.

The compiler settings are read from ape-config.yaml, the file ape reads them from. The one
difference is where OpenZeppelin comes from: ape copies the dependency into contracts/.cache/,
while this build reads the same npm package in place. slither then reports OpenZeppelin files
under node_modules/, which crytic-compile treats as a dependency.

Run it with the project's virtual environment, which has PyYAML:

    .venv/bin/python toolchain/build_info.py --out .build/slither
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SOLC_WRAPPER = ROOT / "toolchain" / "solc.js"
BUILD_INFO_FORMAT = "hh-sol-build-info-1"

# The outputs that Hardhat selects for each contract and crytic-compile reads. The AST is
# selected per file.
CONTRACT_OUTPUTS = [
    "abi",
    "devdoc",
    "userdoc",
    "evm.bytecode.object",
    "evm.bytecode.sourceMap",
    "evm.deployedBytecode.object",
    "evm.deployedBytecode.sourceMap",
    "evm.methodIdentifiers",
]


class BuildInfoError(Exception):
    """The configuration is unusable or the compiler reported errors."""


def read_compiler_settings(root: Path) -> tuple[str, dict]:
    """Return the solc version and the standard JSON `settings` that ape-config.yaml sets."""
    config = yaml.safe_load((root / "ape-config.yaml").read_text())
    solidity = config["solidity"]
    settings = {
        "evmVersion": solidity["evm_version"],
        "optimizer": {"enabled": bool(solidity["optimize"]), "runs": solidity["optimization_runs"]},
        "remappings": _remappings(root, config),
        "outputSelection": {"*": {"*": CONTRACT_OUTPUTS, "": ["ast"]}},
    }
    return str(solidity["version"]), settings


def _remappings(root: Path, config: dict) -> list[str]:
    """Translate ape's `prefix=name/version` remappings into paths of the local dependencies.

    ape resolves `openzeppelin/5.3.0` to its copy of the dependency named `openzeppelin` at
    version 5.3.0; here the same name and version lead to the dependency's `local:` folder.
    """
    local_folders = {
        (dependency["name"], str(dependency["version"])): dependency["local"]
        for dependency in config.get("dependencies", [])
        if "local" in dependency
    }
    remappings = []
    for remapping in config["solidity"].get("import_remapping", []):
        prefix, target = remapping.split("=", 1)
        name, _, version = target.partition("/")
        if (name, version) not in local_folders:
            raise BuildInfoError(
                f"remapping {remapping!r} names no local dependency {name} {version} in "
                "ape-config.yaml; add a `local:` path for it"
            )
        folder = (root / local_folders[(name, version)]).resolve().relative_to(root)
        remappings.append(f"{prefix.rstrip('/')}/={folder.as_posix()}/")
    return remappings


def collect_sources(root: Path, contracts: Path) -> dict[str, dict]:
    """Return the Solidity file `contracts`, or every one under the folder `contracts`, keyed
    by its path relative to `root`.

    ape's copies of dependencies in contracts/.cache/ are left out: this build imports the
    dependencies from their own folders.
    """
    location = root / contracts
    paths = [location] if location.is_file() else sorted(location.rglob("*.sol"))
    sources = {}
    for path in paths:
        relative = path.relative_to(root)
        if ".cache" in relative.parts:
            continue
        sources[relative.as_posix()] = {"content": path.read_text()}
    if not sources:
        raise BuildInfoError(f"no .sol files found at {location}")
    return sources


def compile_standard_json(root: Path, standard_input: dict) -> dict:
    """Run solc-js through the project's wrapper and return the parsed standard JSON output."""
    completed = subprocess.run(
        ["node", str(SOLC_WRAPPER), "--standard-json", "--base-path", str(root)],
        input=json.dumps(standard_input),
        capture_output=True,
        text=True,
        cwd=root,
        check=False,
    )
    if completed.returncode != 0:
        raise BuildInfoError(
            f"toolchain/solc.js failed with exit code {completed.returncode}: {completed.stderr}"
        )
    output = json.loads(completed.stdout)
    errors = [error for error in output.get("errors", []) if error["severity"] == "error"]
    if errors:
        messages = "\n".join(error.get("formattedMessage", error["message"]) for error in errors)
        raise BuildInfoError(f"solc reported {len(errors)} error(s):\n{messages}")
    return output


def build(root: Path, contracts: Path, out: Path, name: str) -> Path:
    """Compile `contracts`, write the build-info file and return its path."""
    version, settings = read_compiler_settings(root)
    standard_input = {
        "language": "Solidity",
        "sources": collect_sources(root, contracts),
        "settings": settings,
    }
    output = compile_standard_json(root, standard_input)

    # The wrapper loaded imported files through its import callback. Hardhat's build-info lists
    # every source unit in the input, so the imported files are added with their contents.
    for source_name in output["sources"]:
        if source_name not in standard_input["sources"]:
            standard_input["sources"][source_name] = {"content": (root / source_name).read_text()}

    build_info = {
        "_format": BUILD_INFO_FORMAT,
        "id": name,
        "solcVersion": version,
        "solcLongVersion": _long_version(root),
        "input": standard_input,
        "output": output,
    }
    path = root / out / "build-info" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(build_info))
    return path


def _long_version(root: Path) -> str:
    completed = subprocess.run(
        ["node", str(SOLC_WRAPPER), "--version"],
        capture_output=True,
        text=True,
        cwd=root,
        check=True,
    )
    return completed.stdout.rsplit("Version:", 1)[-1].strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="project folder with ape-config.yaml"
    )
    parser.add_argument(
        "--contracts",
        type=Path,
        default=Path("contracts"),
        help="a .sol file, or a folder of them, relative to --root",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(".build/slither"),
        help="artifacts folder, relative to --root",
    )
    parser.add_argument(
        "--name", default="fundtrail", help="file name of the build-info, without .json"
    )
    arguments = parser.parse_args(argv)

    try:
        path = build(arguments.root.resolve(), arguments.contracts, arguments.out, arguments.name)
    except BuildInfoError as error:
        print(f"build_info.py: {error}", file=sys.stderr)
        return 1
    print(f"build_info.py: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
