import logging

import pytest

from fundtrail.errors import PrivacyError
from fundtrail.privacy import (
    CARD,
    EMAIL,
    IBAN,
    PHONE,
    check_public_text,
    find_personal_data,
    mask_personal_data,
)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Questions to jane.doe@example.org please", EMAIL),
        ("mailto:coordinator@ngo.example", EMAIL),
        ("https://ngo.example/form?contact=jane@ngo.example", EMAIL),
        ("Call +44 20 7946 0958", PHONE),
        ("+1 (555) 123-4567", PHONE),
        ("+4915112345678", PHONE),
        ("tel:+33612345678", PHONE),
        ("(555) 123-4567", PHONE),
        ("555-123-4567", PHONE),
        ("555.123.4567", PHONE),
        ("020 7946 0958", PHONE),
        ("06 12 34 56 78", PHONE),
        ("0171/1234567", PHONE),
        ("GB82 WEST 1234 5698 7654 32", IBAN),
        ("DE89370400440532013000", IBAN),
        ("pay to de89 3704 0044 0532 0130 00", IBAN),
        ("4111 1111 1111 1111", CARD),
        ("4111-1111-1111-1111", CARD),
        ("card 5500005555555559 exp", CARD),
        ("378282246310005", CARD),
    ],
)
def test_finds_personal_data(text, kind):
    assert find_personal_data(text) == [kind]


@pytest.mark.parametrize(
    "text",
    [
        "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
        "ipfs://QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG/terms.pdf",
        "ipfs://bafkreigo5tnydhwdcvmelwbldobxe5bzd6gfypvev4o4y6wlccq3pd2ldi",
        "ar://bNbA3TEQVL60xlgCcqdz4ZPHFZ711cZ3hmkpGttDt_U",
        "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
        "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
        "https://ngo.example/reports/2027/q1?id=12345678&page=2&ref=4111111111111111",
        "https://ngo.example/phone/020-7946-0958/agreement.pdf",
        "https://medium.com/@ngo/annual-report-2027",
        "0x" + "1234567890" * 6 + "1234",
        "0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45",
        "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
        "2027-03-31",
        "2027-03-31T12:00:00+02:00",
        "From 31.03.2027 to 10.04.2027",
        "v1.2.3 and 10.4.12",
        "2,500",
        "2,500.50 USDC",
        "1,000,000",
        "10 000 000 000",
        "1735689600",
        "2500000000000000000000",
        "Phase 2 of 3, 2027-2028",
        "Twenty shelter beds open for 60 days",
    ],
)
def test_ignores_identifiers_dates_and_numbers(text):
    assert find_personal_data(text) == []


def test_rejects_card_number_failing_luhn():
    assert find_personal_data("4111 1111 1111 1112") == []


def test_rejects_iban_failing_checksum():
    assert find_personal_data("GB82 WEST 1234 5698 7654 33") == []


def test_lists_each_kind_once_in_fixed_order():
    text = "4111 1111 1111 1111, a@ngo.example, b@ngo.example, +44 20 7946 0958"

    assert find_personal_data(text) == [EMAIL, PHONE, CARD]


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("write to jane.doe@example.org", "write to j***@e***.org"),
        ("call +44 20 7946 0958 now", "call +** ** **** **58 now"),
        ("4111 1111 1111 1111", "**** **** **** 1111"),
        ("GB82 WEST 1234 5698 7654 32", "**** **** **** **** **** 32"),
        ("ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", None),
    ],
)
def test_masks_personal_data(text, masked):
    assert mask_personal_data(text) == (text if masked is None else masked)


def test_check_public_text_raises_privacy_error():
    with pytest.raises(PrivacyError) as raised:
        check_public_text("terms.uri", "https://ngo.example/?contact=jane@ngo.example")

    assert raised.value.field == "terms.uri"
    assert raised.value.kinds == [EMAIL]
    assert "jane@ngo.example" not in str(raised.value)


def test_check_public_text_accepts_clean_text(caplog):
    with caplog.at_level(logging.WARNING, logger="fundtrail.privacy"):
        check_public_text("terms.uri", "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqa")

    assert caplog.records == []


def test_check_public_text_warns_when_allowed(caplog):
    with caplog.at_level(logging.WARNING, logger="fundtrail.privacy"):
        check_public_text("terms.uri", "tel:+44 20 7946 0958", allow_personal_data=True)

    assert len(caplog.records) == 1
    record = caplog.records[0]
    assert record.levelno == logging.WARNING
    assert record.name == "fundtrail.privacy"
    assert record.getMessage() == (
        "terms.uri looks like it contains: phone number. "
        "Publishing it anyway because personal data was allowed."
    )
    assert "7946" not in record.getMessage()
