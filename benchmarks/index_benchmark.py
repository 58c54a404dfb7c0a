"""Benchmark the ledger indexer against anvil.

Measures, each several times, on a chain of at least 10,000 FundTrail events:

- fresh: `Indexer.sync()` into an empty SQLite ledger, from the deployment block to the head;
- incremental: a ledger synced up to the block that holds 90 % of the events, then a new
  indexer (as a new `fundtrail index` run would make) syncing the last 10 %, then a sync with
  nothing new (the no-op sync);
- rebuild: `ledger.events()` and `books.rebuild()` over the whole ledger.

The chain is generated once by scenario.py and saved with anvil's state dump in
.fundtrail/bench/; later runs load it unless the contracts, the generator or its settings
changed. Run it with `make bench-index`, or directly:

    python benchmarks/index_benchmark.py --port 8760 --repeat 5

It prints a report and writes the raw timings as JSON next to the saved chain.
"""

import argparse
import cProfile
import gzip
import json
import logging
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path

from web3 import Web3

import index_chain as chain
from index_chain import ROOT, Anvil, Rpc
from fundtrail.contracts import ESCROW, REGISTRY
from fundtrail.deployments import ContractRecord, Deployment
from fundtrail.ledger import open_ledger
from fundtrail.ledger.audit import audit
from fundtrail.ledger.books import rebuild
from fundtrail.ledger.indexer import RangePolicy, SyncProgress
from fundtrail.ledger.views import ChainViews
from scenario import GENERATOR_VERSION, Scenario, artifacts_digest, load_artifacts

logger = logging.getLogger("index_benchmark")

STATE_FOLDER = ROOT / ".fundtrail/bench"
TARGET_EVENTS_PER_SECOND = 2_000


@dataclass
class Run:
    seconds: float
    """Wall-clock time."""
    events: int
    cpu_seconds: float = 0.0
    """CPU time of this Python process: without anvil's work and without waiting for the CPU
    when other processes share it."""
    anvil_cpu_seconds: float = 0.0
    """CPU time anvil used meanwhile to serve the requests."""
    requests: int = 0
    ranges: list[tuple[int, int, int]] | None = None
    """(first block, last block, events) of each eth_getLogs range that was stored."""

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else float("inf")


# The chain -------------------------------------------------------------------------------------


def saved_chain(port: int, seed: int, target_events: int, regenerate: bool) -> tuple[Path, dict]:
    """Return the saved anvil state and its summary, generating them first if needed."""
    STATE_FOLDER.mkdir(parents=True, exist_ok=True)
    state_path = STATE_FOLDER / f"anvil-state-{seed}-{target_events}.json"
    summary_path = state_path.with_suffix(".summary.json")
    expected = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "target_events": target_events,
        "artifacts": artifacts_digest(load_artifacts()),
    }
    if not regenerate and state_path.exists() and summary_path.exists():
        summary = json.loads(summary_path.read_text())
        if all(summary.get(key) == value for key, value in expected.items()):
            logger.info("Loading the saved chain %s", state_path)
            return state_path, summary
        logger.info("The saved chain is out of date: generating it again")

    with Anvil(port) as anvil:
        rpc = Rpc(anvil.url)
        started = time.perf_counter()
        scenario = Scenario(rpc, seed=seed, target_events=target_events)
        scenario.setup()
        scenario.run()
        summary = scenario.summary()
        summary["generation_seconds"] = round(time.perf_counter() - started, 1)
        # anvil_dumpState returns gzip-compressed JSON; --load-state reads plain JSON.
        dump = rpc.call("anvil_dumpState")
        state_path.write_bytes(gzip.decompress(bytes.fromhex(dump.removeprefix("0x"))))
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    logger.info("Generated %s events in %s transactions, %s blocks, in %s s", summary["events"],
                summary["transactions"], summary["head"], summary["generation_seconds"])
    return state_path, summary


def check_chain(rpc: Rpc, summary: dict) -> None:
    """Check that the loaded chain has the head and the event count the summary records."""
    head = int(rpc.call("eth_blockNumber"), 16)
    logs = rpc.call("eth_getLogs", {
        "address": [summary["escrow"]["address"], summary["registry"]["address"]],
        "fromBlock": hex(summary["escrow"]["block"]),
        "toBlock": hex(head),
    })
    if head != summary["head"] or len(logs) != summary["events"]:
        raise RuntimeError(
            f"The loaded chain has head {head} and {len(logs)} events, but was saved with head "
            f"{summary['head']} and {summary['events']} events. Rerun with --regenerate."
        )


def deployment_of(summary: dict) -> Deployment:
    return Deployment(
        network="ethereum:local:foundry",
        chain_id=summary["chain_id"],
        contracts={
            ESCROW: ContractRecord(**summary["escrow"]),
            REGISTRY: ContractRecord(**summary["registry"]),
        },
    )


# The measurements -----------------------------------------------------------------------------


class Timer:
    """Measures wall-clock time, this process's CPU time and anvil's CPU time of a block."""

    anvil: Anvil | None = None
    """The anvil whose CPU time is measured too; set once it runs."""

    def __enter__(self) -> "Timer":
        self._anvil = self.anvil.cpu_seconds() if self.anvil else 0.0
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        return self

    def __exit__(self, *exc_info) -> None:
        self.seconds = time.perf_counter() - self._wall
        self.cpu_seconds = time.process_time() - self._cpu
        self.anvil_cpu_seconds = (self.anvil.cpu_seconds() if self.anvil else 0.0) - self._anvil


class Bench:
    def __init__(self, web3: Web3, deployment: Deployment, folder: Path):
        self.web3 = web3
        self.deployment = deployment
        self.folder = folder
        artifacts = load_artifacts()
        self.abis = {name: artifacts[name]["abi"] for name in (ESCROW, REGISTRY)}
        self._databases = 0

    def new_database(self) -> str:
        self._databases += 1
        return str(self.folder / f"ledger-{self._databases}.sqlite")

    def indexer(self, database: str, policy: RangePolicy = RangePolicy()):
        return open_ledger(self.deployment, self.web3, database=database, abis=self.abis, policy=policy)

    def fresh(self, profile: Path | None = None, policy: RangePolicy = RangePolicy()) -> tuple[Run, str]:
        """Index the whole chain into an empty ledger; return the run and the database."""
        database = self.new_database()
        indexer = self.indexer(database, policy)
        ranges: list[tuple[int, int, int]] = []
        previous = [indexer.ledger.last_block, 0]

        def on_progress(progress: SyncProgress) -> None:
            ranges.append((previous[0] + 1, progress.last_block, progress.events - previous[1]))
            previous[:] = [progress.last_block, progress.events]

        profiler = cProfile.Profile() if profile else None
        with Timer() as timer:
            if profiler:
                profiler.enable()
            result = indexer.sync(on_progress=on_progress)
            if profiler:
                profiler.disable()
        if profiler:
            profiler.dump_stats(profile)
        run = Run(timer.seconds, result.events, timer.cpu_seconds, timer.anvil_cpu_seconds,
                  result.requests, ranges)
        return run, database

    def incremental(self, cut: int, database: str | None = None) -> tuple[Run, Run]:
        """Sync up to `cut` untimed, then time a new indexer's sync to the head, then a no-op sync."""
        database = database or self.new_database()
        self.indexer(database).sync(to_block=cut)
        indexer = self.indexer(database)
        with Timer() as tail_timer:
            tail = indexer.sync()
        with Timer() as noop_timer:
            noop = indexer.sync()
        if noop.events != 0:
            raise RuntimeError(f"The no-op sync stored {noop.events} events")
        return (
            Run(tail_timer.seconds, tail.events, tail_timer.cpu_seconds, tail_timer.anvil_cpu_seconds,
                tail.requests),
            Run(noop_timer.seconds, 0, noop_timer.cpu_seconds, noop_timer.anvil_cpu_seconds, noop.requests),
        )

    def rebuild(self, database: str) -> tuple[Run, Run]:
        """Time `ledger.events()` and `books.rebuild` over every stored event."""
        ledger = self.indexer(database).ledger
        with Timer() as read_timer:
            rows = ledger.events()
        with Timer() as rebuild_timer:
            rebuild(rows)
        return (
            Run(read_timer.seconds, len(rows), read_timer.cpu_seconds),
            Run(rebuild_timer.seconds, len(rows), rebuild_timer.cpu_seconds),
        )

    def audit(self, database: str) -> Run:
        """Time the reconciliation audit of the whole ledger against the chain at its last block."""
        ledger = self.indexer(database).ledger
        views = ChainViews.of_ledger(ledger, self.web3, abis=self.abis)
        with Timer() as timer:
            report = audit(ledger, views)
        if not report.clean:
            raise RuntimeError(f"The audit of the benchmark chain found {len(report.discrepancies)} discrepancies")
        return Run(timer.seconds, report.checked.events, timer.cpu_seconds, timer.anvil_cpu_seconds)


def range_violations(ranges: list[tuple[int, int, int]], policy: RangePolicy) -> list[str]:
    """Return how the sizes of consecutive eth_getLogs ranges differ from `policy`, if they do.

    After a range of `span` blocks with more than `max_logs` logs, the next range has half as
    many blocks. After one with fewer than a quarter of `max_logs`, it has twice as many, up to
    `maximum`. Otherwise it has as many. The last range may end early at the head. This assumes
    that the provider rejected no request, which anvil does not.
    """
    violations = []
    for (first, last, logs), (next_first, next_last, _) in zip(ranges, ranges[1:]):
        span = last - first + 1
        if logs > policy.max_logs:
            expected = max(1, span // 2)
        elif logs < policy.max_logs // 4:
            expected = min(policy.maximum, span * 2)
        else:
            expected = span
        actual = next_last - next_first + 1
        is_last = next_last == ranges[-1][1]
        if actual != expected and not (is_last and actual < expected):
            violations.append(f"after {first}-{last} ({logs} logs): {actual} blocks, expected {expected}")
    return violations


def cut_block(database: str, share: float) -> int:
    """Return the last block such that the blocks up to it hold `share` of the stored events."""
    with sqlite3.connect(database) as connection:
        numbers = [row[0] for row in connection.execute(
            "SELECT block_number FROM ledger_events ORDER BY block_number, log_index")]
    return numbers[int(len(numbers) * share)] - 1


# The report ------------------------------------------------------------------------------------


def spread(values: list[float]) -> dict:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": len(values),
    }


def machine() -> dict:
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "anvil": chain.version(),
        "sqlite": sqlite3.sqlite_version,
        "web3": package_version("web3"),
        "sqlalchemy": package_version("sqlalchemy"),
        "eth-abi": package_version("eth-abi"),
    }


def format_row(name: str, runs: list[Run], *, with_rate: bool = True) -> str:
    seconds = spread([run.seconds for run in runs])
    cpu = spread([run.cpu_seconds for run in runs])
    anvil_cpu = spread([run.anvil_cpu_seconds for run in runs])
    line = (f"{name:<20} {runs[0].events:>6} events  wall median {seconds['median'] * 1000:8.1f} ms "
            f"(min {seconds['min'] * 1000:.1f}, max {seconds['max'] * 1000:.1f})  "
            f"CPU median {cpu['median'] * 1000:7.1f} ms, anvil {anvil_cpu['median'] * 1000:7.1f} ms")
    if with_rate:
        rates = spread([run.rate for run in runs])
        line += f"  {rates['median']:7.0f} events/s (min {rates['min']:.0f}, max {rates['max']:.0f})"
    return line


SMALL_POLICY = RangePolicy(initial=16, maximum=1_024, max_logs=1_000)
"""With this policy the ranges grow several times on the benchmark chain. With the default
policy the first range has too many logs, so that sync checks the halving."""


def measure(bench: Bench, repeat: int, profile: Path | None) -> dict:
    """Run every measurement `repeat` times and return the results, ready for JSON."""
    # One untimed sync warms up imports, anvil's caches and the HTTP connection.
    _, database = bench.fresh()
    if profile:
        bench.fresh(profile=profile)
        logger.info("Wrote the profile of one fresh sync to %s", profile)

    # Other processes on the machine slow the wall-clock times down. The load average
    # before and after shows whether they did.
    load_before = os.getloadavg()
    fresh = [bench.fresh()[0] for _ in range(repeat)]
    cut = cut_block(database, 0.9)
    incremental = [bench.incremental(cut) for _ in range(repeat)]
    rebuilt = [bench.rebuild(database) for _ in range(repeat)]
    audits = [bench.audit(database) for _ in range(repeat)]
    # The audit of a ledger that was brought up to date incrementally, which must be as clean.
    incremental_database = bench.new_database()
    bench.incremental(cut, incremental_database)
    incremental_audit = bench.audit(incremental_database)
    load_after = os.getloadavg()

    adaptive = bench.fresh(policy=SMALL_POLICY)[0]
    violations = (range_violations(fresh[0].ranges or [], RangePolicy())
                  + range_violations(adaptive.ranges or [], SMALL_POLICY))
    return {
        "repeat": repeat,
        "fresh": [vars(run) for run in fresh],
        "incremental_cut_block": cut,
        "incremental": [vars(tail) for tail, _ in incremental],
        "noop": [vars(noop) for _, noop in incremental],
        "events_read": [vars(read) for read, _ in rebuilt],
        "rebuild": [vars(books) for _, books in rebuilt],
        "audit": [vars(run) for run in audits],
        "audit_incremental": vars(incremental_audit),
        "fresh_rate": spread([run.rate for run in fresh]),
        "adaptive_policy": vars(SMALL_POLICY),
        "adaptive": vars(adaptive),
        "range_violations": violations,
        "load_average_before": load_before,
        "load_average_after": load_after,
    }


def print_report(results: dict, output: Path) -> None:
    def runs(key: str) -> list[Run]:
        return [Run(**run) for run in results[key]]

    summary = results["chain"]
    before, after = results["load_average_before"], results["load_average_after"]
    print(f"Machine: {results['machine']}")
    print(f"Chain: {summary['events']} events in {summary['transactions']} transactions, "
          f"blocks {summary['escrow']['block']}-{summary['head']}, grants {summary['grants']}")
    print(f"Runs per measurement: {results['repeat']}; load average (1, 5, 15 min) before "
          f"{before[0]:.1f} {before[1]:.1f} {before[2]:.1f}, "
          f"after {after[0]:.1f} {after[1]:.1f} {after[2]:.1f}")
    print(format_row("fresh sync", runs("fresh")))
    print(format_row(f"last 10 % (> {results['incremental_cut_block']})", runs("incremental")))
    print(format_row("no-op sync", runs("noop"), with_rate=False))
    print(format_row("ledger.events()", runs("events_read")))
    print(format_row("books.rebuild()", runs("rebuild")))
    print(format_row("audit, fresh ledger", runs("audit")))
    print(format_row("audit, incremental", [Run(**results["audit_incremental"])]))

    fresh = results["fresh"][0]
    print(f"eth_getLogs ranges of the first fresh sync ({len(fresh['ranges'])} requests stored, "
          f"{fresh['requests']} sent): " + ", ".join(f"{a}-{b}:{n}" for a, b, n in fresh["ranges"]))
    print(f"eth_getLogs ranges with {SMALL_POLICY}: "
          + ", ".join(f"{a}-{b}:{n}" for a, b, n in results["adaptive"]["ranges"]))
    violations = results["range_violations"]
    print("The ranges follow the policy." if not violations else
          "The ranges do NOT follow the policy: " + "; ".join(violations))
    median_rate = results["fresh_rate"]["median"]
    verdict = "meets" if median_rate >= TARGET_EVENTS_PER_SECOND else "misses"
    print(f"Fresh indexing {verdict} the target of {TARGET_EVENTS_PER_SECOND} events/s "
          f"(median {median_rate:.0f} events/s). Results written to {output}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 1 if the eth_getLogs ranges broke the range policy, else 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8760, help="anvil's port on 127.0.0.1")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each measurement")
    parser.add_argument("--events", type=int, default=12_000,
                        help="minimum number of events to generate (default: 12,000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated history")
    parser.add_argument("--regenerate", action="store_true", help="generate the chain even if one is saved")
    parser.add_argument("--profile", type=Path, help="write a cProfile of one extra fresh sync to this file")
    parser.add_argument("--output", type=Path, help="where to write the JSON results "
                        "(default: .fundtrail/bench/results-<time>.json)")
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    state, summary = saved_chain(options.port, options.seed, options.events, options.regenerate)
    with Anvil(options.port, load_state=state) as anvil, tempfile.TemporaryDirectory() as folder:
        check_chain(Rpc(anvil.url), summary)
        Timer.anvil = anvil
        web3 = Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 120}))
        bench = Bench(web3, deployment_of(summary), Path(folder))
        results = {"machine": machine(), "chain": summary, **measure(bench, options.repeat, options.profile)}

    output = options.output or STATE_FOLDER / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json"
    output.write_text(json.dumps(results, indent=2) + "\n")
    print_report(results, output)
    return 1 if results["range_violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
