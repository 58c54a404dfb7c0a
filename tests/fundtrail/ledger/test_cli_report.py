"""`fundtrail report grant|project|donor`, run with click's CliRunner on the in-process chain.

Each format's output is parsed and compared exactly with the statement the library builds from
the same ledger database.
"""

import csv
import io
import json

import pytest
from statement_setup import (
    DIRECT_GIFT,
    DONOR_SHARE,
    EVIDENCE,
    USDC,
    hex32,
    read_ledger,
    run_cofunded,
    usdc_info,
)

from fundtrail.ledger.statements import (
    CSV_COLUMNS,
    donor_statement,
    grant_statement,
    project_statement,
)

NETWORK = "ethereum:local:test"


@pytest.fixture
def cofunded(client, resolve, grant_maker, donor, ngo, attestors, registrar, stranger, chain):
    return run_cofunded(client, resolve(), grant_maker, donor, ngo, attestors, registrar, stranger, chain)


@pytest.fixture
def database(tmp_path):
    return tmp_path / "ledger.sqlite"


@pytest.fixture
def report(invoke_cli, deployments, database):
    """`report(*args)` runs `fundtrail report ARGS` on the test chain and returns click's result."""

    def invoke(*args):
        argv = ["report", *args, "--network", NETWORK, "--deployments", deployments]
        return invoke_cli(argv + ["--database", database], env={"FUNDTRAIL_NO_PROGRESS": "1"})

    return invoke


@pytest.fixture
def statement_inputs(index_contracts, escrow, registry, usdc):
    """`statement_inputs()` returns the books and source of a fresh index, and the token details."""

    def read():
        books, source = read_ledger(index_contracts(escrow.address, registry.address))
        return books, {usdc.address: usdc_info(usdc)}, source

    return read


def parse_csv(text: str) -> tuple[list[str], list[dict]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    return reader.fieldnames, list(reader)


def expected_rows(statement) -> list[dict]:
    """Return the statement's CSV rows with every value as text, as csv.DictReader reads them."""
    return [{key: str(value) for key, value in movement.to_row().items()} for movement in statement.movements()]


def test_report_grant_json(report, cofunded, statement_inputs):
    grant_id, _, receipts = cofunded

    result = report("grant", grant_id, "--format", "json")

    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    books, tokens, source = statement_inputs()
    assert data == grant_statement(books, grant_id, tokens, source).to_json()
    assert data["totals"]["funded"] == {"base_units": 6_000 * USDC, "formatted": "6,000 USDC"}
    assert [release["at"]["tx_hash"] for release in data["releases"]] == [
        receipts["release0"].txn_hash,
        receipts["release1"].txn_hash,
    ]


def test_report_grant_csv(report, cofunded, statement_inputs, escrow, ngo, grant_maker, donor, registry):
    grant_id, _, receipts = cofunded

    result = report("grant", grant_id, "--format", "csv")

    assert result.exit_code == 0, result.stderr
    header, rows = parse_csv(result.stdout)
    books, tokens, source = statement_inputs()
    assert header == list(CSV_COLUMNS)
    assert rows == expected_rows(grant_statement(books, grant_id, tokens, source))
    columns = ("kind", "account", "from", "to", "base_units", "tx_hash")
    assert [tuple(row[column] for column in columns) for row in rows] == [
        ("funding", grant_maker.address, grant_maker.address, escrow.address, "3999999999", receipts["fund"].txn_hash),
        ("funding", donor.address, registry.address, escrow.address, str(DONOR_SHARE), receipts["donate"].txn_hash),
        ("release", ngo.address, escrow.address, ngo.address, str(1_000 * USDC), receipts["release0"].txn_hash),
        ("release", ngo.address, escrow.address, ngo.address, str(2_000 * USDC), receipts["release1"].txn_hash),
        ("reclaim", donor.address, escrow.address, donor.address, str(1_000 * USDC), receipts["reclaim2"].txn_hash),
        (
            "reclaim",
            grant_maker.address,
            escrow.address,
            grant_maker.address,
            str(2_000 * USDC),
            receipts["reclaim2"].txn_hash,
        ),
    ]
    assert rows[2]["evidence_hash"] == hex32(EVIDENCE[0])
    assert rows[2]["amount"] == "1,000 USDC"


def test_report_grant_table(report, cofunded, ngo, attestors, stranger):
    grant_id, _, receipts = cofunded

    result = report("grant", grant_id)

    assert result.exit_code == 0, result.stderr
    assert f"Statement of grant {grant_id}" in result.stdout
    assert "Completed" in result.stdout
    assert ngo.address in result.stdout
    assert "2,000.000001 USDC" in result.stdout
    assert receipts["reclaim2"].txn_hash in result.stdout
    # The relayed approval names the relayer.
    assert stranger.address in result.stdout


def test_report_project_csv(report, cofunded, statement_inputs, donor, ngo):
    _, project_id, receipts = cofunded

    result = report("project", project_id, "--format", "csv")

    assert result.exit_code == 0, result.stderr
    header, rows = parse_csv(result.stdout)
    books, tokens, source = statement_inputs()
    assert header == list(CSV_COLUMNS)
    assert rows == expected_rows(project_statement(books, project_id, tokens, source))
    assert [(row["kind"], row["from"], row["to"], row["base_units"]) for row in rows] == [
        ("donation", donor.address, ngo.address, str(DIRECT_GIFT)),
        ("release", rows[1]["from"], ngo.address, str(1_000 * USDC)),
        ("release", rows[1]["from"], ngo.address, str(2_000 * USDC)),
    ]
    assert rows[0]["tx_hash"] == receipts["gift"].txn_hash


def test_report_project_json(report, cofunded, statement_inputs):
    _, project_id, _ = cofunded

    result = report("project", project_id, "--format", "json")

    assert result.exit_code == 0, result.stderr
    books, tokens, source = statement_inputs()
    assert json.loads(result.stdout) == project_statement(books, project_id, tokens, source).to_json()


def test_report_donor_json_to_file(report, cofunded, statement_inputs, donor, tmp_path):
    out = tmp_path / "donor.json"

    result = report("donor", donor.address, "--format", "json", "--out", out)

    assert result.exit_code == 0, result.stderr
    assert f"Wrote the json statement to {out}" in result.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    books, tokens, source = statement_inputs()
    assert data == donor_statement(books, donor.address, tokens, source).to_json()
    assert [share["share"]["base_units"] for share in data["grants"][0]["released"]] == [333_333_333, 666_666_667]


def test_report_donor_csv_to_file(report, cofunded, statement_inputs, donor, tmp_path):
    out = tmp_path / "donor.csv"

    result = report("donor", donor.address, "--format", "csv", "--out", out)

    assert result.exit_code == 0, result.stderr
    header, rows = parse_csv(out.read_text(encoding="utf-8"))
    books, tokens, source = statement_inputs()
    assert header == list(CSV_COLUMNS)
    assert rows == expected_rows(donor_statement(books, donor.address, tokens, source))
    assert [row["kind"] for row in rows] == ["donation", "funding", "release_share", "release_share", "reclaim"]


def test_report_donor_table(report, cofunded, donor, ngo):
    result = report("donor", donor.address)

    assert result.exit_code == 0, result.stderr
    assert f"Statement of donor {donor.address}" in result.stdout
    assert "333.333333 USDC" in result.stdout
    assert "666.666667 USDC" in result.stdout
    assert ngo.address in result.stdout


def test_report_donor_without_gifts_says_so(report, cofunded, stranger, chain):
    result = report("donor", stranger.address)

    assert result.exit_code == 0, result.stderr
    assert " ".join(result.stdout.split()).endswith(
        f"The ledger has no gift, funding or withdrawal of {stranger.address} up to block "
        f"{chain.blocks.height:,}. Check the address, or run `fundtrail index` if the gift is newer."
    )


def test_report_table_to_file(report, cofunded, tmp_path):
    grant_id, _, receipts = cofunded
    out = tmp_path / "grant.txt"

    result = report("grant", grant_id, "--out", out)

    assert result.exit_code == 0, result.stderr
    text = out.read_text(encoding="utf-8")
    assert f"Statement of grant {grant_id}" in text
    assert receipts["release1"].txn_hash in text
    # A file gets plain text, without terminal colour codes.
    assert "\x1b[" not in text


def test_report_unknown_grant_exits_2(report, cofunded):
    result = report("grant", 99)

    assert result.exit_code == 2
    assert "Grant 99 is not in the ledger, which has grants 1 to 1" in result.stderr
    assert "`fundtrail index`" in result.stderr
    assert result.stdout == ""


def test_report_unknown_project_exits_2(report, cofunded):
    result = report("project", 5, "--format", "json")

    assert result.exit_code == 2
    assert "Project 5 is not in the ledger, which has projects 1 to 1" in result.stderr
    assert result.stdout == ""


def test_report_no_sync_reads_stored_ledger(report, cofunded):
    grant_id, _, _ = cofunded

    result = report("grant", grant_id, "--no-sync")

    # The database is new, so without a sync it contains no grant yet.
    assert result.exit_code == 2
    assert f"Grant {grant_id} is not in the ledger, which has no grants" in result.stderr


def test_report_bad_donor_address_exits_before_sync(report, database):
    result = report("donor", "0xnot-an-address")

    assert result.exit_code == 2
    assert "ADDRESS: invalid value '0xnot-an-address': not an Ethereum address" in result.stderr
    assert not database.exists()


def test_report_out_in_missing_folder_exits_2(report, cofunded, tmp_path):
    grant_id, _, _ = cofunded
    out = tmp_path / "missing" / "grant.json"

    result = report("grant", grant_id, "--format", "json", "--out", out)

    assert result.exit_code == 2
    assert f"{out}: cannot write the statement (No such file or directory)" in result.stderr
    assert "Choose a writable --out path." in result.stderr


def test_report_rejects_unknown_format(report):
    result = report("grant", 1, "--format", "xml")

    assert result.exit_code == 2
    assert "Invalid value for '--format'" in result.stderr
