"""The FundTrail demo: one realistic grant lifecycle on a local chain, from deploy to payout.

The demo plays every role with ape's test accounts, so it runs only on local chains
(`ethereum:local:test` or `ethereum:local:foundry`), where those accounts are funded and time
can be moved forward. It returns what happened and never prints: the CLI renders it.
"""

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fundtrail.client import FundTrail
from fundtrail.deployments import Deployment
from fundtrail.donor import donor_commitment
from fundtrail.evidence import hash_file
from fundtrail.spec import GrantSpec, resolve_address
from fundtrail.units import TokenInfo, parse_amount

logger = logging.getLogger(__name__)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
"""The repository's examples folder, which contains the grant spec and the evidence files."""

STABLECOIN_SYMBOL = "USDC"

# Public locations of the evidence files. Only these URIs and the files' hashes go on-chain.
EVIDENCE = (
    ("evidence/01-hotline-staffing-report.md", "ipfs://bafkreidemo01hotlinestaffingreport"),
    ("evidence/02-shelter-beds-report.md", "ipfs://bafkreidemo02shelterbedsreport"),
)
PROJECT_METADATA = "project.md"
PROJECT_METADATA_URI = "ipfs://bafkreidemoprojectsafepassage"

# Funding in whole tokens; the grant spec's milestones add up to GRANT_MAKER_SHARE + DONOR_SHARE.
GRANT_MAKER_SHARE = "40,000 USDC"
DONOR_SHARE = "5,000 USDC"
DIRECT_GIFT = "1,000 USDC"


@dataclass(frozen=True)
class Roles:
    """The demo's parties, all ape test accounts."""

    deployer: object
    grant_maker: object
    ngo: object
    attestors: tuple
    direct_donor: object
    grant_donor: object
    keeper: object

    @classmethod
    def from_test_accounts(cls, accounts) -> "Roles":
        # These indices match the addresses in examples/grant-hotline.yaml.
        return cls(
            deployer=accounts[0],
            grant_maker=accounts[1],
            ngo=accounts[2],
            attestors=(accounts[3], accounts[4], accounts[5]),
            direct_donor=accounts[6],
            grant_donor=accounts[7],
            keeper=accounts[8],
        )


@dataclass(frozen=True)
class Step:
    """One transaction of the demo, for the trail."""

    number: int
    action: str
    txn_hash: str
    block: int
    gas_used: int


@dataclass
class DemoResult:
    client: FundTrail
    token: TokenInfo
    stablecoin: object
    roles: Roles
    grant_id: int
    project_id: int
    deployment: Deployment
    """Record of the contracts the demo deployed, for the ledger."""
    steps: list[Step] = field(default_factory=list)


def run_demo(
    accounts,
    on_step: Callable[[Step], None] | None = None,
    *,
    offline_folder: Path | None = None,
) -> DemoResult:
    """Run the whole lifecycle with `accounts` (ape's test accounts) and return what happened.

    `on_step` is called after every transaction, so a caller can show progress. With
    `offline_folder`, milestone 1 goes the offline way: the NGO and two attestors sign files
    from a grant snapshot, and a keeper relays them from an inbox in that folder.
    """
    from ape import chain, project

    roles = Roles.from_test_accounts(accounts)
    steps: list[Step] = []

    def record(number: int, action: str, receipt) -> None:
        step = Step(number, action, receipt.txn_hash, receipt.block_number, receipt.gas_used)
        steps.append(step)
        logger.info("Step %s: %s in %s", number, action, receipt.txn_hash)
        if on_step is not None:
            on_step(step)

    # Set-up: the stablecoin, the contracts, and the money each party starts with.
    stablecoin = roles.deployer.deploy(project.TestStablecoin, roles.deployer.address)
    deployment = FundTrail.deploy(
        roles.deployer,
        registrar=roles.deployer.address,
        network=chain.provider.network_choice,
        tokens={STABLECOIN_SYMBOL: stablecoin.address},
    )
    client = FundTrail.from_deployment(deployment)
    token = client.token_info(STABLECOIN_SYMBOL)
    starting_balances = (
        (roles.grant_maker, GRANT_MAKER_SHARE),
        (roles.grant_donor, DONOR_SHARE),
        (roles.direct_donor, DIRECT_GIFT),
    )
    for holder, amount in starting_balances:
        stablecoin.mint(holder, parse_amount(amount, token, "demo"), sender=roles.deployer)

    # 1. The NGO registers its project and the registrar verifies it.
    project_id, receipt = client.register_project(
        roles.ngo.address,
        roles.ngo.address,
        hash_file(EXAMPLES / PROJECT_METADATA),
        PROJECT_METADATA_URI,
        sender=roles.ngo,
    )
    record(1, f"NGO registers project {project_id}", receipt)
    record(1, "Registrar verifies the project", client.verify_project(project_id, roles.deployer))

    # 2. The grant maker creates the grant from its spec; grant maker and donor co-fund it.
    spec = GrantSpec.from_yaml(EXAMPLES / "grant-hotline.yaml")
    resolved = spec.resolve(now=client.now(), token=token, resolve_account=resolve_address)
    grant_id, receipt = client.create_grant(resolved, roles.grant_maker)
    record(2, f"Grant maker creates grant {grant_id} from grant-hotline.yaml", receipt)
    grant_maker_share = parse_amount(GRANT_MAKER_SHARE, token, "demo")
    receipt = client.fund(grant_id, grant_maker_share, roles.grant_maker)
    record(2, f"Grant maker funds {GRANT_MAKER_SHARE}", receipt)
    grant_donor_ref = donor_commitment(b"demo salt, kept by the donor", "gift to hotline grant")
    _, receipt = client.donate_to_grant(
        grant_id, parse_amount(DONOR_SHARE, token, "demo"), grant_donor_ref, roles.grant_donor
    )
    record(2, f"Donor gives {DONOR_SHARE} into the grant and becomes a co-funder", receipt)

    # 3. Another donor gives straight to the verified project.
    direct_donor_ref = donor_commitment(b"another salt, kept by its donor", "direct gift")
    _, receipt = client.donate(
        project_id,
        token.address,
        parse_amount(DIRECT_GIFT, token, "demo"),
        direct_donor_ref,
        roles.direct_donor,
    )
    record(3, f"Donor gives {DIRECT_GIFT} directly to the project", receipt)

    # 4. Evidence for milestones 0 and 1; two of three attestors approve each, which releases
    # the payment in the second approval's transaction.
    approvers = ((roles.attestors[0], roles.attestors[1]), (roles.attestors[1], roles.attestors[2]))
    for index, ((relative_path, uri), pair) in enumerate(zip(EVIDENCE, approvers)):
        evidence_hash = hash_file(EXAMPLES / relative_path)
        if offline_folder is not None and index == 1:
            for step in _relay_offline(client, roles, grant_id, index, evidence_hash, uri, pair,
                                       offline_folder):
                record(4, step[0], step[1])
            continue
        receipt = client.submit_evidence(grant_id, index, evidence_hash, uri, roles.ngo)
        record(4, f"NGO submits evidence for milestone {index}", receipt)
        for attestor in pair:
            receipt = client.approve(grant_id, index, evidence_hash, attestor)
            record(4, f"Attestor {attestor.address[:10]} approves milestone {index}", receipt)

    # 5. Milestone 2 gets no evidence. Time moves past its deadline. The stablecoin's issuer
    # pauses transfers during an incident, so the reclaim credits the funders instead of paying
    # them; once transfers resume, each funder withdraws.
    deadline = client.grant(grant_id).milestones[2].deadline
    chain.pending_timestamp = deadline
    stablecoin.pause(sender=roles.deployer)
    receipt = client.reclaim(grant_id, 2, roles.grant_maker)
    record(5, "Milestone 2 missed its deadline: reclaimed pro rata, credited (token paused)", receipt)
    stablecoin.unpause(sender=roles.deployer)
    for funder in (roles.grant_maker, roles.grant_donor):
        receipt = client.withdraw(token.address, funder.address, funder)
        record(5, f"Funder {funder.address[:10]} withdraws its credit", receipt)

    return DemoResult(client, token, stablecoin, roles, grant_id, project_id, deployment, steps)


@dataclass(frozen=True)
class Reconciliation:
    """The books of the demo grant and the token balances that must match them."""

    funded: int
    released: int
    reclaimed: int
    held: int
    escrow_balance: int
    escrow_held: int
    escrow_credits: int
    balances: dict[str, int]
    problems: list[str]


def reconcile(result: DemoResult) -> Reconciliation:
    """Check the grant's books and the escrow's token balance, and list any mismatch."""
    grant = result.client.grant(result.grant_id)
    escrow = result.client.escrow
    token = result.token.address
    escrow_balance = result.stablecoin.balanceOf(escrow.address)
    escrow_held = escrow.totalHeld(token)
    escrow_credits = escrow.totalCredits(token)
    roles = result.roles
    balances = {
        "NGO (recipient and project payout)": result.stablecoin.balanceOf(roles.ngo),
        "Grant maker": result.stablecoin.balanceOf(roles.grant_maker),
        "Donor into the grant": result.stablecoin.balanceOf(roles.grant_donor),
        "Direct donor": result.stablecoin.balanceOf(roles.direct_donor),
        "Escrow": escrow_balance,
    }

    problems = []
    if grant.funded != grant.released + grant.reclaimed + grant.held:
        problems.append(
            f"grant {grant.grant_id}: funded {grant.funded} != released {grant.released} "
            f"+ reclaimed {grant.reclaimed} + held {grant.held}"
        )
    if escrow_balance < escrow_held + escrow_credits:
        problems.append(
            f"escrow balance {escrow_balance} < held {escrow_held} + credits {escrow_credits}"
        )
    minted = sum(parse_amount(amount, result.token, "demo") for amount in (
        GRANT_MAKER_SHARE, DONOR_SHARE, DIRECT_GIFT
    ))
    if sum(balances.values()) != minted:
        problems.append(f"balances add up to {sum(balances.values())}, but {minted} was minted")

    return Reconciliation(
        grant.funded,
        grant.released,
        grant.reclaimed,
        grant.held,
        escrow_balance,
        escrow_held,
        escrow_credits,
        balances,
        problems,
    )


def _relay_offline(client, roles: Roles, grant_id, index, evidence_hash, uri, pair, folder: Path):
    """Sign milestone `index`'s evidence and approvals into files, then let a keeper relay them.

    Returns `(action, receipt)` for each transaction the keeper sent. The NGO and the attestors
    only sign: the signing reads the snapshot file and never the chain.
    """
    from ape import chain

    from fundtrail.keeper import Keeper, KeeperStore, relay_inbox_handler
    from fundtrail.signing import (
        EVIDENCE_SUBMISSION,
        MILESTONE_APPROVAL,
        ApeAccountSigner,
        approval_message,
        evidence_message,
        sign_message,
    )
    from fundtrail.snapshot import GrantSnapshot, export_snapshot

    folder.mkdir(parents=True, exist_ok=True)
    inbox = folder / "inbox"
    # A keeper database from an earlier run belongs to another chain, whose blocks this one
    # would skip, so the demo starts its own files afresh.
    for stale in (folder / "keeper.sqlite3", *folder.glob("grant-*.json")):
        stale.unlink(missing_ok=True)
    shutil.rmtree(inbox, ignore_errors=True)
    inbox.mkdir()

    # Online, once: the grant maker exports the snapshot the others sign from.
    snapshot_path = folder / f"grant-{grant_id}.json"
    export_snapshot(client, grant_id).save(snapshot_path)

    # Offline: every signer works from the snapshot file alone.
    snapshot = GrantSnapshot.load(snapshot_path)
    expiry = snapshot.block_timestamp + 7 * 24 * 60 * 60
    domain = snapshot.eip712_domain
    evidence = evidence_message(roles.ngo.address, grant_id, index, evidence_hash, uri, expiry)
    sign_message(ApeAccountSigner(roles.ngo), EVIDENCE_SUBMISSION, domain, evidence).save(
        inbox / "evidence-ngo.json"
    )
    for attestor in pair:
        message = approval_message(attestor.address, grant_id, index, evidence_hash, expiry)
        sign_message(ApeAccountSigner(attestor), MILESTONE_APPROVAL, domain, message).save(
            inbox / f"approval-{attestor.address[:10]}.json"
        )

    # Online: the keeper relays the inbox in one cycle and pays the gas.
    store = KeeperStore(folder / "keeper.sqlite3")
    try:
        keeper = Keeper(
            client,
            roles.keeper,
            store,
            inbox=inbox,
            inbox_handler=relay_inbox_handler(client, roles.keeper),
        )
        keeper.run_once()
        signers_by_transaction: dict[str, list[str]] = {}
        for action in store.actions():
            signers_by_transaction.setdefault(action.tx_hash, []).append(action.detail["signer"])
    finally:
        store.close()

    steps = []
    for tx_hash, signers in signers_by_transaction.items():
        if signers == [roles.ngo.address]:
            action = f"Keeper relays the NGO's signed evidence for milestone {index}"
        else:
            action = f"Keeper relays {len(signers)} signed approvals: milestone {index} released"
        steps.append((action, chain.get_receipt(tx_hash)))
    return steps


DEMO_FOLDER = Path(".fundtrail/demo")
"""Folder of the demo's ledger database and dashboard, relative to the working folder."""


@dataclass
class DemoLedger:
    """Output of the demo's read side, built from the events of its run."""

    sync: object
    """The `SyncResult` of indexing every event of the run."""
    audit: object
    """The `AuditReport` of the rebuilt books against the chain."""
    donor_statement: object
    """The `DonorStatement` of the donor who gave into the grant."""
    dashboard: Path
    """The dashboard's start page."""
    database: Path


def read_back(result: DemoResult, folder: Path = DEMO_FOLDER) -> DemoLedger:
    """Index the run's events into a new ledger, audit it, state the grant donor's gifts and write
    the dashboard, as a donor or an auditor would after the run."""
    from ape import chain

    from fundtrail.ledger import open_ledger
    from fundtrail.ledger.audit import audit
    from fundtrail.ledger.dashboard import build_dashboard
    from fundtrail.ledger.statements import Source, donor_statement, load_books
    from fundtrail.ledger.views import ChainViews

    web3 = chain.provider.web3
    folder.mkdir(parents=True, exist_ok=True)
    # Every run deploys new contracts, so the previous run's ledger belongs to other contracts.
    database = folder / "ledger.sqlite"
    database.unlink(missing_ok=True)
    indexer = open_ledger(result.deployment, web3, database=str(database))
    sync = indexer.sync()
    logger.info("Indexed %s events of the demo into %s", sync.events, database)

    report = audit(
        indexer.ledger,
        ChainViews.of_ledger(indexer.ledger, web3),
        tokens=tuple(result.deployment.tokens.values()),
    )
    statement = donor_statement(
        load_books(indexer.ledger),
        result.roles.grant_donor.address,
        result.client.token_info,
        Source.from_ledger(indexer.ledger),
    )
    _, start_page = build_dashboard(indexer.ledger, result.client.token_info, folder / "dashboard")
    return DemoLedger(sync, report, statement, start_page, database)
