"""Generate a realistic FundTrail history on anvil through real, signed transactions.

Grants run side by side, each as a lifecycle that yields the transactions of its next step.
Every block takes the next step of each running grant, plus a stream of project donations
and project upkeep, so blocks mix every kind of event, and runs of empty blocks separate
them. The mix, with its approximate share of grants:

- complete (70 %): funded by its grant maker and donors (some through the registry), every
  milestone released. Some evidence is submitted through a relayed signature, some is rejected
  by the attestors first and resubmitted, and some approvals are relayed signatures.
- reclaim (17 %): the first milestones released, the rest reclaimed after their deadlines,
  paying each funder its share.
- failed (10 %): never fully funded; after the funding deadline every funder takes a refund.
- credit (3 %, at most 4 grants): paid in a token that blocks the recipient just before the last release, so
  that payout becomes a credit, which the recipient withdraws once unblocked.

Transactions are signed with eth-account and sent raw. Each block is mined with `evm_mine`
once all of its transactions are in the pool, and every receipt is checked for success.
"""

import hashlib
import json
import logging
import math
import random
from collections.abc import Generator
from dataclasses import dataclass

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

from index_chain import BLOCK_TIME, ROOT, Rpc
from fundtrail.signing import (
    EVIDENCE_SUBMISSION,
    MILESTONE_APPROVAL,
    Domain,
    approval_message,
    build_typed_data,
    evidence_message,
)

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 1
"""Changes whenever the generated history changes, so that saved chains are regenerated."""

DAY = 86_400
HOUR = 3_600
ETH = "0x0000000000000000000000000000000000000000"
MAX_UINT = 2**256 - 1
MAX_FEE_PER_GAS = 100 * 10**9
EMPTY_GAPS = (0, 0, 0, 1, 1, 2, 3, 5, 8, 13, 21)
"""Empty blocks mined after each block with transactions, drawn uniformly."""

GAS = {
    "deploy": 8_000_000,
    "createGrant": 2_500_000,
    "approveWithSignatures": 1_000_000,
    "reclaim": 1_000_000,
}
"""Gas limits by call; every other call gets `DEFAULT_GAS`. Fixed limits above the real use
save an `eth_estimateGas` round trip per transaction."""
DEFAULT_GAS = 600_000


@dataclass
class Tx:
    """One transaction to send: who signs it, where it goes, and a label for error messages."""

    label: str
    sender: LocalAccount
    to: str | None
    data: bytes
    value: int = 0
    gas: int = DEFAULT_GAS


@dataclass(frozen=True)
class Wait:
    """A lifecycle step that resumes once the chain's time reaches `until`."""

    until: int


Step = list[Tx] | Wait
Lifecycle = Generator[Step, list[dict] | None, None]


def load_artifacts() -> dict[str, dict]:
    """Return the ABI and deployment bytecode of each compiled contract, from ape's build."""
    manifest = json.loads((ROOT / ".build/__local__.json").read_text())
    return {
        name: {"abi": contract["abi"], "bytecode": contract["deploymentBytecode"]["bytecode"]}
        for name, contract in manifest["contractTypes"].items()
    }


def _abi_type(abi_input: dict) -> str:
    kind = abi_input["type"]
    if not kind.startswith("tuple"):
        return kind
    inner = ",".join(_abi_type(component) for component in abi_input["components"])
    return f"({inner}){kind[len('tuple'):]}"


def function_table(abi: list[dict]) -> dict[str, tuple[bytes, list[str]]]:
    """Map each function name of `abi` to its selector and argument types.

    Encoding calls with eth-abi directly took under 0.1 ms a call here, against about 15 ms
    with web3's `Contract.encode_abi`, which validates the ABI on every call. None of the contracts used
    here overloads a function name.
    """
    table = {}
    for entry in abi:
        if entry["type"] == "function":
            types = [_abi_type(item) for item in entry["inputs"]]
            table[entry["name"]] = (keccak(text=f"{entry['name']}({','.join(types)})")[:4], types)
    return table


def artifacts_digest(artifacts: dict[str, dict]) -> str:
    """Return a hash of the bytecode and ABIs, which a saved chain must match."""
    return hashlib.sha256(json.dumps(artifacts, sort_keys=True).encode()).hexdigest()


def bench_account(name: str) -> LocalAccount:
    """Return the benchmark's account `name`; its key is derived from the name."""
    return Account.from_key(keccak(text=f"fundtrail index benchmark: {name}"))


class ChainWriter:
    """Signs, sends and mines transactions, and keeps the chain's head and time."""

    def __init__(self, rpc: Rpc, chain_id: int):
        self.rpc = rpc
        self.chain_id = chain_id
        self.nonces: dict[str, int] = {}
        self.transactions = 0
        self.block = 0
        self.time = 0
        self._refresh_head()

    def _refresh_head(self) -> None:
        head = self.rpc.call("eth_getBlockByNumber", "latest", False)
        self.block = int(head["number"], 16)
        self.time = int(head["timestamp"], 16)

    def _sign(self, tx: Tx) -> str:
        nonce = self.nonces.get(tx.sender.address, 0)
        self.nonces[tx.sender.address] = nonce + 1
        fields = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "value": tx.value,
            "gas": tx.gas,
            "maxFeePerGas": MAX_FEE_PER_GAS,
            "maxPriorityFeePerGas": 0,
            "data": tx.data,
        }
        if tx.to is not None:
            fields["to"] = tx.to
        return "0x" + tx.sender.sign_transaction(fields).raw_transaction.hex()

    def mine(self, txs: list[Tx]) -> list[dict]:
        """Send `txs`, mine them into one block and return their receipts, in order.

        Raises `RuntimeError` naming the transaction if any of them failed or was left out.
        """
        hashes = self.rpc.batch([("eth_sendRawTransaction", [self._sign(tx)]) for tx in txs])
        self.rpc.call("evm_mine")
        self._refresh_head()
        receipts = {r["transactionHash"]: r for r in self.rpc.call("eth_getBlockReceipts", hex(self.block))}
        ordered = []
        for tx, tx_hash in zip(txs, hashes, strict=True):
            receipt = receipts.get(tx_hash)
            if receipt is None:
                raise RuntimeError(f"{tx.label} ({tx_hash}) was not mined in block {self.block}")
            if receipt["status"] != "0x1":
                raise RuntimeError(f"{tx.label} ({tx_hash}) reverted in block {self.block}")
            ordered.append(receipt)
        self.transactions += len(txs)
        return ordered

    def mine_empty(self, count: int) -> None:
        if count > 0:
            self.rpc.call("anvil_mine", hex(count), hex(BLOCK_TIME))
            self._refresh_head()


class Scenario:
    """The benchmark's parties, contracts and the grant lifecycles that run between them."""

    def __init__(self, rpc: Rpc, *, seed: int, target_events: int, concurrency: int = 12):
        self.rpc = rpc
        self.rng = random.Random(seed)
        self.seed = seed
        self.target_events = target_events
        self.concurrency = concurrency
        self.chain_id = int(rpc.call("eth_chainId"), 16)
        self.writer = ChainWriter(rpc, self.chain_id)
        self.artifacts = load_artifacts()
        self._functions = {name: function_table(item["abi"]) for name, item in self.artifacts.items()}

        self.deployer = bench_account("deployer")
        self.relayer = bench_account("relayer")
        self.grant_makers = [bench_account(f"grant maker {i}") for i in range(4)]
        self.ngos = [bench_account(f"ngo {i}") for i in range(8)]
        self.credit_ngos = [bench_account(f"ngo with a blocked account {i}") for i in range(4)]
        self.attestors = [bench_account(f"attestor {i}") for i in range(8)]
        self.donors = [bench_account(f"donor {i}") for i in range(12)]

        self.events = 0
        self.kinds: dict[str, int] = {}
        self.verified_projects: list[int] = []
        self.suspended_projects: list[int] = []
        self._reverified: list[int] = []
        self.project_admins: dict[int, LocalAccount] = {}

    # Contract calls ------------------------------------------------------------------------

    def call(self, label: str, sender: LocalAccount, to: str, name: str, function: str, *args,
             value: int = 0) -> Tx:
        selector, types = self._functions[name][function]
        data = selector + abi_encode(types, list(args))
        return Tx(label, sender, to, data, value, GAS.get(function, DEFAULT_GAS))

    def escrow_call(self, sender, function, *args, value=0) -> Tx:
        return self.call(f"escrow.{function}{args[:2]}", sender, self.escrow, "MilestoneEscrow",
                         function, *args, value=value)

    def registry_call(self, sender, function, *args, value=0) -> Tx:
        return self.call(f"registry.{function}{args[:2]}", sender, self.registry, "DonationRegistry",
                         function, *args, value=value)

    def _deploy(self, name: str, constructor_types: list[str], args: list) -> tuple[str, int, str]:
        bytecode = bytes.fromhex(self.artifacts[name]["bytecode"][2:])
        data = bytecode + abi_encode(constructor_types, args)
        (receipt,) = self.writer.mine([Tx(f"deploy {name}", self.deployer, None, data, 0, GAS["deploy"])])
        return to_checksum_address(receipt["contractAddress"]), self.writer.block, receipt["transactionHash"]

    def _count_events(self, receipts: list[dict]) -> None:
        ours = {self.escrow.lower(), self.registry.lower()}
        self.events += sum(1 for r in receipts for log in r["logs"] if log["address"].lower() in ours)

    def _mine(self, txs: list[Tx]) -> list[dict]:
        receipts = self.writer.mine(txs)
        self._count_events(receipts)
        return receipts

    # Set-up ----------------------------------------------------------------------------------

    def setup(self) -> None:
        everyone = [self.deployer, self.relayer, *self.grant_makers, *self.ngos, *self.credit_ngos,
                    *self.attestors, *self.donors]
        self.rpc.batch([("anvil_setBalance", [a.address, hex(10**27)]) for a in everyone])
        self.rpc.call("anvil_setBlockTimestampInterval", BLOCK_TIME)

        self.escrow, self.escrow_block, self.escrow_tx = self._deploy("MilestoneEscrow", [], [])
        self.registry, self.registry_block, self.registry_tx = self._deploy(
            "DonationRegistry", ["address", "address"], [self.escrow, self.deployer.address]
        )
        usdc, _, _ = self._deploy("MockERC20", ["string", "string", "uint8"], ["USD Coin", "USDC", 6])
        dai, _, _ = self._deploy("MockERC20", ["string", "string", "uint8"], ["Dai Stablecoin", "DAI", 18])
        rusd, _, _ = self._deploy("BlocklistToken", [], [])
        self.tokens = {"USDC": (usdc, 6), "DAI": (dai, 18), "RUSD": (rusd, 6), "ETH": (ETH, 18)}
        self.domain = Domain("FundTrail MilestoneEscrow", "1", self.chain_id, self.escrow)

        payers = [*self.grant_makers, *self.donors]
        txs = []
        for symbol in ("USDC", "DAI", "RUSD"):
            address, decimals = self.tokens[symbol]
            for payer in payers:
                txs.append(self.call(f"mint {symbol}", self.deployer, address, "MockERC20", "mint",
                                     payer.address, 10**12 * 10**decimals))
                for spender in (self.escrow, self.registry):
                    txs.append(self.call(f"approve {symbol}", payer, address, "MockERC20", "approve",
                                         spender, MAX_UINT))
        self._mine(txs)

        # Every NGO registers a project, which the registrar verifies; two donors register
        # projects that stay pending.
        admins = [*self.ngos, *self.donors[:2]]
        receipts = self._mine([
            self.registry_call(admin, "registerProject", admin.address, admin.address,
                               self._random_hash(), f"ipfs://bafkreiproject{index:04d}")
            for index, admin in enumerate(admins)
        ])
        project_ids = [int(r["logs"][0]["topics"][1], 16) for r in receipts]
        self.project_admins = dict(zip(project_ids, admins, strict=True))
        verified = project_ids[: len(self.ngos)]
        self._mine([self.registry_call(self.deployer, "verifyProject", p) for p in verified])
        self.verified_projects = list(verified)

    # The history -------------------------------------------------------------------------------

    def run(self) -> None:
        """Run grant lifecycles until `target_events` events are on chain, and let them finish."""
        running: list[tuple[Lifecycle, list[Tx]]] = []
        waiting: list[tuple[int, Lifecycle]] = []
        while True:
            while len(running) < self.concurrency and self.events < self.target_events:
                lifecycle = self._grant(self._pick_kind())
                running.append((lifecycle, next(lifecycle)))

            still_waiting = []
            for until, lifecycle in waiting:
                if until <= self.writer.time + BLOCK_TIME:
                    step = self._advance(lifecycle, None)
                    if isinstance(step, Wait):
                        still_waiting.append((step.until, lifecycle))
                    elif step is not None:
                        running.append((lifecycle, step))
                else:
                    still_waiting.append((until, lifecycle))
            waiting = still_waiting

            if not running:
                if not waiting:
                    return
                gap = min(until for until, _ in waiting) - self.writer.time
                self.writer.mine_empty(max(1, math.ceil(gap / BLOCK_TIME)))
                continue

            block_txs = [tx for _, txs in running for tx in txs] + self._side_traffic()
            receipts = self._mine(block_txs)

            position = 0
            next_running = []
            for lifecycle, txs in running:
                mine = receipts[position: position + len(txs)]
                position += len(txs)
                step = self._advance(lifecycle, mine)
                if isinstance(step, Wait):
                    waiting.append((step.until, lifecycle))
                elif step is not None:
                    next_running.append((lifecycle, step))
            running = next_running
            self.writer.mine_empty(self.rng.choice(EMPTY_GAPS))
            if self.writer.block % 200 < 1:
                logger.info("block %s: %s events, %s transactions", self.writer.block, self.events,
                            self.writer.transactions)

    @staticmethod
    def _advance(lifecycle: Lifecycle, receipts: list[dict] | None) -> Step | None:
        try:
            return lifecycle.send(receipts)
        except StopIteration:
            return None

    def _pick_kind(self) -> str:
        kind = self.rng.choices(["complete", "reclaim", "failed", "credit"], weights=[70, 17, 10, 3])[0]
        if kind == "credit" and self.kinds.get("credit", 0) >= len(self.credit_ngos):
            kind = "complete"
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        return kind

    def _random_hash(self) -> bytes:
        return self.rng.randbytes(32)

    def _side_traffic(self) -> list[Tx]:
        """Return this block's donations to projects and project upkeep."""
        rng = self.rng
        txs = []

        # A project verified again in the previous block can take donations from this one on.
        self.verified_projects += self._reverified
        self._reverified = []
        # Suspensions and re-verifications first, so that no donation in the same block goes
        # to a project that is suspended by then.
        if rng.random() < 0.01 and len(self.verified_projects) > 2:
            project = rng.choice(self.verified_projects)
            self.verified_projects.remove(project)
            self.suspended_projects.append(project)
            txs.append(self.registry_call(self.deployer, "suspendProject", project))
        elif rng.random() < 0.01 and self.suspended_projects:
            project = self.suspended_projects.pop(0)
            self._reverified.append(project)
            txs.append(self.registry_call(self.deployer, "verifyProject", project))

        for _ in range(rng.choice((0, 0, 1, 1, 1, 2, 3))):
            donor = rng.choice(self.donors)
            project = rng.choice(self.verified_projects)
            symbol = rng.choice(("USDC", "USDC", "USDC", "DAI", "ETH"))
            token, decimals = self.tokens[symbol]
            amount = rng.randint(1, 2_000) * 10**decimals // 10
            txs.append(self.registry_call(donor, "donate", project, token, amount, self._random_hash(),
                                          value=amount if token == ETH else 0))

        if rng.random() < 0.02:
            project = rng.choice(sorted(self.project_admins))
            txs.append(self.registry_call(self.project_admins[project], "setProjectMetadata", project,
                                          self._random_hash(), f"ipfs://bafkreiupdate{rng.getrandbits(64):016x}"))
        if rng.random() < 0.01:
            attestor = rng.choice(self.attestors)
            txs.append(self.escrow_call(attestor, "revokeSignature", self._random_hash()))
        return txs

    # Grants ---------------------------------------------------------------------------------

    def _sign(self, account: LocalAccount, typed_data: dict) -> bytes:
        return account.sign_message(encode_typed_data(full_message=typed_data)).signature

    def _grant(self, kind: str) -> Lifecycle:
        """Yield the steps of one grant of `kind`; each step's receipts come back through send."""
        rng = self.rng
        maker = rng.choice(self.grant_makers)
        if kind == "credit":
            symbol = "RUSD"
            recipient = self.credit_ngos[self.kinds["credit"] - 1]
        else:
            symbol = rng.choices(("USDC", "DAI", "ETH"), weights=(70, 15, 15))[0]
            recipient = rng.choice(self.ngos)
        token, decimals = self.tokens[symbol]
        attestor_count, threshold = rng.choice(((3, 2), (3, 2), (3, 2), (5, 3), (1, 1)))
        attestors = rng.sample(self.attestors, attestor_count)
        count = rng.randint(2, 12)
        released = count if kind in ("complete", "credit") else rng.randint(1, count - 1)

        # Deadlines are far enough ahead for every step to happen before them, except the ones
        # this kind is meant to miss.
        now = self.writer.time
        funding_deadline = now + (HOUR if kind in ("reclaim", "failed") else 7 * DAY)
        deadlines = [now + 30 * DAY * (index + 1) for index in range(count)]
        if kind == "reclaim":
            deadlines = [now + 3 * HOUR] * released + [now + 5 * HOUR + 600 * i for i in range(count - released)]
        unit = 10**decimals
        amounts = [rng.randint(5, 250) * 100 * unit if symbol != "ETH" else rng.randint(1, 40) * unit // 4
                   for _ in range(count)]
        terms = (
            recipient.address, token, funding_deadline, threshold, [a.address for a in attestors],
            list(zip(amounts, deadlines, strict=True)), self._random_hash(),
            f"ipfs://bafkreiterms{rng.getrandbits(64):016x}",
        )
        receipts = yield [self.escrow_call(maker, "createGrant", terms)]
        grant_id = int(receipts[0]["logs"][0]["topics"][1], 16)

        # Funding: the grant maker and up to three donors, some of them through the registry.
        total = sum(amounts)
        goal = total if kind != "failed" else total * rng.randint(30, 90) // 100
        funders = [maker, *rng.sample(self.donors, rng.randint(0, 3))]
        weights = [rng.randint(1, 100) for _ in funders]
        shares = [goal * weight // sum(weights) for weight in weights]
        shares[0] += goal - sum(shares)
        txs = []
        for funder, share in zip(funders, shares, strict=True):
            value = share if token == ETH else 0
            if funder is maker or rng.random() < 0.3:
                txs.append(self.escrow_call(funder, "fund", grant_id, share, value=value))
            else:
                txs.append(self.registry_call(funder, "donateToGrant", grant_id, share, self._random_hash(),
                                              value=value))
        yield txs

        if kind == "failed":
            yield Wait(funding_deadline)
            yield [self.escrow_call(funder, "refund", grant_id, funder.address) for funder in funders]
            return

        for index in range(released):
            yield from self._milestone(kind, grant_id, index, maker, recipient, attestors, threshold,
                                       last=index == released - 1)

        if kind == "credit":
            yield [self.call("unblock recipient", maker, token, "BlocklistToken", "setBlocked",
                             recipient.address, False)]
            yield [self.escrow_call(recipient, "withdraw", token, recipient.address)]
        if kind == "reclaim":
            yield Wait(max(deadlines))
            yield [self.escrow_call(maker, "reclaim", grant_id, index) for index in range(released, count)]

    def _milestone(self, kind, grant_id, index, maker, recipient, attestors, threshold, *, last: bool):
        """Yield the steps that take milestone `index` from evidence to release."""
        rng = self.rng
        expiry = self.writer.time + 30 * DAY
        evidence = self._random_hash()
        uri = f"ipfs://bafkreievidence{rng.getrandbits(64):016x}"
        if rng.random() < 0.1:
            message = evidence_message(recipient.address, grant_id, index, evidence, uri, expiry)
            signature = self._sign(recipient, build_typed_data(EVIDENCE_SUBMISSION, self.domain, message))
            yield [self.escrow_call(self.relayer, "submitEvidenceWithSignature", grant_id, index, evidence, uri,
                                    expiry, signature)]
        else:
            yield [self.escrow_call(recipient, "submitEvidence", grant_id, index, evidence, uri)]

        # Rejection needs one vote more than the attestors who could still approve without it.
        if rng.random() < 0.08:
            rejectors = rng.sample(attestors, len(attestors) - threshold + 1)
            yield [self.escrow_call(a, "reject", grant_id, index, evidence, self._random_hash()) for a in rejectors]
            evidence = self._random_hash()
            yield [self.escrow_call(recipient, "submitEvidence", grant_id, index, evidence, uri + "-v2")]

        if kind == "credit" and last:
            yield [self.call("block recipient", maker, self.tokens["RUSD"][0], "BlocklistToken", "setBlocked",
                             recipient.address, True)]

        voters = rng.sample(attestors, threshold)
        if rng.random() < 0.25:
            approvals = []
            for voter in voters:
                message = approval_message(voter.address, grant_id, index, evidence, expiry)
                signature = self._sign(voter, build_typed_data(MILESTONE_APPROVAL, self.domain, message))
                approvals.append((voter.address, expiry, signature))
            yield [self.escrow_call(self.relayer, "approveWithSignatures", grant_id, index, evidence, approvals)]
        elif rng.random() < 0.5:
            yield [self.escrow_call(voter, "approve", grant_id, index, evidence) for voter in voters]
        else:
            # Attestors who vote at different times, the last one releasing the payment.
            for voter in voters:
                yield [self.escrow_call(voter, "approve", grant_id, index, evidence)]

    def summary(self) -> dict:
        """Return what a saved chain records about itself, for reruns and the report."""
        # Counted from the chain: the receipts above miss the registry's ownership event from
        # its constructor.
        events = len(self.rpc.call("eth_getLogs", {
            "address": [self.escrow, self.registry],
            "fromBlock": hex(self.escrow_block),
            "toBlock": hex(self.writer.block),
        }))
        return {
            "generator_version": GENERATOR_VERSION,
            "seed": self.seed,
            "target_events": self.target_events,
            "artifacts": artifacts_digest(self.artifacts),
            "chain_id": self.chain_id,
            "escrow": {"address": self.escrow, "block": self.escrow_block, "tx_hash": self.escrow_tx},
            "registry": {"address": self.registry, "block": self.registry_block, "tx_hash": self.registry_tx},
            "head": self.writer.block,
            "events": events,
            "transactions": self.writer.transactions,
            "grants": dict(self.kinds),
        }
