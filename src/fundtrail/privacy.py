"""A guard that keeps personal data out of text written to a public chain.

Anything written on-chain (a terms URI, a project name) stays readable by anyone for ever. The
guard looks for e-mail addresses, phone numbers, IBANs and payment card numbers. It is a
safety net against mistakes, not a guarantee: it does not recognise names or street addresses.

The number detectors skip the inside of URLs (`scheme://...`), so content identifiers, paths
and query strings never look like phone or card numbers.
NOTE: a phone or card number written inside a URL is therefore not found. E-mail addresses are
found everywhere, URLs included.
"""

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

from fundtrail.errors import PrivacyError

logger = logging.getLogger(__name__)

EMAIL = "e-mail address"
PHONE = "phone number"
IBAN = "IBAN"
CARD = "payment card number"

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)

_EMAIL = re.compile(
    r"(?<![\w.%+-])[\w.%+-]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*"
    r"\.[a-z]{2,}\b",
    re.IGNORECASE,
)

# "+44 20 7946 0958", "+1 (555) 123-4567", "+4915112345678". The lookbehind keeps the "+02"
# of a timezone offset such as "12:00:00+02:00" out.
_INTERNATIONAL_PHONE = re.compile(
    r"(?<![\w+])(?<!\d[ .-])\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){1,6}(?![\w])"
)

# National forms with separators: "(555) 123-4567", "555-123-4567", "020 7946 0958",
# "06 12 34 56 78" and "0171/1234567". The separator must stay the same within one number, so
# two dates side by side ("31.03.2027 10.04.2027") do not join into one number.
_NATIONAL_PHONE = re.compile(
    r"(?<![\w.,+/-])(?<!\d[ .-])(?:"
    r"\(\d{2,5}\) ?\d{3,4}[ .-]?\d{3,4}"
    r"|\d{2,5}(?P<sep>[ .-])\d{2,4}(?:(?P=sep)\d{2,5}){1,3}"
    r"|0\d{1,4}[/ -]\d{5,8}"
    r")(?![\w]|[ .,/-]\d)"
)

# Numbers such as "10 000 000 000" or "1.000.000.000", which use spaces or dots as thousands
# separators, have the shape of a national phone number but are amounts.
_THOUSANDS = re.compile(r"\d{1,3}(?P<sep>[ .])\d{3}(?:(?P=sep)\d{3})+")

_IBAN = re.compile(r"\b[a-z]{2}\d{2}(?: ?[a-z0-9]{4}){2,7}(?: ?[a-z0-9]{1,3})?\b", re.IGNORECASE)

# 13 to 19 digits, optionally in groups separated by single spaces or hyphens. A leading "+"
# marks a phone number instead.
_CARD = re.compile(r"(?<![\w.,+])(?<!\d[ -])\d(?:[ -]?\d){12,18}(?![\w]|[ .,-]\d)")


@dataclass(frozen=True)
class Finding:
    """One piece of personal data found in a text."""

    kind: str
    """The kind of personal data, such as "e-mail address"."""
    start: int
    """Offset of the first character in the text."""
    end: int
    """Offset just past the last character in the text."""


def find_personal_data(text: str) -> list[str]:
    """Return the kinds of personal data found in `text`, each once, in a fixed order."""
    found = {finding.kind for finding in find_personal_data_spans(text)}
    return [kind for kind in (EMAIL, PHONE, IBAN, CARD) if kind in found]


def find_personal_data_spans(text: str) -> list[Finding]:
    """Find every piece of personal data in `text`, ordered by position."""
    without_urls = _URL.sub(lambda match: " " * len(match.group()), text)
    findings = [*_find_emails(text), *_find_numbers(without_urls)]
    return sorted(findings, key=lambda finding: (finding.start, finding.end))


def mask_personal_data(text: str) -> str:
    """Return `text` with the personal data masked, keeping just enough to recognise it.

    E-mail addresses keep the first character of the user and of the domain and the top-level
    domain. Numbers keep their separators and last digits, as receipts show card numbers.
    """
    pieces = []
    position = 0
    for finding in find_personal_data_spans(text):
        # A span that overlaps one already masked is part of it.
        if finding.start < position:
            continue
        pieces.append(text[position : finding.start])
        piece = text[finding.start : finding.end]
        if finding.kind == EMAIL:
            pieces.append(_mask_email(piece))
        else:
            pieces.append(_mask_digits(piece, keep=4 if finding.kind == CARD else 2))
        position = finding.end
    pieces.append(text[position:])
    return "".join(pieces)


def check_public_text(field: str, text: str, *, allow_personal_data: bool = False) -> None:
    """Raise `PrivacyError` if `text`, bound for the chain as `field`, contains personal data.

    With `allow_personal_data`, log a warning instead. The warning names the field and the kinds
    found but never the text.
    """
    kinds = find_personal_data(text)
    if not kinds:
        return
    if not allow_personal_data:
        raise PrivacyError(field, text, kinds)
    logger.warning(
        "%s looks like it contains: %s. Publishing it anyway because personal data was allowed.",
        field,
        ", ".join(kinds),
    )


def _find_emails(text: str) -> Iterator[Finding]:
    for match in _EMAIL.finditer(text):
        yield Finding(EMAIL, match.start(), match.end())


def _find_numbers(text: str) -> Iterator[Finding]:
    for match in _IBAN.finditer(text):
        if _is_valid_iban(match.group()):
            yield Finding(IBAN, match.start(), match.end())
    for match in _CARD.finditer(text):
        if _passes_luhn(_digits(match.group())):
            yield Finding(CARD, match.start(), match.end())
    for match in _INTERNATIONAL_PHONE.finditer(text):
        # E.164 numbers have at most 15 digits, and fewer than 8 is too short for a phone number.
        if 8 <= len(_digits(match.group())) <= 15:
            yield Finding(PHONE, match.start(), match.end())
    for match in _NATIONAL_PHONE.finditer(text):
        if 9 <= len(_digits(match.group())) <= 13 and not _THOUSANDS.fullmatch(match.group()):
            yield Finding(PHONE, match.start(), match.end())


def _digits(text: str) -> str:
    return "".join(character for character in text if character.isdigit())


def _passes_luhn(digits: str) -> bool:
    """Check the Luhn checksum that every payment card number carries in its last digit."""
    total = 0
    for position, character in enumerate(reversed(digits)):
        digit = int(character)
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _is_valid_iban(candidate: str) -> bool:
    """Check the ISO 13616 mod-97 checksum, which only real IBANs pass."""
    compact = candidate.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    # Letters count as two-digit numbers: A is 10, B is 11, up to Z as 35.
    as_number = "".join(str(int(character, 36)) for character in rearranged)
    return int(as_number) % 97 == 1


def _mask_email(address: str) -> str:
    user, _, domain = address.partition("@")
    labels = domain.split(".")
    return f"{user[0]}***@{labels[0][0]}***.{labels[-1]}"


def _mask_digits(piece: str, keep: int) -> str:
    """Replace every letter and digit but the last `keep` with "*", keeping separators."""
    total = sum(1 for character in piece if character.isalnum())
    masked = []
    seen = 0
    for character in piece:
        if character.isalnum():
            seen += 1
            masked.append(character if seen > total - keep else "*")
        else:
            masked.append(character)
    return "".join(masked)
