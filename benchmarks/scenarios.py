"""The operations whose gas the benchmark measures, and the scenario that performs them.

The scenario deploys the contracts once and then runs the same round of grants, donations and
reference transactions twice. Only the second round is recorded, so every contract-wide value an
operation writes (the grant count, the ETH and token totals the escrow holds, the donation
count, the reentrancy guard) and every balance it changes is already non-zero. Those are the
"warm accounts" of docs/gas.md. What belongs to the new grant, milestone, funder or signature
starts at zero in both rounds, as it does on a live chain.
"""

from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3.contract import Contract
from web3.types import TxReceipt

from benchmarks.chain import BenchmarkError, Chain
from fundtrail import signing

ETH = "0x0000000000000000000000000000000000000000"
DAY = 24 * 60 * 60

MILESTONE_ETH = 10**18
"""Amount of each milestone of an ETH grant: 1 ETH."""

MILESTONE_TOKENS = 1_000 * 10**6
"""Amount of each milestone of a token grant: 1,000 units of a 6-decimal stablecoin."""

DONATION_ETH = 10**17
DONATION_TOKENS = 50 * 10**6
TRANSFER_TOKENS = 25 * 10**6

TERMS_URI = "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi/terms.pdf"
EVIDENCE_URI = "ipfs://bafybeihkoviema7g3gxyt6la7vd5ho32ictqbilu3wnlo3rs7ewhnp7lly/report.pdf"
SIGNATURE_LIFETIME = 7 * DAY


@dataclass(frozen=True)
class Operation:
    """One measured transaction: its snapshot key and what it does."""

    name: str
    description: str


OPERATIONS = (
    Operation(
        "create_and_fund_eth_3_milestones",
        "`createAndFundGrant` in ETH: 3 milestones, 3 attestors, M = 2, funded in full",
    ),
    Operation(
        "create_and_fund_erc20_3_milestones",
        "`createAndFundGrant` in an ERC-20 token, with the same terms",
    ),
    Operation("create_and_fund_eth_10_milestones", "`createAndFundGrant` in ETH, 10 milestones"),
    Operation("create_and_fund_eth_32_milestones", "`createAndFundGrant` in ETH, 32 milestones"),
    Operation("submit_evidence", "`submitEvidence` by the recipient"),
    Operation(
        "submit_evidence_relayed",
        "`submitEvidenceWithSignature`: the recipient's signed evidence, sent by a relayer",
    ),
    Operation("approve_below_quorum", "`approve`: the first of 2 needed approvals"),
    Operation(
        "approve_quorum_release_eth",
        "`approve` that reaches the quorum and pays the milestone in ETH (the grant's first "
        "release)",
    ),
    Operation(
        "approve_quorum_release_eth_later_milestone",
        "the same for a grant's second milestone, after one release",
    ),
    Operation(
        "approve_quorum_release_erc20",
        "`approve` that reaches the quorum and pays the milestone in the ERC-20 token (the "
        "grant's first release)",
    ),
    Operation(
        "approve_quorum_release_erc20_later_milestone",
        "the same for a grant's second milestone, after one release",
    ),
    Operation(
        "relay_2_approvals_release_eth",
        "`approveWithSignatures` with 2 signed approvals, which reach the quorum and pay in ETH",
    ),
    Operation("reclaim_1_funder", "`reclaim` of a lapsed ETH milestone, paid to 1 funder"),
    Operation("reclaim_5_funders", "`reclaim` of a lapsed ETH milestone, paid to 5 funders"),
    Operation(
        "withdraw_erc20_credit",
        "`withdraw` of a token credit left by a release while the token was paused",
    ),
    Operation("donate_eth", "`DonationRegistry.donate` in ETH to a verified project"),
    Operation("donate_erc20", "`DonationRegistry.donate` in the ERC-20 token"),
    Operation(
        "donate_to_grant_eth",
        "`DonationRegistry.donateToGrant` in ETH: the donor's first contribution to a grant",
    ),
    Operation(
        "reference_vesting_release_eth",
        "reference: OpenZeppelin 5.3.0 `VestingWallet.release()` of ETH (the wallet's first)",
    ),
    Operation(
        "reference_vesting_release_erc20",
        "reference: OpenZeppelin 5.3.0 `VestingWallet.release(token)` (the wallet's first)",
    ),
    Operation(
        "reference_erc20_transfer",
        "reference: OpenZeppelin 5.3.0 ERC-20 `transfer` between two holders",
    ),
)

OPERATION_NAMES = tuple(operation.name for operation in OPERATIONS)


@dataclass(frozen=True)
class Roles:
    deployer: LocalAccount
    grant_maker: LocalAccount
    ngo: LocalAccount
    attestors: tuple[LocalAccount, ...]
    co_funders: tuple[LocalAccount, ...]
    donor: LocalAccount
    relayer: LocalAccount
    project_payout: LocalAccount


@dataclass(frozen=True)
class Contracts:
    escrow: Contract
    registry: Contract
    stablecoin: Contract
    regulated_token: Contract
    project_id: int


def measure(chain: Chain) -> dict[str, TxReceipt]:
    """Deploy the contracts, run the round twice, and return the second round's receipts."""
    scenario = Scenario(chain)
    scenario.run_round()
    receipts = scenario.run_round()

    if set(receipts) != set(OPERATION_NAMES):
        raise BenchmarkError(
            f"The scenario measured {sorted(receipts)}, but OPERATIONS lists "
            f"{sorted(OPERATION_NAMES)}. Keep both in benchmarks/scenarios.py in step."
        )
    return {name: receipts[name] for name in OPERATION_NAMES}


class Scenario:
    """The benchmark's accounts and contracts, and the round of operations it measures."""

    def __init__(self, chain: Chain):
        self.chain = chain
        self.roles = Roles(
            deployer=chain.add_account("deployer"),
            grant_maker=chain.add_account("grant maker"),
            ngo=chain.add_account("ngo"),
            attestors=tuple(chain.add_account(f"attestor {i}") for i in range(3)),
            co_funders=tuple(chain.add_account(f"co-funder {i}") for i in range(4)),
            donor=chain.add_account("donor"),
            relayer=chain.add_account("relayer"),
            project_payout=chain.add_account("project payout"),
        )
        self.contracts = self._deploy()
        self.domain = signing.Domain.from_eip5267(
            *self.contracts.escrow.functions.eip712Domain().call()
        )

    def _deploy(self) -> Contracts:
        roles = self.roles
        deployer = roles.deployer
        escrow = self.chain.deploy("MilestoneEscrow", deployer)
        registry = self.chain.deploy("DonationRegistry", deployer, escrow.address, deployer.address)
        stablecoin = self.chain.deploy("MockERC20", deployer, "Test Dollar", "TUSD", 6)
        regulated_token = self.chain.deploy("BlocklistToken", deployer)

        holders = (roles.grant_maker, roles.donor, *roles.co_funders)
        for token in (stablecoin, regulated_token):
            for holder in holders:
                self._send(token.functions.mint(holder.address, 10**18), deployer, "mint")

        register = registry.functions.registerProject(
            roles.ngo.address, roles.project_payout.address, keccak(text="project"), TERMS_URI
        )
        self._send(register, roles.ngo, "register the project")
        project_id = registry.functions.projectCount().call()
        self._send(registry.functions.verifyProject(project_id), deployer, "verify the project")

        return Contracts(escrow, registry, stablecoin, regulated_token, project_id)

    def run_round(self) -> dict[str, TxReceipt]:
        """Run every operation once and return each one's receipt, by operation name."""
        receipts: dict[str, TxReceipt] = {}
        roles = self.roles
        contracts = self.contracts
        stablecoin = contracts.stablecoin
        first, second = roles.attestors[0], roles.attestors[1]

        # Every grant of the round shares one schedule: funding closes after a day, and
        # milestone i lapses after 30 * (i + 1) days.
        start = self.chain.now
        self.funding_deadline = start + DAY
        self.deadlines = tuple(start + 30 * DAY * (i + 1) for i in range(32))
        evidence = keccak(text=f"evidence {start}")

        # Grants created and funded in one transaction.
        receipts["create_and_fund_eth_3_milestones"] = self._create_and_fund(ETH, 3)
        eth_grant = self._latest_grant()
        receipts["create_and_fund_erc20_3_milestones"] = self._create_and_fund(stablecoin, 3)
        token_grant = self._latest_grant()
        receipts["create_and_fund_eth_10_milestones"] = self._create_and_fund(ETH, 10)
        receipts["create_and_fund_eth_32_milestones"] = self._create_and_fund(ETH, 32)

        # Evidence and approvals sent by their signers.
        receipts["submit_evidence"] = self._submit_evidence(eth_grant, 0, evidence)
        receipts["approve_below_quorum"] = self._approve(eth_grant, 0, evidence, first)
        receipts["approve_quorum_release_eth"] = self._approve(eth_grant, 0, evidence, second)

        self._submit_evidence(eth_grant, 1, evidence)
        self._approve(eth_grant, 1, evidence, first)
        receipts["approve_quorum_release_eth_later_milestone"] = self._approve(
            eth_grant, 1, evidence, second
        )

        self._submit_evidence(token_grant, 0, evidence)
        self._approve(token_grant, 0, evidence, first)
        receipts["approve_quorum_release_erc20"] = self._approve(token_grant, 0, evidence, second)

        self._submit_evidence(token_grant, 1, evidence)
        self._approve(token_grant, 1, evidence, first)
        receipts["approve_quorum_release_erc20_later_milestone"] = self._approve(
            token_grant, 1, evidence, second
        )

        # Evidence and approvals signed offline and sent by a relayer.
        self._create_and_fund(ETH, 3)
        relayed_grant = self._latest_grant()
        receipts["submit_evidence_relayed"] = self._relay_evidence(relayed_grant, 0, evidence)
        receipts["relay_2_approvals_release_eth"] = self._relay_approvals(
            relayed_grant, 0, evidence, (first, second)
        )

        # A grant of five funders, with milestones 0 and 1 released like the ETH grant's.
        shared_grant = self._create_shared_grant()
        for index in (0, 1):
            self._release(shared_grant, index, evidence)

        # A release while the regulated token is paused, which leaves the NGO a credit.
        self._leave_credit(evidence)

        # Donations: to the verified project, and into a grant that is still being funded.
        receipts["donate_eth"] = self._donate(ETH, DONATION_ETH)
        self._approve_token(stablecoin, roles.donor, DONATION_TOKENS)
        receipts["donate_erc20"] = self._donate(stablecoin.address, DONATION_TOKENS)
        self._send(
            contracts.escrow.functions.createGrant(self._terms(ETH, 3)),
            roles.grant_maker,
            "createGrant",
        )
        receipts["donate_to_grant_eth"] = self.chain.measure(
            contracts.registry.functions.donateToGrant(
                self._latest_grant(), DONATION_ETH, keccak(text="donor reference")
            ),
            roles.donor,
            value=DONATION_ETH,
            label="donateToGrant",
        )

        # OpenZeppelin references: a plain transfer, and a vesting wallet that vests over 180
        # days from now and is released after 90.
        receipts["reference_erc20_transfer"] = self.chain.measure(
            stablecoin.functions.transfer(roles.ngo.address, TRANSFER_TOKENS),
            roles.donor,
            label="ERC-20 transfer",
        )
        wallet = self._deploy_vesting_wallet()

        # After the last deadline: reclaims of milestone 2, the withdrawal and the releases.
        self.chain.travel_to(self.deadlines[2])
        receipts["reclaim_1_funder"] = self._reclaim(eth_grant, 2)
        receipts["reclaim_5_funders"] = self._reclaim(shared_grant, 2)
        receipts["withdraw_erc20_credit"] = self.chain.measure(
            contracts.escrow.functions.withdraw(
                contracts.regulated_token.address, roles.ngo.address
            ),
            roles.ngo,
            label="withdraw",
        )
        receipts["reference_vesting_release_eth"] = self.chain.measure(
            wallet.functions.release(), roles.ngo, label="VestingWallet.release()"
        )
        receipts["reference_vesting_release_erc20"] = self.chain.measure(
            wallet.functions.release(stablecoin.address),
            roles.ngo,
            label="VestingWallet.release(token)",
        )
        return receipts

    # Grants.

    def _terms(self, token, milestone_count: int) -> tuple:
        """Return GrantTerms: 3 attestors, M = 2, `milestone_count` equal milestones."""
        token_address = token if token == ETH else token.address
        amount = MILESTONE_ETH if token == ETH else MILESTONE_TOKENS
        return (
            self.roles.ngo.address,
            token_address,
            self.funding_deadline,
            2,
            [attestor.address for attestor in self.roles.attestors],
            [(amount, self.deadlines[i]) for i in range(milestone_count)],
            keccak(text=f"terms {self.funding_deadline}"),
            TERMS_URI,
        )

    def _create_and_fund(self, token, milestone_count: int) -> TxReceipt:
        """Create and fully fund a grant from the grant maker."""
        terms = self._terms(token, milestone_count)
        total = sum(amount for amount, _ in terms[5])
        if token != ETH:
            self._approve_token(token, self.roles.grant_maker, total)
        return self.chain.measure(
            self.contracts.escrow.functions.createAndFundGrant(terms, total),
            self.roles.grant_maker,
            value=total if token == ETH else 0,
            label=f"createAndFundGrant with {milestone_count} milestones",
        )

    def _create_shared_grant(self) -> int:
        """Create an ETH grant that the grant maker and four co-funders fund in equal parts."""
        funders = (self.roles.grant_maker, *self.roles.co_funders)
        terms = self._terms(ETH, 3)
        share = 3 * MILESTONE_ETH // len(funders)
        escrow = self.contracts.escrow
        self._send(
            escrow.functions.createAndFundGrant(terms, share),
            funders[0],
            "createAndFundGrant",
            share,
        )
        grant_id = self._latest_grant()
        for funder in funders[1:]:
            self._send(escrow.functions.fund(grant_id, share), funder, "fund", share)
        return grant_id

    def _latest_grant(self) -> int:
        return self.contracts.escrow.functions.grantCount().call()

    # Milestones.

    def _submit_evidence(self, grant_id: int, index: int, evidence: bytes) -> TxReceipt:
        return self.chain.measure(
            self.contracts.escrow.functions.submitEvidence(grant_id, index, evidence, EVIDENCE_URI),
            self.roles.ngo,
            label="submitEvidence",
        )

    def _approve(self, grant_id: int, index: int, evidence: bytes, attestor) -> TxReceipt:
        return self.chain.measure(
            self.contracts.escrow.functions.approve(grant_id, index, evidence),
            attestor,
            label="approve",
        )

    def _release(self, grant_id: int, index: int, evidence: bytes) -> None:
        """Submit evidence for a milestone and release it with two approvals."""
        self._submit_evidence(grant_id, index, evidence)
        for attestor in self.roles.attestors[:2]:
            self._approve(grant_id, index, evidence, attestor)

    def _reclaim(self, grant_id: int, index: int) -> TxReceipt:
        return self.chain.measure(
            self.contracts.escrow.functions.reclaim(grant_id, index),
            self.roles.relayer,
            label="reclaim",
        )

    def _leave_credit(self, evidence: bytes) -> None:
        """Release a regulated-token milestone while the token is paused, crediting the NGO."""
        token = self.contracts.regulated_token
        grant_maker = self.roles.grant_maker
        self._create_and_fund(token, 3)
        grant_id = self._latest_grant()
        self._submit_evidence(grant_id, 0, evidence)
        self._approve(grant_id, 0, evidence, self.roles.attestors[0])
        self._send(token.functions.pause(), grant_maker, "pause the token")
        self._approve(grant_id, 0, evidence, self.roles.attestors[1])
        self._send(token.functions.unpause(), grant_maker, "unpause the token")

        credit = self.contracts.escrow.functions.creditOf(
            self.roles.ngo.address, token.address
        ).call()
        if credit != MILESTONE_TOKENS:
            raise BenchmarkError(
                f"The paused release left a credit of {credit}, not {MILESTONE_TOKENS}. Fix "
                "_leave_credit in benchmarks/scenarios.py to match how the escrow pays out."
            )

    # Typed signatures, made with the library that FundTrail's relay commands use.

    def _sign(self, kind: str, signer: LocalAccount, message: dict) -> bytes:
        signed = signing.sign_message(_LocalSigner(signer), kind, self.domain, message)
        return signed.signature_bytes

    def _relay_evidence(self, grant_id: int, index: int, evidence: bytes) -> TxReceipt:
        expiry = self.chain.now + SIGNATURE_LIFETIME
        ngo = self.roles.ngo
        message = signing.evidence_message(
            ngo.address, grant_id, index, evidence, EVIDENCE_URI, expiry
        )
        signature = self._sign(signing.EVIDENCE_SUBMISSION, ngo, message)
        return self.chain.measure(
            self.contracts.escrow.functions.submitEvidenceWithSignature(
                grant_id, index, evidence, EVIDENCE_URI, expiry, signature
            ),
            self.roles.relayer,
            label="submitEvidenceWithSignature",
        )

    def _relay_approvals(self, grant_id: int, index: int, evidence: bytes, attestors) -> TxReceipt:
        expiry = self.chain.now + SIGNATURE_LIFETIME
        approvals = []
        for attestor in attestors:
            message = signing.approval_message(attestor.address, grant_id, index, evidence, expiry)
            signature = self._sign(signing.MILESTONE_APPROVAL, attestor, message)
            approvals.append((attestor.address, expiry, signature))
        return self.chain.measure(
            self.contracts.escrow.functions.approveWithSignatures(
                grant_id, index, evidence, approvals
            ),
            self.roles.relayer,
            label="approveWithSignatures",
        )

    # Donations, tokens and references.

    def _donate(self, token: str, amount: int) -> TxReceipt:
        return self.chain.measure(
            self.contracts.registry.functions.donate(
                self.contracts.project_id, token, amount, keccak(text="donor reference")
            ),
            self.roles.donor,
            value=amount if token == ETH else 0,
            label="donate",
        )

    def _approve_token(self, token: Contract, owner: LocalAccount, amount: int) -> None:
        """Let the escrow or the registry take exactly `amount`, as FundTrail's client does."""
        spender = self.contracts.registry if owner == self.roles.donor else self.contracts.escrow
        self._send(token.functions.approve(spender.address, amount), owner, "approve the token")

    def _deploy_vesting_wallet(self) -> Contract:
        roles = self.roles
        wallet = self.chain.deploy(
            "ReferenceVestingWallet", roles.deployer, roles.ngo.address, self.chain.now, 180 * DAY
        )
        self.chain.send_eth(roles.deployer, wallet.address, 10 * MILESTONE_ETH)
        self._send(
            self.contracts.stablecoin.functions.transfer(wallet.address, 10 * MILESTONE_TOKENS),
            roles.grant_maker,
            "fund the vesting wallet",
        )
        return wallet

    def _send(self, call, sender: LocalAccount, label: str, value: int = 0) -> None:
        self.chain.transact(call, sender, value=value, label=label)


class _LocalSigner:
    """A `fundtrail.signing.Signer` over a local private key."""

    def __init__(self, account: LocalAccount):
        self.account = account
        self.address = account.address

    def sign_typed_data(self, typed_data: dict) -> bytes:
        return bytes(self.account.sign_typed_data(full_message=typed_data).signature)
