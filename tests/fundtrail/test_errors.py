import pickle

import pytest

from fundtrail.errors import (
    MISSING,
    DeploymentError,
    FileError,
    FundTrailError,
    PrivacyError,
    SpecError,
    SpecErrors,
)


def test_spec_error_message_names_field_value_and_fix():
    error = SpecError(
        "milestones[1].amount",
        "2.500,00 USDC",
        "more than 6 decimal places",
        "Write the amount with at most 6 decimals, for example '2,500.50 USDC'.",
    )

    assert str(error) == (
        "milestones[1].amount: invalid value '2.500,00 USDC': more than 6 decimal places. "
        "Write the amount with at most 6 decimals, for example '2,500.50 USDC'."
    )
    assert error.field == "milestones[1].amount"
    assert error.value == "2.500,00 USDC"
    assert error.problem == "more than 6 decimal places"
    assert error.fix == "Write the amount with at most 6 decimals, for example '2,500.50 USDC'."


def test_spec_error_message_for_missing_value():
    error = SpecError("terms.uri", MISSING, "missing required field", "Add uri: to terms.")

    assert str(error) == "terms.uri: missing required field. Add uri: to terms."


def test_spec_error_shows_non_text_values_as_python_does():
    error = SpecError("quorum", 5, "must be between 1 and the number of attestors, 3", "Lower it.")

    assert str(error) == (
        "quorum: invalid value 5: must be between 1 and the number of attestors, 3. Lower it."
    )


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (SpecError("f", "v", "p", "Fix."), ValueError),
        (PrivacyError("f", "a@b.org", ["e-mail address"]), ValueError),
        (DeploymentError("none"), LookupError),
        (FileError("x.pdf", "file not found", "Check the path."), FundTrailError),
    ],
)
def test_errors_share_base_and_matching_builtin(error, builtin):
    assert isinstance(error, FundTrailError)
    assert isinstance(error, builtin)


def test_file_error_message():
    error = FileError("evidence/report.pdf", "file not found", "Check the path.")

    assert str(error) == "evidence/report.pdf: file not found. Check the path."


def test_privacy_error_masks_the_value():
    text = "Contact jane.doe@example.org or +44 20 7946 0958"

    error = PrivacyError("terms.uri", text, ["e-mail address", "phone number"])

    message = str(error)
    assert message == (
        "terms.uri: found what looks like an e-mail address and a phone number in "
        "'Contact j***@e***.org or +** ** **** **58'. This text is published on-chain, where "
        "anyone can read it and nobody can delete it. Remove the personal data, or pass "
        "--allow-personal-data if it is definitely not personal data."
    )
    assert error.kinds == ["e-mail address", "phone number"]
    assert error.field == "terms.uri"


def test_privacy_error_keeps_no_copy_of_the_value():
    error = PrivacyError("terms.uri", "mailto:jane.doe@example.org", ["e-mail address"])

    assert "jane.doe" not in repr(error)
    assert "jane.doe" not in repr(error.args)
    assert "jane.doe" not in str(vars(error))


def test_privacy_error_shortens_long_excerpts():
    text = "mailto:jane.doe@example.org?" + "x" * 200
    error = PrivacyError("terms.uri", text, ["e-mail address"])

    assert len(error.excerpt) == 80
    assert error.excerpt.endswith("...")


def test_privacy_error_names_three_kinds_with_commas():
    error = PrivacyError("uri", "x", ["e-mail address", "IBAN", "payment card number"])

    assert "an e-mail address, an IBAN and a payment card number" in str(error)


def test_spec_errors_lists_every_problem():
    first = SpecError("quorum", 5, "too high", "Lower it.")
    second = SpecError("terms", MISSING, "missing required field", "Add terms:.")

    error = SpecErrors("grant.yaml", [first, second])

    assert str(error) == (
        "grant.yaml: 2 problems found. Fix every problem listed, then run the command again.\n"
        "  - quorum: invalid value 5: too high. Lower it.\n"
        "  - terms: missing required field. Add terms:."
    )
    assert error.errors == [first, second]
    assert isinstance(error, SpecError)


def test_spec_errors_says_problem_for_one():
    error = SpecErrors("grant.yaml", [SpecError("quorum", 5, "too high", "Lower it.")])

    assert str(error).startswith("grant.yaml: 1 problem found.")


@pytest.mark.parametrize(
    "error",
    [
        SpecError("quorum", 5, "too high", "Lower it."),
        SpecErrors("grant.yaml", [SpecError("quorum", 5, "too high", "Lower it.")]),
        FileError("x.pdf", "file not found", "Check the path."),
        PrivacyError("uri", "jane@example.org", ["e-mail address"]),
        DeploymentError("No deployment."),
    ],
)
def test_errors_survive_pickling(error):
    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is type(error)
    assert str(copy) == str(error)
