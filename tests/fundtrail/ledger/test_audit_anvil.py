"""`fundtrail audit` against a real anvil process, run as an operator would, in subprocesses.

The module starts one anvil on port 8730 and runs the demo on it (demo_on_anvil.py). Each test
takes an anvil snapshot and reverts to it afterwards, so the tests do not see each other's
transactions, and each uses its own ledger file.
"""

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from web3 import HTTPProvider, Web3

from fundtrail.contracts import ESCROW
from fundtrail.deployments import Deployment, DeploymentsFile
from fundtrail.ledger.books import ETH

pytestmark = pytest.mark.anvil

ROOT = Path(__file__).parents[3]
ANVIL = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
PORT = 8730
NETWORK = "ethereum:local:foundry"
STARTUP_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 20
COMMAND_TIMEOUT_SECONDS = 300
POLL_SECONDS = 0.2
ETHER = 10**18
USDC = 10**6


@pytest.fixture(scope="module")
def anvil(tmp_path_factory):
    """A fresh anvil on `PORT`, stopped after the module's tests. Yields a web3 connected to it."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", PORT)) == 0:
            pytest.fail(f"Port {PORT} is in use. Stop the process that listens on it.")
    log_path = tmp_path_factory.mktemp("anvil") / "anvil.log"
    command = [str(ANVIL), "--host", "127.0.0.1", "--port", str(PORT), "--hardfork", "shanghai"]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    web3 = Web3(HTTPProvider(f"http://127.0.0.1:{PORT}", request_kwargs={"timeout": 10}))
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not web3.is_connected():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"anvil did not start on port {PORT}:\n{log_path.read_text()}")
            time.sleep(POLL_SECONDS)
        yield web3
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_SECONDS)


@pytest.fixture(scope="module")
def environment(tmp_path_factory) -> dict[str, str]:
    deployments = tmp_path_factory.mktemp("deployments") / "deployments.json"
    environment = dict(os.environ)
    environment.update(
        APE_FOUNDRY_HOST=f"http://127.0.0.1:{PORT}",
        SOLCX_BINARY_PATH=str(ROOT / ".solcx"),
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
        NO_PROXY="127.0.0.1,localhost",
        FUNDTRAIL_DEPLOYMENTS=str(deployments),
        COLUMNS="200",
    )
    return environment


@pytest.fixture(scope="module")
def deployment(anvil, environment) -> Deployment:
    """Run the demo on anvil and return its entry in the deployments file."""
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("demo_on_anvil.py")), environment["FUNDTRAIL_DEPLOYMENTS"]],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return DeploymentsFile(Path(environment["FUNDTRAIL_DEPLOYMENTS"])).load(NETWORK)


@pytest.fixture
def snapshot(anvil, deployment):
    """Revert anvil to the state after the demo when the test ends."""
    snapshot_id = anvil.provider.make_request("evm_snapshot", [])["result"]
    yield anvil
    assert anvil.provider.make_request("evm_revert", [snapshot_id])["result"] is True


def run_audit(environment, database: Path, *options) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fundtrail", "audit", "--json", "--database", str(database), *options,
         "--network", NETWORK],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
    )


def escrow_of(deployment: Deployment) -> str:
    return deployment.contracts[ESCROW].address


def test_demo_on_anvil_is_clean(snapshot, environment, deployment, tmp_path):
    completed = run_audit(environment, tmp_path / "ledger.sqlite")

    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = json.loads(completed.stdout)
    assert report["clean"] is True
    assert report["block"] == snapshot.eth.block_number
    assert report["timestamp"] == snapshot.eth.get_block("latest")["timestamp"]
    assert report["escrow"] == escrow_of(deployment)
    assert report["checked"] == {
        "events": 23,
        "grants": 1,
        "milestones": 3,
        "funders": 2,
        "projects": 1,
        "donations": 2,
        "credits": 2,
        "tokens": 2,
    }
    assert report["discrepancies"] == []
    assert report["surpluses"] == []


def test_forced_eth_on_anvil_is_surplus(snapshot, environment, deployment, tmp_path):
    manifest = json.loads((ROOT / ".build" / "__local__.json").read_text())
    contract_type = manifest["contractTypes"]["ForceEtherSender"]
    sender = snapshot.eth.contract(abi=contract_type["abi"], bytecode=contract_type["deploymentBytecode"]["bytecode"])
    funder = snapshot.eth.accounts[9]
    transaction = sender.constructor(escrow_of(deployment)).transact({"from": funder, "value": 2 * ETHER})
    assert snapshot.eth.wait_for_transaction_receipt(transaction)["status"] == 1

    completed = run_audit(environment, tmp_path / "ledger.sqlite")

    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = json.loads(completed.stdout)
    assert report["discrepancies"] == []
    assert report["surpluses"] == [{"token": ETH, "amount": str(2 * ETHER)}]
    assert report["balances"][0] == {
        "token": ETH,
        "balance": str(2 * ETHER),
        "held": "0",
        "credits": "0",
        "surplus": str(2 * ETHER),
    }


def test_tampered_ledger_on_anvil_exits_one(snapshot, environment, deployment, tmp_path):
    database = tmp_path / "ledger.sqlite"
    assert run_audit(environment, database).returncode == 0
    with sqlite3.connect(database) as connection:
        changed = connection.execute(
            "UPDATE ledger_events SET args = json_set(args, '$.amount', 12000000000) "
            "WHERE event = 'MilestoneReleased' AND json_extract(args, '$.milestoneIndex') = 0"
        ).rowcount
    assert changed == 1

    completed = run_audit(environment, database, "--no-sync")

    assert completed.returncode == 1, completed.stdout + completed.stderr
    token = deployment.tokens["USDC"]
    assert json.loads(completed.stdout)["discrepancies"] == [
        {"kind": "grant", "subject": "grant 1", "field": "released", "expected": str(37_000 * USDC), "actual": str(37_500 * USDC)},
        {"kind": "grant", "subject": "grant 1", "field": "held", "expected": str(500 * USDC), "actual": "0"},
        {"kind": "books", "subject": "grant 1", "field": "payouts", "expected": str(44_500 * USDC), "actual": str(45_000 * USDC)},
        {"kind": "token", "subject": f"token {token}", "field": "totalHeld", "expected": str(500 * USDC), "actual": "0"},
        {"kind": "shortfall", "subject": f"token {token}", "field": "balance, at least held + credits", "expected": str(500 * USDC), "actual": "0"},
    ]

