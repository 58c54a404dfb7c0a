"""The ledger index: reads every event of the escrow and the registry into a database.

Each `sync` resumes after the last stored block. Before reading on, it checks that the last
stored block still has the same hash on the chain. A different hash means that the chain was
reorganised or reset, so the index rolls back to the newest stored block that the chain still
has, and reads again from there.

Logs are read in block ranges that adapt to the provider: a range halves when the provider
rejects it or returns too many logs, and doubles when responses are small. The events of a
range and the new `last_block` are written in one database transaction, so an interrupted sync
leaves a consistent index that the next sync continues.
"""

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from fundtrail.errors import FundTrailError
from fundtrail.ledger import schema
from fundtrail.ledger.decode import ACCOUNT_ARGS, Event, EventDecoder, parse_log
from fundtrail.ledger.reader import BlockHeader, ChainReader, ChainReadError, RangeRejected

logger = logging.getLogger(__name__)


class LedgerStateError(FundTrailError):
    """The ledger database belongs to another chain or other contracts, or is of another version."""


@dataclass(frozen=True)
class RangePolicy:
    """Sizes of the `eth_getLogs` block ranges, and the rules that change them."""

    initial: int = 2_000
    """Blocks in the first request."""
    maximum: int = 100_000
    """Blocks in one request at most."""
    max_logs: int = 5_000
    """A response with more logs than this counts as too large: the next range is halved."""


@dataclass(frozen=True)
class SyncProgress:
    """State of a running sync, passed to the progress callback after each range."""

    start_block: int
    end_block: int
    last_block: int
    """The last block whose events are stored."""
    events: int
    """Events stored so far in this sync."""


@dataclass(frozen=True)
class SyncResult:
    start_block: int
    """The first block read in this sync."""
    end_block: int
    """The last block read: the head minus the confirmation depth."""
    events: int
    """Events stored in this sync."""
    requests: int
    """`eth_getLogs` requests sent, refused ones included."""
    rejected: int
    """Requests the provider refused, each followed by a halved range."""
    rolled_back_to: int | None
    """The fork block after a reorganisation: stored data above it was removed and re-read."""


class LedgerDatabaseError(FundTrailError):
    """The ledger database cannot be opened: a bad URL, a missing driver, folder or server, or a
    file that is not an SQLite database."""


def connect(database: str) -> Engine:
    """Return an engine for a SQLAlchemy URL, or for a path to an SQLite file.

    Raise `LedgerDatabaseError` for a URL that SQLAlchemy cannot use and for an SQLite path in a
    folder that does not exist. The connection itself is opened by `Ledger`.
    """
    if "://" not in database:
        folder = Path(database).parent
        if not folder.is_dir():
            raise LedgerDatabaseError(
                f"The folder {folder} of the ledger database {database} does not exist. Create "
                "it, or pass another --database."
            )
        return sa.create_engine(f"sqlite:///{database}")
    scheme, _, rest = database.partition("://")
    # SQLAlchemy would pick psycopg2 for a bare postgresql:// URL; FundTrail installs psycopg 3.
    if scheme in ("postgres", "postgresql"):
        database = f"postgresql+psycopg://{rest}"
    try:
        return sa.create_engine(database)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as error:
        raise LedgerDatabaseError(
            f"The ledger database URL {sa.engine.make_url(database).render_as_string(hide_password=True)} "
            f"cannot be used ({error}). Pass a path to an SQLite file, or a postgresql:// URL."
        ) from None


class Ledger:
    """The ledger database of one escrow and registry on one chain."""

    def __init__(self, engine: Engine, *, chain_id: int, escrow: str, registry: str, start_block: int):
        """Create the tables if needed, and check that the database belongs to these contracts."""
        self.engine = engine
        try:
            self._check_or_claim(chain_id=chain_id, escrow=escrow, registry=registry, start_block=start_block)
        except sa.exc.DBAPIError as error:
            # psycopg puts the cause on the first line and hints on the lines after it.
            reason = str(error.orig or error).strip().splitlines()[0].strip().rstrip(".")
            raise LedgerDatabaseError(
                f"Cannot open the ledger database {engine.url.render_as_string(hide_password=True)}: "
                f"{reason}. Check that the database server is running and accepts this user, or "
                "that the path is an SQLite file."
            ) from None

    def _check_or_claim(self, *, chain_id: int, escrow: str, registry: str, start_block: int) -> None:
        """Create the tables and record these contracts in a new database, or check that an
        existing one belongs to them."""
        engine = self.engine
        schema.metadata.create_all(engine)
        expected = {
            "schema_version": str(schema.SCHEMA_VERSION),
            "chain_id": str(chain_id),
            "escrow": escrow,
            "registry": registry,
            "start_block": str(start_block),
        }
        with engine.begin() as connection:
            stored = dict(connection.execute(sa.select(schema.meta.c.key, schema.meta.c.value)).all())
            if not stored:
                connection.execute(
                    schema.meta.insert(),
                    [{"key": key, "value": value} for key, value in expected.items()]
                    + [{"key": "last_block", "value": str(start_block - 1)}],
                )
                return
        for key, value in expected.items():
            if stored.get(key) != value:
                raise LedgerStateError(
                    f"The ledger database {engine.url.render_as_string(hide_password=True)} "
                    f"has {key} {stored.get(key)!r}, but this index is for {value!r}. Use "
                    "another --database for this deployment, or delete the database to start over."
                )

    @property
    def last_block(self) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    sa.select(schema.meta.c.value).where(schema.meta.c.key == "last_block")
                ).scalar_one()
            )

    def meta(self) -> dict[str, str]:
        with self.engine.connect() as connection:
            return dict(connection.execute(sa.select(schema.meta.c.key, schema.meta.c.value)).all())

    def events(self, *conditions) -> list[dict]:
        """Return the stored events matching the SQLAlchemy `conditions`, in chain order.

        Each row is a dict with the table's columns, `args` decoded from JSON, and `timestamp`.
        """
        table = schema.events
        query = (
            sa.select(table, schema.blocks.c.timestamp)
            .join(schema.blocks, schema.blocks.c.number == table.c.block_number)
            .where(*conditions)
            .order_by(table.c.block_number, table.c.log_index)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [dict(row, args=json.loads(row["args"])) for row in rows]

    def stored_blocks(self, below: int, limit: int) -> list[tuple[int, str]]:
        """Return up to `limit` stored (number, hash) pairs at or below `below`, newest first."""
        query = (
            sa.select(schema.blocks.c.number, schema.blocks.c.hash)
            .where(schema.blocks.c.number <= below)
            .order_by(schema.blocks.c.number.desc())
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(query).all()]

    def grant_tokens(self) -> dict[int, str]:
        table = schema.events
        query = sa.select(table.c.grant_id, table.c.token).where(table.c.event == "GrantCreated")
        with self.engine.connect() as connection:
            return {int(grant_id): token for grant_id, token in connection.execute(query).all()}

    def store(self, events: list[dict], blocks: list[BlockHeader], last_block: int) -> None:
        """Write one range's events and blocks, and move `last_block`, in one transaction."""
        with self.engine.begin() as connection:
            if blocks:
                connection.execute(
                    schema.blocks.insert(),
                    [{"number": b.number, "hash": b.hash, "timestamp": b.timestamp} for b in blocks],
                )
            if events:
                connection.execute(schema.events.insert(), events)
            self._set_last_block(connection, last_block)

    def roll_back(self, fork_block: int) -> None:
        """Remove everything stored above `fork_block`, in one transaction."""
        with self.engine.begin() as connection:
            connection.execute(schema.events.delete().where(schema.events.c.block_number > fork_block))
            connection.execute(schema.blocks.delete().where(schema.blocks.c.number > fork_block))
            self._set_last_block(connection, fork_block)

    @staticmethod
    def _set_last_block(connection, block: int) -> None:
        connection.execute(
            schema.meta.update().where(schema.meta.c.key == "last_block").values(value=str(block))
        )


def event_row(event: Event, grant_tokens: dict[int, str]) -> dict:
    """Return the `ledger_events` row of `event`. `grant_tokens` maps grant ids to their token."""
    args = event.args
    grant_id = args.get("grantId")
    token = args.get("token")
    amount = args.get("amount")
    if event.name == "GrantCreated":
        token = args["terms"]["token"]
        amount = sum(milestone["amount"] for milestone in args["terms"]["milestones"])
        grant_tokens[grant_id] = token
    elif token is None and grant_id is not None:
        token = grant_tokens.get(grant_id)
    account = next((args[name] for name in ACCOUNT_ARGS if name in args), None)
    return {
        "block_number": event.block_number,
        "log_index": event.log_index,
        "tx_hash": event.tx_hash,
        "contract": event.contract,
        "event": event.name,
        "grant_id": grant_id,
        "project_id": args.get("projectId"),
        "account": account,
        "token": token,
        "amount": None if amount is None else str(amount),
        "args": json.dumps(args),
    }


class Indexer:
    """Brings a `Ledger` up to date with the chain."""

    def __init__(
        self,
        ledger: Ledger,
        reader: ChainReader,
        decoder: EventDecoder,
        *,
        confirmations: int = 0,
        policy: RangePolicy = RangePolicy(),
    ):
        self.ledger = ledger
        self.reader = reader
        self.decoder = decoder
        self.confirmations = confirmations
        self.policy = policy
        self._range = policy.initial

    def sync(
        self, *, to_block: int | None = None, on_progress: Callable[[SyncProgress], None] | None = None
    ) -> SyncResult:
        """Read every new event up to `to_block`, or up to the head minus the confirmation depth."""
        rolled_back_to = self._roll_back_reorganised()
        last = self.ledger.last_block
        end = self.reader.head() - self.confirmations if to_block is None else to_block
        start = last + 1
        grant_tokens = self.ledger.grant_tokens()
        stored = requests_sent = rejected = 0
        if start > end:
            logger.info("The ledger is up to date at block %s", last)
        else:
            logger.info("Indexing blocks %s to %s", start, end)

        block = start
        while block <= end:
            range_end = min(block + self._range - 1, end)
            requests_sent += 1
            try:
                raw_logs = self.reader.get_logs(self.decoder.addresses, block, range_end)
            except RangeRejected as error:
                rejected += 1
                if range_end == block:
                    raise ChainReadError(
                        f"The provider rejected eth_getLogs even for the single block {block}: "
                        f"{error}. Use another RPC endpoint for indexing."
                    ) from error
                self._range = max(1, (range_end - block + 1) // 2)
                logger.debug("Provider rejected blocks %s-%s (%s), so the range halves to %s", block, range_end, error, self._range)
                continue
            self._adapt(len(raw_logs), range_end - block + 1)

            events = [self.decoder.decode(parse_log(raw)) for raw in raw_logs]
            headers = self._headers(events, range_end)
            rows = [event_row(event, grant_tokens) for event in events]
            self.ledger.store(rows, headers, range_end)
            stored += len(rows)
            if on_progress is not None:
                on_progress(SyncProgress(start, end, range_end, stored))
            block = range_end + 1

        return SyncResult(start, end, stored, requests_sent, rejected, rolled_back_to)

    def _adapt(self, log_count: int, span: int) -> None:
        if log_count > self.policy.max_logs:
            self._range = max(1, span // 2)
        elif log_count < self.policy.max_logs // 4:
            self._range = min(self.policy.maximum, span * 2)

    def _headers(self, events: list[Event], range_end: int) -> list[BlockHeader]:
        """Return the header of every block with events, and of the range's last block."""
        headers = {
            event.block_number: BlockHeader(event.block_number, event.block_hash, event.block_timestamp)
            for event in events
            if event.block_timestamp is not None
        }
        missing = {event.block_number for event in events if event.block_number not in headers}
        if range_end not in headers:
            missing.add(range_end)
        for number, header in self.reader.headers(missing).items():
            if header is None:
                raise ChainReadError(f"The chain has no block {number}, which it returned logs for.")
            headers[number] = header
        return [headers[number] for number in sorted(headers)]

    def _roll_back_reorganised(self, batch: int = 64) -> int | None:
        """Roll back to the newest stored block that the chain still has; return it, if any."""
        last = self.ledger.last_block
        below = last
        first = True
        while True:
            stored = self.ledger.stored_blocks(below, batch if not first else 1)
            if not stored:
                fork = int(self.ledger.meta()["start_block"]) - 1
                break
            chain = self.reader.headers(number for number, _ in stored)
            matching = [n for n, h in stored if chain[n] is not None and chain[n].hash == h]
            if matching:
                fork = max(matching)
                break
            first = False
            below = stored[-1][0] - 1
        if fork == last:
            return None
        logger.warning("The chain was reorganised: rolling back from block %s to %s", last, fork)
        self.ledger.roll_back(fork)
        return fork
