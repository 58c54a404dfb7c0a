"""Smoke test of MilestoneEscrow on ganache: one full grant lifecycle through web3.py.

ape 0.8 has no ganache provider plugin, so this test starts its own ganache process and talks
to it with web3.py only, using the contracts that ape compiled. ape's test runner still
connects its own in-process chain, which this test does not use.
"""

import socket
import subprocess
import time

import pytest
from eth_utils import event_abi_to_log_topic
from web3 import HTTPProvider, Web3

pytestmark = pytest.mark.ganache

STARTUP_TIMEOUT_SECONDS = 60
SHUTDOWN_TIMEOUT_SECONDS = 10
RPC_TIMEOUT_SECONDS = 10
DAY = 24 * 60 * 60
USDC_UNIT = 10**6

# IMilestoneEscrow enums, by value.
GRANT_COMPLETED = 3
MILESTONE_RELEASED = 2
MILESTONE_RECLAIMED = 3
PAYOUT_RELEASE = 0
PAYOUT_RECLAIM = 1

TERMS_HASH = b"\x11" * 32
TERMS_URI = "ipfs://bafy-terms"
EVIDENCE_HASH = b"\xe1" * 32
EVIDENCE_URI = "ipfs://bafy-evidence"


def find_free_port():
    """Return a TCP port on 127.0.0.1 that is free now. Another process could take it before ganache does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_rpc(web3, process, log_path):
    """Poll ganache with eth_chainId until it responds, and fail the test if it exits or times out."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"ganache exited with code {process.returncode} at startup:\n{log_path.read_text()}")
        try:
            web3.eth.chain_id
        except OSError:
            time.sleep(0.2)
        else:
            return
    pytest.fail(f"ganache did not respond within {STARTUP_TIMEOUT_SECONDS} s:\n{log_path.read_text()}")


@pytest.fixture(scope="module")
def web3(project, tmp_path_factory):
    """web3 connected to a fresh ganache process, which is stopped when the module ends."""
    ganache = project.path / "node_modules" / ".bin" / "ganache"
    if not ganache.exists():
        pytest.skip(f"{ganache} is missing; run `npm ci` (or `make setup`) to install ganache")

    port = find_free_port()
    log_path = tmp_path_factory.mktemp("ganache") / "ganache.log"
    command = [
        str(ganache),
        "--server.host=127.0.0.1",
        f"--server.port={port}",
        "--chain.hardfork=shanghai",
        "--wallet.deterministic=true",
        "--logging.quiet=true",
    ]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        connection = Web3(HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": RPC_TIMEOUT_SECONDS}))
        wait_for_rpc(connection, process, log_path)
        yield connection
    finally:
        process.terminate()
        try:
            process.wait(timeout=SHUTDOWN_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=SHUTDOWN_TIMEOUT_SECONDS)


def deploy(web3, contract_type, sender, *constructor_args):
    """Deploy an ape-compiled contract through web3 and return the web3 contract."""
    abi = [entry.model_dump(mode="json", by_alias=True, exclude_none=True) for entry in contract_type.abi]
    factory = web3.eth.contract(abi=abi, bytecode=contract_type.deployment_bytecode.bytecode)
    receipt = send(web3, factory.constructor(*constructor_args), sender)
    return web3.eth.contract(address=receipt.contractAddress, abi=abi)


def send(web3, function_call, sender):
    """Send a transaction from an unlocked ganache account and return its successful receipt."""
    tx_hash = function_call.transact({"from": sender})
    receipt = web3.eth.wait_for_transaction_receipt(tx_hash, timeout=RPC_TIMEOUT_SECONDS)
    assert receipt.status == 1
    return receipt


def decode_events(receipt, contracts):
    """Decode every log of `receipt` as (contract name, event name, arguments).

    `contracts` maps a name to a web3 contract. A log from any other address, or with an
    unknown topic, fails the test, so the list is the transaction's whole event list.
    """
    decoders = {}
    for name, contract in contracts.items():
        for event_abi in contract.abi:
            if event_abi["type"] == "event":
                topic = event_abi_to_log_topic(event_abi)
                decoders[(contract.address, topic)] = (name, contract.events[event_abi["name"]]())

    events = []
    for log in receipt.logs:
        key = (log.address, bytes(log.topics[0]))
        assert key in decoders, f"log {log.topics[0].hex()} of {log.address} is no event of {list(contracts)}"
        name, event = decoders[key]
        decoded = event.process_log(log)
        events.append((name, decoded.event, dict(decoded.args)))
    return events


def test_grant_lifecycle_on_ganache(web3, project):
    accounts = web3.eth.accounts
    deployer, grant_maker, ngo, stranger = accounts[0], accounts[1], accounts[2], accounts[8]
    attestors = accounts[3:6]

    escrow = deploy(web3, project.MilestoneEscrow.contract_type, deployer)
    usdc = deploy(web3, project.MockERC20.contract_type, deployer, "Test USD Coin", "USDC", 6)
    contracts = {"escrow": escrow, "usdc": usdc}
    send(web3, usdc.functions.mint(grant_maker, 10_000 * USDC_UNIT), deployer)

    # Create and fully fund a grant of two milestones, 1,000 and 2,000 USDC.
    now = web3.eth.get_block("latest").timestamp
    funding_deadline = now + 7 * DAY
    milestones = [(1_000 * USDC_UNIT, now + 30 * DAY), (2_000 * USDC_UNIT, now + 60 * DAY)]
    terms = (ngo, usdc.address, funding_deadline, 2, attestors, milestones, TERMS_HASH, TERMS_URI)
    total = 3_000 * USDC_UNIT
    send(web3, usdc.functions.approve(escrow.address, total), grant_maker)

    receipt = send(web3, escrow.functions.createAndFundGrant(terms, total), grant_maker)

    assert decode_events(receipt, contracts) == [
        (
            "escrow",
            "GrantCreated",
            {
                "grantId": 1,
                "creator": grant_maker,
                "recipient": ngo,
                "terms": {
                    "recipient": ngo,
                    "token": usdc.address,
                    "fundingDeadline": funding_deadline,
                    "threshold": 2,
                    "attestors": list(attestors),
                    "milestones": [{"amount": amount, "deadline": deadline} for amount, deadline in milestones],
                    "termsHash": TERMS_HASH,
                    "termsUri": TERMS_URI,
                },
            },
        ),
        (
            "escrow",
            "GrantFunded",
            {"grantId": 1, "funder": grant_maker, "payer": grant_maker, "amount": total, "totalFunded": total},
        ),
        ("usdc", "Transfer", {"from": grant_maker, "to": escrow.address, "value": total}),
    ]

    # The NGO submits evidence for milestone 0, and the second approval releases it.
    receipt = send(web3, escrow.functions.submitEvidence(1, 0, EVIDENCE_HASH, EVIDENCE_URI), ngo)
    assert decode_events(receipt, contracts) == [
        (
            "escrow",
            "EvidenceSubmitted",
            {
                "grantId": 1,
                "milestoneIndex": 0,
                "submitter": ngo,
                "evidenceHash": EVIDENCE_HASH,
                "evidenceUri": EVIDENCE_URI,
            },
        )
    ]

    receipt = send(web3, escrow.functions.approve(1, 0, EVIDENCE_HASH), attestors[0])
    assert decode_events(receipt, contracts) == [
        (
            "escrow",
            "MilestoneApproved",
            {
                "grantId": 1,
                "milestoneIndex": 0,
                "attestor": attestors[0],
                "evidenceHash": EVIDENCE_HASH,
                "approvalCount": 1,
            },
        )
    ]

    receipt = send(web3, escrow.functions.approve(1, 0, EVIDENCE_HASH), attestors[1])
    assert decode_events(receipt, contracts) == [
        (
            "escrow",
            "MilestoneApproved",
            {
                "grantId": 1,
                "milestoneIndex": 0,
                "attestor": attestors[1],
                "evidenceHash": EVIDENCE_HASH,
                "approvalCount": 2,
            },
        ),
        (
            "escrow",
            "MilestoneReleased",
            {
                "grantId": 1,
                "milestoneIndex": 0,
                "recipient": ngo,
                "evidenceHash": EVIDENCE_HASH,
                "amount": 1_000 * USDC_UNIT,
            },
        ),
        ("usdc", "Transfer", {"from": escrow.address, "to": ngo, "value": 1_000 * USDC_UNIT}),
        (
            "escrow",
            "Payout",
            {
                "grantId": 1,
                "account": ngo,
                "token": usdc.address,
                "kind": PAYOUT_RELEASE,
                "milestoneIndex": 0,
                "amount": 1_000 * USDC_UNIT,
                "credited": False,
            },
        ),
    ]

    # Milestone 1 gets no evidence: once its deadline passes, anyone reclaims it for the funder.
    second_deadline = milestones[1][1]
    web3.provider.make_request("evm_increaseTime", [second_deadline - now + 1])
    web3.provider.make_request("evm_mine", [])
    assert web3.eth.get_block("latest").timestamp >= second_deadline

    receipt = send(web3, escrow.functions.reclaim(1, 1), stranger)
    assert decode_events(receipt, contracts) == [
        (
            "escrow",
            "MilestoneReclaimed",
            {"grantId": 1, "milestoneIndex": 1, "caller": stranger, "amount": 2_000 * USDC_UNIT},
        ),
        ("usdc", "Transfer", {"from": escrow.address, "to": grant_maker, "value": 2_000 * USDC_UNIT}),
        (
            "escrow",
            "Payout",
            {
                "grantId": 1,
                "account": grant_maker,
                "token": usdc.address,
                "kind": PAYOUT_RECLAIM,
                "milestoneIndex": 1,
                "amount": 2_000 * USDC_UNIT,
                "credited": False,
            },
        ),
    ]

    # Final balances: the NGO got milestone 0, the grant maker got milestone 1 back.
    assert usdc.functions.balanceOf(ngo).call() == 1_000 * USDC_UNIT
    assert usdc.functions.balanceOf(grant_maker).call() == 9_000 * USDC_UNIT
    assert usdc.functions.balanceOf(escrow.address).call() == 0
    assert escrow.functions.totalHeld(usdc.address).call() == 0
    assert escrow.functions.totalCredits(usdc.address).call() == 0

    grant = escrow.functions.getGrant(1).call()
    # GrantView: recipient, token, fundingDeadline, threshold, attestorCount, milestoneCount,
    # funderCount, status, total, funded, released, reclaimed, held.
    assert grant == (
        ngo,
        usdc.address,
        funding_deadline,
        2,
        3,
        2,
        1,
        GRANT_COMPLETED,
        total,
        total,
        1_000 * USDC_UNIT,
        2_000 * USDC_UNIT,
        0,
    )
    assert escrow.functions.getMilestone(1, 0).call()[2] == MILESTONE_RELEASED
    assert escrow.functions.getMilestone(1, 1).call()[2] == MILESTONE_RECLAIMED
