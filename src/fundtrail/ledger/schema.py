"""The ledger database: every event of one escrow and its registry, with the blocks they came from.

The same tables serve SQLite (the default, a file in the project's data folder) and PostgreSQL
(for shared deployments), through SQLAlchemy Core. docs/ledger.md documents each column.

Amounts and other uint256 values are stored as decimal text, because neither SQLite's INTEGER
nor PostgreSQL's BIGINT can store 256 bits, and a floating-point NUMERIC would round them. Sums are
computed in Python, which has exact integers.
"""

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

SCHEMA_VERSION = 1
"""Version of the tables below, stored in `ledger_meta` so that a later version can migrate."""

metadata = MetaData()

meta = Table(
    "ledger_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
"""Identity and progress of the index: `schema_version`, `chain_id`, `escrow`, `registry`, `start_block`,
and `last_block`, the last block whose events are all stored."""

blocks = Table(
    "ledger_blocks",
    metadata,
    Column("number", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String(66), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
)
"""Every block that holds a stored event, and the last block of each range read. A changed hash
at one of these numbers is how the indexer notices a reorganisation."""

events = Table(
    "ledger_events",
    metadata,
    Column("block_number", BigInteger, nullable=False),
    Column("log_index", Integer, nullable=False),
    Column("tx_hash", String(66), nullable=False),
    Column("contract", String(16), nullable=False),
    Column("event", String(40), nullable=False),
    Column("grant_id", BigInteger),
    Column("project_id", BigInteger),
    Column("account", String(42)),
    Column("token", String(42)),
    Column("amount", String(78)),
    Column("args", Text, nullable=False),
    PrimaryKeyConstraint("block_number", "log_index"),
    Index("ix_ledger_events_grant", "grant_id"),
    Index("ix_ledger_events_project", "project_id"),
    Index("ix_ledger_events_account", "account"),
    Index("ix_ledger_events_event", "event"),
)
"""One row per log. `args` contains every decoded argument as JSON, and the other columns
repeat the ones that reports filter on. `account` is the party whose money the event moves: the funder,
donor, payee or withdrawing account."""
