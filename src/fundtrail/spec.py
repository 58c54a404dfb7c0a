"""Grant specs: the YAML file a grant maker writes, checked and turned into on-chain terms.

A spec is read in two steps. `GrantSpec.from_yaml` checks the file's structure: the fields, their
types, and the rules that need nothing outside the file. `GrantSpec.resolve` then needs the
current time, the token and a way to look up accounts, and checks everything else: deadlines,
amounts, accounts, the quorum and the terms. Each step reports every problem it finds at once,
as one `SpecErrors`, so the grant maker can fix the whole file in one pass.

Only addresses, amounts, deadlines, the quorum, the terms hash and the terms URI go on-chain.
Titles and descriptions stay in the YAML file and never reach the chain.
"""

import difflib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import yaml
from eth_utils import is_checksum_address, to_checksum_address
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from fundtrail.errors import MISSING, FileError, PrivacyError, SpecError, SpecErrors
from fundtrail.evidence import hash_file, parse_hash
from fundtrail.privacy import check_public_text
from fundtrail.units import TokenInfo, parse_amount, parse_deadline

logger = logging.getLogger(__name__)

MAX_MILESTONES = 32
"""Maximum number of milestones in one grant, as `MilestoneEscrow.MAX_MILESTONES` enforces."""

MAX_ATTESTORS = 16
"""Maximum number of attestors of one grant, as `MilestoneEscrow.MAX_ATTESTORS` enforces."""

MAX_UINT128 = 2**128 - 1
"""Largest milestone amount and grant total the escrow stores, in base units."""

_ERROR_TYPE = "fundtrail_spec"
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_URI_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*:\S+", re.IGNORECASE)

ResolveAccount = Callable[[str, str], str]
"""`resolve_account(value, field)` returns the checksum address of an address or account alias,
and raises `SpecError` itself when the value is unknown."""


def _problem(problem: str, fix: str, shown: object = MISSING) -> PydanticCustomError:
    """Build a validation error that `from_data` turns into a `SpecError`.

    `shown` replaces the input as the value in the message, when the input would mislead.
    """
    context = {"problem": problem, "fix": fix}
    if shown is not MISSING:
        context["shown"] = shown
    return PydanticCustomError(_ERROR_TYPE, "{problem}", context)


def _text_not_number(value: Any) -> Any:
    # YAML reads an unquoted 0x... value as a hexadecimal integer, and the digits after the
    # leading zeros would be lost.
    if isinstance(value, int) and not isinstance(value, bool):
        raise _problem(
            f"YAML read this unquoted value as the number {value}",
            "Put addresses, hashes and symbols in quotes, for example recipient: \"0x3C44...\".",
            shown=hex(value),
        )
    return value


def _deadline_value(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, str | date | int):
        raise _problem(
            "not a deadline",
            "Write a date such as 2027-03-31, a date and time with a timezone such as "
            "2027-03-31T12:00:00Z, a duration from now such as 90d, or a Unix time in seconds.",
        )
    return value


def _amount_value(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        # The example uses the spec's token symbol, which `from_data` passes in the context.
        symbol = (info.context or {}).get("token_symbol")
        example = f"1.25 {symbol}" if symbol else "1.25"
        raise _problem(
            "YAML read this unquoted decimal as a binary floating-point number, which cannot hold "
            "every amount exactly",
            f'Put the amount in quotes, for example amount: "{example}".',
        )
    return value


def _non_empty(value: str) -> str:
    if not value.strip():
        raise _problem("must not be empty", "Write some text.")
    return value


AccountText = Annotated[str, BeforeValidator(_text_not_number)]
Deadline = Annotated[str | date | datetime | int, BeforeValidator(_deadline_value)]


class MilestoneSpec(BaseModel):
    """One milestone: a piece of work, its payment and the deadline for its approval."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    title: str
    """Short name of the work, such as "24/7 hotline staffed". Off-chain only."""
    amount: str
    """Payment when the milestone is approved, in token units (not base units such as wei),
    such as "2,500 USDC" or "0.5 ETH"."""
    deadline: Deadline
    """Latest time for the attestors' approval. After it, the funders can reclaim the amount."""
    description: str | None = None
    """What the attestors check before they approve. Off-chain only."""

    _check_title = field_validator("title")(_non_empty)
    _check_amount = field_validator("amount", mode="before")(_amount_value)


class TermsSpec(BaseModel):
    """The off-chain grant agreement: its hash goes on-chain, with a URI to read it at."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    file: Path | None = None
    """The agreement document, hashed when the grant is created. Relative to the spec's folder."""
    hash: AccountText | None = None
    """The agreement's keccak256 hash as "0x" and 64 hex digits, when the file is not at hand."""
    uri: str
    """Where anyone can read the agreement, such as "ipfs://bafy...". Published on-chain."""

    @field_validator("file")
    @classmethod
    def _relative_to_spec(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        base = (info.context or {}).get("base_dir")
        if value is not None and base is not None and not value.is_absolute():
            return Path(base) / value
        return value

    @field_validator("uri")
    @classmethod
    def _check_uri(cls, value: str) -> str:
        if not _URI_SCHEME.fullmatch(value.strip()):
            raise _problem(
                "not a URI",
                "Write where the agreement can be read, such as ipfs://bafy... or "
                "https://example.org/agreement.pdf, without spaces.",
            )
        return value.strip()

    @model_validator(mode="after")
    def _file_or_hash(self) -> "TermsSpec":
        if (self.file is None) == (self.hash is None):
            raise _problem(
                "needs exactly one of file and hash",
                "Give file: with the agreement's path to hash it, or hash: with its hash, "
                "not both.",
            )
        return self


class GrantSpec(BaseModel):
    """A milestone grant as the grant maker writes it, before any value is checked on-chain."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    title: str
    """Name of the grant, for people. Off-chain only."""
    recipient: AccountText
    """The NGO's payout address, or an ape account alias."""
    token: AccountText
    """"ETH", a token symbol recorded in the deployments file, or a token address."""
    funding_deadline: Deadline
    """Time by which the grant must be fully funded, or the funders can take their money back."""
    attestors: list[AccountText]
    """Addresses or ape account aliases of the people who approve milestones, 1 to 16."""
    quorum: int
    """Number of attestor approvals that releases a milestone, from 1 to the number of attestors."""
    milestones: list[MilestoneSpec]
    """The milestones, 1 to 32, paid in this order of indices."""
    terms: TermsSpec
    """The grant agreement."""

    _source: str | None = PrivateAttr(default=None)

    _check_title = field_validator("title")(_non_empty)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "GrantSpec":
        """Read and check a grant spec file.

        Raise `SpecErrors` listing every problem in the file, and `FileError` if the file cannot
        be read. A relative `terms.file` is taken relative to the spec's folder.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as error:
            raise FileError(path, "file not found", "Check the path of the grant spec.") from error
        except (OSError, UnicodeDecodeError) as error:
            raise FileError(
                path, f"cannot be read ({error})", "Pass a UTF-8 text file you may read."
            ) from error

        try:
            data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
        except yaml.YAMLError as error:
            raise SpecErrors(str(path), [_yaml_error(error)]) from error
        return cls.from_data(data, source=str(path), base_dir=path.parent)

    @classmethod
    def from_data(
        cls, data: object, *, source: str = "grant spec", base_dir: Path | None = None
    ) -> "GrantSpec":
        """Check a grant spec already parsed from YAML or JSON.

        `source` names the spec in error messages, and `base_dir` is the folder a relative
        `terms.file` is taken relative to.
        """
        if data is None:
            raise SpecErrors(
                source,
                [
                    SpecError(
                        source,
                        MISSING,
                        "the spec is empty",
                        "Start from examples/grant-hotline.yaml.",
                    )
                ],
            )
        if not isinstance(data, dict):
            raise SpecErrors(
                source,
                [
                    SpecError(
                        "(top level)",
                        data,
                        "a grant spec must be a mapping of fields",
                        "Write one field per line, such as title: ..., "
                        "as in examples/grant-hotline.yaml.",
                    )
                ],
            )
        try:
            context = {"base_dir": base_dir, "token_symbol": _token_symbol(data.get("token"))}
            spec = cls.model_validate(data, context=context)
        except ValidationError as error:
            raise SpecErrors(source, [_spec_error(item) for item in error.errors()]) from None
        spec._source = source
        logger.debug("Read grant spec %s with %d milestones", source, len(spec.milestones))
        return spec

    def resolve(
        self,
        *,
        now: int,
        token: TokenInfo,
        resolve_account: ResolveAccount,
        allow_personal_data: bool = False,
    ) -> "ResolvedGrant":
        """Check every value against `now`, `token` and the known accounts, and convert them.

        `resolve_account(value, field)` turns an address or account alias into a checksum
        address, raising `SpecError` if it is unknown. Durations count from `now`. The terms URI
        goes on-chain, so it must not contain personal data unless `allow_personal_data` is
        set. Raise `SpecErrors` listing every problem found.
        """
        problems = _Problems()

        self._check_token(token, problems)
        recipient = problems.check(resolve_account, self.recipient, "recipient")
        if recipient is not None and int(recipient, 16) == 0:
            problems.add(
                SpecError(
                    "recipient",
                    self.recipient,
                    "the zero address cannot receive payments",
                    "Write the NGO's payout address.",
                )
            )
        funding_deadline = problems.check(
            parse_deadline, self.funding_deadline, now, "funding_deadline"
        )
        amounts, deadlines = self._resolve_milestones(now, token, funding_deadline, problems)
        attestors = self._resolve_attestors(resolve_account, problems)
        self._check_quorum(problems)
        terms_hash = self._resolve_terms_hash(problems)
        problems.check(
            check_public_text, "terms.uri", self.terms.uri, allow_personal_data=allow_personal_data
        )

        if problems:
            raise SpecErrors(self._source or "grant spec", problems.errors)
        return ResolvedGrant(
            spec=self,
            token=token,
            recipient=recipient,
            attestors=attestors,
            quorum=self.quorum,
            funding_deadline=funding_deadline,
            milestone_amounts=amounts,
            milestone_deadlines=deadlines,
            terms_hash=terms_hash,
            terms_uri=self.terms.uri,
        )

    def _check_token(self, token: TokenInfo, problems: "_Problems") -> None:
        """Check that the `token` passed in is the one the spec names."""
        if _ADDRESS.fullmatch(self.token):
            matches = self.token.lower() == token.address.lower()
        else:
            matches = self.token.casefold() == token.symbol.casefold()
        if not matches:
            problems.add(
                SpecError(
                    "token",
                    self.token,
                    f"does not match the token in use, {token.symbol} at {token.address}",
                    "Use the same token in the spec and on the command line.",
                )
            )

    def _resolve_milestones(
        self, now: int, token: TokenInfo, funding_deadline: int | None, problems: "_Problems"
    ) -> tuple[list[int], list[int]]:
        count = len(self.milestones)
        if not 1 <= count <= MAX_MILESTONES:
            problems.add(
                SpecError(
                    "milestones",
                    MISSING,
                    f"has {count} milestones, but a grant needs 1 to {MAX_MILESTONES}",
                    "List at least one milestone, and split larger programmes into several grants.",
                )
            )

        amounts: list[int] = []
        deadlines: list[int] = []
        for index, milestone in enumerate(self.milestones):
            field = f"milestones[{index}]"
            amount = problems.check(parse_amount, milestone.amount, token, f"{field}.amount")
            if amount is not None and amount > MAX_UINT128:
                problems.add(
                    SpecError(
                        f"{field}.amount",
                        milestone.amount,
                        "larger than the escrow can hold for one milestone",
                        "Split the work into several milestones.",
                    )
                )
            deadline = problems.check(parse_deadline, milestone.deadline, now, f"{field}.deadline")
            both_known = deadline is not None and funding_deadline is not None
            if both_known and deadline <= funding_deadline:
                problems.add(
                    SpecError(
                        f"{field}.deadline",
                        milestone.deadline,
                        "not after the funding deadline",
                        "Give the milestone a deadline later than funding_deadline, because "
                        "work can only be paid once the grant is fully funded.",
                    )
                )
            amounts.append(amount or 0)
            deadlines.append(deadline or 0)

        if sum(amounts) > MAX_UINT128:
            problems.add(
                SpecError(
                    "milestones",
                    MISSING,
                    "the amounts add up to more than the escrow can hold for one grant",
                    "Split the programme into several grants.",
                )
            )
        return amounts, deadlines

    def _resolve_attestors(
        self, resolve_account: ResolveAccount, problems: "_Problems"
    ) -> list[str]:
        count = len(self.attestors)
        if not 1 <= count <= MAX_ATTESTORS:
            problems.add(
                SpecError(
                    "attestors",
                    MISSING,
                    f"has {count} attestors, but a grant needs 1 to {MAX_ATTESTORS}",
                    "List between 1 and 16 attestors.",
                )
            )

        resolved: list[str] = []
        first_index: dict[str, int] = {}
        for index, value in enumerate(self.attestors):
            field = f"attestors[{index}]"
            address = problems.check(resolve_account, value, field)
            if address is None:
                continue
            if int(address, 16) == 0:
                problems.add(
                    SpecError(field, value, "the zero address cannot attest", "Remove it.")
                )
                continue
            # Aliases and differently cased addresses can name the same account, so duplicates
            # are found on the resolved checksum addresses.
            if address in first_index:
                problems.add(
                    SpecError(
                        field,
                        value,
                        f"the same account as attestors[{first_index[address]}] ({address})",
                        "List each attestor once, because one person must not approve twice.",
                    )
                )
                continue
            first_index[address] = index
            resolved.append(address)
        return resolved

    def _check_quorum(self, problems: "_Problems") -> None:
        count = len(self.attestors)
        if not 1 <= self.quorum <= max(count, 1):
            problems.add(
                SpecError(
                    "quorum",
                    self.quorum,
                    f"must be between 1 and the number of attestors, {count}",
                    "Set how many attestors must approve a milestone, such as 2 of 3.",
                )
            )

    def _resolve_terms_hash(self, problems: "_Problems") -> bytes | None:
        if self.terms.hash is not None:
            return problems.check(parse_hash, self.terms.hash, "terms.hash")
        try:
            return hash_file(self.terms.file)
        except FileError as error:
            problems.add(SpecError("terms.file", str(self.terms.file), error.problem, error.fix))
            return None


@dataclass(frozen=True)
class ResolvedGrant:
    """A checked grant spec, in the units and form the escrow takes."""

    spec: GrantSpec
    """The spec it was resolved from."""
    token: TokenInfo
    """The grant's token."""
    recipient: str
    """The NGO's checksum payout address."""
    attestors: list[str]
    """Checksum addresses of the attestors, unique, in the spec's order."""
    quorum: int
    """Number of approvals that releases a milestone, called the threshold on-chain."""
    funding_deadline: int
    """Unix time by which the grant must be fully funded."""
    milestone_amounts: list[int]
    """Amount of each milestone, in the token's base units."""
    milestone_deadlines: list[int]
    """Unix time by which each milestone must be approved."""
    terms_hash: bytes
    """keccak256 hash of the grant agreement, 32 bytes."""
    terms_uri: str
    """Where the grant agreement can be read."""

    @property
    def total(self) -> int:
        """The sum of the milestone amounts, in base units."""
        return sum(self.milestone_amounts)

    def as_terms(self) -> tuple:
        """Return the `GrantTerms` tuple that `MilestoneEscrow.createGrant` takes."""
        return (
            self.recipient,
            self.token.address,
            self.funding_deadline,
            self.quorum,
            list(self.attestors),
            [
                (amount, deadline)
                for amount, deadline in zip(
                    self.milestone_amounts, self.milestone_deadlines, strict=True
                )
            ],
            self.terms_hash,
            self.terms_uri,
        )


class _Problems:
    """Collects the problems of one spec, so that all of them are reported together."""

    def __init__(self):
        self.errors: list[SpecError | PrivacyError] = []

    def __bool__(self) -> bool:
        return bool(self.errors)

    def add(self, error: SpecError | PrivacyError) -> None:
        if isinstance(error, SpecErrors):
            self.errors.extend(error.errors)
        else:
            self.errors.append(error)

    def check(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Return `function(*args, **kwargs)`, or None after recording the problem it raised."""
        try:
            return function(*args, **kwargs)
        except (SpecError, PrivacyError) as error:
            self.add(error)
            return None


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects a key given twice in one mapping.

    PyYAML keeps the last of two equal keys without a word, which would silently drop, for
    example, the first of two amounts.
    """

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found the key {key!r} twice",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_error(error: yaml.YAMLError) -> SpecError:
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(YAML)"
    problem = getattr(error, "problem", None) or str(error)
    return SpecError(
        where,
        MISSING,
        f"invalid YAML: {problem}",
        "Fix the YAML there. Values that contain ': ' or ' #' need quotes, and every key "
        "must appear once per mapping.",
    )


_FIXES = {
    "string_type": "Write it as text, in quotes if it looks like a number or a date.",
    "int_type": "Write a whole number, such as 2.",
    "int_parsing": "Write a whole number, such as 2.",
    "int_from_float": "Write a whole number, such as 2.",
    "list_type": "Write a YAML list, one item per line, each starting with '- '.",
    "model_type": "Write the fields of this section, one per line, indented below it.",
    "model_attributes_type": "Write the fields of this section, one per line, indented below it.",
    "path_type": "Write a file path as text.",
}


def _spec_error(item: dict) -> SpecError:
    """Turn one pydantic error into a `SpecError` that names the field, the value and the fix."""
    location = item["loc"]
    field = _field_path(location) or "(top level)"
    kind = item["type"]

    if kind == _ERROR_TYPE:
        context = item["ctx"]
        shown = context.get("shown", item["input"])
        return SpecError(field, shown, context["problem"], context["fix"])
    if kind == "missing":
        return SpecError(
            field,
            MISSING,
            "missing required field",
            f"Add {location[-1]}: to {_field_path(location[:-1]) or 'the top level'}.",
        )
    if kind == "extra_forbidden":
        allowed = _allowed_fields(location[:-1])
        close = difflib.get_close_matches(str(location[-1]), allowed, n=1)
        hint = f"Did you mean {close[0]}? " if close else ""
        # The field's name is the mistake, not its value, so the message leaves the value out.
        return SpecError(
            field,
            MISSING,
            "unknown field",
            f"{hint}Remove it or correct its name. Allowed here: {', '.join(allowed)}.",
        )
    problem = item["msg"][:1].lower() + item["msg"][1:]
    return SpecError(field, item["input"], problem, _FIXES.get(kind, "Check the value."))


def _token_symbol(token: object) -> str | None:
    """Return the spec's token if it is a symbol, such as "ETH", or None for anything else."""
    if not isinstance(token, str) or _ADDRESS.fullmatch(token.strip()):
        return None
    symbol = token.strip()
    return symbol if symbol and not any(character.isspace() for character in symbol) else None


def _field_path(location: tuple) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _allowed_fields(parent: tuple) -> list[str]:
    model: type[BaseModel] = GrantSpec
    if parent[:1] == ("terms",):
        model = TermsSpec
    elif parent[:1] == ("milestones",):
        model = MilestoneSpec
    return list(model.model_fields)


def resolve_address(value: str, field: str) -> str:
    """Return the checksum form of a hex address, for callers without account aliases.

    Raise `SpecError` for anything but "0x" and 40 hex digits, and for a mixed-case address
    whose checksum is wrong, which usually means a typo.
    """
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value.strip()):
        raise SpecError(
            field,
            value,
            "not an address",
            "Write 0x followed by 40 hex digits, in quotes in YAML files.",
        )
    address = value.strip()
    hex_digits = address[2:]
    is_mixed_case = hex_digits != hex_digits.lower() and hex_digits != hex_digits.upper()
    if is_mixed_case and not is_checksum_address(address):
        raise SpecError(
            field,
            value,
            "the mixed-case checksum does not match, which usually means a typo",
            "Copy the address again from its source.",
        )
    return to_checksum_address(address)
