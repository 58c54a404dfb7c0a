"""The ledger index on ape's in-process chain: stored rows, resuming, ranges, reorganisations."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fundtrail.contracts import ESCROW
from fundtrail.ledger import RangePolicy, open_ledger
from fundtrail.ledger.schema import events
from fundtrail.ledger.indexer import Ledger, LedgerDatabaseError, LedgerStateError, connect
from fundtrail.ledger.reader import ChainReader, ChainReadError, RangeRejected

EVIDENCE_URI = "ipfs://bafy-evidence-0"
ESCROW_ADDRESS = "0x000000000000000000000000000000000000dEaD"


class LimitedReader(ChainReader):
    """A real reader that rejects, like many hosted providers, ranges above `limit` blocks,
    and records every range requested."""

    def __init__(self, web3, limit: int | None = None):
        super().__init__(web3)
        self.limit = limit
        self.ranges: list[tuple[int, int]] = []

    def get_logs(self, addresses, start, end):
        self.ranges.append((start, end))
        if self.limit is not None and end - start + 1 > self.limit:
            raise RangeRejected(f"block range too wide: {end - start + 1} > {self.limit}")
        return super().get_logs(addresses, start, end)


def stored(indexer) -> list[tuple]:
    return [(row["event"], row["block_number"], row["log_index"]) for row in indexer.ledger.events()]


def chain_events(contract, chain) -> list[tuple]:
    """(event, block, log index) of every log of `contract`, from ape, in chain order."""
    logs = [
        (log.event_name, log.block_number, log.log_index)
        for event in contract.contract_type.events
        for log in getattr(contract, event.name).range(0, chain.blocks.height + 1)
    ]
    return sorted(logs, key=lambda item: (item[1], item[2]))


def test_sync_stores_every_event_of_both_contracts(make_indexer, grant_id, escrow, registry, chain):
    indexer = make_indexer()

    result = indexer.sync()

    expected = sorted(
        chain_events(escrow, chain) + chain_events(registry, chain), key=lambda item: item[1:]
    )
    assert stored(indexer) == expected
    assert result.events == len(expected)
    assert result.end_block == chain.blocks.height
    assert indexer.ledger.last_block == chain.blocks.height


def test_funding_row_has_every_column(make_indexer, grant_id, escrow, usdc, grant_maker, chain):
    log = escrow.GrantFunded.range(0, chain.blocks.height + 1)
    funded = next(iter(log))
    indexer = make_indexer()
    indexer.sync()

    (row,) = indexer.ledger.events(events.c.event == "GrantFunded")

    assert row == {
        "block_number": funded.block_number,
        "log_index": funded.log_index,
        "tx_hash": funded.transaction_hash,
        "contract": "escrow",
        "event": "GrantFunded",
        "grant_id": grant_id,
        "project_id": None,
        "account": grant_maker.address,
        "token": usdc.address,
        "amount": str(funded.amount),
        "args": {
            "grantId": grant_id,
            "funder": grant_maker.address,
            "payer": grant_maker.address,
            "amount": funded.amount,
            "totalFunded": funded.amount,
        },
        "timestamp": chain.blocks[funded.block_number].timestamp,
    }


def test_grant_row_carries_token_and_total(make_indexer, grant_id, escrow, usdc, grant_maker, resolve):
    indexer = make_indexer()
    indexer.sync()

    (row,) = indexer.ledger.events(events.c.event == "GrantCreated")

    assert (row["grant_id"], row["account"], row["token"], row["amount"]) == (
        grant_id,
        grant_maker.address,
        usdc.address,
        str(resolve().total),
    )
    milestones = [escrow.getMilestone(grant_id, index) for index in range(3)]
    assert row["args"]["terms"]["milestones"] == [
        {"amount": milestone.amount, "deadline": milestone.deadline} for milestone in milestones
    ]


def test_sync_resumes_after_the_last_block(make_indexer, client, grant_id, ngo, evidence_hash, chain):
    indexer = make_indexer()
    first = indexer.sync()

    receipt = client.submit_evidence(grant_id, 0, evidence_hash, EVIDENCE_URI, ngo)
    second = indexer.sync()

    assert (second.start_block, second.end_block) == (first.end_block + 1, receipt.block_number)
    assert second.events == 1
    assert stored(indexer)[-1] == ("EvidenceSubmitted", receipt.block_number, 0)


def test_sync_with_nothing_new_sends_no_request(make_indexer, grant_id):
    indexer = make_indexer()
    indexer.sync()

    again = indexer.sync()

    assert (again.events, again.requests, again.rolled_back_to) == (0, 0, None)


def test_reopened_ledger_continues_after_last_block(make_indexer, client, grant_id, ngo, evidence_hash, tmp_path):
    database = str(tmp_path / "shared.sqlite")
    make_indexer(database).sync()
    client.submit_evidence(grant_id, 0, evidence_hash, EVIDENCE_URI, ngo)

    result = make_indexer(database).sync()

    assert result.events == 1


def test_refused_ranges_are_halved_and_lose_nothing(make_indexer, grant_id, chain, tmp_path):
    chain.mine(40)
    reference = make_indexer(str(tmp_path / "reference.sqlite"))
    reference.sync()
    indexer = make_indexer(policy=RangePolicy(initial=64))
    indexer.reader = LimitedReader(chain.provider.web3, limit=8)

    result = indexer.sync()

    assert stored(indexer) == stored(reference)
    assert result.rejected > 0
    assert all(end - start + 1 <= 8 for start, end in _accepted(indexer.reader))
    assert result.requests == len(indexer.reader.ranges)


def _accepted(reader: LimitedReader) -> list[tuple[int, int]]:
    return [(start, end) for start, end in reader.ranges if end - start + 1 <= reader.limit]


def test_refused_single_block_raises(make_indexer, grant_id, chain):
    indexer = make_indexer(policy=RangePolicy(initial=4))
    indexer.reader = LimitedReader(chain.provider.web3, limit=0)

    with pytest.raises(ChainReadError) as error:
        indexer.sync()

    start = indexer.ledger.last_block + 1
    assert str(error.value) == (
        f"The provider rejected eth_getLogs even for the single block {start}: block range too "
        "wide: 1 > 0. Use another RPC endpoint for indexing."
    )
    assert indexer.ledger.events() == []


def test_large_responses_shrink_the_next_range(make_indexer, client, grant_id, ngo, evidence_hash, chain):
    chain.mine(100)
    indexer = make_indexer(policy=RangePolicy(initial=64, max_logs=1))
    indexer.reader = LimitedReader(chain.provider.web3)

    indexer.sync()

    # The grant's events are in the first 64 blocks, so the first response is too large.
    assert indexer.reader.ranges[:2] == [(0, 63), (64, 95)]


def test_small_responses_grow_the_range(make_indexer, chain):
    chain.mine(30)
    indexer = make_indexer(policy=RangePolicy(initial=1, maximum=8))
    indexer.reader = LimitedReader(chain.provider.web3)

    indexer.sync()

    sizes = [end - start + 1 for start, end in indexer.reader.ranges]
    assert sizes[:5] == [1, 2, 4, 8, 8]


def test_confirmations_leave_the_newest_blocks_unread(make_indexer, client, grant_id, ngo, evidence_hash, chain):
    receipt = client.submit_evidence(grant_id, 0, evidence_hash, EVIDENCE_URI, ngo)
    chain.mine(2)
    indexer = make_indexer(confirmations=3)

    result = indexer.sync()

    assert result.end_block == receipt.block_number - 1
    assert "EvidenceSubmitted" not in [event for event, _, _ in stored(indexer)]


def test_reorganised_blocks_are_rolled_back_and_read_again(
    make_indexer, client, grant_id, ngo, evidence_file, chain
):
    indexer = make_indexer()
    indexer.sync()
    fork = chain.blocks.height
    snapshot = chain.snapshot()
    client.submit_evidence(grant_id, 0, b"\x01" * 32, "ipfs://bafy-orphaned", ngo)
    chain.mine(3)
    indexer.sync()
    chain.restore(snapshot)
    replacement = client.submit_evidence(grant_id, 0, b"\x02" * 32, "ipfs://bafy-canonical", ngo)
    chain.mine(5)

    result = indexer.sync()

    assert result.rolled_back_to == fork
    evidence = [
        (row["block_number"], row["args"]["evidenceUri"])
        for row in indexer.ledger.events(events.c.event == "EvidenceSubmitted")
    ]
    assert evidence == [(replacement.block_number, "ipfs://bafy-canonical")]
    assert indexer.ledger.last_block == chain.blocks.height


def test_ledger_of_another_escrow_is_refused(make_indexer, deployment, chain, abis, tmp_path):
    database = str(tmp_path / "ledger.sqlite")
    make_indexer(database)
    escrow = deployment.contracts[ESCROW]
    moved = dataclasses.replace(escrow, address="0x000000000000000000000000000000000000dEaD")
    deployment.contracts[ESCROW] = moved

    with pytest.raises(LedgerStateError) as error:
        open_ledger(deployment, chain.provider.web3, database=database, abis=abis)

    assert str(error.value) == (
        f"The ledger database sqlite:///{database} has escrow {escrow.address!r}, but this index "
        "is for '0x000000000000000000000000000000000000dEaD'. Use another --database for this "
        "deployment, or delete the database to start over."
    )


def test_progress_is_reported_after_each_range(make_indexer, grant_id, chain):
    chain.mine(20)
    indexer = make_indexer(policy=RangePolicy(initial=8, maximum=8))
    reports = []

    result = indexer.sync(on_progress=reports.append)

    ends = [report.last_block for report in reports]
    assert ends == list(range(7, result.end_block, 8)) + [result.end_block]
    assert {(report.start_block, report.end_block) for report in reports} == {(0, result.end_block)}
    assert reports[-1].events == result.events


def test_abis_outside_the_repository_name_the_fix(tmp_path):
    # ape's project is the working folder's, so only a new process can see another one.
    script = (
        "from fundtrail.ledger import contract_abis\n"
        "try:\n"
        "    contract_abis()\n"
        "except Exception as error:\n"
        "    print(type(error).__name__, error)\n"
    )
    environment = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[3] / "src"))

    output = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120
    ).stdout

    assert output == (
        f"DeploymentError The ape project in {tmp_path} has no MilestoneEscrow contract. FundTrail "
        "reads the contracts' ABIs from its own ape project, so run fundtrail from the FundTrail "
        "repository folder.\n"
    )


def open_database(database: str) -> Ledger:
    return Ledger(connect(database), chain_id=1, escrow=ESCROW_ADDRESS, registry=ESCROW_ADDRESS, start_block=0)


def test_database_in_missing_folder_is_rejected(tmp_path):
    database = tmp_path / "missing" / "ledger.sqlite"

    with pytest.raises(LedgerDatabaseError) as error:
        open_database(str(database))

    assert str(error.value) == (
        f"The folder {database.parent} of the ledger database {database} does not exist. Create "
        "it, or pass another --database."
    )


def test_file_that_is_not_sqlite_is_rejected(tmp_path):
    database = tmp_path / "notes.txt"
    database.write_text("not a database\n" * 100)

    with pytest.raises(LedgerDatabaseError) as error:
        open_database(str(database))

    assert str(error.value) == (
        f"Cannot open the ledger database sqlite:///{database}: file is not a database. Check that "
        "the database server is running and accepts this user, or that the path is an SQLite file."
    )


def test_unreachable_postgres_names_the_url_without_password():
    # Nothing listens on this port of the loopback address.
    url = "postgresql://fundtrail:secret@127.0.0.1:8698/fundtrail"

    with pytest.raises(LedgerDatabaseError) as error:
        open_database(url)

    assert str(error.value).startswith(
        "Cannot open the ledger database postgresql+psycopg://fundtrail:***@127.0.0.1:8698/fundtrail: "
        'connection failed: connection to server at "127.0.0.1", port 8698 failed: Connection refused. '
    )
    assert "secret" not in str(error.value)


def test_url_without_installed_driver_is_rejected():
    with pytest.raises(LedgerDatabaseError) as error:
        open_database("mysql://fundtrail:secret@127.0.0.1/fundtrail")

    assert str(error.value) == (
        "The ledger database URL mysql://fundtrail:***@127.0.0.1/fundtrail cannot be used (No "
        "module named 'MySQLdb'). Pass a path to an SQLite file, or a postgresql:// URL."
    )
