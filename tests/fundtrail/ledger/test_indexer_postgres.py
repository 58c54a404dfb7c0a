"""The same ledger on PostgreSQL: identical rows to SQLite, and reorganisations rolled back."""

import pytest

from fundtrail.ledger.schema import events

pytestmark = pytest.mark.postgres


def test_postgres_ledger_matches_sqlite(make_indexer, postgres_url, grant_id, client, ngo, evidence_hash):
    client.submit_evidence(grant_id, 0, evidence_hash, "ipfs://bafy-evidence-0", ngo)
    sqlite = make_indexer()
    postgres = make_indexer(postgres_url)

    sqlite.sync()
    result = postgres.sync()

    assert postgres.ledger.events() == sqlite.ledger.events()
    assert postgres.ledger.meta() == sqlite.ledger.meta()
    assert result.events == len(sqlite.ledger.events())


def test_postgres_ledger_rolls_back_a_reorganisation(make_indexer, postgres_url, grant_id, client, ngo, chain):
    indexer = make_indexer(postgres_url)
    indexer.sync()
    fork = chain.blocks.height
    snapshot = chain.snapshot()
    client.submit_evidence(grant_id, 0, b"\x01" * 32, "ipfs://bafy-orphaned", ngo)
    indexer.sync()
    chain.restore(snapshot)
    chain.mine(2)
    replacement = client.submit_evidence(grant_id, 0, b"\x02" * 32, "ipfs://bafy-canonical", ngo)

    result = indexer.sync()

    assert result.rolled_back_to == fork
    rows = indexer.ledger.events(events.c.event == "EvidenceSubmitted")
    assert [(row["block_number"], row["args"]["evidenceUri"]) for row in rows] == [
        (replacement.block_number, "ipfs://bafy-canonical")
    ]
