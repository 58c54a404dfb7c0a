"""Relaying offline signatures: sort them, drop the ones the escrow would reject, submit the rest.

`Relayer.relay` takes signature files from any number of signers and:

1. drops every signature the escrow would reject, each with its reason. Reasons include a file
   whose parts disagree, another chain or escrow, an expired, used or revoked signature, an
   unknown grant or milestone, a signer without the role and a signature that does not verify;
2. submits evidence submissions first, so approvals of that evidence can count at once. When
   several files carry different evidence for one milestone, only the most recently signed one
   is submitted;
3. groups the approvals by grant, milestone and evidence hash. It drops approvals of evidence
   that is not current and those of attestors who already decided on-chain, and keeps one
   approval per attestor. It then submits `approveWithSignatures` with exactly as many
   approvals as the quorum still needs, in ascending order of attestor address. A group that
   has too few approvals is reported with the number still missing, and nothing of it is sent.

Every step reads the chain first, so relaying the same files again sends nothing.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from eth_utils import to_checksum_address

from fundtrail.checks import show_time
from fundtrail.errors import PrivacyError
from fundtrail.evidence import to_hex
from fundtrail.grants import MilestoneStatus
from fundtrail.privacy import check_public_text
from fundtrail.signing import (
    EVIDENCE_SUBMISSION,
    MILESTONE_APPROVAL,
    Domain,
    SignatureFile,
    ecdsa_problem,
    form_problem,
)

logger = logging.getLogger(__name__)

ERC1271_MAGIC_VALUE = bytes.fromhex("1626ba7e")
"""Return value of ERC-1271's `isValidSignature` for a valid signature."""

_ERC1271_ABI = [
    {
        "type": "function",
        "name": "isValidSignature",
        "stateMutability": "view",
        "inputs": [{"name": "hash", "type": "bytes32"}, {"name": "signature", "type": "bytes"}],
        "outputs": [{"name": "", "type": "bytes4"}],
    }
]

# `IMilestoneEscrow.SignatureState` values.
_USED = 1
_REVOKED = 2


@dataclass(frozen=True)
class LoadedSignature:
    """A signature file and the path it was read from."""

    path: Path
    file: SignatureFile


@dataclass(frozen=True)
class Submitted:
    """A transaction the relayer sent."""

    kind: str
    """`EVIDENCE_SUBMISSION` or `MILESTONE_APPROVAL`."""
    grant_id: int
    milestone_index: int
    evidence_hash: bytes
    signers: tuple[str, ...]
    tx_hash: str
    released: bool
    """Whether the transaction released the milestone."""
    receipt: object = field(default=None, repr=False, compare=False)
    """The ape receipt, for its events."""


INVALID_DROP_CATEGORIES = frozenset(
    {
        "bad signature",
        "wrong chain",
        "wrong escrow",
        "revoked on-chain",
        "expired",
        "unknown grant",
        "unknown milestone",
        "not the recipient",
        "not an attestor",
        "personal data",
    }
)
"""Drop categories of a file that this escrow will never accept as it is, so that the signer
must sign again or the relayer must drop the file. Every other category depends on the chain's
state and is expected when the same files are relayed again, such as "already used on-chain"
or "not needed"."""


@dataclass(frozen=True)
class Dropped:
    """A signature the relayer did not submit, and why."""

    path: Path
    kind: str
    signer: str
    reason: str
    """Starts with the category, such as "expired" or "duplicate signer", then the detail."""

    @property
    def category(self) -> str:
        """The start of `reason`, before the first colon."""
        return self.reason.split(":", 1)[0]

    @property
    def invalid(self) -> bool:
        """Whether the escrow will never accept this file as it is (`INVALID_DROP_CATEGORIES`)."""
        return self.category in INVALID_DROP_CATEGORIES


@dataclass(frozen=True)
class Waiting:
    """Valid approvals of one evidence hash that are still too few to release the milestone."""

    grant_id: int
    milestone_index: int
    evidence_hash: bytes
    signers: tuple[str, ...]
    needed: int
    """Approvals the quorum still needs, of which `signers` provide some."""

    @property
    def missing(self) -> int:
        return self.needed - len(self.signers)


@dataclass(frozen=True)
class Failed:
    """A transaction the escrow reverted, although the checks before it passed."""

    kind: str
    grant_id: int
    milestone_index: int
    signers: tuple[str, ...]
    error: str


@dataclass
class RelayReport:
    """Outcome of one relay run: what was sent, dropped, left waiting or reverted."""

    submitted: list[Submitted] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    waiting: list[Waiting] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)

    @property
    def invalid(self) -> list[Dropped]:
        """The dropped files that the escrow will never accept as they are."""
        return [item for item in self.dropped if item.invalid]


def load_signature_files(paths: list[Path]) -> list[LoadedSignature]:
    """Read every signature file. Raise `FileError` for the first one that cannot be read."""
    return [LoadedSignature(Path(path), SignatureFile.load(path)) for path in paths]


class Relayer:
    """Submits other people's signatures to the escrow of `client`, paying gas as `sender`."""

    def __init__(self, client, sender, *, allow_personal_data: bool = False):
        self.client = client
        self.sender = sender
        self.allow_personal_data = allow_personal_data
        """Publish evidence URIs that look like personal data instead of dropping them."""

    def relay(self, signatures: list[LoadedSignature]) -> RelayReport:
        """Check, group and submit `signatures`, and return what was done and dropped."""
        report = RelayReport()
        chain_domain = Domain.from_eip5267(*self.client.escrow.eip712Domain())
        ordered = sorted(signatures, key=_sort_key)

        candidates = self._screen(ordered, chain_domain, report)

        evidence = [item for item in candidates if item.file.kind == EVIDENCE_SUBMISSION]
        for item in self._newest_evidence(evidence, report):
            self._submit_evidence(item, report)

        groups: dict[tuple, list[LoadedSignature]] = defaultdict(list)
        for item in candidates:
            if item.file.kind == MILESTONE_APPROVAL:
                key = (item.file.grant_id, item.file.milestone_index, item.file.evidence_hash)
                groups[key].append(item)
        for key in sorted(groups):
            self._relay_approvals(*key, groups[key], report)
        return report

    # Checks of single signatures.

    def _screen(self, ordered, chain_domain: Domain, report: RelayReport) -> list[LoadedSignature]:
        """Return the signatures that pass every check that needs no other signature."""
        now = self.client.now()
        seen: dict[bytes, Path] = {}
        candidates = []
        for item in ordered:
            reason = self._screen_one(item, chain_domain, now, seen)
            if reason:
                _drop(report, item, reason)
            else:
                seen[item.file.digest_bytes] = item.path
                candidates.append(item)
        return candidates

    def _screen_one(
        self, item: LoadedSignature, chain_domain: Domain, now: int, seen: dict
    ) -> str | None:
        signature_file = item.file
        problem = form_problem(signature_file)
        if problem:
            return f"bad signature: {problem}"

        domain = signature_file.domain
        if domain.chain_id != chain_domain.chain_id:
            return (
                f"wrong chain: signed for chain {domain.chain_id}, but the network is chain "
                f"{chain_domain.chain_id}"
            )
        if domain != chain_domain:
            return (
                f"wrong escrow: signed for the escrow {domain.verifying_contract} "
                f"({domain.name} {domain.version}), but the deployment's escrow is "
                f"{chain_domain.verifying_contract} ({chain_domain.name} {chain_domain.version})"
            )

        digest = signature_file.digest_bytes
        if digest in seen:
            return f"duplicate: the same signature as {seen[digest]}"
        state = self.client.signature_state(signature_file.signer, digest)
        if state == _USED:
            return "already used on-chain: this signature was relayed before"
        if state == _REVOKED:
            return "revoked on-chain: the signer revoked this signature"
        if now >= signature_file.expiry:
            return f"expired: at {show_time(signature_file.expiry)}"

        escrow = self.client.escrow
        grant_id = signature_file.grant_id
        if not 1 <= grant_id <= escrow.grantCount():
            return f"unknown grant: the escrow has no grant {grant_id}"
        grant = escrow.getGrant(grant_id)
        if signature_file.milestone_index >= grant.milestoneCount:
            return (
                f"unknown milestone: grant {grant_id} has milestones 0 to "
                f"{grant.milestoneCount - 1}"
            )
        role_problem = self._role_problem(signature_file, grant)
        if role_problem:
            return role_problem

        problem = self._signature_problem(signature_file)
        if problem:
            return f"bad signature: {problem}"
        return None

    def _role_problem(self, signature_file: SignatureFile, grant) -> str | None:
        signer = signature_file.signer
        if signature_file.kind == EVIDENCE_SUBMISSION:
            if signer != grant.recipient:
                return (
                    f"not the recipient: {signer} is not the recipient of grant "
                    f"{signature_file.grant_id}, {grant.recipient}"
                )
            return None
        attestors = list(self.client.escrow.getAttestors(signature_file.grant_id))
        if signer not in attestors:
            return (
                f"not an attestor: {signer} is not an attestor of grant "
                f"{signature_file.grant_id}"
            )
        return None

    def _signature_problem(self, signature_file: SignatureFile) -> str | None:
        """Check the signature as OpenZeppelin's `SignatureChecker` does on-chain.

        An address with code is asked through ERC-1271, whatever the file's `signer_type`
        field states. Any other address must have signed with its key.
        """
        from ape import chain
        from ape.exceptions import ContractLogicError

        signer = signature_file.signer
        digest = signature_file.digest_bytes
        signature = signature_file.signature_bytes
        if not chain.provider.get_code(signer):
            return ecdsa_problem(digest, signature, signer)

        wallet = chain.contracts.instance_at(signer, abi=_ERC1271_ABI, fetch_from_explorer=False)
        try:
            result = bytes(wallet.isValidSignature(digest, signature))
        except ContractLogicError as error:
            return f"the contract account {signer} rejected the signature ({error})"
        if result != ERC1271_MAGIC_VALUE:
            return f"the contract account {signer} does not accept the signature (ERC-1271)"
        return None

    # Evidence submissions.

    def _newest_evidence(self, evidence, report: RelayReport) -> list[LoadedSignature]:
        """Keep one evidence submission per milestone: the most recently signed one."""
        by_milestone: dict[tuple[int, int], list[LoadedSignature]] = defaultdict(list)
        for item in evidence:
            by_milestone[(item.file.grant_id, item.file.milestone_index)].append(item)

        chosen = []
        for key in sorted(by_milestone):
            items = sorted(
                by_milestone[key],
                key=lambda item: (item.file.signed_at or 0, item.file.digest_bytes),
                reverse=True,
            )
            newest = items[0]
            chosen.append(newest)
            for item in items[1:]:
                _drop(
                    report,
                    item,
                    f"superseded: {newest.path} carries newer evidence "
                    f"{to_hex(newest.file.evidence_hash)} for the same milestone",
                )
        return chosen

    def _submit_evidence(self, item: LoadedSignature, report: RelayReport) -> None:
        signature_file = item.file
        reason = self._evidence_problem(signature_file)
        if reason:
            _drop(report, item, reason)
            return

        from ape.exceptions import ContractLogicError

        try:
            receipt = self.client.submit_evidence_with_signature(
                signature_file.grant_id,
                signature_file.milestone_index,
                signature_file.evidence_hash,
                signature_file.evidence_uri,
                signature_file.expiry,
                signature_file.signature_bytes,
                self.sender,
            )
        except ContractLogicError as error:
            report.failed.append(
                Failed(
                    EVIDENCE_SUBMISSION,
                    signature_file.grant_id,
                    signature_file.milestone_index,
                    (signature_file.signer,),
                    str(error),
                )
            )
            logger.warning("Evidence submission from %s reverted: %s", item.path, error)
            return
        report.submitted.append(
            Submitted(
                EVIDENCE_SUBMISSION,
                signature_file.grant_id,
                signature_file.milestone_index,
                signature_file.evidence_hash,
                (signature_file.signer,),
                receipt.txn_hash,
                released=False,
                receipt=receipt,
            )
        )

    def _evidence_problem(self, signature_file: SignatureFile) -> str | None:
        escrow = self.client.escrow
        grant_id, index = signature_file.grant_id, signature_file.milestone_index
        grant = escrow.getGrant(grant_id)
        milestone = escrow.getMilestone(grant_id, index)
        problem = self._milestone_problem(grant_id, index, milestone)
        if problem:
            return problem
        if grant.funded < grant.total:
            return (
                f"not funded: grant {grant_id} is not fully funded yet, so it takes no evidence; "
                "relay this file again once it is"
            )
        evidence_hash = signature_file.evidence_hash
        if (
            MilestoneStatus(milestone.status) == MilestoneStatus.EvidenceSubmitted
            and bytes(milestone.evidenceHash) == evidence_hash
        ):
            return f"already submitted on-chain: {to_hex(evidence_hash)} is the current evidence"
        if escrow.isEvidenceRejected(grant_id, index, evidence_hash):
            return f"rejected: the attestors rejected {to_hex(evidence_hash)} for this milestone"
        try:
            check_public_text(
                "evidence URI",
                signature_file.evidence_uri,
                allow_personal_data=self.allow_personal_data,
            )
        except PrivacyError as error:
            return f"personal data: {error}"
        return None

    # Approvals.

    def _relay_approvals(
        self, grant_id: int, index: int, evidence_hash: bytes, items, report: RelayReport
    ) -> None:
        escrow = self.client.escrow
        grant = escrow.getGrant(grant_id)
        milestone = escrow.getMilestone(grant_id, index)
        problem = self._milestone_problem(grant_id, index, milestone) or _evidence_not_current(
            milestone, evidence_hash
        )
        if problem:
            for item in items:
                _drop(report, item, problem)
            return

        attestors = list(escrow.getAttestors(grant_id))
        by_signer: dict[str, list[LoadedSignature]] = defaultdict(list)
        for item in items:
            position = attestors.index(item.file.signer)
            if milestone.approvals >> position & 1:
                _drop(report, item, "already approved on-chain: the attestor approved it")
            elif milestone.rejections >> position & 1:
                _drop(report, item, "already rejected on-chain: the attestor rejected it")
            else:
                by_signer[item.file.signer].append(item)

        valid = []
        for signer in sorted(by_signer, key=lambda address: int(address, 16)):
            # The approval that stays valid longest is kept.
            kept, *others = sorted(
                by_signer[signer],
                key=lambda item: (item.file.expiry, item.file.digest_bytes),
                reverse=True,
            )
            valid.append(kept)
            for item in others:
                _drop(report, item, f"duplicate signer: {kept.path} carries {signer}'s approval")

        needed = grant.threshold - milestone.approvalCount
        if len(valid) < needed:
            report.waiting.append(
                Waiting(
                    grant_id,
                    index,
                    evidence_hash,
                    tuple(item.file.signer for item in valid),
                    needed,
                )
            )
            return
        chosen, spare = valid[:needed], valid[needed:]
        for item in spare:
            _drop(report, item, "not needed: the quorum is reached without this approval")
        self._submit_approvals(grant_id, index, evidence_hash, chosen, report)

    def _submit_approvals(self, grant_id, index, evidence_hash, chosen, report: RelayReport):
        from ape.exceptions import ContractLogicError

        signers = tuple(item.file.signer for item in chosen)
        approvals = [
            (item.file.signer, item.file.expiry, item.file.signature_bytes) for item in chosen
        ]
        try:
            receipt = self.client.approve_with_signatures(
                grant_id, index, evidence_hash, approvals, self.sender
            )
        except ContractLogicError as error:
            report.failed.append(Failed(MILESTONE_APPROVAL, grant_id, index, signers, str(error)))
            logger.warning(
                "Approvals of milestone %s of grant %s reverted: %s", index, grant_id, error
            )
            return
        released = bool(self.client.escrow.MilestoneReleased.from_receipt(receipt))
        report.submitted.append(
            Submitted(
                MILESTONE_APPROVAL,
                grant_id,
                index,
                evidence_hash,
                signers,
                receipt.txn_hash,
                released,
                receipt,
            )
        )

    def _milestone_problem(self, grant_id: int, index: int, milestone) -> str | None:
        status = MilestoneStatus(milestone.status)
        if status in (MilestoneStatus.Released, MilestoneStatus.Reclaimed):
            return (
                f"milestone settled: milestone {index} of grant {grant_id} is already "
                f"{status.name}"
            )
        if self.client.now() >= milestone.deadline:
            return (
                f"deadline passed: milestone {index} of grant {grant_id} closed at "
                f"{show_time(milestone.deadline)}"
            )
        return None


def _evidence_not_current(milestone, evidence_hash: bytes) -> str | None:
    if MilestoneStatus(milestone.status) != MilestoneStatus.EvidenceSubmitted:
        return (
            f"evidence not current: the milestone awaits evidence, so {to_hex(evidence_hash)} "
            "is not (or no longer) under attestation; relay the recipient's evidence signature"
        )
    current = bytes(milestone.evidenceHash)
    if current != evidence_hash:
        return (
            f"approves other evidence: the approval is of {to_hex(evidence_hash)}, but the "
            f"milestone's current evidence is {to_hex(current)}"
        )
    return None


def _drop(report: RelayReport, item: LoadedSignature, reason: str) -> None:
    report.dropped.append(Dropped(item.path, item.file.kind, item.file.signer, reason))
    logger.debug("Dropped %s: %s", item.path, reason)


def _sort_key(item: LoadedSignature):
    """Order signatures by kind (evidence first), grant, milestone, evidence, signer, digest."""
    signature_file = item.file
    message = signature_file.signed_message

    def number(name: str) -> int:
        value = message.get(name)
        return value if isinstance(value, int) else -1

    try:
        signer = int(to_checksum_address(signature_file.signer), 16)
    except ValueError:
        signer = -1
    return (
        signature_file.kind != EVIDENCE_SUBMISSION,
        number("grantId"),
        number("milestoneIndex"),
        str(message.get("evidenceHash")),
        signer,
        signature_file.digest,
        str(item.path),
    )
