"""The keeper on the in-process test chain, driven through the `Keeper` class.

Each test checks the chain and the keeper's own records: the actions in SQLite, the last block
read, the quarantine list, and where the inbox files ended up.
"""

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from ape.exceptions import ContractLogicError, VirtualMachineError
from eth_account import Account
from grant_setup import DAY, TOTAL, USDC_UNIT

from fundtrail.grants import GrantStatus, MilestoneStatus
from fundtrail.keeper import CycleReport, Keeper, KeeperStateError, KeeperStore, relay_inbox_handler
from fundtrail.signing import (
    EVIDENCE_SUBMISSION,
    MILESTONE_APPROVAL,
    ApeAccountSigner,
    approval_message,
    evidence_message,
    sign_message,
)
from fundtrail.snapshot import export_snapshot

URI = "ipfs://bafy-evidence-keeper"
MILESTONE_0 = 1_000 * USDC_UNIT
RESIGN = "Ask the signer to sign again with `fundtrail attest sign` or `fundtrail evidence sign`."
USED = "already used on-chain: this signature was relayed before"


@pytest.fixture
def inbox(tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


@pytest.fixture
def database(tmp_path):
    return tmp_path / "keeper.sqlite3"


@pytest.fixture
def store(database):
    keeper_store = KeeperStore(database)
    yield keeper_store
    keeper_store.close()


@pytest.fixture
def make_keeper(client, stranger, inbox):
    """`make_keeper(store, handler=None)` returns a keeper that relays as the stranger."""

    def make(keeper_store, handler=None):
        handler = handler or relay_inbox_handler(client, stranger)
        return Keeper(client, stranger, keeper_store, inbox=inbox, inbox_handler=handler)

    return make


@pytest.fixture
def keeper(make_keeper, store):
    return make_keeper(store)


@dataclass(frozen=True)
class Signed:
    """A signature file written into the inbox, and its digest, kept after the file moves."""

    path: Path
    digest: bytes


@pytest.fixture
def sign(client, grant_id, inbox, evidence_hash):
    """`sign(kind, account, name, ...)` writes a signature file into the inbox as `name`."""
    snapshot = export_snapshot(client, grant_id)

    def write(kind, account, name, *, grant=grant_id, index=0, expiry=None):
        expiry = expiry or snapshot.block_timestamp + 7 * DAY
        if kind == MILESTONE_APPROVAL:
            message = approval_message(account.address, grant, index, evidence_hash, expiry)
        else:
            message = evidence_message(account.address, grant, index, evidence_hash, URI, expiry)
        signed = sign_message(ApeAccountSigner(account), kind, snapshot.eip712_domain, message)
        path = inbox / name
        signed.save(path)
        return Signed(path, signed.digest_bytes)

    return write


@pytest.fixture
def quorum_files(sign, ngo, attestors):
    """The recipient's evidence and two approvals of it, enough to release milestone 0."""
    return [
        sign(EVIDENCE_SUBMISSION, ngo, "evidence.json"),
        sign(MILESTONE_APPROVAL, attestors[0], "approval-0.json"),
        sign(MILESTONE_APPROVAL, attestors[1], "approval-1.json"),
    ]


def folders(inbox) -> dict[str, list[str]]:
    """Return the file names in the inbox and in its processed and quarantine folders."""
    return {
        name: sorted(path.name for path in folder.iterdir() if path.is_file())
        for name, folder in (
            ("inbox", inbox),
            ("processed", inbox / "processed"),
            ("quarantine", inbox / "quarantine"),
        )
    }


def summaries(actions) -> list[tuple]:
    return [(action.kind, action.grant_id, action.detail) for action in actions]


def action_events(chain, escrow, actions) -> list[tuple]:
    """Return, for each action, its transaction's sender and block and the event it names."""
    found = []
    for action in actions:
        receipt = chain.provider.get_receipt(action.tx_hash)
        logs = receipt.decode_logs([escrow.SignatureRelayed, escrow.MilestoneReclaimed])
        [event] = [log for log in logs if log.log_index == action.log_index]
        found.append((receipt.sender, receipt.block_number, event))
    return found


def relay_records(grant_id, *signed) -> list[tuple]:
    """Return the action summaries of `(signer, Signed)` pairs relayed in that order."""
    return [
        ("relay", grant_id, {"signer": signer.address, "digest": "0x" + item.digest.hex()})
        for signer, item in signed
    ]


def relay_events(escrow, keeper_account, grant_id, *signed) -> list:
    return [
        escrow.SignatureRelayed(grant_id, signer, keeper_account, item.digest)
        for signer, item in signed
    ]


def by_address(*pairs):
    """Sort `(account, Signed)` pairs as the relayer orders approvals: by ascending address."""
    return sorted(pairs, key=lambda pair: int(pair[0].address, 16))


def assert_events(chain, escrow, stranger, actions, expected):
    assert action_events(chain, escrow, actions) == [
        (stranger.address, action.block, event) for action, event in zip(actions, expected)
    ]
    assert len(actions) == len(expected)


# Reclaiming lapsed milestones.


def test_keeper_reclaims_at_deadline(
    keeper, store, client, grant_id, escrow, usdc, grant_maker, stranger, chain
):
    deadline = escrow.getMilestone(grant_id, 0).deadline
    chain.mine(timestamp=deadline - 1)
    nonce = stranger.nonce

    early = keeper.run_once()

    assert early.reclaimed == []
    assert stranger.nonce == nonce
    assert escrow.getMilestone(grant_id, 0).status == MilestoneStatus.AwaitingEvidence
    assert store.actions() == []
    assert store.last_block() == chain.blocks.head.number

    chain.mine(timestamp=deadline)
    assert chain.blocks.head.timestamp == deadline
    balance = usdc.balanceOf(grant_maker)

    report = keeper.run_once()

    assert report.reclaimed == [(grant_id, 0)]
    assert stranger.nonce == nonce + 1
    assert [milestone.status for milestone in client.grant(grant_id).milestones] == [
        MilestoneStatus.Reclaimed,
        MilestoneStatus.AwaitingEvidence,
        MilestoneStatus.AwaitingEvidence,
    ]
    assert usdc.balanceOf(grant_maker) == balance + MILESTONE_0
    actions = store.actions()
    assert summaries(actions) == [
        ("reclaim", grant_id, {"milestone_index": 0, "amount": MILESTONE_0}),
    ]
    expected = [escrow.MilestoneReclaimed(grant_id, 0, stranger, MILESTONE_0)]
    assert_events(chain, escrow, stranger, actions, expected)
    assert chain.blocks[actions[0].block].timestamp >= deadline
    assert store.last_block() == chain.blocks.head.number
    assert store.open_grants() == [grant_id]
    assert store.quarantined() == []


def test_keeper_reclaims_once(keeper, store, grant_id, escrow, stranger, chain):
    chain.mine(timestamp=escrow.getMilestone(grant_id, 0).deadline)
    keeper.run_once()
    nonce = stranger.nonce
    actions = store.actions()

    report = keeper.run_once()

    assert report.reclaimed == []
    assert stranger.nonce == nonce
    assert store.actions() == actions
    assert len(actions) == 1


def test_keeper_closes_completed_grant(keeper, store, grant_id, escrow, chain):
    chain.mine(timestamp=escrow.getMilestone(grant_id, 2).deadline)

    report = keeper.run_once()

    assert report.reclaimed == [(grant_id, 0), (grant_id, 1), (grant_id, 2)]
    assert escrow.getGrant(grant_id).status == GrantStatus.Completed
    assert store.open_grants() == [grant_id]

    keeper.run_once()

    assert store.open_grants() == []
    assert [action.detail["milestone_index"] for action in store.actions()] == [0, 1, 2]


# Relaying the inbox.


def test_keeper_relays_evidence_and_approvals(
    keeper, store, inbox, quorum_files, client, grant_id, escrow, usdc, ngo, attestors, stranger,
    chain, evidence_hash,
):
    evidence, approval_0, approval_1 = quorum_files
    balance = usdc.balanceOf(ngo)

    report = keeper.run_once()

    assert report.relayed_files == ["approval-0.json", "approval-1.json", "evidence.json"]
    assert report.settled_files == []
    assert report.quarantined_files == []
    milestone = client.grant(grant_id).milestones[0]
    assert milestone.status == MilestoneStatus.Released
    assert milestone.evidence_hash == evidence_hash
    assert usdc.balanceOf(ngo) == balance + MILESTONE_0

    approvals = by_address((attestors[0], approval_0), (attestors[1], approval_1))
    actions = store.actions()
    assert summaries(actions) == relay_records(grant_id, (ngo, evidence), *approvals)
    assert_events(
        chain, escrow, stranger, actions,
        relay_events(escrow, stranger, grant_id, (ngo, evidence), *approvals),
    )
    assert actions[0].block + 1 == actions[1].block == actions[2].block
    assert store.last_block() == chain.blocks.head.number
    assert store.quarantined() == []
    assert folders(inbox) == {
        "inbox": [],
        "processed": ["approval-0.json", "approval-1.json", "evidence.json"],
        "quarantine": [],
    }


def test_keeper_relays_nothing_twice(keeper, store, quorum_files, stranger, chain):
    keeper.run_once()
    nonce = stranger.nonce
    actions = store.actions()

    report = keeper.run_once()

    assert report == CycleReport(last_block=chain.blocks.head.number)
    assert stranger.nonce == nonce
    assert store.actions() == actions
    assert len(actions) == 3


def test_keeper_holds_approval_until_evidence(
    keeper, store, inbox, sign, client, grant_id, escrow, ngo, attestors, stranger, chain
):
    early = sign(MILESTONE_APPROVAL, attestors[0], "approval-0.json")
    nonce = stranger.nonce

    waiting = keeper.run_once()

    assert waiting.relayed_files == []
    assert waiting.quarantined_files == []
    assert stranger.nonce == nonce
    assert client.grant(grant_id).milestones[0].status == MilestoneStatus.AwaitingEvidence
    assert store.actions() == []
    assert store.quarantined() == []
    assert store.last_block() == chain.blocks.head.number
    assert folders(inbox) == {"inbox": ["approval-0.json"], "processed": [], "quarantine": []}

    evidence = sign(EVIDENCE_SUBMISSION, ngo, "evidence.json")
    late = sign(MILESTONE_APPROVAL, attestors[1], "approval-1.json")

    report = keeper.run_once()

    assert sorted(report.relayed_files) == ["approval-0.json", "approval-1.json", "evidence.json"]
    assert client.grant(grant_id).milestones[0].status == MilestoneStatus.Released
    approvals = by_address((attestors[0], early), (attestors[1], late))
    actions = store.actions()
    assert summaries(actions) == relay_records(grant_id, (ngo, evidence), *approvals)
    assert_events(
        chain, escrow, stranger, actions,
        relay_events(escrow, stranger, grant_id, (ngo, evidence), *approvals),
    )
    assert store.last_block() == chain.blocks.head.number
    assert store.quarantined() == []
    assert folders(inbox) == {
        "inbox": [],
        "processed": ["approval-0.json", "approval-1.json", "evidence.json"],
        "quarantine": [],
    }


def test_keeper_holds_evidence_until_funded(
    keeper, store, inbox, sign, client, resolve, grant_maker, escrow, ngo, stranger, chain
):
    unfunded, _ = client.create_grant(resolve(), grant_maker)
    evidence = sign(EVIDENCE_SUBMISSION, ngo, "evidence.json", grant=unfunded)

    waiting = keeper.run_once()

    assert waiting.relayed_files == []
    assert waiting.quarantined_files == []
    assert folders(inbox) == {"inbox": ["evidence.json"], "processed": [], "quarantine": []}
    assert store.actions() == []

    client.fund(unfunded, TOTAL, grant_maker)

    report = keeper.run_once()

    assert report.relayed_files == ["evidence.json"]
    assert client.grant(unfunded).milestones[0].status == MilestoneStatus.EvidenceSubmitted
    actions = store.actions()
    assert summaries(actions) == relay_records(unfunded, (ngo, evidence))
    assert_events(
        chain, escrow, stranger, actions, relay_events(escrow, stranger, unfunded, (ngo, evidence))
    )
    assert store.quarantined() == []
    assert folders(inbox) == {"inbox": [], "processed": ["evidence.json"], "quarantine": []}


# Files the keeper cannot use.


def test_keeper_quarantines_bad_files(
    keeper, store, inbox, sign, client, grant_id, escrow, ngo, attestors, stranger, chain
):
    broken_text = '{"format": "fundtrail-signature", "kind": '
    broken = inbox / "broken.json"
    broken.write_text(broken_text, encoding="utf-8")
    try:
        json.loads(broken_text)
    except json.JSONDecodeError as error:
        broken_reason = f"{broken}: not valid JSON ({error}). {RESIGN}"

    tampered = sign(MILESTONE_APPROVAL, attestors[0], "tampered.json").path
    data = json.loads(tampered.read_text())
    signature = bytes.fromhex(data["signature"][2:])
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    data["signature"] = "0x" + (r + (s - 1).to_bytes(32, "big") + bytes([v])).hex()
    tampered.write_text(json.dumps(data), encoding="utf-8")
    digest = bytes.fromhex(data["digest"][2:])
    recovered = Account._recover_hash(digest, vrs=(v, int.from_bytes(r, "big"), s - 1))
    tampered_reason = (
        f"bad signature: the signature was made by {recovered}, not by the stated signer "
        f"{attestors[0].address}"
    )

    # The quorum is reached without the tampered approval, so the cycle goes on past both files.
    evidence = sign(EVIDENCE_SUBMISSION, ngo, "evidence.json")
    approval_1 = sign(MILESTONE_APPROVAL, attestors[1], "approval-1.json")
    approval_2 = sign(MILESTONE_APPROVAL, attestors[2], "approval-2.json")

    report = keeper.run_once()

    assert report.quarantined_files == ["broken.json", "tampered.json"]
    assert sorted(report.relayed_files) == ["approval-1.json", "approval-2.json", "evidence.json"]
    assert store.quarantined() == [
        ("broken.json", broken_reason),
        ("tampered.json", tampered_reason),
    ]
    quarantine = inbox / "quarantine"
    assert (quarantine / "broken.json.reason.txt").read_text() == broken_reason + "\n"
    assert (quarantine / "tampered.json.reason.txt").read_text() == tampered_reason + "\n"
    assert (quarantine / "broken.json").read_text() == broken_text
    assert folders(inbox) == {
        "inbox": [],
        "processed": ["approval-1.json", "approval-2.json", "evidence.json"],
        "quarantine": [
            "broken.json",
            "broken.json.reason.txt",
            "tampered.json",
            "tampered.json.reason.txt",
        ],
    }
    assert client.grant(grant_id).milestones[0].status == MilestoneStatus.Released
    approvals = by_address((attestors[1], approval_1), (attestors[2], approval_2))
    actions = store.actions()
    assert summaries(actions) == relay_records(grant_id, (ngo, evidence), *approvals)
    assert_events(
        chain, escrow, stranger, actions,
        relay_events(escrow, stranger, grant_id, (ngo, evidence), *approvals),
    )
    assert store.last_block() == chain.blocks.head.number

    # The next cycle runs normally on the emptied inbox.
    nonce = stranger.nonce
    assert keeper.run_once() == CycleReport(last_block=chain.blocks.head.number)
    assert stranger.nonce == nonce


def test_keeper_quarantines_duplicate_copy(
    keeper, store, inbox, sign, client, grant_id, escrow, ngo, attestors, stranger, chain
):
    evidence = sign(EVIDENCE_SUBMISSION, ngo, "evidence.json")
    original = sign(MILESTONE_APPROVAL, attestors[0], "approval-a.json")
    copy = inbox / "approval-b.json"
    copy.write_bytes(original.path.read_bytes())
    second = sign(MILESTONE_APPROVAL, attestors[1], "approval-c.json")
    reason = f"duplicate: the same signature as {original.path}"

    report = keeper.run_once()

    assert sorted(report.relayed_files) == ["approval-a.json", "approval-c.json", "evidence.json"]
    assert report.quarantined_files == ["approval-b.json"]
    assert store.quarantined() == [("approval-b.json", reason)]
    assert (inbox / "quarantine" / "approval-b.json.reason.txt").read_text() == reason + "\n"
    assert folders(inbox) == {
        "inbox": [],
        "processed": ["approval-a.json", "approval-c.json", "evidence.json"],
        "quarantine": ["approval-b.json", "approval-b.json.reason.txt"],
    }
    # The signature in both files counted once.
    milestone = escrow.getMilestone(grant_id, 0)
    assert milestone.status == MilestoneStatus.Released
    assert milestone.approvalCount == 2
    approvals = by_address((attestors[0], original), (attestors[1], second))
    actions = store.actions()
    assert summaries(actions) == relay_records(grant_id, (ngo, evidence), *approvals)
    assert_events(
        chain, escrow, stranger, actions,
        relay_events(escrow, stranger, grant_id, (ngo, evidence), *approvals),
    )


def test_keeper_moves_late_copy_to_processed(keeper, store, inbox, quorum_files, stranger):
    keeper.run_once()
    copy = inbox / "approval-0-again.json"
    copy.write_bytes((inbox / "processed" / "approval-0.json").read_bytes())
    nonce = stranger.nonce
    actions = store.actions()

    report = keeper.run_once()

    assert report.settled_files == ["approval-0-again.json"]
    assert report.relayed_files == []
    assert report.quarantined_files == []
    assert stranger.nonce == nonce
    assert store.actions() == actions
    assert store.quarantined() == []
    processed = inbox / "processed"
    assert (processed / "approval-0-again.json.reason.txt").read_text() == USED + "\n"
    assert folders(inbox) == {
        "inbox": [],
        "processed": [
            "approval-0-again.json",
            "approval-0-again.json.reason.txt",
            "approval-0.json",
            "approval-1.json",
            "evidence.json",
        ],
        "quarantine": [],
    }


# Restarts: a second keeper on the same database.


def test_restart_records_relay_sent_before_crash(
    make_keeper, store, database, inbox, quorum_files, client, grant_id, escrow, ngo, attestors,
    stranger, chain,
):
    evidence, approval_0, approval_1 = quorum_files
    relay = relay_inbox_handler(client, stranger)

    def relay_then_crash(paths):
        relay(paths)
        raise RuntimeError("simulated crash after sending")

    first = make_keeper(store, relay_then_crash)
    start = chain.blocks.head.number

    with pytest.raises(RuntimeError, match="simulated crash after sending"):
        first.run_once()

    # The transactions went out, but the cycle ended before it moved a file or read an event.
    assert client.grant(grant_id).milestones[0].status == MilestoneStatus.Released
    assert store.actions() == []
    assert store.last_block() == start
    assert folders(inbox)["inbox"] == ["approval-0.json", "approval-1.json", "evidence.json"]
    store.close()
    nonce = stranger.nonce

    restarted_store = KeeperStore(database)
    try:
        restarted = make_keeper(restarted_store)
        report = restarted.run_once()
        again = restarted.run_once()
        actions = restarted_store.actions()
        last_block = restarted_store.last_block()
        quarantined = restarted_store.quarantined()
    finally:
        restarted_store.close()

    assert stranger.nonce == nonce
    assert report.relayed_files == []
    assert report.settled_files == ["approval-0.json", "approval-1.json", "evidence.json"]
    assert again == CycleReport(last_block=chain.blocks.head.number)
    approvals = by_address((attestors[0], approval_0), (attestors[1], approval_1))
    assert summaries(actions) == relay_records(grant_id, (ngo, evidence), *approvals)
    assert_events(
        chain, escrow, stranger, actions,
        relay_events(escrow, stranger, grant_id, (ngo, evidence), *approvals),
    )
    assert last_block == chain.blocks.head.number
    assert quarantined == []
    processed = inbox / "processed"
    for name in ("approval-0.json", "approval-1.json", "evidence.json"):
        assert (processed / f"{name}.reason.txt").read_text() == USED + "\n"
    assert folders(inbox)["quarantine"] == []
    assert folders(inbox)["inbox"] == []


def test_restart_records_reclaim_sent_before_crash(
    make_keeper, store, database, client, grant_id, escrow, stranger, chain, monkeypatch
):
    first = make_keeper(store)
    first.run_once()
    start = store.last_block()
    record_sync = store.record_sync
    calls = []

    def record_then_crash_on_second_call(*args):
        # The first sync of a cycle runs before the reclaims, the second one after them.
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("simulated crash before the sync")
        record_sync(*args)

    monkeypatch.setattr(store, "record_sync", record_then_crash_on_second_call)
    chain.mine(timestamp=escrow.getMilestone(grant_id, 1).deadline)

    with pytest.raises(RuntimeError, match="simulated crash before the sync"):
        first.run_once()

    assert [milestone.status for milestone in client.grant(grant_id).milestones] == [
        MilestoneStatus.Reclaimed,
        MilestoneStatus.Reclaimed,
        MilestoneStatus.AwaitingEvidence,
    ]
    assert store.actions() == []
    assert store.last_block() > start
    store.close()
    nonce = stranger.nonce

    restarted_store = KeeperStore(database)
    try:
        restarted = make_keeper(restarted_store)
        report = restarted.run_once()
        again = restarted.run_once()
        actions = restarted_store.actions()
        last_block = restarted_store.last_block()
    finally:
        restarted_store.close()

    assert stranger.nonce == nonce
    assert report.reclaimed == []
    assert again == CycleReport(last_block=chain.blocks.head.number)
    amounts = [1_000 * USDC_UNIT, 2_000 * USDC_UNIT]
    assert summaries(actions) == [
        ("reclaim", grant_id, {"milestone_index": index, "amount": amount})
        for index, amount in enumerate(amounts)
    ]
    assert_events(
        chain, escrow, stranger, actions,
        [
            escrow.MilestoneReclaimed(grant_id, index, stranger, amount)
            for index, amount in enumerate(amounts)
        ],
    )
    assert last_block == chain.blocks.head.number


# The service loop.


class RecordingEvent(threading.Event):
    """A stop event that records each pause `run` requests, and returns at once."""

    def __init__(self):
        super().__init__()
        self.pauses = []

    def wait(self, timeout=None):
        self.pauses.append(timeout)
        return super().wait(0)


def keeper_messages(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "fundtrail.keeper"]


def test_run_stops_when_stop_is_set(keeper, store, escrow, stranger, chain, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="fundtrail.keeper")
    stop = threading.Event()
    run_once = keeper.run_once
    cycles = []

    def run_once_then_request_stop():
        report = run_once()
        cycles.append(report)
        # Set from another thread while `run` sleeps in its 60 s poll.
        threading.Timer(0.2, stop.set).start()
        return report

    monkeypatch.setattr(keeper, "run_once", run_once_then_request_stop)
    started = time.monotonic()

    keeper.run(stop, poll_seconds=60, max_backoff=60)

    assert time.monotonic() - started < 30
    assert len(cycles) == 1
    assert keeper_messages(caplog) == [
        f"Keeper started for escrow {escrow.address} as {stranger.address}: inbox "
        f"{keeper.inbox}, database {store.path}, polling every 60 s",
        f"Keeper stopped at block {chain.blocks.head.number}",
    ]
    assert store.last_block() == chain.blocks.head.number


def test_run_backs_off_on_connection_errors(
    keeper, store, escrow, stranger, chain, caplog, monkeypatch
):
    caplog.set_level(logging.INFO, logger="fundtrail.keeper")
    stop = RecordingEvent()
    run_once = keeper.run_once
    calls = []

    def fail_three_times():
        calls.append(len(calls) + 1)
        if len(calls) <= 3:
            raise ConnectionError("connection refused")
        stop.set()
        return run_once()

    monkeypatch.setattr(keeper, "run_once", fail_three_times)

    keeper.run(stop, poll_seconds=1.0, max_backoff=3.0)

    assert calls == [1, 2, 3, 4]
    # Twice the poll interval after the first failure, doubling, capped at `max_backoff`.
    assert stop.pauses == [2.0, 3.0, 3.0, 1.0]
    assert keeper_messages(caplog) == [
        f"Keeper started for escrow {escrow.address} as {stranger.address}: inbox "
        f"{keeper.inbox}, database {store.path}, polling every 1.0 s",
        "Keeper cycle failed (attempt 1), retrying in 2.0 s: ConnectionError: connection refused",
        "Keeper cycle failed (attempt 2), retrying in 3.0 s: ConnectionError: connection refused",
        "Keeper cycle failed (attempt 3), retrying in 3.0 s: ConnectionError: connection refused",
        "Keeper recovered after 3 failed attempts",
        f"Keeper stopped at block {chain.blocks.head.number}",
    ]
    levels = [
        record.levelname for record in caplog.records if "cycle failed" in record.getMessage()
    ]
    assert levels == ["WARNING"] * 3
    assert store.last_block() == chain.blocks.head.number


def test_run_retries_wrapped_connection_reset(keeper, store, chain, caplog, monkeypatch):
    # ape raised this when anvil stopped in the middle of a call.
    reset = ConnectionResetError(104, "Connection reset by peer")
    caplog.set_level(logging.INFO, logger="fundtrail.keeper")
    stop = RecordingEvent()
    run_once = keeper.run_once
    calls = []

    def fail_once():
        calls.append(len(calls) + 1)
        if len(calls) == 1:
            raise VirtualMachineError(base_err=reset)
        stop.set()
        return run_once()

    monkeypatch.setattr(keeper, "run_once", fail_once)

    keeper.run(stop, poll_seconds=1.0, max_backoff=3.0)

    assert calls == [1, 2]
    assert stop.pauses == [2.0, 1.0]
    assert keeper_messages(caplog)[1:] == [
        "Keeper cycle failed (attempt 1), retrying in 2.0 s: VirtualMachineError: "
        "[Errno 104] Connection reset by peer",
        "Keeper recovered after 1 failed attempts",
        f"Keeper stopped at block {chain.blocks.head.number}",
    ]
    assert store.last_block() == chain.blocks.head.number


@pytest.mark.parametrize(
    "error",
    [
        ValueError("a bug, not an outage"),
        VirtualMachineError("Nonce '3' is too low"),
        ContractLogicError("MilestoneDeadlineNotReached"),
    ],
    ids=["bug", "virtual-machine-error", "revert"],
)
def test_run_raises_unexpected_error(keeper, store, monkeypatch, error):
    def fail():
        raise error

    monkeypatch.setattr(keeper, "run_once", fail)
    stop = RecordingEvent()

    with pytest.raises(type(error)) as raised:
        keeper.run(stop, poll_seconds=1.0, max_backoff=3.0)

    assert raised.value is error
    assert stop.pauses == []
    assert store.last_block() is None


def test_quarantine_keeps_earlier_file_of_same_name(keeper, store, inbox):
    for content in ("first", "second"):
        path = inbox / "approval.json"
        path.write_text(content, encoding="utf-8")
        keeper.quarantine(path, f"{content} reason")

    quarantine = inbox / "quarantine"
    assert (quarantine / "approval.json").read_text(encoding="utf-8") == "first"
    assert (quarantine / "approval.1.json").read_text(encoding="utf-8") == "second"
    assert (quarantine / "approval.json.reason.txt").read_text(encoding="utf-8") == "first reason\n"
    assert (quarantine / "approval.1.json.reason.txt").read_text(encoding="utf-8") == (
        "second reason\n"
    )
    assert store.quarantined() == [
        ("approval.json", "first reason"),
        ("approval.json", "second reason"),
    ]


def test_keeper_rejects_database_of_other_escrow(make_keeper, database, client, escrow):
    other = KeeperStore(database)
    other.bind(client_chain_id := escrow.provider.chain_id, "0x" + "00" * 19 + "01")
    other.close()
    store = KeeperStore(database)

    with pytest.raises(KeeperStateError) as raised:
        make_keeper(store)

    assert str(raised.value) == (
        f"The keeper database {database} belongs to escrow 0x{'00' * 19}01, but the keeper now "
        f"runs for escrow {escrow.address}. Pass another --database for this deployment, or "
        "delete the file to start its records afresh."
    )
    assert client_chain_id == client.escrow.provider.chain_id
    store.close()


def test_keeper_rejects_database_of_reset_chain(keeper, store, chain):
    head = chain.blocks.head.number
    store.record_sync(head + 100, [], [])

    with pytest.raises(KeeperStateError) as raised:
        keeper.run_once()

    assert str(raised.value) == (
        f"The keeper database {store.path} has read up to block {head + 100}, but the chain's "
        f"latest block is {head}, so the chain was reset. Delete the database, or pass another "
        "--database, to start its records afresh."
    )


def test_keeper_reports_block_when_nothing_is_new(keeper):
    first = keeper.run_once()
    second = keeper.run_once()

    assert first.last_block is not None
    assert second.last_block == first.last_block


def test_keeper_rejects_database_of_replaced_block(keeper, store, chain):
    head = chain.blocks.head.number
    stale_hash = "0x" + "ab" * 32
    store.record_sync(head, [], [], stale_hash)

    with pytest.raises(KeeperStateError) as raised:
        keeper.run_once()

    assert str(raised.value) == (
        f"The keeper database {store.path} read block {head} with hash {stale_hash}, but that "
        f"block now has hash {chain.blocks[head].hash.to_0x_hex()}, so the chain was reset or "
        "reorganised. Delete the database, or pass another --database, to start its records "
        "afresh."
    )


def test_keeper_stores_hash_of_last_block(keeper, store, chain):
    keeper.run_once()

    assert store.last_block() == chain.blocks.head.number
    assert store.last_block_hash() == chain.blocks.head.hash.to_0x_hex()
