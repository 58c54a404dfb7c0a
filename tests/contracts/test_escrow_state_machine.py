"""Stateful property test of MilestoneEscrow and DonationRegistry against a shadow model.

Hypothesis drives random sequences of grant, milestone, signature, credit and donation calls,
including time jumps that land exactly on deadlines, from honest and adversarial parties. Every
call is first run on the shadow model in escrow_model.py: a call the model rejects must revert
on chain with exactly the model's custom error and arguments, and a call the model accepts must
succeed. After every step the invariants below compare every contract view and every token
balance with the model, and check the books, the status order and the release history.

The chain is a real anvil process, not ape's in-process chain. ape's chain runs py-evm, an EVM
interpreter written in Python, while anvil mined a transaction in about 2.5 ms when sent with
anvil_rpc.py on a 2-core machine. anvil also takes all the views of one check in one batch
request, and evm_snapshot/evm_revert reset it between examples. The deep profile sends tens of
thousands of transactions, which only anvil makes practical here.

Profiles (FUNDTRAIL_FUZZ_PROFILE): `quick` (the default, run by `make test`) and `deep` (run by
`make fuzz`). Both replay the failing examples saved in tests/contracts/state-machine-examples/
first; only the deep profile adds new ones there.
"""

import copy
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from web3 import HTTPProvider, Web3
from anvil_rpc import AnvilChain, Codec, decode_error
from escrow_model import (
    ETH,
    MAX_UINT256,
    ZERO_ADDRESS,
    ZERO_HASH,
    GrantStatus,
    MilestoneStatus,
    Model,
    Project,
    ProjectStatus,
    Revert,
    TokenRules,
)
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase, ReadOnlyDatabase
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from fundtrail.contracts import ESCROW, REGISTRY
from fundtrail.deployments import ContractRecord
from fundtrail.deployments import Deployment as LedgerDeployment
from fundtrail.ledger import open_ledger
from fundtrail.ledger.audit import audit
from fundtrail.ledger.views import ChainViews
from fundtrail.signing import (
    EVIDENCE_SUBMISSION,
    MILESTONE_APPROVAL,
    Domain,
    approval_message,
    build_typed_data,
    evidence_message,
    typed_data_digest,
)

pytestmark = pytest.mark.anvil

DAY = 24 * 60 * 60
GENESIS_TIMESTAMP = 1_800_000_000
CHAIN_ID = 31337
# NOTE: The anvil port is fixed, so two runs on one machine collide. Set
# FUNDTRAIL_FUZZ_ANVIL_PORT when another process already listens on 8710.
ANVIL_PORT = int(os.environ.get("FUNDTRAIL_FUZZ_ANVIL_PORT", "8710"))

EXAMPLES_FOLDER = Path(__file__).parent / "state-machine-examples"
QUICK_SEED = 20261204
MAX_GRANTS = 6

# How often each call succeeded or reverted with each error, over the whole run.
OUTCOMES = Counter()

settings.register_profile(
    "quick",
    max_examples=30,
    stateful_step_count=40,
    deadline=None,
    database=ReadOnlyDatabase(DirectoryBasedExampleDatabase(EXAMPLES_FOLDER)),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "deep",
    max_examples=500,
    stateful_step_count=50,
    deadline=None,
    database=DirectoryBasedExampleDatabase(EXAMPLES_FOLDER),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)

EVIDENCE = [b"\xe1" * 32, b"\xe2" * 32, b"\xe3" * 32]
EVIDENCE_URI = "ipfs://bafy-evidence"
TERMS_HASH = b"\x11" * 32
REASON = b"\x5e" * 32
DONOR_REF = b"\xd0" * 32
FAR_EXPIRY = GENESIS_TIMESTAMP + 3650 * DAY
TOKEN_SUPPLY = 10**30
ETH_SUPPLY = 10**24

EOA_NAMES = (
    "deployer",
    "grant_maker",
    "donor_1",
    "donor_2",
    "ngo",
    "blocked_ngo",
    "attestor_1",
    "attestor_2",
    "attestor_3",
    "stranger",
    "registrar",
    "project_admin",
    "payout_wallet",
)
PAYERS = ("grant_maker", "donor_1", "donor_2")
RECIPIENTS = ("ngo", "blocked_ngo", "rejecter", "reentrant")
TOKENS = ("eth", "usdc", "rusd", "fee")


def _key(name):
    return keccak(text=f"fundtrail state machine {name}")


@dataclass
class Deployment:
    """The anvil chain after setup, and everything the machine needs to drive it."""

    chain: AnvilChain
    codecs: dict
    addresses: dict
    keys: dict
    base_snapshot: str
    base_timestamp: int
    base_balances: dict
    base_projects: dict
    domain: Domain
    error_codecs: list = field(default_factory=list)
    ledger_abis: dict = field(default_factory=dict)
    """The escrow's and the registry's ABIs by contract name, for the ledger index."""

    def address(self, name):
        return self.addresses[name]

    def token(self, name):
        return ETH if name == "eth" else self.addresses[name]


def _contract_type(project, name):
    """Return the ABI (as JSON dicts) and the deployment bytecode of a compiled contract."""
    contract_type = getattr(project, name).contract_type
    abi = [item.model_dump(mode="json", by_alias=True) for item in contract_type.abi]
    return abi, bytes.fromhex(contract_type.deployment_bytecode.bytecode.removeprefix("0x"))


def _setup_transact(deployment, sender, contract, function, *args, value=0):
    codec = deployment.codecs[contract]
    receipt = deployment.chain.send(
        deployment.addresses[sender], deployment.addresses[contract], codec.encode(function, *args), value
    )
    assert receipt.status == 1, f"setup call {contract}.{function} failed: {receipt.revert_data.hex()}"


@pytest.fixture(scope="module")
def deployment(project, tmp_path_factory):
    """Start anvil, deploy the contracts and tokens, fund every party and take the base snapshot."""
    log_path = tmp_path_factory.mktemp("anvil") / "anvil.log"
    chain = AnvilChain(ANVIL_PORT, log_path, GENESIS_TIMESTAMP)
    try:
        chain.start()
    except FileNotFoundError as error:
        pytest.skip(str(error))

    try:
        keys = {name: _key(name) for name in EOA_NAMES}
        addresses = {name: Account.from_key(key).address for name, key in keys.items()}
        for address in addresses.values():
            chain.set_balance(address, ETH_SUPPLY)

        artifacts = {
            name: _contract_type(project, name)
            for name in (
                "MilestoneEscrow",
                "DonationRegistry",
                "MockERC20",
                "BlocklistToken",
                "FeeOnTransferToken",
                "EthRejecter",
                "ReentrantRecipient",
            )
        }
        codecs = {
            "escrow": Codec(artifacts["MilestoneEscrow"][0]),
            "registry": Codec(artifacts["DonationRegistry"][0]),
            "usdc": Codec(artifacts["MockERC20"][0]),
            "rusd": Codec(artifacts["BlocklistToken"][0]),
            "fee": Codec(artifacts["FeeOnTransferToken"][0]),
            "rejecter": Codec(artifacts["EthRejecter"][0]),
            "reentrant": Codec(artifacts["ReentrantRecipient"][0]),
        }

        deployer = addresses["deployer"]
        addresses["escrow"] = chain.deploy(deployer, artifacts["MilestoneEscrow"][1])
        addresses["registry"] = chain.deploy(
            deployer,
            artifacts["DonationRegistry"][1],
            ["address", "address"],
            [addresses["escrow"], addresses["registrar"]],
        )
        addresses["usdc"] = chain.deploy(
            deployer, artifacts["MockERC20"][1], ["string", "string", "uint8"], ["Test USD Coin", "USDC", 6]
        )
        addresses["rusd"] = chain.deploy(deployer, artifacts["BlocklistToken"][1])
        addresses["fee"] = chain.deploy(deployer, artifacts["FeeOnTransferToken"][1], ["uint256"], [100])
        addresses["rejecter"] = chain.deploy(deployer, artifacts["EthRejecter"][1])
        addresses["reentrant"] = chain.deploy(
            deployer, artifacts["ReentrantRecipient"][1], ["address"], [addresses["escrow"]]
        )
        domain = Domain("FundTrail MilestoneEscrow", "1", CHAIN_ID, addresses["escrow"])
        deployment = Deployment(
            chain=chain,
            codecs=codecs,
            addresses=addresses,
            keys=keys,
            base_snapshot="",
            base_timestamp=0,
            base_balances={},
            base_projects={},
            domain=domain,
            error_codecs=[codecs[name] for name in ("escrow", "registry", "rusd", "rejecter", "reentrant")],
            ledger_abis={name: artifacts[name][0] for name in (ESCROW, REGISTRY)},
        )

        chain.set_balance(addresses["rejecter"], ETH_SUPPLY)
        for token in ("usdc", "rusd", "fee"):
            for payer in PAYERS:
                _setup_transact(deployment, "deployer", token, "mint", addresses[payer], TOKEN_SUPPLY)
                for spender in ("escrow", "registry"):
                    _setup_transact(deployment, payer, token, "approve", addresses[spender], MAX_UINT256)
        _setup_transact(deployment, "deployer", "rusd", "setBlocked", addresses["blocked_ngo"], True)

        # Project 1 pays a plain wallet, 2 a contract that rejects ETH, 3 a blocklisted wallet;
        # project 4 stays pending until a step verifies it.
        payouts = ["payout_wallet", "rejecter", "blocked_ngo", "payout_wallet"]
        for index, payout in enumerate(payouts, start=1):
            metadata_hash = bytes([index]) * 32
            _setup_transact(
                deployment,
                "project_admin",
                "registry",
                "registerProject",
                addresses["project_admin"],
                addresses[payout],
                metadata_hash,
                f"ipfs://project-{index}",
            )
            status = ProjectStatus.VERIFIED if index < 4 else ProjectStatus.PENDING
            if status == ProjectStatus.VERIFIED:
                _setup_transact(deployment, "registrar", "registry", "verifyProject", index)
            deployment.base_projects[index] = Project(
                addresses["project_admin"],
                addresses[payout],
                status,
                metadata_hash,
                f"ipfs://project-{index}",
            )

        deployment.base_balances = _read_balances(deployment)
        deployment.base_snapshot = chain.snapshot()
        deployment.base_timestamp = chain.timestamp
        yield deployment
    finally:
        chain.stop()


# Every account that can fund, receive or hold money, plus the stranger as a control. The other
# roles (attestors, registrar, deployer) never hold tokens and pay no gas, so nothing they hold
# can change.
MONEY_ACCOUNTS = (
    "grant_maker",
    "donor_1",
    "donor_2",
    "ngo",
    "blocked_ngo",
    "stranger",
    "payout_wallet",
    "rejecter",
    "reentrant",
)


def _tracked_accounts(deployment):
    return [deployment.addresses[name] for name in (*MONEY_ACCOUNTS, "escrow", "registry")]


def _balance_requests(deployment):
    """Return the `(key, method, params)` of every balance the model tracks."""
    requests_ = []
    for account in _tracked_accounts(deployment):
        requests_.append(((ETH, account), "eth_getBalance", [account, "latest"]))
        for token in ("usdc", "rusd", "fee"):
            data = deployment.codecs[token].encode_cached("balanceOf", account)
            call = {"to": deployment.addresses[token], "data": "0x" + data.hex()}
            requests_.append(((deployment.addresses[token], account), "eth_call", [call, "latest"]))
    return requests_


def _read_balances(deployment):
    requests_ = _balance_requests(deployment)
    results = deployment.chain.batch([(method, params) for _, method, params in requests_])
    return {key: int(result, 16) for (key, _, _), result in zip(requests_, results, strict=True)}


def pick(items, index):
    """Return `items[index]` wrapped around the length, so one drawn integer picks from any list."""
    return items[index % len(items)]


class EscrowStateMachine(RuleBasedStateMachine):
    """Random grant lifecycles and donations, checked step by step against the shadow model."""

    deployment: Deployment = None

    def __init__(self):
        super().__init__()
        self.chain = self.deployment.chain
        self.model = None
        self.observed_grant_statuses = {}
        self.observed_milestone_statuses = {}
        # Ghost store of every MilestoneReleased event: (grantId, milestoneIndex, timestamp).
        self.releases = []
        self.last_evidence_signature = None
        self.last_approval_batch = None
        self._observed_key = None
        self._observed = None
        self._observed_balances = None
        self._reset_chain()

    # -- Plumbing -----------------------------------------------------------------------------

    def address_of(self, name):
        return self.deployment.addresses[name]

    @property
    def now(self):
        """The `block.timestamp` of the next transaction."""
        return self.chain.next_timestamp

    def grant_ids(self):
        return sorted(self.model.grants)

    def transact(self, sender, contract, function, *args, value=0, model_action):
        """Send one call and check it against `model_action(model, now)` run on a model copy.

        If the model raises `Revert`, the call must revert with that exact error and emit
        nothing, and the model stays as it was. Otherwise the call must succeed, and the copy
        becomes the model.
        """
        trial = copy.deepcopy(self.model)
        now = self.now
        try:
            model_action(trial, now)
            expected_error = None
        except Revert as revert:
            expected_error = revert.expected

        data = self.deployment.codecs[contract].encode(function, *args)
        receipt = self.chain.send(self.address_of(sender), self.address_of(contract), data, value)
        actual_error = (
            decode_error(self.deployment.error_codecs, receipt.revert_data) if receipt.status == 0 else None
        )
        assert actual_error == expected_error, (
            f"{contract}.{function}{args} from {sender} at {now}: chain reverted with {actual_error}, "
            f"the model expected {expected_error or 'success'}"
        )
        OUTCOMES[(f"{contract}.{function}", expected_error[0] if expected_error else "success")] += 1
        if expected_error is None:
            self.model = trial
            self._record_events(receipt)
        else:
            assert receipt.logs == [], "a reverted call emitted events"
        return receipt

    def _record_events(self, receipt):
        released_topic = (
            "0x" + keccak(text="MilestoneReleased(uint256,uint256,address,bytes32,uint256)").hex()
        )
        for log in receipt.logs:
            if (
                log["address"].lower() == self.address_of("escrow").lower()
                and log["topics"][0] == released_topic
            ):
                grant_id = int(log["topics"][1], 16)
                milestone_index = int(log["topics"][2], 16)
                self.releases.append((grant_id, milestone_index, receipt.timestamp))

    def sign(self, signer_name, kind, message):
        typed_data = build_typed_data(kind, self.deployment.domain, message)
        digest = typed_data_digest(typed_data)
        signature = Account.unsafe_sign_hash(digest, self.deployment.keys[signer_name]).signature
        return digest, bytes(signature)

    def expiry(self, kind):
        """Return an expiry: far in the future, exactly now (expired), or one second after now."""
        return {"far": FAR_EXPIRY, "expired": self.now, "soon": self.now + 1}[kind]

    # -- Setup --------------------------------------------------------------------------------

    def _reset_chain(self):
        """Go back to the base snapshot and start a fresh model of it."""
        self.chain.revert(self.deployment.base_snapshot, self.deployment.base_timestamp)
        self.deployment.base_snapshot = self.chain.snapshot()
        rules = TokenRules(
            blocklist_token=self.address_of("rusd"),
            fee_token=self.address_of("fee"),
            eth_rejecters=frozenset({self.address_of("rejecter")}),
            blocked=frozenset({self.address_of("blocked_ngo")}),
        )
        self.model = Model(
            escrow=self.address_of("escrow"),
            registry=self.address_of("registry"),
            registrar=self.address_of("registrar"),
            chain_id=CHAIN_ID,
            rules=rules,
            balances=dict(self.deployment.base_balances),
            projects=copy.deepcopy(self.deployment.base_projects),
        )

    # -- Grant makers -------------------------------------------------------------------------

    def _terms(self, token, recipient, attestor_count, threshold, funding_in, milestones):
        funding_deadline = self.now + funding_in
        return (
            self.address_of(recipient),
            self.deployment.token(token),
            funding_deadline,
            threshold,
            [self.address_of(f"attestor_{i + 1}") for i in range(attestor_count)],
            [(amount, funding_deadline + gap) for amount, gap in milestones],
            TERMS_HASH,
            "ipfs://bafy-terms",
        )

    GRANT_FAULTS = (
        "zero recipient",
        "no milestones",
        "no attestors",
        "threshold zero",
        "threshold above count",
        "funding deadline now",
        "zero amount",
        "deadline at funding deadline",
        "duplicate attestor",
        "zero attestor",
    )
    grant_terms = {
        "token": st.sampled_from(TOKENS),
        "recipient": st.sampled_from(RECIPIENTS),
        "attestor_count": st.integers(1, 3),
        "threshold_pick": st.integers(0, 2),
        "funding_in": st.integers(1, 20 * DAY),
        "milestones": st.lists(
            st.tuples(st.one_of(st.integers(1, 99), st.integers(100, 10**12)), st.integers(1, 30 * DAY)),
            min_size=1,
            max_size=3,
        ),
        "funding": st.sampled_from(["none", "part", "part", "all"]),
        "fault": st.one_of(st.just(None), st.just(None), st.just(None), st.sampled_from(GRANT_FAULTS)),
        "fault_index": st.integers(0, 2),
    }

    @initialize(**grant_terms)
    def create_first_grant(self, **terms):
        """Start every example with one grant, so the milestone rules have something to act on."""
        self.create_grant(**terms)

    @precondition(lambda self: len(self.model.grants) < MAX_GRANTS)
    @rule(**grant_terms)
    def create_grant(
        self,
        token,
        recipient,
        attestor_count,
        threshold_pick,
        funding_in,
        milestones,
        funding,
        fault,
        fault_index,
    ):
        """Create a grant, and fund it in the same call for "part" and "all"; with a `fault`,
        break one term so that creation must fail."""
        threshold = 1 + threshold_pick % attestor_count
        (
            recipient_address,
            token_address,
            funding_deadline,
            threshold,
            attestors,
            milestones,
            terms_hash,
            uri,
        ) = self._terms(token, recipient, attestor_count, threshold, funding_in, milestones)
        index = fault_index % len(milestones)
        if fault == "zero recipient":
            recipient_address = ZERO_ADDRESS
        elif fault == "no milestones":
            milestones = []
        elif fault == "no attestors":
            attestors = []
        elif fault == "threshold zero":
            threshold = 0
        elif fault == "threshold above count":
            threshold = len(attestors) + 1
        elif fault == "funding deadline now":
            funding_deadline = self.now
        elif fault == "zero amount":
            milestones[index] = (0, milestones[index][1])
        elif fault == "deadline at funding deadline":
            milestones[index] = (milestones[index][0], funding_deadline)
        elif fault == "duplicate attestor" and len(attestors) > 1:
            attestors[fault_index % len(attestors)] = attestors[(fault_index + 1) % len(attestors)]
        elif fault == "zero attestor":
            attestors[fault_index % len(attestors)] = ZERO_ADDRESS
        terms = (
            recipient_address,
            token_address,
            funding_deadline,
            threshold,
            attestors,
            milestones,
            terms_hash,
            uri,
        )
        total = sum(amount for amount, _ in milestones)
        amount = {"none": 0, "part": max(1, total // 2), "all": total}[funding]
        value = amount if token == "eth" else 0

        def model_action(model, now):
            grant_id = model.create_grant(terms, now)
            if funding != "none":
                maker = self.address_of("grant_maker")
                model.fund(grant_id, maker, maker, amount, value, now)

        if funding == "none":
            receipt = self.transact("grant_maker", "escrow", "createGrant", terms, model_action=model_action)
        else:
            receipt = self.transact(
                "grant_maker",
                "escrow",
                "createAndFundGrant",
                terms,
                amount,
                value=value,
                model_action=model_action,
            )
        if recipient == "reentrant" and receipt.status == 1:
            # On every ETH payout, the reentrant recipient tries to reclaim milestone 0 of its
            # newest grant.
            data = self.deployment.codecs["reentrant"].encode("setTarget", max(self.model.grants), 0)
            assert (
                self.chain.send(self.address_of("stranger"), self.address_of("reentrant"), data).status == 1
            )

    @precondition(lambda self: self.model.grants)
    @rule(
        grant_pick=st.integers(0, 100),
        funder_kind=st.integers(0, 6),
        amount_kind=st.sampled_from(["rest", "rest", "part", "part", "over", "zero", "missing grant"]),
        raw=st.integers(0, 10**12),
        value_kind=st.sampled_from(["exact"] * 6 + ["mismatch"]),
    )
    def fund(self, grant_pick, funder_kind, amount_kind, raw, value_kind):
        grant = self.model.grants[pick(self.grant_ids(), grant_pick)]
        grant_id = grant.id if amount_kind != "missing grant" else len(self.model.grants) + 1
        remaining = grant.total - grant.funded
        if amount_kind == "rest" and remaining > 0:
            amount = remaining
        elif amount_kind in ("part", "missing grant", "rest"):
            amount = 1 + raw % remaining if remaining > 0 else raw + 1
        elif amount_kind == "over":
            amount = remaining + 1
        else:
            amount = 0
        is_eth = grant.token == ETH
        if value_kind == "exact":
            value = amount if is_eth else 0
        else:
            value = amount + 1 if is_eth else 1
        if funder_kind == 5 and not is_eth:
            funder_kind = 0

        # (payer, funder, how): who pays, whose contribution it becomes, and the call used.
        payer, funder, how = [
            ("grant_maker", "grant_maker", "fund"),
            ("donor_1", "donor_1", "fund"),
            ("donor_2", "rejecter", "fundFor"),
            ("grant_maker", "blocked_ngo", "fundFor"),
            ("donor_1", "reentrant", "fundFor"),
            ("grant_maker", "rejecter", "rejecter"),
            ("donor_2", None, "fundFor"),
        ][funder_kind]
        funder_address = self.address_of(funder) if funder else ZERO_ADDRESS

        def model_action(model, now):
            model.fund(grant_id, self.address_of(payer), funder_address, amount, value, now)

        if how == "fund":
            self.transact(payer, "escrow", "fund", grant_id, amount, value=value, model_action=model_action)
        elif how == "fundFor":
            self.transact(
                payer,
                "escrow",
                "fundFor",
                grant_id,
                funder_address,
                amount,
                value=value,
                model_action=model_action,
            )
        else:
            self.transact(
                payer,
                "rejecter",
                "fund",
                self.address_of("escrow"),
                grant_id,
                amount,
                value=value,
                model_action=model_action,
            )

    @precondition(lambda self: self.model.grants)
    @rule(
        grant_pick=st.integers(0, 100),
        funder_pick=st.integers(0, 100),
        caller=st.sampled_from(["stranger", "ngo"]),
    )
    def refund(self, grant_pick, funder_pick, caller):
        grant = self.model.grants[pick(self.grant_ids(), grant_pick)]
        candidates = [*grant.funders, self.address_of("stranger")]
        funder = pick(candidates, funder_pick)
        self.transact(
            caller,
            "escrow",
            "refund",
            grant.id,
            funder,
            model_action=lambda model, now: model.refund(grant.id, funder, now),
        )

    # -- Milestones ---------------------------------------------------------------------------

    def _milestone_index(self, grant, index_pick):
        """Pick a milestone index, and now and then the first index past the end."""
        count = len(grant.milestones)
        return count if index_pick >= 18 else index_pick % count

    @precondition(lambda self: self.model.grants)
    @rule(
        grant_pick=st.integers(0, 100),
        index_pick=st.integers(0, 19),
        evidence_pick=st.integers(0, 3),
        as_recipient=st.sampled_from([True, True, True, False]),
    )
    def submit_evidence(self, grant_pick, index_pick, evidence_pick, as_recipient):
        grant = self.model.grants[pick(self.grant_ids(), grant_pick)]
        index = self._milestone_index(grant, index_pick)
        evidence = EVIDENCE[evidence_pick] if evidence_pick < 3 else ZERO_HASH
        recipient = next(name for name in RECIPIENTS if self.address_of(name) == grant.recipient)
        escrow = self.address_of("escrow")

        if not as_recipient:
            stranger = self.address_of("stranger")
            self.transact(
                "stranger",
                "escrow",
                "submitEvidence",
                grant.id,
                index,
                evidence,
                EVIDENCE_URI,
                model_action=lambda model, now: model.submit_evidence(
                    grant.id, index, evidence, stranger, now
                ),
            )
            return

        def model_action(model, now):
            model.submit_evidence(grant.id, index, evidence, grant.recipient, now)

        if recipient == "rejecter":
            self.transact(
                "stranger",
                "rejecter",
                "submitEvidence",
                escrow,
                grant.id,
                index,
                evidence,
                model_action=model_action,
            )
        elif recipient == "reentrant":
            self.transact(
                "stranger",
                "reentrant",
                "submitEvidence",
                grant.id,
                index,
                evidence,
                model_action=model_action,
            )
        else:
            self.transact(
                recipient,
                "escrow",
                "submitEvidence",
                grant.id,
                index,
                evidence,
                EVIDENCE_URI,
                model_action=model_action,
            )

    @precondition(lambda self: self.model.grants)
    @rule(
        grant_pick=st.integers(0, 100),
        index_pick=st.integers(0, 19),
        evidence_pick=st.integers(0, 2),
        expiry_kind=st.sampled_from(["far", "far", "soon", "expired"]),
        own_key=st.sampled_from([True, True, True, False]),
    )
    def submit_evidence_signed(self, grant_pick, index_pick, evidence_pick, expiry_kind, own_key):
        grant = self.model.grants[pick(self.grant_ids(), grant_pick)]
        index = self._milestone_index(grant, index_pick)
        evidence = EVIDENCE[evidence_pick]
        expiry = self.expiry(expiry_kind)
        recipient = next(name for name in RECIPIENTS if self.address_of(name) == grant.recipient)
        # Contract recipients have no key; a stranger's signature must fail for them as well.
        signer = recipient if own_key and recipient in self.deployment.keys else "stranger"
        message = evidence_message(grant.recipient, grant.id, index, evidence, EVIDENCE_URI, expiry)
        digest, signature = self.sign(signer, EVIDENCE_SUBMISSION, message)
        valid = signer == recipient
        self.last_evidence_signature = (grant.id, index, evidence, expiry, signature, digest, valid)
        self._relay_evidence(*self.last_evidence_signature)

    def _relay_evidence(self, grant_id, index, evidence, expiry, signature, digest, valid):
        self.transact(
            "stranger",
            "escrow",
            "submitEvidenceWithSignature",
            grant_id,
            index,
            evidence,
            EVIDENCE_URI,
            expiry,
            signature,
            model_action=lambda model, now: model.submit_evidence_with_signature(
                grant_id, index, evidence, digest, expiry, valid, now
            ),
        )

    @precondition(lambda self: self.last_evidence_signature is not None)
    @rule()
    def replay_evidence_signature(self):
        self._relay_evidence(*self.last_evidence_signature)

    def _vote_target(self, grant_pick, index_pick, evidence_pick):
        """Return a grant, a milestone index and an evidence hash: the current one mostly."""
        grant = self.model.grants[pick(self.grant_ids(), grant_pick)]
        index = self._milestone_index(grant, index_pick)
        current = grant.milestones[index].evidence_hash if index < len(grant.milestones) else ZERO_HASH
        evidence = current if evidence_pick >= 3 else EVIDENCE[evidence_pick]
        return grant, index, evidence

    @precondition(lambda self: self.model.grants)
    @rule(
        grant_pick=st.integers(0, 100),
        index_pick=st.integers(0, 19),
        evidence_pick=st.integers(0, 9),
        voter=st.sampled_from(["attestor_1", "attestor_2", "attestor_3", "stranger"]),
        approve=st.sampled_from([True, True, False]),
    )
    def vote(self, grant_pick, index_pick, evidence_pick, voter, approve):
        grant, index, evidence = self._vote_target(grant_pick, index_pick, evidence_pick)
        voter_address = self.address_of(voter)
        if approve:
            self.transact(
                voter,
                "escrow",
                "approve",
                grant.id,
                index,
                evidence,
                model_action=lambda model, now: model.approve(grant.id, index, evidence, voter_address, now),
            )
        else:
            self.transact(
                voter,
                "escrow",
                "reject",
                grant.id,
                index,
                evidence,
                REASON,
                model_action=lambda model, now: model.reject(grant.id, index, evidence, voter_address, now),
            )

    # The composite rules below walk a grant along its usual paths in one step. Random single
    # calls rarely line up into a whole lifecycle, and these make releases, reclaims, refunds and
    # the credits they create common enough to check in every run. Each call in them is still
    # checked against the model on its own.

    def _fund_rest(self, grant, funder_kind):
        """Fund what the grant still lacks, in two parts from two funders when it lacks more
        than one unit, so that reclaims often split between several funders."""
        remaining = grant.total - grant.funded
        if remaining > 1:
            self.fund(grant.id - 1, funder_kind, "part", remaining // 2 - 1, "exact")
        if self.model.grants[grant.id].funded < grant.total:
            self.fund(grant.id - 1, 0, "rest", 0, "exact")

    @precondition(lambda self: self.model.grants)
    @rule(
        grant_pick=st.integers(0, 100),
        index_pick=st.integers(0, 17),
        evidence_pick=st.integers(0, 2),
        funder_kind=st.integers(0, 5),
        last_vote_at=st.sampled_from([None, None, -2, -1, 0]),
    )
    def attest_to_quorum(self, grant_pick, index_pick, evidence_pick, funder_kind, last_vote_at):
        """Fund the grant in full, submit evidence if none is pending, then approve it attestor
        by attestor up to the threshold. With `last_vote_at`, the last approval runs that many
        seconds from the milestone deadline: before it the milestone is paid, at it never."""
        grant = self.model.grants[pick(self.grant_ids(), grant_pick)]
        self._fund_rest(grant, funder_kind)
        index = self._milestone_index(grant, index_pick)
        grant = self.model.grants[grant.id]
        if grant.milestones[index].status != MilestoneStatus.EVIDENCE_SUBMITTED:
            self.submit_evidence(grant.id - 1, index, evidence_pick, as_recipient=True)
        voters = ("attestor_1", "attestor_2", "attestor_3")[: grant.threshold]
        for position, voter in enumerate(voters):
            target = grant.milestones[index].deadline + (last_vote_at or 0)
            if position == len(voters) - 1 and last_vote_at is not None and target >= self.now:
                self.chain.warp(target)
            self.vote(grant.id - 1, index, 9, voter, approve=True)
            if self.model.grants[grant.id].milestones[index].settled:
                break

    @precondition(lambda self: self.model.grants)
    @rule(
        grant_pick=st.integers(0, 100),
        index_pick=st.integers(0, 17),
        offset=st.sampled_from([-1, 0, 0, 1]),
        fund_first=st.booleans(),
        funder_kind=st.integers(0, 5),
    )
    def reclaim_at_deadline(self, grant_pick, index_pick, offset, fund_first, funder_kind):
        """Jump to one second before, exactly at, or one second after a milestone deadline, and
        reclaim the milestone."""
        grant = self.model.grants[pick(self.grant_ids(), grant_pick)]
        if fund_first:
            self._fund_rest(grant, funder_kind)
        index = self._milestone_index(grant, index_pick)
        target = grant.milestones[index].deadline + offset
        if target >= self.now:
            self.chain.warp(target)
        self.reclaim(grant.id - 1, index)

    @precondition(lambda self: self.model.grants)
    @rule(
        grant_pick=st.integers(0, 100), offset=st.sampled_from([-1, 0, 0, 1]), funder_pick=st.integers(0, 100)
    )
    def refund_after_funding_deadline(self, grant_pick, offset, funder_pick):
        """Jump to around the funding deadline and refund one funder, then every other funder."""
        grant = self.model.grants[pick(self.grant_ids(), grant_pick)]
        target = grant.funding_deadline + offset
        if target >= self.now:
            self.chain.warp(target)
        self.refund(grant.id - 1, funder_pick, "stranger")
        if grant.status(self.now) == GrantStatus.FUNDING_FAILED:
            for funder_index in range(len(grant.funders)):
                self.refund(grant.id - 1, funder_index, "ngo")

    @precondition(lambda self: self.model.grants)
    @rule(
        grant_pick=st.integers(0, 100),
        index_pick=st.integers(0, 17),
        evidence_pick=st.integers(0, 2),
        funder_kind=st.integers(0, 5),
    )
    def relay_signed_quorum(self, grant_pick, index_pick, evidence_pick, funder_kind):
        """Fund the grant in full, relay the recipient's signed evidence, then relay the
        threshold's signed approvals in one batch."""
        grant = self.model.grants[pick(self.grant_ids(), grant_pick)]
        self._fund_rest(grant, funder_kind)
        index = self._milestone_index(grant, index_pick)
        grant = self.model.grants[grant.id]
        if grant.milestones[index].status != MilestoneStatus.EVIDENCE_SUBMITTED:
            self.submit_evidence_signed(grant.id - 1, index, evidence_pick, "far", own_key=True)
        signers = [(f"attestor_{i + 1}", "far", True) for i in range(grant.threshold)]
        self.relay_approvals(grant.id - 1, index, 9, signers)

    @precondition(lambda self: self.model.grants)
    @rule(
        grant_pick=st.integers(0, 100),
        index_pick=st.integers(0, 19),
        evidence_pick=st.integers(0, 9),
        signers=st.lists(
            st.tuples(
                st.sampled_from(["attestor_1", "attestor_2", "attestor_3", "stranger"]),
                st.sampled_from(["far", "far", "far", "soon", "expired"]),
                st.sampled_from([True] * 9 + [False]),
            ),
            max_size=4,
        ),
    )
    def relay_approvals(self, grant_pick, index_pick, evidence_pick, signers):
        grant, index, evidence = self._vote_target(grant_pick, index_pick, evidence_pick)
        batch = []
        model_batch = []
        for attestor, expiry_kind, own_key in signers:
            expiry = self.expiry(expiry_kind)
            message = approval_message(self.address_of(attestor), grant.id, index, evidence, expiry)
            # A signature from another key than the attestor's is invalid for the attestor.
            signer = attestor
            if not own_key:
                signer = "attestor_1" if attestor == "stranger" else "stranger"
            digest, signature = self.sign(signer, MILESTONE_APPROVAL, message)
            batch.append((self.address_of(attestor), expiry, signature))
            model_batch.append((self.address_of(attestor), digest, expiry, own_key))
        self.last_approval_batch = (grant.id, index, evidence, batch, model_batch)
        self._relay_approvals(*self.last_approval_batch)

    def _relay_approvals(self, grant_id, index, evidence, batch, model_batch):
        self.transact(
            "stranger",
            "escrow",
            "approveWithSignatures",
            grant_id,
            index,
            evidence,
            batch,
            model_action=lambda model, now: model.approve_with_signatures(
                grant_id, index, evidence, model_batch, now
            ),
        )

    @precondition(lambda self: self.last_approval_batch is not None)
    @rule()
    def replay_approvals(self):
        self._relay_approvals(*self.last_approval_batch)

    @precondition(lambda self: self.model.grants)
    @rule(
        grant_pick=st.integers(0, 100),
        index_pick=st.integers(0, 19),
        evidence_pick=st.integers(0, 9),
        attestor=st.sampled_from(["attestor_1", "attestor_2", "attestor_3"]),
    )
    def revoke_approval_signature(self, grant_pick, index_pick, evidence_pick, attestor):
        """Revoke the far-expiry approval an attestor might sign, so a later relay of it fails."""
        grant, index, evidence = self._vote_target(grant_pick, index_pick, evidence_pick)
        message = approval_message(self.address_of(attestor), grant.id, index, evidence, FAR_EXPIRY)
        digest, _ = self.sign(attestor, MILESTONE_APPROVAL, message)
        attestor_address = self.address_of(attestor)
        self.transact(
            attestor,
            "escrow",
            "revokeSignature",
            digest,
            model_action=lambda model, now: model.revoke_signature(attestor_address, digest),
        )

    @precondition(lambda self: self.model.grants)
    @rule(grant_pick=st.integers(0, 100), index_pick=st.integers(0, 19))
    def reclaim(self, grant_pick, index_pick):
        grant = self.model.grants[pick(self.grant_ids(), grant_pick)]
        index = self._milestone_index(grant, index_pick)
        self.transact(
            "stranger",
            "escrow",
            "reclaim",
            grant.id,
            index,
            model_action=lambda model, now: model.reclaim(grant.id, index, now),
        )

    # -- Time ---------------------------------------------------------------------------------

    def _deadlines(self):
        times = set()
        for grant in self.model.grants.values():
            times.add(grant.funding_deadline)
            times.update(milestone.deadline for milestone in grant.milestones)
        return sorted(time for time in times if time >= self.now)

    @rule(
        to_deadline=st.sampled_from([True, True, True, False]),
        deadline_pick=st.integers(0, 100),
        offset=st.sampled_from([-1, 0, 0, 0, 1]),
        jump=st.integers(1, 40 * DAY),
    )
    def advance_time(self, to_deadline, deadline_pick, offset, jump):
        """Jump so that the next transaction runs just before, exactly at or just after a
        deadline, or after a random interval."""
        deadlines = self._deadlines()
        if to_deadline and deadlines:
            target = pick(deadlines, deadline_pick) + offset
        else:
            target = self.now + jump
        if target >= self.now:
            self.chain.warp(target)

    # -- Credits ------------------------------------------------------------------------------

    @precondition(lambda self: self.model.credits)
    @rule(
        credit_pick=st.integers(0, 100),
        without_credit=st.sampled_from([False, False, False, True]),
        account=st.sampled_from(["grant_maker", "donor_1", "ngo", "blocked_ngo", "rejecter"]),
        token=st.sampled_from(TOKENS),
        to_kind=st.sampled_from(
            ["self", "self", "wallet", "wallet", "wallet", "zero", "rejecter", "blocked_ngo", "reentrant"]
        ),
    )
    def withdraw(self, credit_pick, without_credit, account, token, to_kind):
        names = {self.address_of(name): name for name in (*EOA_NAMES, "rejecter", "reentrant")}
        # Accounts that can call withdraw: every EOA, and the ETH rejecter through its forwarder.
        credits = sorted(
            (names[holder], credit_token)
            for (holder, credit_token), amount in self.model.credits.items()
            if amount > 0 and names[holder] != "reentrant"
        ) or [("grant_maker", ETH)]
        if not without_credit:
            account, token_address = pick(credits, credit_pick)
        else:
            token_address = self.deployment.token(token)
        to = {
            "self": self.address_of(account),
            "wallet": self.address_of("payout_wallet"),
            "zero": ZERO_ADDRESS,
            "rejecter": self.address_of("rejecter"),
            "blocked_ngo": self.address_of("blocked_ngo"),
            "reentrant": self.address_of("reentrant"),
        }[to_kind]
        account_address = self.address_of(account)

        def model_action(model, now):
            model.withdraw(account_address, token_address, to)

        if account == "rejecter":
            self.transact(
                "stranger",
                "rejecter",
                "withdraw",
                self.address_of("escrow"),
                token_address,
                to,
                model_action=model_action,
            )
        else:
            self.transact(account, "escrow", "withdraw", token_address, to, model_action=model_action)

    @precondition(lambda self: self.model.credits)
    @rule()
    def withdraw_all_credits(self):
        """Withdraw every credit to the payout wallet, which takes ETH and is on no blocklist.

        Random `withdraw` steps mostly pick receivers that fail, so this step makes successful
        withdrawals common; a paused blocklist token still makes them revert.
        """
        names = {self.address_of(name): name for name in (*EOA_NAMES, "rejecter")}
        wallet = self.address_of("payout_wallet")
        for (holder, token), _ in sorted(self.model.credits.items()):
            account = names.get(holder)
            if account is None:
                continue
            holder_address = holder

            def model_action(model, now, holder_address=holder_address, token=token):
                model.withdraw(holder_address, token, wallet)

            if account == "rejecter":
                escrow = self.address_of("escrow")
                self.transact(
                    "stranger", "rejecter", "withdraw", escrow, token, wallet, model_action=model_action
                )
            else:
                self.transact(account, "escrow", "withdraw", token, wallet, model_action=model_action)

    @rule(repeat=st.sampled_from([False, False, False, True]))
    def pause_blocklist_token(self, repeat):
        """Pause or unpause the blocklist token, which makes its payouts fail and become credits.
        With `repeat`, ask for the state it is already in, which must fail."""
        paused = self.model.rules.paused if repeat else not self.model.rules.paused
        self.transact(
            "stranger",
            "rusd",
            "pause" if paused else "unpause",
            model_action=lambda model, now: model.set_paused(paused),
        )

    # -- Registry -----------------------------------------------------------------------------

    @rule(
        project_pick=st.integers(0, 100),
        missing=st.sampled_from([False] * 9 + [True]),
        token=st.sampled_from(TOKENS),
        amount=st.one_of(st.just(0), st.integers(1, 99), st.integers(100, 10**12)),
        donor=st.sampled_from(PAYERS),
        value_kind=st.sampled_from(["exact"] * 6 + ["mismatch"]),
    )
    def donate(self, project_pick, missing, token, amount, donor, value_kind):
        project_ids = sorted(self.model.projects)
        project_id = len(project_ids) + 1 if missing else pick(project_ids, project_pick)
        token_address = self.deployment.token(token)
        if value_kind == "exact":
            value = amount if token == "eth" else 0
        else:
            value = amount + 1 if token == "eth" else 1
        donor_address = self.address_of(donor)
        self.transact(
            donor,
            "registry",
            "donate",
            project_id,
            token_address,
            amount,
            DONOR_REF,
            value=value,
            model_action=lambda model, now: model.donate(
                project_id, token_address, amount, value, donor_address
            ),
        )

    @precondition(lambda self: self.model.grants)
    @rule(
        grant_pick=st.integers(0, 100),
        missing=st.sampled_from([False] * 9 + [True]),
        amount_kind=st.sampled_from(["rest", "part", "part", "over", "zero"]),
        raw=st.integers(0, 10**12),
        donor=st.sampled_from(PAYERS),
    )
    def donate_to_grant(self, grant_pick, missing, amount_kind, raw, donor):
        grant = self.model.grants[pick(self.grant_ids(), grant_pick)]
        grant_id = len(self.model.grants) + 1 if missing else grant.id
        remaining = grant.total - grant.funded
        amount = {
            "rest": remaining or raw + 1,
            "part": 1 + raw % remaining if remaining else raw + 1,
            "over": remaining + 1,
            "zero": 0,
        }[amount_kind]
        value = amount if grant.token == ETH and not missing else 0
        donor_address = self.address_of(donor)
        self.transact(
            donor,
            "registry",
            "donateToGrant",
            grant_id,
            amount,
            DONOR_REF,
            value=value,
            model_action=lambda model, now: model.donate_to_grant(
                grant_id, amount, value, donor_address, now
            ),
        )

    @rule(
        project_pick=st.integers(0, 100),
        status=st.sampled_from([ProjectStatus.VERIFIED, ProjectStatus.SUSPENDED]),
        caller=st.sampled_from(["registrar", "registrar", "registrar", "stranger"]),
    )
    def set_project_status(self, project_pick, status, caller):
        project_id = pick(sorted(self.model.projects), project_pick)
        caller_address = self.address_of(caller)
        self.transact(
            caller,
            "registry",
            "verifyProject" if status == ProjectStatus.VERIFIED else "suspendProject",
            project_id,
            model_action=lambda model, now: model.set_project_status(project_id, status, caller_address),
        )

    # -- Invariants ---------------------------------------------------------------------------

    def _observe(self):
        """Read every view the model predicts in one batch, and return {key: decoded value}."""
        escrow_codec = self.deployment.codecs["escrow"]
        registry_codec = self.deployment.codecs["registry"]
        escrow = self.address_of("escrow")
        registry = self.address_of("registry")
        calls = []

        def view(key, contract, codec, function, *args):
            data = codec.encode_cached(function, *args)
            calls.append((key, codec, function, {"to": contract, "data": "0x" + data.hex()}))

        accounts = [self.address_of(name) for name in MONEY_ACCOUNTS]
        tokens = [self.deployment.token(token) for token in TOKENS]
        view(("grantCount",), escrow, escrow_codec, "grantCount")
        for grant in self.model.grants.values():
            view(("getGrant", grant.id), escrow, escrow_codec, "getGrant", grant.id)
            view(("getAttestors", grant.id), escrow, escrow_codec, "getAttestors", grant.id)
            view(("getFunders", grant.id), escrow, escrow_codec, "getFunders", grant.id)
            for index, _ in enumerate(grant.milestones):
                view(("getMilestone", grant.id, index), escrow, escrow_codec, "getMilestone", grant.id, index)
                for evidence in EVIDENCE:
                    key = ("isEvidenceRejected", grant.id, index, evidence)
                    view(key, escrow, escrow_codec, "isEvidenceRejected", grant.id, index, evidence)
            for account in accounts:
                view(
                    ("contributionOf", grant.id, account),
                    escrow,
                    escrow_codec,
                    "contributionOf",
                    grant.id,
                    account,
                )
                view(("isRefunded", grant.id, account), escrow, escrow_codec, "isRefunded", grant.id, account)
        for token in tokens:
            view(("totalHeld", token), escrow, escrow_codec, "totalHeld", token)
            view(("totalCredits", token), escrow, escrow_codec, "totalCredits", token)
            for account in accounts:
                view(("creditOf", account, token), escrow, escrow_codec, "creditOf", account, token)
        for signer, digest in self.model.signatures:
            view(("signatureState", signer, digest), escrow, escrow_codec, "signatureState", signer, digest)
        view(("projectCount",), registry, registry_codec, "projectCount")
        view(("donationCount",), registry, registry_codec, "donationCount")
        for project_id in self.model.projects:
            view(("getProject", project_id), registry, registry_codec, "getProject", project_id)
            for token in tokens:
                key = ("totalDonated", project_id, token)
                view(key, registry, registry_codec, "totalDonated", project_id, token)
        reentrant_codec = self.deployment.codecs["reentrant"]
        view(("reentered",), self.address_of("reentrant"), reentrant_codec, "reentered")
        view(("reentryError",), self.address_of("reentrant"), reentrant_codec, "reentryError")

        balance_requests = _balance_requests(self.deployment)
        requests_ = [("eth_call", [call, "latest"]) for _, _, _, call in calls]
        requests_ += [(method, params) for _, method, params in balance_requests]
        results = self.chain.batch(requests_)

        observed = {}
        for (key, codec, function, _), result in zip(calls, results, strict=False):
            observed[key] = _normalize_output(codec.decode(function, bytes.fromhex(result[2:])))
        balances = {
            key: int(result, 16)
            for (key, _, _), result in zip(balance_requests, results[len(calls) :], strict=True)
        }
        return observed, balances

    def _observation(self):
        """Return `_observe()` for the current chain state, reading the chain once per step."""
        key = (self.chain.timestamp, self.chain.next_timestamp, id(self.model))
        if self._observed_key != key:
            self._observed, self._observed_balances = self._observe()
            self._observed_key = key
        return self._observed, self._observed_balances

    @invariant()
    def views_match_model(self):
        if self.model is None:
            return
        observed, _ = self._observation()
        model = self.model
        latest = self.chain.timestamp
        accounts = [self.address_of(name) for name in MONEY_ACCOUNTS]

        assert observed[("grantCount",)] == len(model.grants)
        for grant in model.grants.values():
            assert observed[("getGrant", grant.id)] == grant.view(latest), f"getGrant({grant.id})"
            assert observed[("getAttestors", grant.id)] == tuple(grant.attestors), f"getAttestors({grant.id})"
            assert observed[("getFunders", grant.id)] == tuple(grant.funders), f"getFunders({grant.id})"
            for index, milestone in enumerate(grant.milestones):
                assert observed[("getMilestone", grant.id, index)] == milestone.view(), (
                    f"getMilestone({grant.id}, {index})"
                )
                for evidence in EVIDENCE:
                    rejected = observed[("isEvidenceRejected", grant.id, index, evidence)]
                    assert rejected == (evidence in milestone.rejected_hashes), (
                        f"isEvidenceRejected({grant.id}, {index})"
                    )
            for account in accounts:
                contribution = observed[("contributionOf", grant.id, account)]
                assert contribution == grant.contributions.get(account, 0), (
                    f"contributionOf({grant.id}, {account})"
                )
                refunded = observed[("isRefunded", grant.id, account)]
                assert refunded == (account in grant.refunded), f"isRefunded({grant.id}, {account})"
        for token in TOKENS:
            token_address = self.deployment.token(token)
            assert observed[("totalHeld", token_address)] == model.total_held(token_address), (
                f"totalHeld({token})"
            )
            assert observed[("totalCredits", token_address)] == model.total_credits(token_address), (
                f"totalCredits({token})"
            )
            for account in accounts:
                credit = observed[("creditOf", account, token_address)]
                assert credit == model.credit_of(account, token_address), f"creditOf({account}, {token})"
        for (signer, digest), state in model.signatures.items():
            assert observed[("signatureState", signer, digest)] == state, (
                f"signatureState({signer}, {digest.hex()})"
            )
        assert observed[("projectCount",)] == len(model.projects)
        assert observed[("donationCount",)] == model.donation_count
        for project_id, project in model.projects.items():
            assert observed[("getProject", project_id)] == project.view(), f"getProject({project_id})"
            for token in TOKENS:
                token_address = self.deployment.token(token)
                donated = observed[("totalDonated", project_id, token_address)]
                assert donated == project.donated.get(token_address, 0), (
                    f"totalDonated({project_id}, {token})"
                )

    @invariant()
    def balances_match_model(self):
        """Check that every tracked balance is what the model moved, and that the registry keeps
        no money."""
        if self.model is None:
            return
        _, balances = self._observation()
        for (token, account), balance in balances.items():
            assert balance == self.model.balance(token, account), f"balance of {account} in {token}"
        for token in TOKENS:
            assert balances[(self.deployment.token(token), self.address_of("registry"))] == 0

    @invariant()
    def books_balance(self):
        """funded == released + reclaimed + held per grant, and the escrow covers what it owes."""
        if self.model is None:
            return
        observed, balances = self._observation()
        for grant in self.model.grants.values():
            view = observed[("getGrant", grant.id)]
            funded, released, reclaimed, held = view[9], view[10], view[11], view[12]
            assert funded == released + reclaimed + held, f"grant {grant.id} books"
        for token in TOKENS:
            token_address = self.deployment.token(token)
            held_sum = sum(
                observed[("getGrant", grant.id)][12]
                for grant in self.model.grants.values()
                if grant.token == token_address
            )
            assert observed[("totalHeld", token_address)] == held_sum, (
                f"totalHeld({token}) is not the sum of held"
            )
            credit_sum = sum(
                observed[("creditOf", account, token_address)]
                for account in map(self.address_of, MONEY_ACCOUNTS)
            )
            assert observed[("totalCredits", token_address)] == credit_sum, f"totalCredits({token})"
            escrow_balance = balances[(token_address, self.address_of("escrow"))]
            assert escrow_balance >= held_sum + credit_sum, f"escrow cannot cover {token}"

    @invariant()
    def statuses_move_forward(self):
        """Grant and milestone statuses, as the chain reports them, only take allowed steps."""
        if self.model is None:
            return
        # A step may send several calls, so these are the moves any chain of calls can make.
        # Rejected evidence sends a milestone back to AwaitingEvidence; settled ones never move.
        grant_steps = {
            (GrantStatus.FUNDING, GrantStatus.FUNDING_FAILED),
            (GrantStatus.FUNDING, GrantStatus.ACTIVE),
            (GrantStatus.FUNDING, GrantStatus.COMPLETED),
            (GrantStatus.ACTIVE, GrantStatus.COMPLETED),
        }
        milestone_steps = {
            (MilestoneStatus.AWAITING_EVIDENCE, MilestoneStatus.EVIDENCE_SUBMITTED),
            (MilestoneStatus.EVIDENCE_SUBMITTED, MilestoneStatus.AWAITING_EVIDENCE),
            (MilestoneStatus.AWAITING_EVIDENCE, MilestoneStatus.RELEASED),
            (MilestoneStatus.EVIDENCE_SUBMITTED, MilestoneStatus.RELEASED),
            (MilestoneStatus.AWAITING_EVIDENCE, MilestoneStatus.RECLAIMED),
            (MilestoneStatus.EVIDENCE_SUBMITTED, MilestoneStatus.RECLAIMED),
        }
        observed, _ = self._observation()
        for grant in self.model.grants.values():
            status = GrantStatus(observed[("getGrant", grant.id)][7])
            previous = self.observed_grant_statuses.get(grant.id, status)
            assert previous == status or (previous, status) in grant_steps, (
                f"grant {grant.id}: {previous!r} -> {status!r}"
            )
            self.observed_grant_statuses[grant.id] = status
            for index, _ in enumerate(grant.milestones):
                status = MilestoneStatus(observed[("getMilestone", grant.id, index)][2])
                previous = self.observed_milestone_statuses.get((grant.id, index), status)
                step = (previous, status)
                assert previous == status or step in milestone_steps, f"milestone {grant.id}/{index}: {step}"
                self.observed_milestone_statuses[(grant.id, index)] = status

    @invariant()
    def releases_once_before_deadline(self):
        """No milestone is released twice, and none at or after its deadline."""
        if self.model is None:
            return
        released = [(grant_id, index) for grant_id, index, _ in self.releases]
        assert len(released) == len(set(released)), f"a milestone was released twice: {released}"
        for grant_id, index, timestamp in self.releases:
            deadline = self.model.grants[grant_id].milestones[index].deadline
            assert timestamp < deadline, (
                f"milestone {grant_id}/{index} released at {timestamp}, deadline {deadline}"
            )

    @invariant()
    def reentry_always_fails(self):
        """The reentrant recipient never got back into the escrow during a payout."""
        if self.model is None:
            return
        observed, _ = self._observation()
        assert observed[("reentered",)] is False
        error = observed[("reentryError",)]
        assert error in (b"", keccak(text="ReentrancyGuardReentrantCall()")[:4]), (
            f"reentry failed with {error.hex()}"
        )

    def teardown(self):
        self.check_ledger()

    def check_ledger(self):
        """Rebuild the books from the events alone with the ledger index, and audit them against
        the chain: every view and the escrow's balances must agree.

        It runs once per example, at its end, because indexing and auditing read every event
        and view again, which after every step would multiply the profile's run time.
        """
        addresses = self.deployment.addresses
        records = {
            name: ContractRecord(address=addresses[key], block=0, tx_hash="0x" + "00" * 32)
            for name, key in ((ESCROW, "escrow"), (REGISTRY, "registry"))
        }
        web3 = Web3(HTTPProvider(self.chain.url))
        record = LedgerDeployment("anvil", web3.eth.chain_id, records, {})
        indexer = open_ledger(record, web3, database="sqlite://", abis=self.deployment.ledger_abis)
        indexer.sync()

        report = audit(indexer.ledger, ChainViews.of_ledger(indexer.ledger, web3))

        assert report.discrepancies == [], report.to_json()
        assert report.surpluses == [], report.to_json()


def _normalize_output(value):
    """Turn decoded addresses into checksummed strings and lists into tuples, recursively."""
    if isinstance(value, (list, tuple)):
        return tuple(_normalize_output(item) for item in value)
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return to_checksum_address(value)
    return value


def run_machine(deployment, profile):
    """Run the state machine with `profile`, after a seed fixed for `quick` or drawn and printed."""
    EscrowStateMachine.deployment = deployment
    if profile == "quick":
        chosen_seed = QUICK_SEED
    else:
        chosen_seed = int(os.environ.get("FUNDTRAIL_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
    print(f"state machine profile {profile}, seed {chosen_seed} (set FUNDTRAIL_FUZZ_SEED to repeat it)")
    machine = seed(chosen_seed)(EscrowStateMachine)
    OUTCOMES.clear()
    started = time.monotonic()
    try:
        run_state_machine_as_test(machine, settings=settings.get_profile(profile))
    finally:
        print(f"{sum(OUTCOMES.values())} calls in {time.monotonic() - started:.1f} s:")
        for (call, outcome), count in sorted(OUTCOMES.items()):
            print(f"  {call:45} {outcome:32} {count}")
        # `seed` marks the class itself; unmark it so that no other run inherits the seed.
        del EscrowStateMachine._hypothesis_internal_use_seed
        del EscrowStateMachine._hypothesis_internal_use_settings


def test_escrow_state_machine(deployment):
    run_machine(deployment, os.environ.get("FUNDTRAIL_FUZZ_PROFILE", "quick"))


# -- Regression tests: fixed step sequences, checked by the same model and invariants ------------


def run_steps(deployment, steps):
    """Run `steps(state)` on a fresh machine and check every invariant after it."""
    EscrowStateMachine.deployment = deployment
    OUTCOMES.clear()
    state = EscrowStateMachine()
    steps(state)
    for name in (
        "views_match_model",
        "balances_match_model",
        "books_balance",
        "statuses_move_forward",
        "releases_once_before_deadline",
        "reentry_always_fails",
        "check_ledger",
    ):
        getattr(state, name)()
    return state


def test_fee_token_funds_when_fee_rounds_to_zero(deployment):
    """A 1% fee token funds a grant in parts of 99 units, whose fee rounds down to zero. The
    release of 198 units then delivers 197, because the escrow pays out its booked amount and the
    token burns its fee from the transfer."""

    def steps(state):
        state.create_first_grant(
            token="fee",
            recipient="ngo",
            attestor_count=1,
            threshold_pick=0,
            funding_in=DAY,
            milestones=[(198, DAY)],
            funding="none",
            fault=None,
            fault_index=0,
        )
        state.fund(grant_pick=0, funder_kind=0, amount_kind="part", raw=98, value_kind="exact")
        state.fund(grant_pick=0, funder_kind=1, amount_kind="rest", raw=0, value_kind="exact")
        state.attest_to_quorum(grant_pick=0, index_pick=0, evidence_pick=0, funder_kind=0, last_vote_at=None)

    state = run_steps(deployment, steps)
    observed, balances = state._observation()
    fee_token = deployment.address("fee")
    grant_view = observed[("getGrant", 1)]
    assert grant_view[9:13] == (198, 198, 0, 0)
    assert balances[(fee_token, deployment.address("escrow"))] == 0
    assert (
        balances[(fee_token, deployment.address("ngo"))]
        == state.deployment.base_balances[(fee_token, deployment.address("ngo"))] + 197
    )


def test_fee_token_funding_of_100_units_reverts(deployment):
    """From 100 units on, the fee is at least one unit, and the escrow rejects the contribution."""

    def steps(state):
        state.create_first_grant(
            token="fee",
            recipient="ngo",
            attestor_count=1,
            threshold_pick=0,
            funding_in=DAY,
            milestones=[(100, DAY)],
            funding="all",
            fault=None,
            fault_index=0,
        )

    state = run_steps(deployment, steps)
    assert state.model.grants == {}
    assert OUTCOMES == {("escrow.createAndFundGrant", "TokenAmountMismatch"): 1}


def test_last_approval_at_milestone_deadline_reverts(deployment):
    """An approval that would reach the threshold exactly at the milestone deadline reverts, and
    a reclaim one second later succeeds."""

    def steps(state):
        state.create_first_grant(
            token="eth",
            recipient="ngo",
            attestor_count=2,
            threshold_pick=1,
            funding_in=DAY,
            milestones=[(1_000, DAY)],
            funding="all",
            fault=None,
            fault_index=0,
        )
        state.attest_to_quorum(grant_pick=0, index_pick=0, evidence_pick=0, funder_kind=0, last_vote_at=0)
        state.reclaim(grant_pick=0, index_pick=0)

    state = run_steps(deployment, steps)
    milestone = state.model.grants[1].milestones[0]
    assert milestone.status == MilestoneStatus.RECLAIMED
    assert state.releases == []
