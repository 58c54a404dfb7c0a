"""The keeper: a long-running service that operates deployed FundTrail contracts unattended.

Each cycle the keeper
1. relays the signature files in its inbox folder once a milestone's quorum is complete, and
   moves files it cannot use to a quarantine folder with the reason. Files whose signature is
   already used on-chain go to the processed folder with the reason, because nothing is wrong
   with them;
2. reclaims every milestone whose deadline has passed without a release;
3. reads the escrow's events up to the latest block, to learn of new grants and to record
   the keeper's own actions, and stores them with the last block read in SQLite.

The record of actions comes from the chain's events (the keeper's own `SignatureRelayed` and
`MilestoneReclaimed` logs), not from receipts. A kill between sending a transaction and
recording it therefore loses nothing: the next cycle reads the event. Before acting, the
keeper reads the chain state, so after a restart it never sends an action twice.
"""

import json
import logging
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fundtrail.errors import FundTrailError
from fundtrail.grants import GrantStatus, MilestoneStatus

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS grants (
    grant_id INTEGER PRIMARY KEY,
    created_block INTEGER NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS actions (
    tx_hash TEXT NOT NULL,
    log_index INTEGER NOT NULL,
    block INTEGER NOT NULL,
    kind TEXT NOT NULL,
    grant_id INTEGER NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (tx_hash, log_index)
);
CREATE TABLE IF NOT EXISTS quarantined (
    name TEXT NOT NULL,
    reason TEXT NOT NULL,
    recorded_at INTEGER NOT NULL
);
"""
"""The keeper database. `state` stores `last_block`. `actions` has one row per event of the
keeper's own transactions, and `quarantined` lists the inbox files moved aside, with the reason."""

RETRIABLE_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, OSError)
"""Errors that mean the RPC endpoint is unreachable, so the cycle is retried after a pause."""


@dataclass(frozen=True)
class Action:
    """One action the keeper took, as recorded from its event."""

    kind: str
    """`reclaim` or `relay`."""
    grant_id: int
    tx_hash: str
    log_index: int
    block: int
    detail: dict


class KeeperStateError(FundTrailError):
    """The keeper database belongs to another chain or escrow, or to a chain that was reset."""


class KeeperStore:
    """The keeper's SQLite database: the last block read, known grants and recorded actions."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(self.path, isolation_level=None)
        self._connection.executescript(SCHEMA)

    def close(self) -> None:
        self._connection.close()

    def bind(self, chain_id: int, escrow: str) -> None:
        """Tie the database to one escrow on one chain, or check that it already is.

        Raise `KeeperStateError` when the database records another chain or escrow, because
        its grants and last block would then be wrong for this one.
        """
        expected = {"chain_id": str(chain_id), "escrow": escrow}
        with self._transaction() as connection:
            for key, value in expected.items():
                row = connection.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
                if row is None:
                    connection.execute("INSERT INTO state (key, value) VALUES (?, ?)", (key, value))
                elif row[0] != value:
                    raise KeeperStateError(
                        f"The keeper database {self.path} belongs to {key} {row[0]}, but the "
                        f"keeper now runs for {key} {value}. Pass another --database for this "
                        "deployment, or delete the file to start its records afresh."
                    )

    def last_block(self) -> int | None:
        row = self._connection.execute("SELECT value FROM state WHERE key = 'last_block'").fetchone()
        return None if row is None else int(row[0])

    def last_block_hash(self) -> str | None:
        row = self._connection.execute(
            "SELECT value FROM state WHERE key = 'last_block_hash'"
        ).fetchone()
        return None if row is None else row[0]

    def record_sync(
        self,
        last_block: int,
        grants: list[tuple[int, int]],
        actions: list[Action],
        last_block_hash: str | None = None,
    ):
        """Store new grants, new actions and the last block read, all in one transaction.

        `last_block_hash` lets the next cycle check that the chain still has that block.

        A crash before the commit leaves the previous `last_block`, so the same blocks are read
        again, and the primary keys make the second insert of a row a no-op.
        """
        with self._transaction() as connection:
            connection.executemany(
                "INSERT OR IGNORE INTO grants (grant_id, created_block) VALUES (?, ?)", grants
            )
            connection.executemany(
                "INSERT OR IGNORE INTO actions (tx_hash, log_index, block, kind, grant_id, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (a.tx_hash, a.log_index, a.block, a.kind, a.grant_id, json.dumps(a.detail))
                    for a in actions
                ],
            )
            connection.execute(
                "INSERT INTO state (key, value) VALUES ('last_block', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(last_block),),
            )
            connection.execute("DELETE FROM state WHERE key = 'last_block_hash'")
            if last_block_hash is not None:
                connection.execute(
                    "INSERT INTO state (key, value) VALUES ('last_block_hash', ?)",
                    (last_block_hash,),
                )

    def open_grants(self) -> list[int]:
        rows = self._connection.execute(
            "SELECT grant_id FROM grants WHERE closed = 0 ORDER BY grant_id"
        ).fetchall()
        return [row[0] for row in rows]

    def close_grant(self, grant_id: int) -> None:
        """Stop watching a grant that has nothing left for the keeper to do."""
        with self._transaction() as connection:
            connection.execute("UPDATE grants SET closed = 1 WHERE grant_id = ?", (grant_id,))

    def actions(self) -> list[Action]:
        rows = self._connection.execute(
            "SELECT kind, grant_id, tx_hash, log_index, block, detail FROM actions"
            " ORDER BY block, log_index"
        ).fetchall()
        return [
            Action(kind, grant_id, tx_hash, log_index, block, json.loads(detail))
            for kind, grant_id, tx_hash, log_index, block, detail in rows
        ]

    def record_quarantine(self, name: str, reason: str) -> None:
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO quarantined (name, reason, recorded_at) VALUES (?, ?, ?)",
                (name, reason, int(time.time())),
            )

    def quarantined(self) -> list[tuple[str, str]]:
        rows = self._connection.execute(
            "SELECT name, reason FROM quarantined ORDER BY rowid"
        ).fetchall()
        return [(name, reason) for name, reason in rows]

    def _transaction(self):
        return _Transaction(self._connection)


class _Transaction:
    """`BEGIN IMMEDIATE` ... `COMMIT`, or `ROLLBACK` on an exception."""

    def __init__(self, connection: sqlite3.Connection):
        self._connection = connection

    def __enter__(self) -> sqlite3.Connection:
        self._connection.execute("BEGIN IMMEDIATE")
        return self._connection

    def __exit__(self, exc_type, exc, traceback) -> None:
        self._connection.execute("ROLLBACK" if exc_type else "COMMIT")


@dataclass
class CycleReport:
    """The outcome of one keeper cycle."""

    reclaimed: list[tuple[int, int]] = field(default_factory=list)
    """(grant id, milestone index) of each milestone reclaimed."""
    relayed_files: list[str] = field(default_factory=list)
    settled_files: list[str] = field(default_factory=list)
    """Files moved to the processed folder unsent, because their signature is already used."""
    quarantined_files: list[str] = field(default_factory=list)
    new_grants: list[int] = field(default_factory=list)
    last_block: int | None = None


InboxHandler = Callable[[list[Path]], "InboxOutcome"]


@dataclass
class InboxOutcome:
    """Outcome of relaying the inbox files: used, already used on-chain, rejected or waiting."""

    used: list[Path] = field(default_factory=list)
    settled: dict[Path, str] = field(default_factory=dict)
    """Files whose signature is already used on-chain, such as files the keeper relayed just
    before a crash, each with the reason. They move to the processed folder, not to quarantine."""
    rejected: dict[Path, str] = field(default_factory=dict)
    waiting: list[Path] = field(default_factory=list)


class Keeper:
    """Operates one deployment from `sender`'s account; see the module docstring."""

    def __init__(
        self,
        client,
        sender,
        store: KeeperStore,
        *,
        inbox: Path | None = None,
        inbox_handler: InboxHandler | None = None,
    ):
        self.client = client
        self.sender = sender
        self.store = store
        self.inbox = inbox
        self._inbox_handler = inbox_handler
        from ape import chain

        store.bind(chain.chain_id, client.escrow.address)
        if inbox is not None:
            for folder in (self.processed_folder, self.quarantine_folder):
                folder.mkdir(parents=True, exist_ok=True)

    @property
    def processed_folder(self) -> Path:
        return self.inbox / "processed"

    @property
    def quarantine_folder(self) -> Path:
        return self.inbox / "quarantine"

    def run_once(self) -> CycleReport:
        """Run one cycle: relay the inbox, reclaim lapsed milestones, then read new events."""
        report = CycleReport()
        # Grants are synced first as well, so a grant created since the last cycle is
        # reclaimed in this one rather than the next.
        self._sync(report)
        if self.inbox is not None and self._inbox_handler is not None:
            self._process_inbox(report)
        self._reclaim_due(report)
        self._sync(report)
        return report

    def run(self, stop: threading.Event, *, poll_seconds: float = 5.0, max_backoff: float = 60.0):
        """Run cycles until `stop` is set, retrying with exponential back-off on RPC errors."""
        logger.info(
            "Keeper started for escrow %s as %s: inbox %s, database %s, polling every %s s",
            self.client.escrow.address,
            self.sender.address,
            self.inbox,
            self.store.path,
            poll_seconds,
        )
        failures = 0
        while not stop.is_set():
            try:
                self.run_once()
            except Exception as error:
                if not is_retriable(error):
                    raise
                failures += 1
                pause = min(max_backoff, poll_seconds * 2 ** min(failures, 10))
                logger.warning(
                    "Keeper cycle failed (attempt %s), retrying in %.1f s: %s: %s",
                    failures,
                    pause,
                    type(error).__name__,
                    error,
                )
                stop.wait(pause)
                continue
            if failures:
                logger.info("Keeper recovered after %s failed attempts", failures)
            failures = 0
            stop.wait(poll_seconds)
        logger.info("Keeper stopped at block %s", self.store.last_block())

    # Steps of a cycle.

    def _sync(self, report: CycleReport) -> None:
        from ape import chain

        # NOTE: events are read up to the latest block, with no confirmation depth, so on a
        # chain that reorganises, a recorded action can come from a block that was replaced.
        head = chain.blocks.head.number
        report.last_block = head
        last = self.store.last_block()
        if last is not None and last > head:
            raise KeeperStateError(
                f"The keeper database {self.store.path} has read up to block {last}, but the "
                f"chain's latest block is {head}, so the chain was reset. Delete the database, "
                "or pass another --database, to start its records afresh."
            )
        stored_hash = self.store.last_block_hash()
        if last is not None and stored_hash is not None:
            # A chain restarted from scratch reuses the same block numbers, so only the hash
            # shows that the block the database read is gone.
            current_hash = chain.blocks[last].hash.to_0x_hex()
            if current_hash != stored_hash:
                raise KeeperStateError(
                    f"The keeper database {self.store.path} read block {last} with hash "
                    f"{stored_hash}, but that block now has hash {current_hash}, so the chain was "
                    "reset or reorganised. Delete the database, or pass another --database, to "
                    "start its records afresh."
                )
        start = self.client.start_block if last is None else last + 1
        if start > head:
            return

        escrow = self.client.escrow
        grants = [
            (log.grantId, log.block_number) for log in escrow.GrantCreated.range(start, head + 1)
        ]
        actions = [
            Action(
                "reclaim",
                log.grantId,
                log.transaction_hash,
                log.log_index,
                log.block_number,
                {"milestone_index": log.milestoneIndex, "amount": log.amount},
            )
            for log in escrow.MilestoneReclaimed.range(
                start, head + 1, search_topics={"caller": self.sender.address}
            )
        ] + [
            Action(
                "relay",
                log.grantId,
                log.transaction_hash,
                log.log_index,
                log.block_number,
                {"signer": log.signer, "digest": "0x" + bytes(log.digest).hex()},
            )
            for log in escrow.SignatureRelayed.range(
                start, head + 1, search_topics={"relayer": self.sender.address}
            )
        ]
        self.store.record_sync(head, grants, actions, chain.blocks[head].hash.to_0x_hex())
        report.new_grants.extend(grant_id for grant_id, _ in grants)
        report.last_block = head
        logger.debug("Read blocks %s to %s: %s grants, %s actions", start, head, len(grants), len(actions))

    def _reclaim_due(self, report: CycleReport) -> None:
        from ape import chain

        # The next block's timestamp is at least the latest one's, so a deadline that the
        # latest block has reached is also reached by the reclaim transaction.
        now = chain.blocks.head.timestamp
        escrow = self.client.escrow
        for grant_id in self.store.open_grants():
            view = escrow.getGrant(grant_id)
            status = GrantStatus(view.status)
            if status in (GrantStatus.Completed, GrantStatus.FundingFailed):
                # Nothing is left to reclaim; refunds are each funder's own call.
                self.store.close_grant(grant_id)
                continue
            if status != GrantStatus.Active:
                continue
            for index in range(view.milestoneCount):
                milestone = escrow.getMilestone(grant_id, index)
                settled = MilestoneStatus(milestone.status) in (
                    MilestoneStatus.Released,
                    MilestoneStatus.Reclaimed,
                )
                if settled or now < milestone.deadline:
                    continue
                try:
                    receipt = escrow.reclaim(grant_id, index, sender=self.sender)
                except _revert_errors() as error:
                    # Someone else may have reclaimed it first. The next cycle reads the new
                    # state, so the keeper logs the revert and goes on with other milestones.
                    logger.error(
                        "Reclaim of milestone %s of grant %s reverted: %s", index, grant_id, error
                    )
                    continue
                logger.info(
                    "Reclaimed milestone %s of grant %s in %s", index, grant_id, receipt.txn_hash
                )
                report.reclaimed.append((grant_id, index))

    def _process_inbox(self, report: CycleReport) -> None:
        files = sorted(path for path in self.inbox.glob("*.json") if path.is_file())
        if not files:
            return
        outcome = self._inbox_handler(files)
        for path in outcome.used:
            _move_to(path, self.processed_folder)
            report.relayed_files.append(path.name)
            logger.info("Relayed %s", path.name)
        for path, reason in outcome.settled.items():
            target = _move_to(path, self.processed_folder)
            _write_reason(target, reason)
            report.settled_files.append(path.name)
            logger.info("Moved %s to processed without relaying it: %s", path.name, reason)
        for path, reason in outcome.rejected.items():
            self.quarantine(path, reason)
            report.quarantined_files.append(path.name)

    def quarantine(self, path: Path, reason: str) -> None:
        """Move an unusable inbox file aside, with its reason in `NAME.reason.txt` beside it."""
        target = _move_to(path, self.quarantine_folder)
        _write_reason(target, reason)
        self.store.record_quarantine(path.name, reason)
        logger.warning("Quarantined %s: %s", path.name, reason)


def _move_to(path: Path, folder: Path) -> Path:
    """Move `path` into `folder` and return its new path.

    A file of the same name already there is kept: the new one gets a numeric suffix, such as
    `approval.1.json`, so no earlier file or reason is overwritten.
    """
    target = folder / path.name
    counter = 0
    while target.exists():
        counter += 1
        target = folder / f"{path.stem}.{counter}{path.suffix}"
    shutil.move(path, target)
    return target


def _write_reason(moved: Path, reason: str) -> None:
    """Write `reason` to `NAME.reason.txt` beside the moved file `NAME`."""
    moved.with_name(moved.name + ".reason.txt").write_text(reason + "\n", encoding="utf-8")


def install_stop_signals(stop: threading.Event) -> None:
    """Set `stop` on SIGTERM and SIGINT, so that the current cycle ends cleanly first."""

    def handle(signum, _frame):
        logger.info("Received %s, stopping after the current cycle", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def is_retriable(error: BaseException) -> bool:
    """Return whether `error` means the RPC endpoint is unreachable or failing, not a bug.

    ape raises its `VirtualMachineError` for some failed requests, such as a connection reset
    in the middle of a call, so the exceptions such an error wraps are checked as well. A
    revert (`ContractLogicError`) is never retried.
    """
    from ape.exceptions import VirtualMachineError

    if isinstance(error, RETRIABLE_ERRORS + _ape_errors()):
        return True
    if not isinstance(error, VirtualMachineError) or isinstance(error, _revert_errors()):
        return False
    wrapped = [getattr(error, "base_err", None), error.__cause__, error.__context__]
    seen = {id(error)}
    while wrapped:
        inner = wrapped.pop()
        if inner is None or id(inner) in seen:
            continue
        seen.add(id(inner))
        if isinstance(inner, RETRIABLE_ERRORS):
            return True
        wrapped.extend([getattr(inner, "base_err", None), inner.__cause__, inner.__context__])
    return False


def _ape_errors() -> tuple[type[BaseException], ...]:
    """ape's errors for an unreachable or failing provider, which are worth retrying."""
    from ape.exceptions import APINotImplementedError, ProviderError, RPCTimeoutError

    return (ProviderError, RPCTimeoutError, APINotImplementedError)


def _revert_errors() -> tuple[type[BaseException], ...]:
    """ape's errors for a transaction that the contract reverted."""
    from ape.exceptions import ContractLogicError

    return (ContractLogicError,)


TRANSIENT_DROP_REASONS = ("evidence not current:", "not funded:")
"""Relay drop reasons that may resolve by themselves: an approval that arrived before the
evidence it approves, or evidence for a grant that is still being funded. Files dropped for
these stay in the inbox for the next cycle, until they resolve or the signature expires."""

SETTLED_DROP_REASONS = ("already used on-chain:",)
"""Relay drop reasons that mean the file's signature is already used on-chain. After a crash
between relaying a file and moving it, the next cycle finds the file in the inbox with this
reason, so such files go to the processed folder and not to quarantine."""


def relay_inbox_handler(client, sender) -> InboxHandler:
    """Return an inbox handler that relays signature files through `fundtrail.relay`."""
    from fundtrail.errors import FundTrailError
    from fundtrail.relay import LoadedSignature, Relayer
    from fundtrail.signing import SignatureFile

    relayer = Relayer(client, sender)

    def handle(paths: list[Path]) -> InboxOutcome:
        outcome = InboxOutcome()
        loaded = []
        for path in paths:
            try:
                loaded.append(LoadedSignature(path, SignatureFile.load(path)))
            except FundTrailError as error:
                outcome.rejected[path] = str(error)

        report = relayer.relay(loaded)

        dropped = {item.path: item.reason for item in report.dropped}
        submitted = {
            (item.kind, item.grant_id, item.milestone_index, item.evidence_hash, signer)
            for item in report.submitted
            for signer in item.signers
        }
        for item in loaded:
            signature = item.file
            key = (
                signature.kind,
                signature.grant_id,
                signature.milestone_index,
                signature.evidence_hash,
                signature.signer,
            )
            reason = dropped.get(item.path)
            if reason is None and key in submitted:
                outcome.used.append(item.path)
            elif reason is None or reason.startswith(TRANSIENT_DROP_REASONS):
                outcome.waiting.append(item.path)
            elif reason.startswith(SETTLED_DROP_REASONS):
                outcome.settled[item.path] = reason
            else:
                outcome.rejected[item.path] = reason
        for failure in report.failed:
            logger.error(
                "Relay of %s for grant %s milestone %s reverted: %s",
                failure.kind,
                failure.grant_id,
                failure.milestone_index,
                failure.error,
            )
        return outcome

    return handle
