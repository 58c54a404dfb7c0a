"""`fundtrail index`, run with click's CliRunner against the in-process test chain."""

import pytest

NETWORK = "ethereum:local:test"


@pytest.fixture
def index(invoke_cli, deployments):
    """`index(*args)` runs `fundtrail index` on the test chain and returns click's result."""
    return lambda *args: invoke_cli(["index", "--network", NETWORK, "--deployments", deployments, *args])


def test_index_prints_blocks_events_and_database(index, grant_id, chain, tmp_path):
    database = tmp_path / "ledger.sqlite"

    result = index("--database", database)

    assert result.exit_code == 0, result.stderr
    height = chain.blocks.height
    # The registry's OwnershipTransferred, then the grant's GrantCreated and GrantFunded.
    assert result.stdout == (
        f"Indexed blocks 0 to {height:,}: 3 events in 1 request. Ledger: sqlite:///{database}\n"
    )


def test_index_again_reports_up_to_date(index, grant_id, chain, tmp_path):
    database = tmp_path / "ledger.sqlite"
    index("--database", database)

    result = index("--database", database)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"The ledger is up to date at block {chain.blocks.height}.\n"


def test_index_takes_database_from_environment(index, grant_id, tmp_path, monkeypatch):
    database = tmp_path / "from-env.sqlite"
    monkeypatch.setenv("FUNDTRAIL_LEDGER_DATABASE", str(database))

    result = index()

    assert result.exit_code == 0, result.stderr
    assert database.exists()


def test_index_rejects_ledger_of_other_chain(index, grant_id, tmp_path, escrow):
    from fundtrail.ledger.indexer import Ledger, connect

    database = tmp_path / "ledger.sqlite"
    Ledger(connect(str(database)), chain_id=5, escrow=escrow.address, registry=escrow.address, start_block=0)

    result = index("--database", database)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert " ".join(result.stderr.split()) == (
        f"Error: The ledger database sqlite:///{database} has chain_id '5', but this index is for "
        "'1337'. Use another --database for this deployment, or delete the database to start over."
    )


def test_index_shows_progress_on_a_terminal(index, grant_id, tmp_path, monkeypatch):
    # rich treats the captured stderr as a terminal when TTY_COMPATIBLE is set.
    monkeypatch.setenv("TTY_COMPATIBLE", "1")

    result = index("--database", tmp_path / "ledger.sqlite")

    assert result.exit_code == 0, result.stderr
    assert "Indexing" in result.stderr
    assert "3 events" in result.stderr
