"""Run slither on a Hardhat-style build-info file and fail on High or Medium findings.

`make slither` writes the build-info with toolchain/build_info.py and then runs this script
with the Python of .venv-slither, where slither-analyzer is installed:

    .venv-slither/bin/python toolchain/slither_gate.py --artifacts .build/slither \
        --expect-contract MilestoneEscrow --expect-contract DonationRegistry

Exit codes:
    0  the gate passes.
    1  a High or Medium finding is left, or a `// slither-disable-next-line` comment silences
       nothing.
    2  the analysis is unusable: no build-info, an include path that selects no file, or an
       expected contract that was not analysed.

The script calls slither's Python API instead of the `slither` command. Given the project
folder as its target, the command looks for a hardhat.config.js before it applies
`--compile-force-framework hardhat`. This project has none, so slither 0.11.6 analyses
0 contracts and exits with 0. Here crytic-compile reads the build-info directly, and the
analysed contracts are checked against `--expect-contract`.

A finding counts when at least one of its locations is in a file that `--include-paths`
selects. slither's `--filter-paths` works the other way round: it drops a finding as soon as
one location matches, such as a reentrancy in our code that passes through OpenZeppelin.
"""

import argparse
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Findings of these impacts fail the gate. The others are printed for review.
BLOCKING_IMPACTS = ("High", "Medium")
IMPACT_ORDER = ("High", "Medium", "Low", "Informational", "Optimization")

# The contracts and interfaces at the top of contracts/, without the mocks in contracts/test/.
DEFAULT_INCLUDE_PATHS = r"contracts/[^/]+\.sol$,contracts/interfaces/[^/]+\.sol$"

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_UNUSABLE = 2


class AnalysisError(Exception):
    """The analysis did not run on what it was meant to analyse."""


@dataclass
class Analysis:
    """The result of one slither run.

    `contracts` are all the contracts slither analysed, dependencies and mocks included.
    `included_files` are the files, relative to the project folder, whose findings count.
    `findings` are slither's results, each a dict as in the `detectors` list of slither's JSON
    output, without those that a disable comment silences. `stale_comments` are the disable
    comments in the included files that silenced nothing, as `{"file", "line", "detectors"}`.
    """

    contracts: list[str]
    included_files: list[str]
    findings: list[dict]
    stale_comments: list[dict] = field(default_factory=list)


def analyse(root: Path, artifacts: Path, include_paths: list[str], expected: list[str]) -> Analysis:
    """Run every slither detector on the build-info under `root / artifacts`."""
    # Imported here, so that the functions that judge a report work without slither.
    from crytic_compile import CryticCompile
    from crytic_compile.platform.exceptions import InvalidCompilation
    from slither import Slither
    from slither.__main__ import get_detectors_and_printers

    build_info = root / artifacts / "build-info"
    if not any(build_info.glob("*.json")):
        raise AnalysisError(
            f"no build-info file in {build_info}; run toolchain/build_info.py first"
        )
    try:
        compilation = CryticCompile(
            str(root),
            compile_force_framework="hardhat",
            hardhat_ignore_compile=True,
            npx_disable=True,
            hardhat_artifacts_directory=str(root / artifacts),
        )
    except InvalidCompilation as error:
        raise AnalysisError(f"crytic-compile could not read {build_info}: {error}") from error

    include_patterns = anchor_include_paths(root, include_paths, compilation.filenames)
    included_files = sorted(
        Path(filename.absolute).relative_to(root).as_posix()
        for filename in compilation.filenames
        if selects(include_patterns, Path(filename.absolute).resolve().as_posix())
    )
    slither = Slither(
        compilation,
        include_paths=include_patterns,
        # slither's triage mode stores the findings a user hides in slither.db.json, and every
        # later run that finds the file hides them again. The gate points at a path that nothing
        # writes, so only disable comments in the code can silence a finding.
        triage_database=str(root / artifacts / "no-triage-database.json"),
    )
    contracts = sorted({contract.name for contract in slither.contracts})
    missing = sorted(set(expected) - set(contracts))
    if missing:
        raise AnalysisError(f"expected contracts were not analysed: {', '.join(missing)}")

    detectors, _ = get_detectors_and_printers()
    for detector in detectors:
        slither.register_detector(detector)
    findings = [result for results in slither.run_detectors() for result in results]

    # slither parses each file's comments twice, so the same comment can be listed twice.
    stale = {}
    for comment in slither.get_unused_ignore_comments():
        if selects(include_patterns, comment["file"]):
            file = Path(comment["file"]).relative_to(root).as_posix()
            stale[(file, comment["line"])] = {
                "file": file,
                "line": comment["line"],
                "detectors": comment["unused_detectors"],
            }
    stale_comments = sorted(stale.values(), key=lambda comment: (comment["file"], comment["line"]))
    return Analysis(contracts, included_files, findings, stale_comments)


def selects(patterns: list[str], file: str) -> bool:
    """Tell whether findings in `file`, an absolute path, count. Without patterns, all count."""
    return not patterns or any(re.search(pattern, file) for pattern in patterns)


def anchor_include_paths(root: Path, include_paths: list[str], filenames) -> list[str]:
    """Anchor each include path at `root`, and check that each selects a compiled file.

    slither searches the patterns anywhere in each absolute path, so an unanchored
    `contracts/interfaces/` would also select node_modules/@openzeppelin/contracts/interfaces/.
    slither also strips dots from both ends of a pattern and drops every finding when a pattern
    is not a valid regular expression. A pattern that selects nothing is therefore an error
    here, instead of a gate that passes because it looked at nothing.
    """
    from slither.core.slither_core import _relative_path_format

    compiled_files = [Path(filename.absolute).resolve().as_posix() for filename in filenames]
    patterns = []
    for include_path in include_paths:
        # The pattern as slither will search it, so that `selects` agrees with slither.
        pattern = _relative_path_format("^" + re.escape(root.as_posix() + "/") + include_path)
        try:
            selects_a_file = any(re.search(pattern, file) for file in compiled_files)
        except re.error as error:
            raise AnalysisError(
                f"include path {include_path!r} is not a valid regular expression: {error}"
            ) from error
        if not selects_a_file:
            raise AnalysisError(
                f"include path {include_path!r} selects no compiled file under {root}"
            )
        patterns.append(pattern)
    return patterns


def blocking(findings: list[dict]) -> list[dict]:
    """Return the findings whose impact fails the gate."""
    return [finding for finding in findings if finding["impact"] in BLOCKING_IMPACTS]


def format_findings(findings: list[dict]) -> str:
    """Render findings from the highest impact down, one indented block per finding."""
    ordered = sorted(
        findings, key=lambda finding: (IMPACT_ORDER.index(finding["impact"]), finding["check"])
    )
    blocks = []
    for finding in ordered:
        header = f"[{finding['impact']}/{finding['confidence']}] {finding['check']}"
        blocks.append(f"{header}\n    " + finding["description"].strip().replace("\n", "\n    "))
    return "\n".join(blocks)


def judge(analysis: Analysis) -> int:
    """Print the findings and stale comments, and return the gate's exit code for them."""
    findings = analysis.findings
    if findings:
        print(format_findings(findings))
    for comment in analysis.stale_comments:
        detectors = ",".join(comment["detectors"])
        print(
            f"slither: stale comment: `slither-disable-next-line {detectors}` at "
            f"{comment['file']}#{comment['line']} silences nothing. Delete it."
        )
    counts = ", ".join(
        f"{sum(finding['impact'] == impact for finding in findings)} {impact}"
        for impact in IMPACT_ORDER
    )
    print(
        f"slither: {len(analysis.contracts)} contracts analysed, findings counted in "
        f"{len(analysis.included_files)} files: {len(findings)} finding(s) ({counts})"
    )

    failures = blocking(findings)
    if failures:
        print(
            f"slither: FAILED: {len(failures)} High or Medium finding(s). Fix each one, or "
            "accept it with `// slither-disable-next-line <detector> (reason)` on the line "
            "above it."
        )
    if analysis.stale_comments:
        print(f"slither: FAILED: {len(analysis.stale_comments)} stale disable comment(s).")
    return EXIT_FAILED if failures or analysis.stale_comments else EXIT_PASSED


def write_report(path: Path, analysis: Analysis) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(analysis), indent=2))


def read_report(path: Path) -> Analysis:
    """Load a report that --report wrote. A report without analysed contracts is unusable."""
    try:
        analysis = Analysis(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as error:
        raise AnalysisError(f"cannot read the report {path}: {error}") from error
    if not analysis.contracts:
        raise AnalysisError(f"the report {path} lists no analysed contract")
    return analysis


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--root", type=Path, default=Path.cwd(), help="project folder (default: the working folder)"
    )
    parser.add_argument(
        "--artifacts",
        type=Path,
        default=Path(".build/slither"),
        help="folder with build-info/, relative to --root",
    )
    parser.add_argument(
        "--include-paths",
        default=DEFAULT_INCLUDE_PATHS,
        help="comma-separated regular expressions, relative to --root, of the files whose "
        "findings count",
    )
    parser.add_argument(
        "--expect-contract",
        action="append",
        default=[],
        metavar="NAME",
        help="a contract that must be among the analysed ones; repeat for several",
    )
    parser.add_argument("--report", type=Path, help="also write the analysis to this JSON file")
    parser.add_argument(
        "--from-report",
        type=Path,
        help="judge a JSON file that --report wrote, without running slither",
    )
    arguments = parser.parse_args(argv)

    try:
        if arguments.from_report:
            analysis = read_report(arguments.from_report)
        else:
            include_paths = [path for path in arguments.include_paths.split(",") if path]
            analysis = analyse(
                arguments.root.resolve(),
                arguments.artifacts,
                include_paths,
                arguments.expect_contract,
            )
            if arguments.report:
                write_report(arguments.report, analysis)
    except AnalysisError as error:
        print(f"slither: analysis unusable: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    return judge(analysis)


if __name__ == "__main__":
    sys.exit(main())
