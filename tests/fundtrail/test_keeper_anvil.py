"""The `fundtrail keeper` command against real anvil processes: kills, outages, bad files, SIGTERM.

The module builds one chain state with the CLI, as an operator would: it deploys the contracts
and creates and funds one ETH grant, then stops anvil, which saves the chain to a state file.
Each test starts its own anvil from a copy of that file on its own port (8662 to 8665), runs
the keeper as a subprocess, and reads the chain through web3 and the keeper's SQLite file.
"""

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from grant_setup import DAY, write_spec
from web3 import HTTPProvider, Web3

from fundtrail.contracts import ESCROW
from fundtrail.deployments import DeploymentsFile
from fundtrail.grants import GrantStatus, MilestoneStatus
from fundtrail.keeper import KeeperStore
from fundtrail.signing import (
    EVIDENCE_SUBMISSION,
    MILESTONE_APPROVAL,
    ApeAccountSigner,
    Domain,
    SignatureFile,
    approval_message,
    evidence_message,
    sign_message,
)

pytestmark = pytest.mark.anvil

ROOT = Path(__file__).parents[2]
ANVIL = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
NETWORK = "ethereum:local:foundry"
SETUP_PORT = 8661
KEEPER_ACCOUNT = "TEST::8"
"""The keeper's account, `Roles.keeper`: it has no role in the grant."""

STARTUP_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 20
CLI_TIMEOUT_SECONDS = 120
WAIT_TIMEOUT_SECONDS = 60
"""Maximum wait for the keeper to reach a state, such as a relayed group or a retry."""
POLL_SECONDS = 0.2

ETHER = 10**18
GRANT_ID = 1
MILESTONE_AMOUNTS = [1 * ETHER, 2 * ETHER]
URI = "ipfs://bafy-evidence-keeper"
EVIDENCE = [b"\xe0" * 32, b"\xe1" * 32]
"""The evidence hash of each milestone."""
RESIGN = "Ask the signer to sign again with `fundtrail attest sign` or `fundtrail evidence sign`."
USED = "already used on-chain: this signature was relayed before"


# Processes.


def cli_environment(port: int, deployments: Path) -> dict[str, str]:
    """Return the environment for a `fundtrail` subprocess connected to the anvil on `port`."""
    environment = dict(os.environ)
    environment.update(
        APE_FOUNDRY_HOST=f"http://127.0.0.1:{port}",
        PYTHONPATH=os.pathsep.join(
            filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])
        ),
        SOLCX_BINARY_PATH=str(ROOT / ".solcx"),
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
        NO_PROXY="127.0.0.1,localhost",
        FUNDTRAIL_DEPLOYMENTS=str(deployments),
        COLUMNS="200",
    )
    return environment


def run_cli(environment: dict[str, str], *args) -> str:
    """Run one `fundtrail` command to completion, fail the test if it fails, return its output."""
    completed = subprocess.run(
        [sys.executable, "-m", "fundtrail", *map(str, args), "--network", NETWORK],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, f"fundtrail {' '.join(map(str, args))} failed:\n{output}"
    return output


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM) -> int:
    """Send `sig`, wait for the exit and return the exit code. Kill the process if it hangs."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
    return process.returncode


class AnvilProcess:
    """One anvil process on `port` that keeps its chain in `state`, and can be restarted."""

    def __init__(self, port: int, state: Path, log_path: Path):
        self.port = port
        self.state = state
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.web3 = Web3(HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": 10}))

    def start(self) -> None:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                pytest.fail(f"Port {self.port} is in use. Stop the process that listens on it.")
        command = [
            str(ANVIL), "--host", "127.0.0.1", "--port", str(self.port),
            "--hardfork", "shanghai", "--state", str(self.state),
        ]
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = self.log_path.read_text()
                pytest.fail(f"anvil exited with {self.process.returncode}:\n{log}")
            try:
                self.web3.eth.chain_id
            except OSError:
                time.sleep(POLL_SECONDS)
            else:
                return
        pytest.fail(f"anvil did not answer within {STARTUP_TIMEOUT_SECONDS} s")

    def stop(self) -> None:
        """Stop anvil with SIGTERM, on which it writes the chain to its state file."""
        if self.process is not None:
            stop_process(self.process)

    def mine_at(self, timestamp: int) -> None:
        """Mine a block at `timestamp`, or later if another transaction takes that block first."""
        self.web3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])
        self.web3.provider.make_request("evm_mine", [])


class KeeperProcess:
    """The `fundtrail keeper` subprocess. Every run appends to the same log file."""

    def __init__(self, environment: dict[str, str], inbox: Path, database: Path, log_path: Path):
        self.environment = environment
        self.inbox = inbox
        self.database = database
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [
            sys.executable, "-m", "fundtrail", "keeper",
            "--inbox", str(self.inbox), "--database", str(self.database),
            "--poll", "0.5", "--max-backoff", "2",
            "--network", NETWORK, "--account", KEEPER_ACCOUNT,
        ]
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.environment, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def processed(self) -> Path:
        return self.inbox / "processed"

    @property
    def quarantine(self) -> Path:
        return self.inbox / "quarantine"

    @property
    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def assert_running(self) -> None:
        assert self.process.poll() is None, f"the keeper exited:\n{self.log}"

    def wait_until(self, condition, what: str):
        """Poll `condition()` until it returns a true value, and return that value.

        Fail the test if the keeper exits or the wait exceeds `WAIT_TIMEOUT_SECONDS`.
        """
        deadline = time.monotonic() + WAIT_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            self.assert_running()
            value = condition()
            if value:
                return value
            time.sleep(POLL_SECONDS)
        pytest.fail(f"timed out after {WAIT_TIMEOUT_SECONDS} s waiting for {what}:\n{self.log}")

    def records(self) -> dict:
        """Read the keeper's database without writing to it. Return {} before its first sync."""
        try:
            connection = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5)
        except sqlite3.OperationalError:
            return {}
        try:
            last_block = connection.execute(
                "SELECT value FROM state WHERE key = 'last_block'"
            ).fetchone()
            if last_block is None:
                return {}
            return {
                "last_block": int(last_block[0]),
                "actions": connection.execute("SELECT kind FROM actions").fetchall(),
                "quarantined": connection.execute("SELECT name FROM quarantined").fetchall(),
            }
        except sqlite3.OperationalError:
            # The keeper has not created the tables yet, or holds a write lock.
            return {}
        finally:
            connection.close()

    def wait_for_actions(self, count: int) -> None:
        self.wait_until(lambda: len(self.records().get("actions", [])) >= count, f"{count} actions")

    def stop(self) -> int:
        return stop_process(self.process)


# Fixtures.


@dataclass(frozen=True)
class BaseChain:
    """A saved anvil chain with the contracts deployed and grant 1 created and funded."""

    state: Path
    deployments: Path
    escrow: str


@pytest.fixture(scope="module")
def base_chain(tmp_path_factory) -> BaseChain:
    if not ANVIL.exists():
        pytest.skip(f"{ANVIL} is missing; run `npm ci` (or `make setup`) to install anvil")
    folder = tmp_path_factory.mktemp("keeper-base-chain")
    state = folder / "state.json"
    deployments = folder / "deployments.json"
    # Milestones of 1 and 2 ETH, due 30 and 60 days after the grant is created.
    spec = write_spec(
        folder,
        token="ETH",
        milestones=[
            {"title": "Hotline staffed", "amount": "1 ETH", "deadline": "30d"},
            {"title": "Shelter beds", "amount": "2 ETH", "deadline": "60d"},
        ],
    )
    anvil = AnvilProcess(SETUP_PORT, state, folder / "anvil.log")
    anvil.start()
    try:
        environment = cli_environment(SETUP_PORT, deployments)
        run_cli(environment, "deploy", "--account", "TEST::0")
        run_cli(environment, "grant", "create", spec, "--fund", "--account", "TEST::1")
    finally:
        anvil.stop()
    escrow = DeploymentsFile(deployments).load(NETWORK).contract(ESCROW).address
    return BaseChain(state, deployments, escrow)


@dataclass(frozen=True)
class Roles:
    """The test accounts, which are also anvil's default accounts, as tests/conftest.py names
    them. The keeper runs as `keeper`, which has no role in the grant."""

    grant_maker: object
    ngo: object
    attestors: list
    keeper: object


@pytest.fixture(scope="module")
def roles(accounts) -> Roles:
    # Module scope, so that no test requests a wider-scoped fixture after ape's isolation of
    # the in-process chain began, which ape warns about.
    return Roles(accounts[1], accounts[2], [accounts[3], accounts[4], accounts[5]], accounts[8])


@pytest.fixture
def processes():
    """The processes a test starts, each stopped at teardown even if the test fails."""
    started = []
    yield started
    for item in started:
        if item.process is not None and item.process.poll() is None:
            stop_process(item.process, signal.SIGKILL)


@pytest.fixture
def make_anvil(base_chain, tmp_path, processes):
    """`make_anvil(port)` starts anvil on a copy of the base chain."""

    def make(port: int) -> AnvilProcess:
        state = tmp_path / "state.json"
        shutil.copy(base_chain.state, state)
        anvil = AnvilProcess(port, state, tmp_path / "anvil.log")
        processes.append(anvil)
        anvil.start()
        return anvil

    return make


@pytest.fixture
def make_keeper(base_chain, tmp_path, processes):
    """`make_keeper(port)` returns the keeper subprocess for the anvil on `port`, not started."""

    def make(port: int) -> KeeperProcess:
        keeper = KeeperProcess(
            cli_environment(port, base_chain.deployments),
            tmp_path / "inbox",
            tmp_path / "keeper.sqlite3",
            tmp_path / "keeper.log",
        )
        keeper.inbox.mkdir()
        processes.append(keeper)
        return keeper

    return make


@pytest.fixture
def escrow_contract(project, base_chain):
    """`escrow_contract(web3)` returns the escrow as a web3 contract."""
    abi = [
        entry.model_dump(mode="json", by_alias=True, exclude_none=True)
        for entry in project.MilestoneEscrow.contract_type.abi
    ]
    return lambda web3: web3.eth.contract(address=base_chain.escrow, abi=abi)


# Signature files and records.


def escrow_domain(escrow) -> Domain:
    return Domain.from_eip5267(*escrow.functions.eip712Domain().call())


def drop_signature(inbox: Path, name: str, kind: str, account, domain, index: int, expiry: int):
    """Sign milestone `index` as `account`, drop the file into the inbox and return it."""
    evidence_hash = EVIDENCE[index]
    if kind == MILESTONE_APPROVAL:
        message = approval_message(account.address, GRANT_ID, index, evidence_hash, expiry)
    else:
        message = evidence_message(account.address, GRANT_ID, index, evidence_hash, URI, expiry)
    signed = sign_message(ApeAccountSigner(account), kind, domain, message)
    drop_file(inbox, name, signed)
    return signed


def drop_file(inbox: Path, name: str, signed: SignatureFile) -> None:
    """Write `signed` beside the inbox's files and rename it in, so the keeper never reads half
    a file: the keeper reads only names that end in .json."""
    staging = inbox / f".{name}.part"
    signed.save(staging)
    staging.replace(inbox / name)


def drop_text(inbox: Path, name: str, text: str) -> None:
    staging = inbox / f".{name}.part"
    staging.write_text(text, encoding="utf-8")
    staging.replace(inbox / name)


def with_other_v(signed: SignatureFile) -> tuple[SignatureFile, str]:
    """Return `signed` with v switched between 27 and 28, and the address it now recovers to."""
    signature = signed.signature_bytes
    r, s, v = signature[:32], signature[32:64], signature[64]
    other_v = 55 - v
    tampered = signed.model_copy(update={"signature": "0x" + (r + s + bytes([other_v])).hex()})
    recovered = Account._recover_hash(
        signed.digest_bytes, vrs=(other_v, int.from_bytes(r, "big"), int.from_bytes(s, "big"))
    )
    return tampered, recovered


def drop_quorum(inbox, domain, index, roles, expiry) -> list[tuple]:
    """Drop evidence for milestone `index` and approvals from the first two attestors.

    Return the `(signer, SignatureFile)` pairs in the order the keeper relays them.
    """
    evidence = drop_signature(
        inbox, f"evidence-{index}.json", EVIDENCE_SUBMISSION, roles.ngo, domain, index, expiry
    )
    approvals = []
    for number, attestor in enumerate(roles.attestors[:2]):
        name = f"approval-{index}-{number}.json"
        signed = drop_signature(inbox, name, MILESTONE_APPROVAL, attestor, domain, index, expiry)
        approvals.append((attestor, signed))
    approvals.sort(key=lambda pair: int(pair[0].address, 16))
    return [(roles.ngo, evidence), *approvals]


def relay_summary(pairs) -> list[tuple]:
    return [
        ("relay", GRANT_ID, {"signer": signer.address, "digest": signed.digest})
        for signer, signed in pairs
    ]


def chain_actions(escrow, keeper_address: str) -> list[tuple]:
    """Return every action of the keeper's account on-chain, read from the escrow's events."""
    relays = escrow.events.SignatureRelayed.get_logs(
        from_block=0, argument_filters={"relayer": keeper_address}
    )
    reclaims = escrow.events.MilestoneReclaimed.get_logs(
        from_block=0, argument_filters={"caller": keeper_address}
    )
    found = [
        (
            "relay",
            log.args.grantId,
            "0x" + bytes(log.transactionHash).hex(),
            log.logIndex,
            log.blockNumber,
            {"signer": log.args.signer, "digest": "0x" + bytes(log.args.digest).hex()},
        )
        for log in relays
    ] + [
        (
            "reclaim",
            log.args.grantId,
            "0x" + bytes(log.transactionHash).hex(),
            log.logIndex,
            log.blockNumber,
            {"milestone_index": log.args.milestoneIndex, "amount": log.args.amount},
        )
        for log in reclaims
    ]
    return sorted(found, key=lambda action: (action[4], action[3]))


@dataclass
class FinalRecords:
    """What the keeper stored, read after it stopped."""

    actions: list[tuple]
    last_block: int | None
    quarantined: list[tuple[str, str]]


def final_records(database: Path) -> FinalRecords:
    store = KeeperStore(database)
    try:
        actions = [
            (a.kind, a.grant_id, a.tx_hash.lower(), a.log_index, a.block, a.detail)
            for a in store.actions()
        ]
        return FinalRecords(actions, store.last_block(), store.quarantined())
    finally:
        store.close()


def summaries(actions: list[tuple]) -> list[tuple]:
    """Return the kind, grant id and detail of each action."""
    return [(kind, grant_id, detail) for kind, grant_id, *_, detail in actions]


def folder_names(folder: Path) -> list[str]:
    """Return the files in `folder`, or [] before the keeper created it."""
    if not folder.is_dir():
        return []
    return sorted(path.name for path in folder.iterdir() if path.is_file())


def reason_of(moved: Path) -> str:
    """Return the reason the keeper wrote beside a file it moved, without the final newline."""
    text = moved.with_name(moved.name + ".reason.txt").read_text(encoding="utf-8")
    assert text.endswith("\n")
    return text[:-1]


def grant_status(escrow) -> GrantStatus:
    # GrantView: recipient, token, fundingDeadline, threshold, counts, status, then amounts.
    return GrantStatus(escrow.functions.getGrant(GRANT_ID).call()[7])


def milestone_statuses(escrow) -> list[MilestoneStatus]:
    # MilestoneView: amount, deadline, status, evidenceHash, approvals, rejections, counts.
    return [
        MilestoneStatus(escrow.functions.getMilestone(GRANT_ID, index).call()[2])
        for index in range(len(MILESTONE_AMOUNTS))
    ]


def signature_expiry(web3, days: int) -> int:
    return web3.eth.get_block("latest").timestamp + days * DAY


# Tests.


def test_keeper_resumes_after_sigkill(make_anvil, make_keeper, escrow_contract, roles):
    anvil = make_anvil(8662)
    web3 = anvil.web3
    escrow = escrow_contract(web3)
    domain = escrow_domain(escrow)
    keeper = make_keeper(8662)
    ngo_balance = web3.eth.get_balance(roles.ngo.address)
    expiry = signature_expiry(web3, 7)
    keeper.start()
    keeper.wait_until(keeper.records, "the first sync")

    first = drop_quorum(keeper.inbox, domain, 0, roles, expiry)
    keeper.wait_for_actions(3)
    keeper.wait_until(lambda: len(folder_names(keeper.processed)) == 3, "3 processed files")

    assert stop_process(keeper.process, signal.SIGKILL) == -signal.SIGKILL
    second = drop_quorum(keeper.inbox, domain, 1, roles, expiry)
    keeper.start()
    keeper.wait_for_actions(6)
    keeper.wait_until(lambda: len(folder_names(keeper.processed)) == 6, "6 processed files")

    assert keeper.stop() == 0
    assert milestone_statuses(escrow) == [MilestoneStatus.Released, MilestoneStatus.Released]
    assert grant_status(escrow) == GrantStatus.Completed
    assert web3.eth.get_balance(roles.ngo.address) == ngo_balance + sum(MILESTONE_AMOUNTS)
    # Two transactions per milestone, evidence and approvals: nothing was sent twice.
    assert web3.eth.get_transaction_count(roles.keeper.address) == 4

    records = final_records(keeper.database)
    assert summaries(records.actions) == relay_summary(first) + relay_summary(second)
    assert records.actions == chain_actions(escrow, roles.keeper.address)
    assert records.last_block == web3.eth.block_number
    assert records.quarantined == []
    assert folder_names(keeper.inbox) == []
    assert folder_names(keeper.quarantine) == []
    assert keeper.log.count("Keeper started for escrow") == 2


def test_keeper_rides_out_anvil_outage(make_anvil, make_keeper, escrow_contract, roles):
    anvil = make_anvil(8663)
    web3 = anvil.web3
    escrow = escrow_contract(web3)
    domain = escrow_domain(escrow)
    keeper = make_keeper(8663)
    deadline = escrow.functions.getMilestone(GRANT_ID, 0).call()[1]
    ngo_balance = web3.eth.get_balance(roles.ngo.address)
    maker_balance = web3.eth.get_balance(roles.grant_maker.address)
    # Still valid after the jump past milestone 0's deadline, which is 30 days away.
    expiry = signature_expiry(web3, 45)
    keeper.start()
    keeper.wait_until(keeper.records, "the first sync")

    anvil.stop()
    keeper.wait_until(lambda: "Keeper cycle failed (attempt 2)" in keeper.log, "two retries")
    pending = drop_quorum(keeper.inbox, domain, 1, roles, expiry)
    keeper.assert_running()

    anvil.start()
    anvil.mine_at(deadline)
    keeper.wait_for_actions(4)
    keeper.wait_until(lambda: len(folder_names(keeper.processed)) == 3, "3 processed files")

    assert keeper.stop() == 0
    assert "Keeper recovered after" in keeper.log
    assert milestone_statuses(escrow) == [MilestoneStatus.Reclaimed, MilestoneStatus.Released]
    assert grant_status(escrow) == GrantStatus.Completed
    assert web3.eth.get_balance(roles.ngo.address) == ngo_balance + MILESTONE_AMOUNTS[1]
    assert web3.eth.get_balance(roles.grant_maker.address) == maker_balance + MILESTONE_AMOUNTS[0]
    assert web3.eth.get_transaction_count(roles.keeper.address) == 3

    records = final_records(keeper.database)
    reclaim = ("reclaim", GRANT_ID, {"milestone_index": 0, "amount": MILESTONE_AMOUNTS[0]})
    # The reclaim and the relay may run in either order, depending on when anvil is back.
    assert sorted(summaries(records.actions), key=repr) == sorted(
        [reclaim, *relay_summary(pending)], key=repr
    )
    assert records.actions == chain_actions(escrow, roles.keeper.address)
    assert records.last_block == web3.eth.block_number
    assert records.quarantined == []
    assert folder_names(keeper.inbox) == []


def test_keeper_quarantines_bad_files_while_running(
    make_anvil, make_keeper, escrow_contract, roles
):
    anvil = make_anvil(8664)
    escrow = escrow_contract(anvil.web3)
    domain = escrow_domain(escrow)
    keeper = make_keeper(8664)
    inbox = keeper.inbox
    attestors = roles.attestors
    expiry = signature_expiry(anvil.web3, 7)
    keeper.start()
    keeper.wait_until(keeper.records, "the first sync")

    broken_text = '{"format": "fundtrail-signature", "kind": '
    drop_text(inbox, "broken.json", broken_text)
    try:
        json.loads(broken_text)
    except json.JSONDecodeError as error:
        broken_reason = f"{inbox / 'broken.json'}: not valid JSON ({error}). {RESIGN}"

    # The original waits for the evidence, and its copy is quarantined in the meantime.
    original = drop_signature(
        inbox, "approval-a.json", MILESTONE_APPROVAL, attestors[0], domain, 0, expiry
    )
    drop_file(inbox, "approval-b.json", original)
    duplicate_reason = f"duplicate: the same signature as {inbox / 'approval-a.json'}"

    message = approval_message(attestors[2].address, GRANT_ID, 0, EVIDENCE[0], expiry)
    signed = sign_message(ApeAccountSigner(attestors[2]), MILESTONE_APPROVAL, domain, message)
    tampered, recovered = with_other_v(signed)
    drop_file(inbox, "tampered.json", tampered)
    tampered_reason = (
        f"bad signature: the signature was made by {recovered}, not by the stated signer "
        f"{attestors[2].address}"
    )

    keeper.wait_until(lambda: len(keeper.records().get("quarantined", [])) == 3, "3 quarantined")
    assert folder_names(inbox) == ["approval-a.json"]

    evidence = drop_signature(
        inbox, "evidence.json", EVIDENCE_SUBMISSION, roles.ngo, domain, 0, expiry
    )
    second = drop_signature(
        inbox, "approval-c.json", MILESTONE_APPROVAL, attestors[1], domain, 0, expiry
    )
    keeper.wait_for_actions(3)
    keeper.wait_until(lambda: folder_names(inbox) == [], "an empty inbox")

    # A copy that arrives after its signature was relayed goes to processed, with the reason.
    drop_file(inbox, "approval-a-again.json", original)
    late_reason = keeper.processed / "approval-a-again.json.reason.txt"
    keeper.wait_until(late_reason.exists, "the late copy in processed")

    assert keeper.stop() == 0
    assert "Traceback" not in keeper.log
    assert folder_names(keeper.quarantine) == [
        "approval-b.json",
        "approval-b.json.reason.txt",
        "broken.json",
        "broken.json.reason.txt",
        "tampered.json",
        "tampered.json.reason.txt",
    ]
    assert reason_of(keeper.quarantine / "broken.json") == broken_reason
    assert reason_of(keeper.quarantine / "approval-b.json") == duplicate_reason
    assert reason_of(keeper.quarantine / "tampered.json") == tampered_reason
    assert reason_of(keeper.processed / "approval-a-again.json") == USED
    assert folder_names(keeper.processed) == [
        "approval-a-again.json",
        "approval-a-again.json.reason.txt",
        "approval-a.json",
        "approval-c.json",
        "evidence.json",
    ]

    records = final_records(keeper.database)
    assert sorted(records.quarantined) == [
        ("approval-b.json", duplicate_reason),
        ("broken.json", broken_reason),
        ("tampered.json", tampered_reason),
    ]
    approvals = sorted(
        [(attestors[0], original), (attestors[1], second)],
        key=lambda pair: int(pair[0].address, 16),
    )
    assert summaries(records.actions) == relay_summary([(roles.ngo, evidence), *approvals])
    assert records.actions == chain_actions(escrow, roles.keeper.address)
    assert milestone_statuses(escrow) == [
        MilestoneStatus.Released,
        MilestoneStatus.AwaitingEvidence,
    ]


def test_keeper_stops_on_sigterm(make_anvil, make_keeper):
    anvil = make_anvil(8665)
    keeper = make_keeper(8665)
    keeper.start()
    last_block = keeper.wait_until(keeper.records, "the first sync")["last_block"]

    assert keeper.stop() == 0
    assert "Received SIGTERM, stopping after the current cycle" in keeper.log
    assert f"Keeper stopped at block {last_block}" in keeper.log
    assert last_block == anvil.web3.eth.block_number
    assert "Traceback" not in keeper.log
