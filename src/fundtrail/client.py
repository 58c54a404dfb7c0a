"""The FundTrail client: every escrow and registry action, checked against the chain first.

Each method that sends a transaction reads what it can cheaply (the grant, the milestone, the
caller's role, balances) and raises `PreconditionError` before sending anything when the
contracts would revert. Methods return receipts, and the new id where a transaction creates
something. Nothing here prints, because the CLI renders the results.
"""

import logging

from eth_utils import is_address, to_checksum_address

from fundtrail import checks
from fundtrail.checks import PreconditionError
from fundtrail.contracts import ESCROW, REGISTRY, deploy_contracts, erc20_at, escrow_at, registry_at
from fundtrail.deployments import Deployment
from fundtrail.errors import DeploymentError, SpecError
from fundtrail.grants import GrantSummary, read_grant
from fundtrail.privacy import check_public_text
from fundtrail.units import ETH, ETH_ADDRESS, TokenInfo

logger = logging.getLogger(__name__)

PROJECT_STATUSES = ("Pending", "Verified", "Suspended")
"""`IDonationRegistry.ProjectStatus`, in the same order."""


class FundTrail:
    """Client for one deployment of the escrow and the donation registry."""

    def __init__(
        self, escrow, registry, *, start_block: int = 0, tokens: dict[str, str] | None = None
    ):
        self.escrow = escrow
        self.registry = registry
        self.start_block = start_block
        """First block searched for escrow events: the escrow's deploy block."""
        self.tokens = dict(tokens or {})
        """Known token addresses by symbol, such as `{"USDC": "0x..."}`."""
        self._token_infos: dict[str, TokenInfo] = {ETH_ADDRESS: ETH}

    @classmethod
    def from_deployment(cls, deployment: Deployment) -> "FundTrail":
        """Load the contracts of `deployment`, which must be on the connected chain."""
        from ape import chain

        if deployment.chain_id != chain.chain_id:
            raise DeploymentError(
                f"The {deployment.network} deployment is on chain {deployment.chain_id}, but the "
                f"connected chain is {chain.chain_id}. Connect to the chain it was deployed on, "
                f"or deploy again with `fundtrail deploy --network {deployment.network}`."
            )
        escrow_record = deployment.contract(ESCROW)
        registry_record = deployment.contract(REGISTRY)
        for name, record in ((ESCROW, escrow_record), (REGISTRY, registry_record)):
            if not chain.provider.get_code(record.address):
                raise DeploymentError(
                    f"No contract at the recorded {name} address {record.address} on "
                    f"{deployment.network}. A local chain restarts empty, so run "
                    f"`fundtrail deploy --network {deployment.network}` again."
                )
        return cls(
            escrow_at(escrow_record.address),
            registry_at(registry_record.address),
            start_block=escrow_record.block,
            tokens=deployment.tokens,
        )

    @staticmethod
    def deploy(
        account, *, registrar: str, network: str, tokens: dict[str, str] | None = None
    ) -> Deployment:
        """Deploy both contracts from `account` and return the record to save for `network`."""
        return deploy_contracts(account, registrar=registrar, network=network, tokens=tokens)

    # Tokens.

    def token_info(self, address_or_symbol: str) -> TokenInfo:
        """Return the symbol and decimals of "ETH", a symbol from the deployment, or an address.

        Token contracts are asked for their symbol and decimals, once per address.
        """
        text = str(address_or_symbol).strip()
        if text.upper() == "ETH":
            return ETH
        by_symbol = {symbol.casefold(): address for symbol, address in self.tokens.items()}
        if text.casefold() in by_symbol:
            text = by_symbol[text.casefold()]
        elif not is_address(text):
            known = ", ".join(["ETH", *self.tokens]) or "ETH"
            raise SpecError(
                "token",
                address_or_symbol,
                "neither ETH, a known token symbol nor an address",
                f"Use one of {known}, or the token's address. Add symbols under `tokens` in "
                "the deployments file.",
            )

        address = to_checksum_address(text)
        if address not in self._token_infos:
            token = erc20_at(address)
            self._token_infos[address] = TokenInfo(
                address=address, symbol=token.symbol(), decimals=token.decimals()
            )
            logger.debug("Read token %s at %s", self._token_infos[address].symbol, address)
        return self._token_infos[address]

    # Reads.

    def grant_token(self, grant_id: int) -> TokenInfo:
        """Return the token grant `grant_id` is paid in, so amounts can be parsed in its units."""
        return self.token_info(checks.require_grant(self.escrow, grant_id).token)

    def grant_count(self) -> int:
        return self.escrow.grantCount()

    def grant(self, grant_id: int) -> GrantSummary:
        """Return grant `grant_id` with its books, milestones and funders."""
        view = checks.require_grant(self.escrow, grant_id)
        return read_grant(
            self.escrow, grant_id, self.token_info(view.token), start_block=self.start_block
        )

    def grants(self) -> list[GrantSummary]:
        """Return every grant, oldest first."""
        return [self.grant(grant_id) for grant_id in range(1, self.grant_count() + 1)]

    def now(self) -> int:
        """Return the timestamp the next block will have, which is what deadlines compare to."""
        from ape import chain

        return chain.pending_timestamp

    # Grant makers and funders.

    def create_grant(self, resolved, sender, fund: bool = False):
        """Create the grant described by `resolved`, and fund it in full when `fund` is true.

        For an ERC-20 grant that is funded, the escrow is first approved to take the total.
        Returns `(grant_id, receipt)`.
        """
        terms = resolved.as_terms()
        if not fund:
            receipt = self.escrow.createGrant(terms, sender=sender)
        else:
            self._prepare_payment(
                resolved.token, resolved.total, sender, spender=self.escrow.address
            )
            receipt = self.escrow.createAndFundGrant(
                terms,
                resolved.total,
                sender=sender,
                value=self._eth_value(resolved.token, resolved.total),
            )

        grant_id = self.escrow.GrantCreated.from_receipt(receipt)[0].grantId
        logger.info("Created grant %s in transaction %s", grant_id, receipt.txn_hash)
        return grant_id, receipt

    def fund(self, grant_id: int, amount: int, sender):
        """Add `amount` base units to a grant as `sender`'s contribution."""
        grant = checks.require_grant(self.escrow, grant_id)
        token = self.token_info(grant.token)
        checks.require_positive(amount, token)
        checks.require_funding_open(grant_id, grant, amount, token, self.now())
        self._prepare_payment(token, amount, sender, spender=self.escrow.address)

        receipt = self.escrow.fund(
            grant_id, amount, sender=sender, value=self._eth_value(token, amount)
        )
        logger.info("Funded grant %s with %s base units in %s", grant_id, amount, receipt.txn_hash)
        return receipt

    def refund(self, grant_id: int, funder: str, sender):
        """Return `funder`'s contribution to a grant that missed full funding by its deadline."""
        grant = checks.require_grant(self.escrow, grant_id)
        checks.require_funding_failed(grant_id, grant, self.now())
        if self.escrow.contributionOf(grant_id, funder) == 0 or self.escrow.isRefunded(
            grant_id, funder
        ):
            raise PreconditionError(
                "funder",
                funder,
                f"has nothing to take back from grant {grant_id}",
                "Check the funder's address in `fundtrail grant show`. Each contribution is "
                "refunded once.",
            )

        receipt = self.escrow.refund(grant_id, funder, sender=sender)
        logger.info("Refunded %s from grant %s in %s", funder, grant_id, receipt.txn_hash)
        return receipt

    # Recipients and attestors.

    def submit_evidence(
        self,
        grant_id: int,
        index: int,
        evidence_hash: bytes,
        uri: str,
        sender,
        allow_personal_data: bool = False,
    ):
        """Submit the hash and URI of a milestone's evidence as the grant's recipient.

        The URI is published on-chain, so it is checked for personal data first.
        """
        check_public_text("evidence URI", uri, allow_personal_data=allow_personal_data)
        checks.require_hash("evidence hash", evidence_hash)
        grant = checks.require_grant(self.escrow, grant_id)
        milestone = checks.require_milestone(self.escrow, grant_id, grant, index)
        if sender.address != grant.recipient:
            raise PreconditionError(
                "sender",
                sender.address,
                f"not the recipient of grant {grant_id}",
                f"Send from the recipient, {grant.recipient}.",
            )
        checks.require_fully_funded(grant_id, grant, self.token_info(grant.token))
        checks.require_before_deadline(grant_id, index, milestone, self.now())
        if bytes(milestone.evidenceHash) == evidence_hash:
            raise PreconditionError(
                "evidence hash",
                "0x" + evidence_hash.hex(),
                f"already the current evidence of milestone {index}",
                "Wait for the attestors, or submit a different file.",
            )
        if self.escrow.isEvidenceRejected(grant_id, index, evidence_hash):
            raise PreconditionError(
                "evidence hash",
                "0x" + evidence_hash.hex(),
                f"the attestors rejected this evidence for milestone {index}, "
                "so it can never be paid",
                "Submit new evidence that answers the attestors' reasons.",
            )

        receipt = self.escrow.submitEvidence(grant_id, index, evidence_hash, uri, sender=sender)
        logger.info(
            "Submitted evidence for milestone %s of grant %s in %s",
            index,
            grant_id,
            receipt.txn_hash,
        )
        return receipt

    def approve(self, grant_id: int, index: int, evidence_hash: bytes, sender):
        """Approve the milestone's current evidence. The approval reaching the threshold pays it."""
        self._require_vote(grant_id, index, evidence_hash, sender)
        receipt = self.escrow.approve(grant_id, index, evidence_hash, sender=sender)
        logger.info("Approved milestone %s of grant %s in %s", index, grant_id, receipt.txn_hash)
        return receipt

    def reject(self, grant_id: int, index: int, evidence_hash: bytes, reason_hash: bytes, sender):
        """Reject the milestone's current evidence, with the hash of the written reasons."""
        checks.require_hash("reason hash", reason_hash)
        self._require_vote(grant_id, index, evidence_hash, sender)
        receipt = self.escrow.reject(grant_id, index, evidence_hash, reason_hash, sender=sender)
        logger.info("Rejected milestone %s of grant %s in %s", index, grant_id, receipt.txn_hash)
        return receipt

    def reclaim(self, grant_id: int, index: int, sender):
        """Return a milestone that missed its deadline to the funders, pro rata."""
        grant = checks.require_grant(self.escrow, grant_id)
        milestone = checks.require_milestone(self.escrow, grant_id, grant, index)
        checks.require_fully_funded(grant_id, grant, self.token_info(grant.token))
        checks.require_unsettled(grant_id, index, milestone)
        if self.now() < milestone.deadline:
            raise PreconditionError(
                "milestone index",
                index,
                f"milestone {index} of grant {grant_id} is open until "
                f"{checks.show_time(milestone.deadline)}",
                "Reclaim it at or after its deadline, if it is still not released then.",
            )

        receipt = self.escrow.reclaim(grant_id, index, sender=sender)
        logger.info("Reclaimed milestone %s of grant %s in %s", index, grant_id, receipt.txn_hash)
        return receipt

    def withdraw(self, token: str, to: str, sender):
        """Withdraw `sender`'s whole credit in `token` (an address, ETH_ADDRESS for ETH) to `to`."""
        checks.require_address("to", to)
        info = self.token_info(token)
        if self.escrow.creditOf(sender.address, info.address) == 0:
            raise PreconditionError(
                "token",
                info.symbol,
                f"{sender.address} has no {info.symbol} credit in the escrow",
                "Credits arise only when a payout to the account failed. Check the token and "
                "the account.",
            )

        receipt = self.escrow.withdraw(info.address, to, sender=sender)
        logger.info(
            "Withdrew %s credit of %s to %s in %s",
            info.symbol,
            sender.address,
            to,
            receipt.txn_hash,
        )
        return receipt

    # Projects and donations.

    def register_project(
        self,
        admin: str,
        payout: str,
        metadata_hash: bytes,
        metadata_uri: str,
        sender,
        allow_personal_data: bool = False,
    ):
        """Register a project as Pending. Returns `(project_id, receipt)`."""
        check_public_text("metadata URI", metadata_uri, allow_personal_data=allow_personal_data)
        checks.require_address("admin", admin)
        checks.require_address("payout", payout)
        checks.require_hash("metadata hash", metadata_hash)

        receipt = self.registry.registerProject(
            admin, payout, metadata_hash, metadata_uri, sender=sender
        )
        project_id = self.registry.ProjectRegistered.from_receipt(receipt)[0].projectId
        logger.info("Registered project %s in %s", project_id, receipt.txn_hash)
        return project_id, receipt

    def verify_project(self, project_id: int, sender):
        """Mark a project Verified, as the registrar."""
        project = checks.require_project(self.registry, project_id)
        registrar = self.registry.owner()
        if sender.address != registrar:
            raise PreconditionError(
                "sender",
                sender.address,
                "not the registrar",
                f"Send from the registrar, {registrar}.",
            )
        if PROJECT_STATUSES[project.status] == "Verified":
            raise PreconditionError(
                "project id", project_id, "the project is already Verified", "Nothing to do."
            )

        receipt = self.registry.verifyProject(project_id, sender=sender)
        logger.info("Verified project %s in %s", project_id, receipt.txn_hash)
        return receipt

    def donate(self, project_id: int, token: str, amount: int, donor_ref: bytes, sender):
        """Give `amount` base units of `token` to a verified project.

        Returns `(donation_id, receipt)`.
        """
        project = checks.require_project(self.registry, project_id)
        info = self.token_info(token)
        checks.require_positive(amount, info)
        status = PROJECT_STATUSES[project.status]
        if status != "Verified":
            raise PreconditionError(
                "project id",
                project_id,
                f"the project is {status}, so it takes no donations",
                "Donate to a verified project, or wait until the registrar verifies this one.",
            )
        self._prepare_payment(info, amount, sender, spender=self.registry.address)

        receipt = self.registry.donate(
            project_id,
            info.address,
            amount,
            donor_ref,
            sender=sender,
            value=self._eth_value(info, amount),
        )
        donation_id = self.registry.ProjectDonation.from_receipt(receipt)[0].donationId
        logger.info("Donation %s to project %s in %s", donation_id, project_id, receipt.txn_hash)
        return donation_id, receipt

    def donate_to_grant(self, grant_id: int, amount: int, donor_ref: bytes, sender):
        """Give `amount` base units into a grant, as its co-funder.

        Returns `(donation_id, receipt)`.
        """
        grant = checks.require_grant(self.escrow, grant_id)
        info = self.token_info(grant.token)
        checks.require_positive(amount, info)
        checks.require_funding_open(grant_id, grant, amount, info, self.now())
        self._prepare_payment(info, amount, sender, spender=self.registry.address)

        receipt = self.registry.donateToGrant(
            grant_id, amount, donor_ref, sender=sender, value=self._eth_value(info, amount)
        )
        donation_id = self.registry.GrantDonation.from_receipt(receipt)[0].donationId
        logger.info("Donation %s to grant %s in %s", donation_id, grant_id, receipt.txn_hash)
        return donation_id, receipt

    # Helpers.

    def _require_vote(self, grant_id: int, index: int, evidence_hash: bytes, sender) -> None:
        grant = checks.require_grant(self.escrow, grant_id)
        milestone = checks.require_milestone(self.escrow, grant_id, grant, index)
        position = checks.require_attestor(self.escrow, grant_id, sender.address)
        checks.require_before_deadline(grant_id, index, milestone, self.now())
        checks.require_pending_evidence(grant_id, index, milestone, evidence_hash)
        checks.require_not_attested(grant_id, index, milestone, position, sender.address)

    def _prepare_payment(self, token: TokenInfo, amount: int, sender, *, spender: str) -> None:
        """Check that `sender` can pay `amount`, and let `spender` take it for an ERC-20 token."""
        from ape import chain

        if token.address == ETH_ADDRESS:
            checks.require_balance(chain.get_balance(sender.address), amount, token, sender.address)
            return

        contract = erc20_at(token.address)
        checks.require_balance(contract.balanceOf(sender.address), amount, token, sender.address)
        allowance = contract.allowance(sender.address, spender)
        if allowance >= amount:
            return
        # Tokens such as USDT refuse to change one non-zero allowance into another, so an
        # allowance that is too small is first set to zero.
        if allowance:
            contract.approve(spender, 0, sender=sender)
        receipt = contract.approve(spender, amount, sender=sender)
        logger.info(
            "Approved %s to take %s %s base units in %s",
            spender,
            amount,
            token.symbol,
            receipt.txn_hash,
        )

    @staticmethod
    def _eth_value(token: TokenInfo, amount: int) -> int:
        return amount if token.address == ETH_ADDRESS else 0

    # Typed signatures, relayed by anyone. The relayer pays the gas; the signer needs no ETH.

    def signature_state(self, signer: str, digest: bytes) -> int:
        """Return `IMilestoneEscrow.SignatureState` of `signer`'s signature of `digest`.

        0 is unused, 1 used and 2 revoked.
        """
        return self.escrow.signatureState(signer, digest)

    def submit_evidence_with_signature(
        self,
        grant_id: int,
        index: int,
        evidence_hash: bytes,
        uri: str,
        expiry: int,
        signature: bytes,
        sender,
    ):
        """Submit evidence that the grant's recipient signed offline, paying gas as `sender`.

        `fundtrail.relay.Relayer` checks the signature and the milestone before it calls this.
        """
        receipt = self.escrow.submitEvidenceWithSignature(
            grant_id, index, evidence_hash, uri, expiry, signature, sender=sender
        )
        logger.info(
            "Relayed evidence for milestone %s of grant %s in %s", index, grant_id, receipt.txn_hash
        )
        return receipt

    def approve_with_signatures(
        self,
        grant_id: int,
        index: int,
        evidence_hash: bytes,
        approvals: list[tuple[str, int, bytes]],
        sender,
    ):
        """Count attestors' offline approvals, each an `(attestor, expiry, signature)` tuple.

        The escrow reverts the whole batch for any bad approval, and for any approval after the
        one that releases the milestone, so pass only as many as the quorum still needs.
        """
        if not approvals:
            raise PreconditionError(
                "approvals",
                approvals,
                "the batch holds no signatures",
                "Pass at least one signed approval.",
            )
        receipt = self.escrow.approveWithSignatures(
            grant_id, index, evidence_hash, approvals, sender=sender
        )
        logger.info(
            "Relayed %s approvals of milestone %s of grant %s in %s",
            len(approvals),
            index,
            grant_id,
            receipt.txn_hash,
        )
        return receipt

    def revoke_signature(self, digest: bytes, sender):
        """Revoke `sender`'s unused signature of `digest`, so that nobody can relay it."""
        state = self.signature_state(sender.address, digest)
        if state != 0:
            used = "already used" if state == 1 else "already revoked"
            raise PreconditionError(
                "digest",
                "0x" + digest.hex(),
                f"{sender.address}'s signature of this digest is {used}",
                "Only an unused signature can be revoked. Check the signature file and the "
                "account.",
            )
        receipt = self.escrow.revokeSignature(digest, sender=sender)
        logger.info(
            "Revoked signature %s of %s in %s",
            "0x" + digest.hex(),
            sender.address,
            receipt.txn_hash,
        )
        return receipt
