from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundtrail.errors import SpecError
from fundtrail.units import (
    ETH,
    ETH_ADDRESS,
    TokenInfo,
    format_amount,
    parse_amount,
    parse_deadline,
    parse_duration,
)

USDC = TokenInfo("0x5FbDB2315678afecb367f032d93F642f64180aa3", "USDC", 6)
NO_DECIMALS = TokenInfo("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512", "WHOLE", 0)

NOW = 1_800_000_000  # 2027-01-15T08:00:00Z
DAY = 86_400


def test_eth_token_info():
    assert ETH == TokenInfo(ETH_ADDRESS, "ETH", 18)
    assert ETH_ADDRESS == "0x" + "0" * 40


def test_token_info_rejects_decimals_out_of_range():
    with pytest.raises(ValueError, match="between 0 and 255, not 256"):
        TokenInfo(ETH_ADDRESS, "X", 256)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2,500 USDC", 2_500_000_000),
        ("2500.50 USDC", 2_500_500_000),
        ("2,500.50 usdc", 2_500_500_000),
        ("2500", 2_500_000_000),
        ("  1,000,000 USDC ", 1_000_000_000_000),
        ("2500USDC", 2_500_000_000),
        ("0.000001 USDC", 1),
        ("1.500000000 USDC", 1_500_000),
        ("+5", 5_000_000),
        (2500, 2_500_000_000),
        (Decimal("0.25"), 250_000),
    ],
)
def test_parse_amount_accepts(text, expected):
    assert parse_amount(text, USDC, "amount") == expected


def test_parse_amount_is_exact_for_eth():
    assert parse_amount("0.1 ETH", ETH, "amount") == 10**17
    assert parse_amount("0.5 ETH", ETH, "amount") == 5 * 10**17


def test_parse_amount_is_exact_beyond_decimal_precision():
    text = "123456789012345678901234567890.123456789012345678 ETH"

    assert parse_amount(text, ETH, "amount") == 123456789012345678901234567890123456789012345678


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("2.500,00 USDC", "a comma after the decimal point"),
        ("25,00", "commas must group the digits in threes"),
        ("2,5000", "commas must group the digits in threes"),
        (",500", "commas must group the digits in threes"),
        ("1.0000001 USDC", "more than 6 decimal places, the most that USDC has"),
        ("0", "the amount must be greater than zero"),
        ("0.000000 USDC", "the amount must be greater than zero"),
        ("-5 USDC", "the amount must be greater than zero"),
        (0, "the amount must be greater than zero"),
        (Decimal("-1"), "the amount must be greater than zero"),
        ("2500 ETH", "the symbol ETH does not match the grant's token USDC"),
        ("1e6", "scientific notation is not supported"),
        ("1.2.3", "not a number"),
        (".5", "not a number"),
        ("5.", "not a number"),
        ("", "not an amount"),
        ("USDC", "not an amount"),
        ("2500 USDC please", "not an amount"),
        (2500.5, "an amount must be text or a whole number"),
        (True, "an amount must be text or a whole number"),
        (None, "an amount must be text or a whole number"),
        (Decimal("NaN"), "not a finite number"),
    ],
)
def test_parse_amount_rejects(text, problem):
    with pytest.raises(SpecError) as raised:
        parse_amount(text, USDC, "milestones[1].amount")

    assert raised.value.field == "milestones[1].amount"
    assert raised.value.value is text
    assert raised.value.problem == problem


def test_parse_amount_message_names_limit_and_example():
    with pytest.raises(SpecError) as raised:
        parse_amount("1.0000001 USDC", USDC, "milestones[1].amount")

    assert str(raised.value) == (
        "milestones[1].amount: invalid value '1.0000001 USDC': more than 6 decimal places, the "
        "most that USDC has. Write the amount with at most 6 decimals, for example "
        "'2,500.50 USDC'."
    )


def test_parse_amount_rejects_fraction_of_indivisible_token():
    with pytest.raises(SpecError) as raised:
        parse_amount("1.5", NO_DECIMALS, "amount")

    assert raised.value.problem == "more than 0 decimal places, the most that WHOLE has"
    assert raised.value.fix == (
        "Write the amount with at most 0 decimals, for example '2,500 WHOLE'."
    )


@pytest.mark.parametrize(
    ("base_units", "token", "expected"),
    [
        (2_500_000_000, USDC, "2,500 USDC"),
        (2_500_500_000, USDC, "2,500.5 USDC"),
        (1, USDC, "0.000001 USDC"),
        (0, USDC, "0 USDC"),
        (-1_500_000, USDC, "-1.5 USDC"),
        (10**17, ETH, "0.1 ETH"),
        (1_234_567 * 10**18 + 1, ETH, "1,234,567.000000000000000001 ETH"),
        (1_000, NO_DECIMALS, "1,000 WHOLE"),
    ],
)
def test_format_amount(base_units, token, expected):
    assert format_amount(base_units, token) == expected


@given(
    base_units=st.integers(min_value=1, max_value=2**256 - 1),
    decimals=st.integers(min_value=0, max_value=36),
)
def test_format_amount_round_trips(base_units, decimals):
    token = TokenInfo(ETH_ADDRESS, "TKN", decimals)

    text = format_amount(base_units, token)

    assert parse_amount(text, token, "amount") == base_units
    assert parse_amount(text.removesuffix(" TKN"), token, "amount") == base_units


@given(
    whole=st.integers(min_value=0, max_value=10**30),
    fraction=st.integers(min_value=0, max_value=10**6 - 1),
)
def test_parse_amount_round_trips(whole, fraction):
    base_units = whole * 10**6 + fraction
    text = f"{whole:,}.{fraction:06d} USDC"

    if base_units == 0:
        with pytest.raises(SpecError):
            parse_amount(text, USDC, "amount")
    else:
        assert parse_amount(text, USDC, "amount") == base_units
        assert parse_amount(format_amount(base_units, USDC), USDC, "amount") == base_units


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90d", 90 * DAY),
        ("12w", 12 * 7 * DAY),
        ("36h", 36 * 3600),
        ("45m", 45 * 60),
        ("30s", 30),
        ("90 days", 90 * DAY),
        ("1 day", DAY),
        ("2 weeks", 14 * DAY),
        ("2 Weeks 3 days", 17 * DAY),
        ("1w2d", 9 * DAY),
        (" 10 MINUTES ", 600),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text, "deadline") == seconds


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("3 months", "months and years have no fixed length"),
        ("1y", "months and years have no fixed length"),
        ("5 fortnights", "unknown time unit 'fortnights'"),
        ("0d", "the duration is zero"),
        ("90", "not a duration"),
        ("d90", "not a duration"),
        ("", "not a duration"),
        ("90d later", "not a duration"),
        ("1.5d", "not a duration"),
        (90, "a duration must be text"),
    ],
)
def test_parse_duration_rejects(text, problem):
    with pytest.raises(SpecError) as raised:
        parse_duration(text, "deadline")

    assert raised.value.field == "deadline"
    assert raised.value.problem == problem


MINUS_FIVE_HOURS = timezone(timedelta(hours=-5))
END_OF_2027_03_31 = int(datetime(2027, 4, 1, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2027-03-31", END_OF_2027_03_31),
        (date(2027, 3, 31), END_OF_2027_03_31),
        ("2027-03-31T12:00:00Z", END_OF_2027_03_31 - 12 * 3600),
        ("2027-03-31T12:00:00+02:00", END_OF_2027_03_31 - 14 * 3600),
        ("2027-03-31 12:00:00+00:00", END_OF_2027_03_31 - 12 * 3600),
        ("2027-03-31T12:00:00.25Z", END_OF_2027_03_31 - 12 * 3600 + 1),
        (datetime(2027, 3, 31, 12, tzinfo=MINUS_FIVE_HOURS), END_OF_2027_03_31 - 7 * 3600),
        ("90d", NOW + 90 * DAY),
        ("2 weeks", NOW + 14 * DAY),
        (NOW + 1, NOW + 1),
        (str(NOW + 1), NOW + 1),
        (2**64 - 1, 2**64 - 1),
    ],
)
def test_parse_deadline(value, expected):
    assert parse_deadline(value, NOW, "deadline") == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("2027-03-31T12:00:00", "the time has no timezone"),
        (datetime(2027, 3, 31, 12), "the time has no timezone"),
        ("2027-02-30", "not a valid date (day is out of range for month)"),
        (NOW, "the deadline 2027-01-15T08:00:00Z is not after now (2027-01-15T08:00:00Z)"),
        ("2027-01-14", "the deadline 2027-01-15T00:00:00Z is not after now (2027-01-15T08:00:00Z)"),
        (90, "the deadline 1970-01-01T00:01:30Z is not after now (2027-01-15T08:00:00Z)"),
        (2**64, "the deadline is later than the escrow can store"),
        ("soon", "not a deadline"),
        ("3 months", "months and years have no fixed length"),
        (True, "not a deadline"),
        (1.5, "not a deadline"),
        (None, "not a deadline"),
    ],
)
def test_parse_deadline_rejects(value, problem):
    with pytest.raises(SpecError) as raised:
        parse_deadline(value, NOW, "milestones[0].deadline")

    assert raised.value.field == "milestones[0].deadline"
    assert raised.value.problem == problem


def test_parse_deadline_message_asks_for_timezone():
    with pytest.raises(SpecError) as raised:
        parse_deadline("2027-03-31T12:00:00", NOW, "funding_deadline")

    assert str(raised.value) == (
        "funding_deadline: invalid value '2027-03-31T12:00:00': the time has no timezone. Add a "
        "timezone, such as 'Z' for UTC or '+02:00', for example '2027-03-31T12:00:00Z'."
    )


@given(st.dates(min_value=date(2027, 1, 16), max_value=date(9999, 12, 30)))
def test_date_deadline_is_end_of_day_in_utc(day):
    expected = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)

    assert parse_deadline(day, NOW, "deadline") == int(expected.timestamp())
    assert parse_deadline(day.isoformat(), NOW, "deadline") == int(expected.timestamp())
