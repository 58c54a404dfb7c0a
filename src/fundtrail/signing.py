"""EIP-712 typed data for offline signatures, and the signature files that carry them.

An attestor approves a milestone, and a grant's recipient submits evidence, by signing typed
data with no connection to any chain. Anyone can later relay the signature to the escrow. The
typed data must match `MilestoneEscrow` exactly, so the types below repeat its typehashes:

    MilestoneApproval(address attestor,uint256 grantId,uint256 milestoneIndex,
                      bytes32 evidenceHash,uint64 expiry)
    EvidenceSubmission(address recipient,uint256 grantId,uint256 milestoneIndex,
                       bytes32 evidenceHash,string evidenceUri,uint64 expiry)

A signature file is JSON, written by `SignatureFile.save`:

    {
      "format": "fundtrail-signature",
      "version": 1,
      "kind": "milestone-approval",          # or "evidence-submission"
      "signer": "0x...",                      # the attestor, or the grant's recipient
      "signer_type": "eoa",                   # or "contract" for a Safe or other ERC-1271 wallet
      "signature": "0x...",                   # 65 bytes r || s || v for an EOA
      "digest": "0x...",                      # the EIP-712 hash that was signed
      "message": {...},                       # the typed message fields, as in typed_data
      "typed_data": {                         # the eth_signTypedData_v4 payload
        "types": {"EIP712Domain": [...], "MilestoneApproval": [...]},
        "primaryType": "MilestoneApproval",
        "domain": {"name": "FundTrail MilestoneEscrow", "version": "1",
                   "chainId": 1, "verifyingContract": "0x..."},
        "message": {...}
      },
      "signed_at": 1767225600                 # Unix time of signing, not signed itself
    }

Any wallet that implements `eth_signTypedData_v4` (MetaMask, a Safe, a hardware wallet) signs
`typed_data` to the same digest, so a file can also be completed by hand from such a wallet.
"""

import json
import logging
import re
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys import keys
from eth_keys.exceptions import BadSignature
from eth_utils import is_address, keccak, to_checksum_address
from pydantic import BaseModel, ConfigDict, ValidationError

from fundtrail.checks import show_time
from fundtrail.errors import FileError, FundTrailError, SpecError
from fundtrail.evidence import to_hex

logger = logging.getLogger(__name__)

SIGNATURE_FORMAT = "fundtrail-signature"
"""Value of the `format` field that marks a FundTrail signature file."""

FORMAT_VERSION = 1
"""Layout version of signature files, stored in each file."""

MILESTONE_APPROVAL = "milestone-approval"
EVIDENCE_SUBMISSION = "evidence-submission"

PRIMARY_TYPES = {MILESTONE_APPROVAL: "MilestoneApproval", EVIDENCE_SUBMISSION: "EvidenceSubmission"}
"""The EIP-712 primary type of each kind of signature file."""

SIGNER_FIELDS = {MILESTONE_APPROVAL: "attestor", EVIDENCE_SUBMISSION: "recipient"}
"""The message field that names the signer, for each kind."""

MESSAGE_TYPES = {
    "MilestoneApproval": [
        {"name": "attestor", "type": "address"},
        {"name": "grantId", "type": "uint256"},
        {"name": "milestoneIndex", "type": "uint256"},
        {"name": "evidenceHash", "type": "bytes32"},
        {"name": "expiry", "type": "uint64"},
    ],
    "EvidenceSubmission": [
        {"name": "recipient", "type": "address"},
        {"name": "grantId", "type": "uint256"},
        {"name": "milestoneIndex", "type": "uint256"},
        {"name": "evidenceHash", "type": "bytes32"},
        {"name": "evidenceUri", "type": "string"},
        {"name": "expiry", "type": "uint64"},
    ],
}
"""The struct types of `MilestoneEscrow.MILESTONE_APPROVAL_TYPEHASH` and
`EVIDENCE_SUBMISSION_TYPEHASH`, field for field."""

# EIP-712 domain fields in the order EIP-5267 numbers them (bit 0 is name, bit 4 is salt).
DOMAIN_FIELDS = (
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
    ("salt", "bytes32"),
)

EOA = "eoa"
CONTRACT = "contract"
SIGNER_TYPES = (EOA, CONTRACT)

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
"""Order of the secp256k1 curve. OpenZeppelin's ECDSA accepts only s <= SECP256K1_N // 2."""

_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
_HEX = re.compile(r"0x(?:[0-9a-fA-F]{2})*")
_RESIGN = "Ask the signer to sign again with `fundtrail attest sign` or `fundtrail evidence sign`."


class SigningError(FundTrailError, ValueError):
    """A signature could not be made, or does not match what was to be signed."""


@dataclass(frozen=True)
class Domain:
    """An EIP-712 domain, as the escrow's `eip712Domain()` (EIP-5267) returns it."""

    name: str | None
    version: str | None
    chain_id: int | None
    verifying_contract: str | None
    salt: bytes | None = None

    @classmethod
    def from_eip5267(cls, fields: bytes | int, name, version, chain_id, contract, salt, extensions):
        """Build the domain from the values of `eip712Domain()`, keeping only the fields in use.

        Raise `SigningError` for domain extensions, which EIP-712 wallets cannot sign.
        """
        bitmap = fields if isinstance(fields, int) else int.from_bytes(bytes(fields), "big")
        if list(extensions):
            raise SigningError(
                f"The escrow's EIP-712 domain lists extensions {list(extensions)}, which "
                "FundTrail cannot sign. Check that the address is a FundTrail escrow."
            )
        values = (name, version, chain_id, to_checksum_address(contract), bytes(salt))
        used = [value if bitmap >> bit & 1 else None for bit, value in enumerate(values)]
        return cls(*used)

    @classmethod
    def from_typed_data(cls, data: dict) -> "Domain":
        """Build the domain from the `domain` object of an `eth_signTypedData_v4` payload.

        Raise `ValueError` naming the field for a value of the wrong type.
        """
        if not isinstance(data, dict):
            raise ValueError("the domain must be an object")
        unknown = set(data) - {field for field, _ in DOMAIN_FIELDS}
        if unknown:
            raise ValueError(f"unknown domain fields {sorted(unknown)}")
        return cls(
            name=_optional(data, "name", str),
            version=_optional(data, "version", str),
            chain_id=_optional(data, "chainId", int),
            verifying_contract=(
                _parse_address(data["verifyingContract"], "domain.verifyingContract")
                if "verifyingContract" in data
                else None
            ),
            salt=_parse_bytes32(data["salt"], "domain.salt") if "salt" in data else None,
        )

    def as_typed_data(self) -> dict:
        """Return the `domain` object of an `eth_signTypedData_v4` payload."""
        values = {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
            "salt": to_hex(self.salt) if self.salt is not None else None,
        }
        return {field: values[field] for field, _ in DOMAIN_FIELDS if values[field] is not None}

    def type_fields(self) -> list[dict]:
        """Return the `EIP712Domain` type of this domain: only the fields it sets, in order."""
        present = self.as_typed_data()
        return [{"name": field, "type": kind} for field, kind in DOMAIN_FIELDS if field in present]


def approval_message(
    attestor: str, grant_id: int, milestone_index: int, evidence_hash: bytes, expiry: int
) -> dict:
    """Return the `MilestoneApproval` message, in the JSON form of `eth_signTypedData_v4`."""
    return {
        "attestor": to_checksum_address(attestor),
        "grantId": grant_id,
        "milestoneIndex": milestone_index,
        "evidenceHash": to_hex(evidence_hash),
        "expiry": expiry,
    }


def evidence_message(
    recipient: str,
    grant_id: int,
    milestone_index: int,
    evidence_hash: bytes,
    evidence_uri: str,
    expiry: int,
) -> dict:
    """Return the `EvidenceSubmission` message, in the JSON form of `eth_signTypedData_v4`."""
    return {
        "recipient": to_checksum_address(recipient),
        "grantId": grant_id,
        "milestoneIndex": milestone_index,
        "evidenceHash": to_hex(evidence_hash),
        "evidenceUri": evidence_uri,
        "expiry": expiry,
    }


def build_typed_data(kind: str, domain: Domain, message: dict) -> dict:
    """Return the full `eth_signTypedData_v4` payload of a message of `kind`."""
    primary_type = PRIMARY_TYPES[kind]
    return {
        "types": {"EIP712Domain": domain.type_fields(), primary_type: MESSAGE_TYPES[primary_type]},
        "primaryType": primary_type,
        "domain": domain.as_typed_data(),
        "message": dict(message),
    }


def typed_data_digest(typed_data: dict) -> bytes:
    """Return the EIP-712 digest of an `eth_signTypedData_v4` payload.

    This is `keccak256(0x19 0x01 || domainSeparator || hashStruct(message))`, the hash that
    `MilestoneEscrow` recovers signers from.
    """
    signable = encode_typed_data(full_message=typed_data)
    return keccak(b"\x19" + bytes(signable.version) + signable.header + signable.body)


def normalize_signature(signature: bytes) -> bytes:
    """Return a 65-byte signature with v as 27 or 28 and a low s, as the escrow requires.

    A high s is replaced by `SECP256K1_N - s` with the other v, which is the same signature
    of the same digest. Signatures of another length are returned unchanged.
    """
    if len(signature) != 65:
        return signature
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    if v in (0, 1):
        v += 27
    if s > SECP256K1_N // 2:
        s = SECP256K1_N - s
        v = 55 - v
    return r + s.to_bytes(32, "big") + bytes([v])


def ecdsa_problem(digest: bytes, signature: bytes, signer: str) -> str | None:
    """Return why `signature` is not `signer`'s valid ECDSA signature of `digest`, or None.

    The rules are OpenZeppelin's `ECDSA.tryRecover`: 65 bytes, v of 27 or 28, s at most half
    the curve order, and a recovered address equal to `signer`.
    """
    if len(signature) != 65:
        return f"the signature is {len(signature)} bytes long, but an EOA signature has 65"
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28):
        return f"the signature's v is {v}, but the escrow accepts only 27 or 28"
    if s > SECP256K1_N // 2:
        return (
            "the signature has a high s value, which the escrow rejects (it accepts only "
            "s <= n/2, as EIP-2 requires)"
        )
    try:
        public_key = keys.Signature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(digest)
    except (BadSignature, ValueError) as error:
        return f"no signer can be recovered from the signature ({error})"
    recovered = public_key.to_checksum_address()
    if recovered != to_checksum_address(signer):
        return f"the signature was made by {recovered}, not by the stated signer {signer}"
    return None


def recover_address(digest: bytes, signature: bytes) -> str | None:
    """Return the address that a 65-byte ECDSA `signature` of `digest` recovers to, or None.

    None means that no address can be recovered, because the signature is not 65 bytes long,
    its v is not 27 or 28, or it is not on the curve. Unlike `ecdsa_problem`, this accepts a
    high s, which the escrow rejects.
    """
    if len(signature) != 65 or signature[64] not in (27, 28):
        return None
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    try:
        signature_object = keys.Signature(vrs=(signature[64] - 27, r, s))
        public_key = signature_object.recover_public_key_from_msg_hash(digest)
    except (BadSignature, ValueError):
        return None
    return public_key.to_checksum_address()


class Signer(Protocol):
    """Anything that signs EIP-712 typed data with the key of `address`."""

    address: str

    def sign_typed_data(self, typed_data: dict) -> bytes:
        """Return the signature of `typed_data`."""


class ApeAccountSigner:
    """Signs with an ape account, such as one loaded with `ape.accounts.load(alias)`.

    A stored ape account shows the domain and the message fields, and prompts for confirmation and
    its passphrase before it signs.
    """

    def __init__(self, account):
        self.account = account
        self.address = account.address

    def sign_typed_data(self, typed_data: dict) -> bytes:
        message = _eip712_message(typed_data)
        signature = self.account.sign_message(message)
        if signature is None:
            raise SigningError(
                f"The account {self.address} did not sign the {typed_data['primaryType']} "
                "message. Confirm the prompt to sign, or use another account."
            )
        return signature.encode_rsv()


class KeystoreSigner:
    """Signs with the key in an Ethereum keystore (Web3 Secret Storage) file."""

    def __init__(self, path: Path, password: str):
        path = Path(path)
        try:
            keyfile = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as error:
            raise FileError(path, "file not found", "Check the path of the keystore.") from error
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise FileError(
                path,
                f"not a readable JSON keystore ({error})",
                "Pass a keystore file as written by geth, Foundry's `cast wallet` or "
                "eth-account's `Account.encrypt`.",
            ) from error
        try:
            self._key = Account.decrypt(keyfile, password)
        except ValueError as error:
            raise SpecError(
                "password",
                "(hidden)",
                f"it does not unlock the keystore {path} ({error})",
                "Check the password, or the password file, and try again.",
            ) from error
        except (KeyError, TypeError) as error:
            raise FileError(
                path,
                f"not a keystore: missing or invalid {error}",
                "Pass a keystore file as written by geth, Foundry's `cast wallet` or "
                "eth-account's `Account.encrypt`.",
            ) from error
        self.address = Account.from_key(self._key).address

    def sign_typed_data(self, typed_data: dict) -> bytes:
        signed = Account.sign_message(encode_typed_data(full_message=typed_data), self._key)
        return bytes(signed.signature)


class SignatureFile(BaseModel):
    """A signed EIP-712 message, as stored in a signature file."""

    model_config = ConfigDict(frozen=True)

    kind: str
    """`MILESTONE_APPROVAL` or `EVIDENCE_SUBMISSION`."""
    signer: str
    """The address that signed: the attestor, or the grant's recipient."""
    signer_type: str = EOA
    """`EOA` for a key pair, `CONTRACT` for a wallet contract that checks signatures with
    ERC-1271, such as a Safe. Only EOA signatures can be checked offline."""
    signature: str
    """The signature as "0x" and hex digits."""
    digest: str
    """The EIP-712 digest that was signed, as "0x" and 64 hex digits."""
    message: dict[str, Any]
    """The message fields; the same as `typed_data["message"]`."""
    typed_data: dict[str, Any]
    """The full `eth_signTypedData_v4` payload: types, primaryType, domain and message."""
    signed_at: int | None = None
    """Unix time of signing, as the signer's clock showed it. It is not part of the signature."""

    @property
    def signature_bytes(self) -> bytes:
        return bytes.fromhex(self.signature[2:])

    @property
    def digest_bytes(self) -> bytes:
        return bytes.fromhex(self.digest[2:])

    @property
    def signed_message(self) -> dict:
        """The message the signature covers."""
        return self.typed_data.get("message", {})

    @property
    def grant_id(self) -> int:
        return self.signed_message["grantId"]

    @property
    def milestone_index(self) -> int:
        return self.signed_message["milestoneIndex"]

    @property
    def evidence_hash(self) -> bytes:
        return bytes.fromhex(self.signed_message["evidenceHash"][2:])

    @property
    def evidence_uri(self) -> str | None:
        return self.signed_message.get("evidenceUri")

    @property
    def expiry(self) -> int:
        return self.signed_message["expiry"]

    @property
    def domain(self) -> Domain:
        return Domain.from_typed_data(self.typed_data.get("domain"))

    def save(self, path: str | Path) -> None:
        """Write the file as indented JSON."""
        document = {"format": SIGNATURE_FORMAT, "version": FORMAT_VERSION, **self.model_dump()}
        Path(path).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        logger.debug("Wrote %s signature of %s to %s", self.kind, self.signer, path)

    @classmethod
    def load(cls, path: str | Path) -> "SignatureFile":
        """Read and check the layout of a signature file.

        The values are only checked for their form here: `verify` checks what they mean.
        Raise `FileError` naming the file, the problem and the fix.
        """
        path = Path(path)
        data = read_json(path, "signature file", _RESIGN)
        if data.get("format") != SIGNATURE_FORMAT:
            raise FileError(
                path,
                f"not a FundTrail signature file (format is {data.get('format')!r})",
                "Pass a file written by `fundtrail attest sign` or `fundtrail evidence sign`.",
            )
        if data.get("version") != FORMAT_VERSION:
            raise FileError(
                path,
                f"signature file version {data.get('version')!r} is not supported",
                f"This FundTrail reads version {FORMAT_VERSION}. Sign again with this release.",
            )
        try:
            signature_file = cls.model_validate(
                {key: value for key, value in data.items() if key not in ("format", "version")}
            )
            signature_file._check_form()
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
                for item in error.errors()
            )
            raise FileError(path, f"invalid signature file ({problems})", _RESIGN) from error
        except ValueError as error:
            raise FileError(path, f"invalid signature file ({error})", _RESIGN) from error
        return signature_file

    def _check_form(self) -> None:
        """Raise `ValueError` for a field whose form is wrong, naming the field."""
        if self.kind not in PRIMARY_TYPES:
            raise ValueError(
                f"kind: {self.kind!r} is neither {MILESTONE_APPROVAL!r} nor {EVIDENCE_SUBMISSION!r}"
            )
        if self.signer_type not in SIGNER_TYPES:
            raise ValueError(f"signer_type: {self.signer_type!r} is neither 'eoa' nor 'contract'")
        _parse_address(self.signer, "signer")
        if not _HEX.fullmatch(self.signature) or len(self.signature) <= 2:
            raise ValueError("signature: not 0x followed by hex bytes")
        _parse_bytes32(self.digest, "digest")
        if not isinstance(self.typed_data.get("message"), dict):
            raise ValueError("typed_data.message: missing or not an object")
        for field in MESSAGE_TYPES[PRIMARY_TYPES[self.kind]]:
            name, kind = field["name"], field["type"]
            location = f"typed_data.message.{name}"
            if name not in self.signed_message:
                raise ValueError(f"{location}: missing")
            value = self.signed_message[name]
            if kind == "address":
                _parse_address(value, location)
            elif kind == "bytes32":
                _parse_bytes32(value, location)
            elif kind == "string" and not isinstance(value, str):
                raise ValueError(f"{location}: not text")
            elif kind.startswith("uint"):
                bits = int(kind[4:])
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"{location}: not an integer")
                if not 0 <= value < 2**bits:
                    raise ValueError(f"{location}: {value} is outside the range of {kind}")


def sign_message(signer: Signer, kind: str, domain: Domain, message: dict) -> SignatureFile:
    """Sign `message` of `kind` in `domain` with `signer`, and return the signature file.

    The signature is normalized to a low s, and recovered once more so that a signer that
    signed something else is caught here rather than on-chain.
    """
    signer_field = SIGNER_FIELDS[kind]
    if to_checksum_address(message[signer_field]) != to_checksum_address(signer.address):
        raise SigningError(
            f"The message names {message[signer_field]} as its {signer_field}, but the signing "
            f"account is {signer.address}. Sign with the {signer_field}'s account."
        )
    typed_data = build_typed_data(kind, domain, message)
    digest = typed_data_digest(typed_data)

    signature = normalize_signature(bytes(signer.sign_typed_data(typed_data)))

    problem = ecdsa_problem(digest, signature, signer.address)
    if problem:
        raise SigningError(
            f"The {PRIMARY_TYPES[kind]} signature of {signer.address} is not valid: {problem}. "
            "Check that the wallet signs EIP-712 typed data (eth_signTypedData_v4)."
        )
    logger.info("Signed %s digest %s as %s", kind, to_hex(digest), signer.address)
    return SignatureFile(
        kind=kind,
        signer=to_checksum_address(signer.address),
        signer_type=EOA,
        signature=to_hex(signature),
        digest=to_hex(digest),
        message=dict(message),
        typed_data=typed_data,
        signed_at=int(time.time()),
    )


def form_problem(signature_file: SignatureFile) -> str | None:
    """Return why the file's parts disagree with each other or with the escrow's types, or None.

    A file that fails here was edited after signing or built by hand with other types: the
    stated message, signer, types or digest do not belong together.
    """
    typed_data = signature_file.typed_data
    primary_type = PRIMARY_TYPES[signature_file.kind]
    if typed_data.get("primaryType") != primary_type:
        return (
            f"typed_data.primaryType is {typed_data.get('primaryType')!r}, but a "
            f"{signature_file.kind} signs {primary_type!r}"
        )
    try:
        domain = signature_file.domain
    except ValueError as error:
        return f"typed_data.domain is invalid ({error})"
    expected_types = {
        "EIP712Domain": domain.type_fields(),
        primary_type: MESSAGE_TYPES[primary_type],
    }
    if typed_data.get("types") != expected_types:
        return f"typed_data.types differ from the escrow's {primary_type} and EIP712Domain types"
    if signature_file.message != signature_file.signed_message:
        changed = sorted(
            name
            for name in set(signature_file.message) | set(signature_file.signed_message)
            if signature_file.message.get(name) != signature_file.signed_message.get(name)
        )
        return f"message and typed_data.message differ in {', '.join(changed)}"
    signer_field = SIGNER_FIELDS[signature_file.kind]
    named = to_checksum_address(signature_file.signed_message[signer_field])
    if named != to_checksum_address(signature_file.signer):
        return f"signer is {signature_file.signer}, but the message's {signer_field} is {named}"
    digest = typed_data_digest(typed_data)
    if digest != signature_file.digest_bytes:
        return (
            f"digest is {signature_file.digest}, but the typed data hashes to {to_hex(digest)}"
        )
    return None


def _eip712_message(typed_data: dict):
    """Return `typed_data` as an `eip712` message object, the form ape accounts sign and show.

    The object is built from the same values, and its digest is compared with the payload's,
    so the signature always covers exactly the payload written to the file.
    """
    from eip712.messages import EIP712Domain, hash_message

    message_class = _eip712_classes()[typed_data["primaryType"]]
    domain = EIP712Domain(**typed_data["domain"])
    message = message_class(**typed_data["message"], eip712_domain=domain)
    if bytes(hash_message(message)) != typed_data_digest(typed_data):
        raise SigningError(
            "The eip712 package hashes this message differently from eth-account, so it was not "
            "signed. Sign with --keystore instead, and report the versions of both packages."
        )
    return message


def _eip712_classes() -> dict:
    # The classes are defined on first use, so that importing this module stays light.
    from eip712.messages import EIP712Message
    from eth_pydantic_types import abi

    class MilestoneApproval(EIP712Message):
        attestor: abi.address
        grantId: abi.uint256
        milestoneIndex: abi.uint256
        evidenceHash: abi.bytes32
        expiry: abi.uint64

    class EvidenceSubmission(EIP712Message):
        recipient: abi.address
        grantId: abi.uint256
        milestoneIndex: abi.uint256
        evidenceHash: abi.bytes32
        evidenceUri: abi.string
        expiry: abi.uint64

    return {"MilestoneApproval": MilestoneApproval, "EvidenceSubmission": EvidenceSubmission}


def read_json(path: Path, what: str, fix: str) -> dict:
    """Return the JSON object in `path`, or raise `FileError` naming the file and the fix."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise FileError(path, "file not found", "Check the path and the current folder.") from error
    except IsADirectoryError as error:
        raise FileError(path, "is a folder, not a file", f"Pass the path of a {what}.") from error
    except (OSError, UnicodeDecodeError) as error:
        raise FileError(path, f"cannot be read ({error})", fix) from error
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise FileError(path, f"not valid JSON ({error})", fix) from error
    if not isinstance(data, dict):
        raise FileError(path, f"not a {what}: the JSON is not an object", fix)
    return data


def _optional(data: dict, field: str, kind: type):
    value = data.get(field)
    if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
        raise ValueError(f"domain.{field}: expected {kind.__name__}, found {value!r}")
    return value


def _parse_address(value: object, location: str) -> str:
    if not isinstance(value, str) or not value.startswith("0x") or not is_address(value):
        raise ValueError(f"{location}: {value!r} is not an address")
    return to_checksum_address(value)


def _parse_bytes32(value: object, location: str) -> bytes:
    if not isinstance(value, str) or not _HASH.fullmatch(value):
        raise ValueError(f"{location}: {value!r} is not 0x followed by 64 hex digits")
    return bytes.fromhex(value[2:])


class CheckStatus(Enum):
    """Outcome of one check of a signature file."""

    PASSED = "passed"
    FAILED = "failed"
    UNCHECKED = "unchecked"
    """The check cannot be made offline; the escrow makes it on-chain."""


@dataclass(frozen=True)
class Check:
    """One check of a signature file, with what it found."""

    name: str
    status: CheckStatus
    detail: str


@dataclass(frozen=True)
class Verification:
    """Every check of one signature file, in order."""

    checks: tuple[Check, ...]

    @property
    def valid(self) -> bool:
        """Whether no check failed. Unchecked items still leave the file valid offline."""
        return all(check.status != CheckStatus.FAILED for check in self.checks)

    @property
    def complete(self) -> bool:
        """Whether every check passed, with none left for the escrow to make on-chain."""
        return all(check.status == CheckStatus.PASSED for check in self.checks)

    @property
    def problems(self) -> list[str]:
        return [check.detail for check in self.checks if check.status == CheckStatus.FAILED]


def verify(signature_file: SignatureFile, *, now: int | None = None, snapshot=None) -> Verification:
    """Check a signature file offline, and against a grant snapshot when one is given.

    Checks that the file's parts agree and hash to the stated digest, that the signature
    recovers to the signer, and that it has not expired at `now` (the local clock by default).
    With `snapshot` (a `GrantSnapshot`), also checks the domain, the signer's role and the
    milestone. A contract signer's signature is left unchecked, because only the contract
    can tell on-chain whether it is valid.
    """
    now = int(time.time()) if now is None else now
    checks: list[Check] = []

    problem = form_problem(signature_file)
    checks.append(_check("typed data", problem, "the types, message, signer and digest agree"))
    if problem:
        return Verification(tuple(checks))

    signer = signature_file.signer
    if signature_file.signer_type == CONTRACT:
        checks.append(_contract_signature_check(signature_file))
    else:
        problem = ecdsa_problem(
            signature_file.digest_bytes, signature_file.signature_bytes, signer
        )
        if problem:
            problem += (
                ". The escrow will reject this file. Changing its signer_type does not make the "
                "signature valid: \"contract\" only moves the check on-chain, where the escrow "
                f"asks {signer} through ERC-1271 and rejects the signature unless {signer} is a "
                "contract that accepts it"
            )
        checks.append(_check("signature", problem, f"recovers to the signer {signer}"))

    expiry = signature_file.expiry
    expired = None
    if now >= expiry:
        expired = f"expired at {show_time(expiry)}; the signer must sign again"
    checks.append(_check("expiry", expired, f"valid until {show_time(expiry)}"))

    if snapshot is not None:
        checks.extend(snapshot.check_signature(signature_file, now))
    return Verification(tuple(checks))


def _contract_signature_check(signature_file: SignatureFile) -> Check:
    """Return the offline check of a signature whose file claims a contract signer.

    Whether an address has code, and whether that code accepts a signature, is on-chain state,
    so the check stays unchecked. If the signature also recovers as an ECDSA signature, the
    detail names the address it recovers to, because the escrow checks it that way when the
    signer turns out to have no code.
    """
    signer = signature_file.signer
    detail = (
        f"cannot be verified offline. The file states that {signer} is a contract account "
        "(such as a Safe), and only that contract can check its signatures: the escrow asks it "
        "on-chain through ERC-1271 when the file is relayed."
    )
    digest, signature = signature_file.digest_bytes, signature_file.signature_bytes
    recovered = recover_address(digest, signature)
    if ecdsa_problem(digest, signature, signer) is None:
        detail += (
            f" It is also a valid ECDSA signature of {signer}, which the escrow accepts if "
            f"{signer} has no code."
        )
    elif recovered is not None and recovered != to_checksum_address(signer):
        detail += (
            f" As an ECDSA signature it recovers to the EOA {recovered}, not to {signer}, so "
            f"the escrow rejects it if {signer} has no code."
        )
    return Check("signature", CheckStatus.UNCHECKED, detail)


def _check(name: str, problem: str | None, passed: str) -> Check:
    if problem:
        return Check(name, CheckStatus.FAILED, problem)
    return Check(name, CheckStatus.PASSED, passed)
