"""Token amounts and deadlines as people write them, converted exactly to what the chain stores.

Amounts become integers in the token's smallest unit ("base units"), deadlines become Unix
seconds. No step uses floating point, so "0.1 ETH" is exactly 10**17 wei.
"""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from fundtrail.errors import SpecError

ETH_ADDRESS = "0x0000000000000000000000000000000000000000"
"""The token address that means ETH in grant terms."""

MAX_UINT64 = 2**64 - 1
"""The latest deadline the escrow can store, in Unix seconds."""

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY


@dataclass(frozen=True)
class TokenInfo:
    """A token's address, symbol and number of decimals."""

    address: str
    """The token contract's address, or `ETH_ADDRESS` for ETH."""
    symbol: str
    """The ticker symbol, such as "USDC", as written in amounts."""
    decimals: int
    """Number of decimal places of the token: 1 token is 10**decimals base units."""

    def __post_init__(self):
        # ERC-20 returns decimals as a uint8.
        if not 0 <= self.decimals <= 255:
            raise ValueError(f"token decimals must be between 0 and 255, not {self.decimals}")


ETH = TokenInfo(ETH_ADDRESS, "ETH", 18)
"""Ether, with its 18 decimals."""

# An optional sign, then the number, then an optional symbol. The number is checked separately,
# so that each kind of mistake gets its own message.
_AMOUNT = re.compile(r"(?P<number>[+-]?[0-9.,]+)\s*(?P<symbol>\S+)?")
_PLAIN_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_GROUPED_NUMBER = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")


def parse_amount(text: str | int | Decimal, token: TokenInfo, field: str) -> int:
    """Convert an amount in token units, such as "2,500.50 USDC", into base units.

    Text may carry the token's symbol, in any case, and may group thousands with commas in
    groups of three. An `int` or `Decimal` is a number of tokens too, not of base units.
    Raise `SpecError` for anything else, for more decimals than the token has, and for zero
    or negative amounts.
    """
    example = f"'2,500.50 {token.symbol}'" if token.decimals >= 2 else f"'2,500 {token.symbol}'"
    if isinstance(text, bool) or not isinstance(text, str | int | Decimal):
        raise SpecError(
            field,
            text,
            "an amount must be text or a whole number",
            f"Write the amount as text, for example {example}. YAML reads an unquoted decimal "
            "such as 2500.50 as a binary floating-point number, which cannot hold every amount "
            "exactly, so put it in quotes.",
        )
    if isinstance(text, str):
        amount = _parse_amount_text(text, token, field, example)
    else:
        amount = Decimal(text)
        if not amount.is_finite():
            raise SpecError(
                field, text, "not a finite number", f"Write an amount such as {example}."
            )

    if amount <= 0:
        raise SpecError(
            field,
            text,
            "the amount must be greater than zero",
            f"Write a positive amount, for example {example}.",
        )
    base_units = _to_base_units(amount, token.decimals)
    if base_units is None:
        raise SpecError(
            field,
            text,
            f"more than {token.decimals} decimal places, the most that {token.symbol} has",
            f"Write the amount with at most {token.decimals} decimals, for example {example}.",
        )
    return base_units


def _to_base_units(amount: Decimal, decimals: int) -> int | None:
    """Return `amount * 10**decimals` as an int, or None if that is not a whole number.

    The arithmetic is on integers because Decimal arithmetic rounds to 28 digits by default.
    """
    _, digits, exponent = amount.as_tuple()
    coefficient = int("".join(map(str, digits)))
    shift = exponent + decimals
    if shift >= 0:
        return coefficient * 10**shift
    whole, remainder = divmod(coefficient, 10**-shift)
    return None if remainder else whole


def _parse_amount_text(text: str, token: TokenInfo, field: str, example: str) -> Decimal:
    match = _AMOUNT.fullmatch(text.strip())
    if match is None:
        raise SpecError(
            field,
            text,
            "not an amount",
            f"Write a number of tokens, optionally followed by the symbol, for example {example}.",
        )

    symbol = match["symbol"]
    if symbol is not None and re.fullmatch(r"[eE][+-]?[0-9]+", symbol):
        raise SpecError(
            field,
            text,
            "scientific notation is not supported",
            f"Write all the digits, for example {example}.",
        )
    if symbol is not None and symbol.casefold() != token.symbol.casefold():
        raise SpecError(
            field,
            text,
            f"the symbol {symbol} does not match the grant's token {token.symbol}",
            f"Write the amount in {token.symbol}, for example {example}, or change the token.",
        )

    number = match["number"]
    sign = ""
    if number[0] in "+-":
        sign, number = number[0], number[1:]
    if "," in number and "." in number and number.rindex(",") > number.index("."):
        raise SpecError(
            field,
            text,
            "a comma after the decimal point",
            "Use ',' only to group thousands and '.' for decimals, "
            f"for example {example}.",
        )
    if "," in number and not _GROUPED_NUMBER.fullmatch(number):
        raise SpecError(
            field,
            text,
            "commas must group the digits in threes",
            f"Write the amount as 2,500 or 2500 and use '.' for decimals, for example {example}.",
        )
    if not _PLAIN_NUMBER.fullmatch(number.replace(",", "")):
        raise SpecError(
            field,
            text,
            "not a number",
            f"Write digits with at most one decimal point, for example {example}.",
        )

    try:
        return Decimal(sign + number.replace(",", ""))
    except InvalidOperation as error:  # The patterns above admit only valid decimals.
        raise SpecError(
            field, text, "not a number", f"Write an amount such as {example}."
        ) from error


def format_amount(base_units: int, token: TokenInfo) -> str:
    """Format base units as token units with thousands separators, such as "2,500.5 USDC".

    The result is exact, drops trailing zeros and is read back by `parse_amount`.
    """
    sign = "-" if base_units < 0 else ""
    whole, fraction = divmod(abs(base_units), 10**token.decimals)
    text = f"{sign}{whole:,}"
    if fraction:
        text += "." + str(fraction).rjust(token.decimals, "0").rstrip("0")
    return f"{text} {token.symbol}"


_DURATION_PART = re.compile(r"(?P<count>[0-9]+)\s*(?P<unit>[a-z]+)\s*", re.IGNORECASE)
_DURATION_UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), MINUTE),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), HOUR),
    **dict.fromkeys(("d", "day", "days"), DAY),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), WEEK),
}
_VARIABLE_UNITS = {"mo", "mon", "month", "months", "y", "yr", "yrs", "year", "years"}
_DURATION_EXAMPLES = "'90d', '12w', '36h', '45m', '90 days' or '2 weeks 3 days'"


def parse_duration(text: str, field: str) -> int:
    """Convert a duration such as "90d", "12w", "36h", "45m" or "2 weeks 3 days" to seconds.

    Units are s, m (minutes), h, d and w, or their English names. Months and years are
    rejected because their length varies. Raise `SpecError` for anything else and for zero.
    """
    if not isinstance(text, str):
        raise SpecError(
            field, text, "a duration must be text", f"Write it as {_DURATION_EXAMPLES}."
        )
    stripped = text.strip()
    seconds = 0
    position = 0
    for match in _DURATION_PART.finditer(stripped):
        if match.start() != position:
            break
        unit = match["unit"].lower()
        if unit in _VARIABLE_UNITS:
            raise SpecError(
                field,
                text,
                "months and years have no fixed length",
                "Write the duration in days or weeks, such as '90d', or give a date such as "
                "'2027-03-31'.",
            )
        if unit not in _DURATION_UNITS:
            raise SpecError(
                field,
                text,
                f"unknown time unit {match['unit']!r}",
                f"Use s, m (minutes), h, d or w, for example {_DURATION_EXAMPLES}.",
            )
        seconds += int(match["count"]) * _DURATION_UNITS[unit]
        position = match.end()

    if not stripped or position != len(stripped):
        raise SpecError(
            field, text, "not a duration", f"Write a duration such as {_DURATION_EXAMPLES}."
        )
    if seconds == 0:
        raise SpecError(field, text, "the duration is zero", "Write a duration longer than zero.")
    return seconds


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ].+")
_DEADLINE_FORMS = (
    "a date such as '2027-03-31', a date and time with a timezone such as "
    "'2027-03-31T12:00:00Z', a duration from now such as '90d', or a Unix time in seconds"
)


def parse_deadline(value: str | int | date | datetime, now: int, field: str) -> int:
    """Convert a deadline to Unix seconds, and check that it is later than `now`.

    Accepted forms:

    - an ISO date such as "2027-03-31", or a `date` (YAML reads unquoted dates as `date`). A
      date means the END of that day in UTC, so "2027-03-31" is 2027-04-01T00:00:00Z and work
      delivered on 31 March, in UTC, still counts;
    - an ISO date and time with a timezone, such as "2027-03-31T12:00:00Z" or
      "2027-03-31T12:00:00+02:00", or an aware `datetime`. A time without a timezone is
      rejected, because it would mean different moments on different computers;
    - a duration from `now`, such as "90d", "12w" or "2 weeks" (see `parse_duration`);
    - a Unix time in seconds, as an `int` or a string of digits.

    Raise `SpecError` for anything else, for deadlines not after `now`, and for deadlines past
    what the escrow can store (2**64 - 1).
    """
    timestamp = _to_timestamp(value, now, field)
    if timestamp <= now:
        raise SpecError(
            field,
            value,
            f"the deadline {_show_time(timestamp)} is not after now ({_show_time(now)})",
            "Choose a later deadline, or write it as a duration from now such as '90d'.",
        )
    if timestamp > MAX_UINT64:
        raise SpecError(
            field,
            value,
            "the deadline is later than the escrow can store",
            "Choose a deadline within the next few years.",
        )
    return timestamp


def _to_timestamp(value: object, now: int, field: str) -> int:
    # datetime is a subclass of date, so it must be tested first.
    if isinstance(value, datetime):
        return _datetime_to_timestamp(value, value, field)
    if isinstance(value, date):
        return _end_of_day(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise SpecError(field, value, "not a deadline", f"Write {_DEADLINE_FORMS}.")

    text = value.strip()
    if text.isdigit():
        return int(text)
    if _ISO_DATE.fullmatch(text):
        try:
            return _end_of_day(date.fromisoformat(text))
        except ValueError as error:
            raise SpecError(
                field, value, f"not a valid date ({error})", "Check the month and day."
            ) from error
    if _ISO_DATETIME.fullmatch(text):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as error:
            raise SpecError(
                field,
                value,
                f"not a valid date and time ({error})",
                "Write it as 2027-03-31T12:00:00Z, or with an offset such as +02:00.",
            ) from error
        return _datetime_to_timestamp(moment, value, field)
    if text[:1].isdigit():
        return now + parse_duration(text, field)
    raise SpecError(field, value, "not a deadline", f"Write {_DEADLINE_FORMS}.")


def _datetime_to_timestamp(moment: datetime, value: object, field: str) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise SpecError(
            field,
            value,
            "the time has no timezone",
            "Add a timezone, such as 'Z' for UTC or '+02:00', for example "
            "'2027-03-31T12:00:00Z'.",
        )
    # Deadlines are whole seconds on-chain, so a fraction of a second rounds up: the deadline
    # is never earlier than the one written.
    elapsed = moment - _EPOCH
    seconds = elapsed.days * DAY + elapsed.seconds
    return seconds + 1 if elapsed.microseconds else seconds


def _end_of_day(day: date) -> int:
    return (day.toordinal() + 1 - _EPOCH.toordinal()) * DAY


def _show_time(timestamp: int) -> str:
    try:
        return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"Unix time {timestamp}"
