"""Grant snapshots: everything an attestor or a grant's recipient needs to sign offline.

`fundtrail grant export` reads a grant from the chain and writes its snapshot. The signing
commands then need no connection at all: the snapshot contains the escrow's EIP-712 domain, the
grant's parties and each milestone's state when it was exported. The file is JSON:

    {
      "format": "fundtrail-grant-snapshot",
      "version": 1,
      "chain_id": 1,                          # the chain the escrow is on
      "escrow": "0x...",                      # the MilestoneEscrow address
      "domain": {                             # the EIP-712 domain from eip712Domain()
        "name": "FundTrail MilestoneEscrow", "version": "1",
        "chainId": 1, "verifyingContract": "0x..."
      },
      "grant_id": 1,
      "recipient": "0x...",                   # signs evidence submissions
      "attestors": ["0x...", "0x...", "0x..."],
      "threshold": 2,                         # approvals that release a milestone
      "token": {"address": "0x...", "symbol": "USDC", "decimals": 6},
      "milestones": [
        {
          "index": 0,
          "amount": "1000000000",             # base units, as a decimal string
          "deadline": 1767225600,             # Unix seconds
          "status": "EvidenceSubmitted",      # an IMilestoneEscrow.MilestoneStatus name
          "evidence_hash": "0x...",           # current evidence, or null
          "evidence_uri": "ipfs://...",       # its URI from the EvidenceSubmitted event, or null
          "approvals": ["0x..."]              # attestors who approved the current evidence
        }
      ],
      "block_number": 123,                    # the block the snapshot was read at
      "block_timestamp": 1767225600
    }

Amounts are strings because JSON readers in other languages lose precision above 2**53.
A snapshot goes stale as the grant moves on, so checks against it that depend on the
milestone's state are only as current as `block_timestamp`.
"""

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Annotated

from eth_utils import is_address, to_checksum_address
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)

from fundtrail.checks import show_time
from fundtrail.errors import FileError
from fundtrail.evidence import to_hex
from fundtrail.grants import MilestoneStatus
from fundtrail.signing import (
    EVIDENCE_SUBMISSION,
    MILESTONE_APPROVAL,
    Check,
    CheckStatus,
    Domain,
    SignatureFile,
    SigningError,
    read_json,
)

logger = logging.getLogger(__name__)

SNAPSHOT_FORMAT = "fundtrail-grant-snapshot"
"""Value of the `format` field that marks a grant snapshot."""

FORMAT_VERSION = 1
"""Layout version of grant snapshots, stored in each file."""

_EXPORT_AGAIN = "Export the grant again with `fundtrail grant export GRANT_ID --out FILE`."


def _address(value: str) -> str:
    if not is_address(value) or not value.startswith("0x"):
        raise ValueError(f"{value!r} is not an address")
    return to_checksum_address(value)


def _hash(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) != 66 or not value.startswith("0x"):
        raise ValueError(f"{value!r} is not 0x followed by 64 hex digits")
    bytes.fromhex(value[2:])
    return value.lower()


def _status(value: str) -> str:
    if value not in MilestoneStatus.__members__:
        raise ValueError(f"{value!r} is not one of {', '.join(MilestoneStatus.__members__)}")
    return value


Address = Annotated[str, AfterValidator(_address)]
Hash = Annotated[str | None, AfterValidator(_hash)]
BaseUnits = Annotated[int, Field(ge=0), PlainSerializer(str, return_type=str)]


class TokenSnapshot(BaseModel):
    """The grant's token; the zero address means ETH."""

    address: Address
    symbol: str
    decimals: int = Field(ge=0, le=255)


class MilestoneSnapshot(BaseModel):
    """One milestone's terms and attestation state at export."""

    index: int = Field(ge=0)
    amount: BaseUnits
    """Payment in the token's smallest unit."""
    deadline: int = Field(ge=0)
    """Unix time from which the milestone can no longer get evidence or approvals."""
    status: Annotated[str, AfterValidator(_status)]
    """An `IMilestoneEscrow.MilestoneStatus` name, such as "EvidenceSubmitted"."""
    evidence_hash: Hash = None
    """The current evidence as "0x" and 64 hex digits, or None."""
    evidence_uri: str | None = None
    approvals: list[Address] = []
    """Attestors who approved the current evidence."""

    @property
    def settled(self) -> bool:
        return self.status in ("Released", "Reclaimed")


class GrantSnapshot(BaseModel):
    """A grant and its escrow's EIP-712 domain, as exported for offline signing."""

    model_config = ConfigDict(frozen=True)

    chain_id: int = Field(ge=1)
    escrow: Address
    domain: dict
    """The EIP-712 domain in the form of an `eth_signTypedData_v4` payload."""
    grant_id: int = Field(ge=1)
    recipient: Address
    attestors: list[Address] = Field(min_length=1)
    threshold: int = Field(ge=1)
    token: TokenSnapshot
    milestones: list[MilestoneSnapshot] = Field(min_length=1)
    block_number: int = Field(ge=0)
    block_timestamp: int = Field(ge=0)

    @model_validator(mode="after")
    def _check_consistency(self):
        domain = Domain.from_typed_data(self.domain)
        if domain.chain_id != self.chain_id:
            raise ValueError(
                f"domain.chainId is {domain.chain_id}, but chain_id is {self.chain_id}"
            )
        if domain.verifying_contract != self.escrow:
            raise ValueError(
                f"domain.verifyingContract is {domain.verifying_contract}, but escrow is "
                f"{self.escrow}"
            )
        if [milestone.index for milestone in self.milestones] != list(range(len(self.milestones))):
            raise ValueError("milestones must be listed by index, starting at 0")
        if self.threshold > len(self.attestors):
            raise ValueError(
                f"threshold {self.threshold} is larger than the {len(self.attestors)} attestors"
            )
        return self

    @property
    def eip712_domain(self) -> Domain:
        return Domain.from_typed_data(self.domain)

    def milestone(self, index: int) -> MilestoneSnapshot:
        """Return milestone `index`, or raise `IndexError` naming the valid indices."""
        if not 0 <= index < len(self.milestones):
            raise IndexError(
                f"grant {self.grant_id} has milestones 0 to {len(self.milestones) - 1}"
            )
        return self.milestones[index]

    def save(self, path: str | Path) -> None:
        """Write the snapshot as indented JSON, replacing any file at `path` in one step."""
        path = Path(path)
        document = {"format": SNAPSHOT_FORMAT, "version": FORMAT_VERSION, **self.model_dump()}
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(json.dumps(document, indent=2) + "\n")
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        logger.debug("Wrote the snapshot of grant %s to %s", self.grant_id, path)

    @classmethod
    def load(cls, path: str | Path) -> "GrantSnapshot":
        """Read a snapshot, or raise `FileError` naming the file, the problem and the fix."""
        path = Path(path)
        data = read_json(path, "grant snapshot", _EXPORT_AGAIN)
        if data.get("format") != SNAPSHOT_FORMAT:
            raise FileError(
                path,
                f"not a FundTrail grant snapshot (format is {data.get('format')!r})",
                f"Pass the file written by `fundtrail grant export`. {_EXPORT_AGAIN}",
            )
        if data.get("version") != FORMAT_VERSION:
            raise FileError(
                path,
                f"grant snapshot version {data.get('version')!r} is not supported",
                f"This FundTrail reads version {FORMAT_VERSION}. {_EXPORT_AGAIN}",
            )
        fields = {key: value for key, value in data.items() if key not in ("format", "version")}
        try:
            return cls.model_validate(fields)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in item['loc']) or 'snapshot'}: {item['msg']}"
                for item in error.errors()
            )
            raise FileError(path, f"invalid grant snapshot ({problems})", _EXPORT_AGAIN) from error

    def check_signature(self, signature_file: SignatureFile, now: int) -> list[Check]:
        """Check a signature file against this grant: domain, grant, signer and milestone."""
        checks = []
        domain = signature_file.domain
        if domain != self.eip712_domain:
            checks.append(
                Check(
                    "domain",
                    CheckStatus.FAILED,
                    f"signed for chain {domain.chain_id} and escrow {domain.verifying_contract}, "
                    f"but the snapshot is of chain {self.chain_id} and escrow {self.escrow}",
                )
            )
            return checks
        checks.append(
            Check("domain", CheckStatus.PASSED, f"chain {self.chain_id}, escrow {self.escrow}")
        )

        if signature_file.grant_id != self.grant_id:
            checks.append(
                Check(
                    "grant",
                    CheckStatus.FAILED,
                    f"signed for grant {signature_file.grant_id}, but the snapshot is of grant "
                    f"{self.grant_id}",
                )
            )
            return checks
        try:
            milestone = self.milestone(signature_file.milestone_index)
        except IndexError as error:
            checks.append(Check("grant", CheckStatus.FAILED, str(error)))
            return checks
        checks.append(
            Check(
                "grant",
                CheckStatus.PASSED,
                f"grant {self.grant_id}, milestone {milestone.index}",
            )
        )

        checks.append(self._check_role(signature_file))
        checks.append(self._check_milestone(milestone, now))
        checks.append(self._check_evidence(signature_file, milestone))
        return checks

    def _check_role(self, signature_file: SignatureFile) -> Check:
        signer = signature_file.signer
        if signature_file.kind == EVIDENCE_SUBMISSION:
            if signer != self.recipient:
                return Check(
                    "signer",
                    CheckStatus.FAILED,
                    f"{signer} is not the recipient of grant {self.grant_id}, "
                    f"{self.recipient}, who alone may submit evidence",
                )
            return Check("signer", CheckStatus.PASSED, f"{signer} is the grant's recipient")
        if signer not in self.attestors:
            return Check(
                "signer",
                CheckStatus.FAILED,
                f"{signer} is not an attestor of grant {self.grant_id}; its attestors are "
                + ", ".join(self.attestors),
            )
        return Check("signer", CheckStatus.PASSED, f"{signer} is an attestor of the grant")

    def _check_milestone(self, milestone: MilestoneSnapshot, now: int) -> Check:
        if milestone.settled:
            return Check(
                "milestone",
                CheckStatus.FAILED,
                f"milestone {milestone.index} was already {milestone.status} at block "
                f"{self.block_number}, so nothing can change it",
            )
        if now >= milestone.deadline:
            return Check(
                "milestone",
                CheckStatus.FAILED,
                f"milestone {milestone.index} passed its deadline {show_time(milestone.deadline)}",
            )
        return Check(
            "milestone",
            CheckStatus.PASSED,
            f"{milestone.status} at block {self.block_number}, open until "
            f"{show_time(milestone.deadline)}",
        )

    def _check_evidence(self, signature_file: SignatureFile, milestone: MilestoneSnapshot) -> Check:
        signed = to_hex(signature_file.evidence_hash)
        current = milestone.evidence_hash
        if signature_file.kind == MILESTONE_APPROVAL:
            if current != signed:
                return Check(
                    "evidence",
                    CheckStatus.UNCHECKED,
                    f"the snapshot's current evidence is {current or 'none'}, so this approval "
                    f"of {signed} counts only if that evidence is current when it is relayed",
                )
            if signature_file.signer in milestone.approvals:
                return Check(
                    "evidence",
                    CheckStatus.FAILED,
                    f"{signature_file.signer} had already approved {signed} on-chain at block "
                    f"{self.block_number}",
                )
            return Check("evidence", CheckStatus.PASSED, f"{signed} is the current evidence")
        if current == signed:
            return Check(
                "evidence",
                CheckStatus.UNCHECKED,
                f"{signed} was already the current evidence at block {self.block_number}",
            )
        return Check("evidence", CheckStatus.PASSED, f"{signed} is new evidence for the milestone")


def export_snapshot(client, grant_id: int) -> GrantSnapshot:
    """Read grant `grant_id` and the escrow's EIP-712 domain from the connected chain.

    Raise `PreconditionError` when no grant has the id, and `SigningError` when the escrow's
    domain does not belong to the connected chain and the escrow's address.
    """
    from ape import chain

    summary = client.grant(grant_id)
    domain = Domain.from_eip5267(*client.escrow.eip712Domain())
    if domain.chain_id != chain.chain_id or domain.verifying_contract != client.escrow.address:
        raise SigningError(
            f"The escrow at {client.escrow.address} reports the EIP-712 domain of chain "
            f"{domain.chain_id} and contract {domain.verifying_contract}, but it runs on chain "
            f"{chain.chain_id}. Check the deployments file and the network."
        )
    head = chain.blocks.head

    milestones = [
        MilestoneSnapshot(
            index=milestone.index,
            amount=milestone.amount,
            deadline=milestone.deadline,
            status=milestone.status.name,
            evidence_hash=to_hex(milestone.evidence_hash) if milestone.evidence_hash else None,
            evidence_uri=milestone.evidence_uri,
            approvals=list(milestone.approvals),
        )
        for milestone in summary.milestones
    ]
    snapshot = GrantSnapshot(
        chain_id=chain.chain_id,
        escrow=client.escrow.address,
        domain=domain.as_typed_data(),
        grant_id=grant_id,
        recipient=summary.recipient,
        attestors=list(summary.attestors),
        threshold=summary.threshold,
        token=TokenSnapshot(
            address=summary.token.address,
            symbol=summary.token.symbol,
            decimals=summary.token.decimals,
        ),
        milestones=milestones,
        block_number=head.number,
        block_timestamp=head.timestamp,
    )
    logger.info("Exported grant %s at block %s", grant_id, head.number)
    return snapshot
