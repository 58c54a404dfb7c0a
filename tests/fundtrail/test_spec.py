import textwrap
from datetime import date
from pathlib import Path

import pytest
import yaml
from eth_utils import keccak

from fundtrail.errors import MISSING, FileError, PrivacyError, SpecError, SpecErrors
from fundtrail.spec import GrantSpec, MilestoneSpec, ResolvedGrant, TermsSpec, resolve_address
from fundtrail.units import ETH, TokenInfo

EXAMPLE = Path(__file__).parents[2] / "examples" / "grant-hotline.yaml"
USDC = TokenInfo("0x5FbDB2315678afecb367f032d93F642f64180aa3", "USDC", 6)
NOW = 1_800_000_000
DAY = 86_400

NGO = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
ATTESTORS = [
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
    "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
]
ALIASES = {"ngo": NGO, "alice": ATTESTORS[0], "bob": ATTESTORS[1], "carol": ATTESTORS[2]}
TERMS_HASH = "0x" + "11" * 32
TERMS_URI = "ipfs://bafkreigo5tnydhwdcvmelwbldobxe5bzd6gfypvev4o4y6wlccq3pd2ldi"


def resolve_account(value, field):
    """Resolve the aliases above, like the CLI resolves ape account aliases."""
    if value in ALIASES:
        return ALIASES[value]
    if value.startswith("0x"):
        return resolve_address(value, field)
    raise SpecError(field, value, "no account has this alias", "Use a known alias.")


def spec_data(**changes):
    data = {
        "title": "Hotline",
        "recipient": "ngo",
        "token": "USDC",
        "funding_deadline": "14d",
        "attestors": ["alice", "bob", "carol"],
        "quorum": 2,
        "milestones": [
            {"title": "Hotline staffed", "amount": "12,500 USDC", "deadline": "90d"},
            {"title": "Shelter beds", "amount": "25,000", "deadline": "180d"},
        ],
        "terms": {"hash": TERMS_HASH, "uri": TERMS_URI},
    }
    data.update(changes)
    return data


def resolve(data, **kwargs):
    spec = GrantSpec.from_data(data)
    return spec.resolve(now=NOW, token=USDC, resolve_account=resolve_account, **kwargs)


def problems(raised):
    """Return (field, problem) of every problem in a raised SpecErrors."""
    return [(error.field, getattr(error, "problem", None)) for error in raised.value.errors]


def test_example_spec_resolves():
    spec = GrantSpec.from_yaml(EXAMPLE)

    grant = spec.resolve(now=NOW, token=USDC, resolve_account=resolve_account)

    agreement = EXAMPLE.parent / "terms" / "hotline-grant-agreement.md"
    assert grant.as_terms() == (
        NGO,
        USDC.address,
        NOW + 14 * DAY,
        2,
        ATTESTORS,
        [
            (12_500 * 10**6, NOW + 90 * DAY),
            (25_000 * 10**6, NOW + 180 * DAY),
            (7_500 * 10**6, NOW + 270 * DAY),
        ],
        keccak(agreement.read_bytes()),
        TERMS_URI,
    )
    assert grant.total == 45_000 * 10**6
    assert grant.spec is spec
    assert grant.token == USDC
    assert [milestone.title for milestone in spec.milestones] == [
        "24/7 hotline staffed",
        "Shelter beds for survivors",
        "Independent audit",
    ]


def test_example_terms_file_has_no_personal_data():
    from fundtrail.privacy import find_personal_data

    agreement = EXAMPLE.parent / "terms" / "hotline-grant-agreement.md"

    assert find_personal_data(agreement.read_text()) == []


def test_terms_file_is_relative_to_spec_folder(tmp_path, monkeypatch):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "agreement.md").write_bytes(b"agreement v1")
    data = spec_data(terms={"file": "docs/agreement.md", "uri": "https://ngo.example/agreement.md"})
    spec_path = tmp_path / "grant.yaml"
    spec_path.write_text(yaml.safe_dump(data))
    monkeypatch.chdir("/")

    spec = GrantSpec.from_yaml(spec_path)
    grant = spec.resolve(now=NOW, token=USDC, resolve_account=resolve_account)

    assert spec.terms.file == tmp_path / "docs" / "agreement.md"
    assert grant.terms_hash == keccak(b"agreement v1")


def test_absolute_terms_file_stays(tmp_path):
    agreement = tmp_path / "agreement.md"
    agreement.write_bytes(b"agreement v1")

    data = spec_data(terms={"file": str(agreement), "uri": "ar://abc"})

    spec = GrantSpec.from_data(data, base_dir=Path("/x"))

    assert spec.terms.file == agreement


def test_resolve_accepts_yaml_dates_and_eth():
    data = spec_data(
        token="ETH",
        funding_deadline=date(2027, 2, 1),
        milestones=[{"title": "Audit", "amount": "0.5 ETH", "deadline": date(2027, 6, 30)}],
    )

    grant = GrantSpec.from_data(data).resolve(now=NOW, token=ETH, resolve_account=resolve_account)

    assert grant.funding_deadline == 1_801_526_400  # 2027-02-02T00:00:00Z
    assert grant.milestone_deadlines == [1_814_400_000]  # 2027-07-01T00:00:00Z
    assert grant.milestone_amounts == [5 * 10**17]
    assert grant.as_terms()[1] == ETH.address


def test_whole_number_amount_in_yaml_is_whole_tokens():
    data = yaml.safe_load("title: a\namount: 2500\ndeadline: 90d\n")

    assert MilestoneSpec.model_validate(data).amount == "2500"


def test_from_yaml_collects_every_problem(tmp_path):
    path = tmp_path / "grant.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            title: ""
            recipient: 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC
            token: USDC
            funding_deadline: [14]
            attestors: alice
            quorum: two
            milestones:
              - title: Hotline
                amount: 2500.50
                deadline: 90d
                amont: 5
              - amount: "2,500 USDC"
                deadline: 2027-03-31
            terms:
              uri: "not a uri"
              hash: "0x11"
            extra: 1
            """
        )
    )

    with pytest.raises(SpecErrors) as raised:
        GrantSpec.from_yaml(path)

    assert raised.value.field == str(path)
    assert problems(raised) == [
        ("title", "must not be empty"),
        ("recipient", "YAML read this unquoted value as the number "
         "344073830386746567427978432078835137280280269756"),
        ("funding_deadline", "not a deadline"),
        ("attestors", "input should be a valid list"),
        ("quorum", "input should be a valid integer, unable to parse string as an integer"),
        ("milestones[0].amount", "YAML read this unquoted decimal as a binary floating-point "
         "number, which cannot hold every amount exactly"),
        ("milestones[0].amont", "unknown field"),
        ("milestones[1].title", "missing required field"),
        ("terms.uri", "not a URI"),
        ("extra", "unknown field"),
    ]
    errors = raised.value.errors
    assert errors[1].value == "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc"
    assert errors[5].fix == 'Put the amount in quotes, for example amount: "1.25 USDC".'
    assert errors[6].fix == (
        "Did you mean amount? Remove it or correct its name. "
        "Allowed here: title, amount, deadline, description."
    )
    assert errors[7].value is MISSING
    assert str(errors[7]) == (
        "milestones[1].title: missing required field. Add title: to milestones[1]."
    )


def test_unknown_field_names_field_not_value():
    with pytest.raises(SpecErrors) as raised:
        GrantSpec.from_data(spec_data(quorom=2))

    [error] = raised.value.errors
    assert error.value is MISSING
    assert str(error) == (
        "quorom: unknown field. Did you mean quorum? Remove it or correct its name. Allowed "
        "here: title, recipient, token, funding_deadline, attestors, quorum, milestones, terms."
    )


@pytest.mark.parametrize(
    ("token", "example"),
    [
        ("ETH", '"1.25 ETH"'),
        ("usdc", '"1.25 usdc"'),
        ("0x5FbDB2315678afecb367f032d93F642f64180aa3", '"1.25"'),
        (5, '"1.25"'),
    ],
)
def test_unquoted_decimal_example_uses_spec_token(token, example):
    milestone = {"title": "Hotline staffed", "amount": 1.25, "deadline": "90d"}

    with pytest.raises(SpecErrors) as raised:
        GrantSpec.from_data(spec_data(token=token, milestones=[milestone]))

    amount_errors = [error for error in raised.value.errors if error.field.endswith("amount")]
    assert [error.fix for error in amount_errors] == [
        f"Put the amount in quotes, for example amount: {example}."
    ]


def test_from_yaml_rejects_duplicate_keys(tmp_path):
    path = tmp_path / "grant.yaml"
    path.write_text("title: a\nquorum: 2\nquorum: 3\n")

    with pytest.raises(SpecErrors) as raised:
        GrantSpec.from_yaml(path)

    assert problems(raised) == [("line 3, column 1", "invalid YAML: found the key 'quorum' twice")]


def test_from_yaml_reports_syntax_error_position(tmp_path):
    path = tmp_path / "grant.yaml"
    path.write_text("title: a\nattestors: [alice\n")

    with pytest.raises(SpecErrors) as raised:
        GrantSpec.from_yaml(path)

    assert problems(raised) == [
        ("line 3, column 1", "invalid YAML: expected ',' or ']', but got '<stream end>'")
    ]


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        ("", "{path}", "the spec is empty"),
        ("- a\n- b\n", "(top level)", "a grant spec must be a mapping of fields"),
    ],
)
def test_from_yaml_rejects_empty_or_list(tmp_path, text, field, problem):
    path = tmp_path / "grant.yaml"
    path.write_text(text)

    with pytest.raises(SpecErrors) as raised:
        GrantSpec.from_yaml(path)

    assert problems(raised) == [(field.format(path=path), problem)]


def test_from_yaml_missing_file(tmp_path):
    with pytest.raises(FileError) as raised:
        GrantSpec.from_yaml(tmp_path / "missing.yaml")

    assert raised.value.problem == "file not found"


@pytest.mark.parametrize(
    "terms",
    [
        {"uri": "ipfs://bafy"},
        {"file": "a.md", "hash": TERMS_HASH, "uri": "ipfs://bafy"},
    ],
)
def test_terms_need_exactly_one_of_file_and_hash(terms):
    with pytest.raises(SpecErrors) as raised:
        GrantSpec.from_data(spec_data(terms=terms))

    assert problems(raised) == [("terms", "needs exactly one of file and hash")]


def test_resolve_collects_every_problem():
    data = spec_data(
        recipient="nobody",
        token="USDC",
        funding_deadline="100d",
        attestors=["alice", ATTESTORS[0].lower(), "0x" + "0" * 40, "mallory"],
        quorum=5,
        milestones=[
            {"title": "Early", "amount": "10 USDC", "deadline": "30d"},
            {"title": "Bad amount", "amount": "2.500,00 USDC", "deadline": "1w"},
            {"title": "Zero", "amount": "0", "deadline": "200d"},
        ],
        terms={"hash": "0x" + "0" * 64, "uri": "https://ngo.example/?contact=jane@ngo.example"},
    )

    with pytest.raises(SpecErrors) as raised:
        resolve(data)

    assert raised.value.field == "grant spec"
    assert problems(raised) == [
        ("recipient", "no account has this alias"),
        ("milestones[0].deadline", "not after the funding deadline"),
        ("milestones[1].amount", "a comma after the decimal point"),
        ("milestones[1].deadline", "not after the funding deadline"),
        ("milestones[2].amount", "the amount must be greater than zero"),
        ("attestors[1]", f"the same account as attestors[0] ({ATTESTORS[0]})"),
        ("attestors[2]", "the zero address cannot attest"),
        ("attestors[3]", "no account has this alias"),
        ("quorum", "must be between 1 and the number of attestors, 4"),
        ("terms.hash", "the zero hash means no evidence"),
        ("terms.uri", None),
    ]
    privacy_error = raised.value.errors[-1]
    assert isinstance(privacy_error, PrivacyError)
    assert privacy_error.kinds == ["e-mail address"]


def test_resolve_names_source_file(tmp_path):
    path = tmp_path / "grant.yaml"
    path.write_text(yaml.safe_dump(spec_data(quorum=0)))

    with pytest.raises(SpecErrors) as raised:
        GrantSpec.from_yaml(path).resolve(now=NOW, token=USDC, resolve_account=resolve_account)

    assert raised.value.field == str(path)
    assert problems(raised) == [("quorum", "must be between 1 and the number of attestors, 3")]


def test_resolve_allows_personal_data_when_asked(caplog):
    uri = "https://ngo.example/?contact=jane@ngo.example"

    grant = resolve(spec_data(terms={"hash": TERMS_HASH, "uri": uri}), allow_personal_data=True)

    assert grant.terms_uri == uri
    privacy_records = [record for record in caplog.records if record.name == "fundtrail.privacy"]
    assert [record.levelname for record in privacy_records] == ["WARNING"]


def test_resolve_rejects_zero_recipient():
    with pytest.raises(SpecErrors) as raised:
        resolve(spec_data(recipient="0x" + "0" * 40))

    assert problems(raised) == [("recipient", "the zero address cannot receive payments")]


def test_resolve_rejects_past_funding_deadline():
    with pytest.raises(SpecErrors) as raised:
        resolve(spec_data(funding_deadline=NOW - 1))

    assert problems(raised) == [
        (
            "funding_deadline",
            "the deadline 2027-01-15T07:59:59Z is not after now (2027-01-15T08:00:00Z)",
        )
    ]


def test_resolve_rejects_token_other_than_spec():
    with pytest.raises(SpecErrors) as raised:
        resolve(spec_data(token="DAI"))

    assert problems(raised) == [
        ("token", f"does not match the token in use, USDC at {USDC.address}")
    ]


def test_resolve_accepts_token_address():
    grant = resolve(spec_data(token=USDC.address.lower()))

    assert grant.token == USDC


def test_resolve_rejects_too_many_milestones():
    milestone = {"title": "Step", "amount": "1", "deadline": "90d"}

    with pytest.raises(SpecErrors) as raised:
        resolve(spec_data(milestones=[milestone] * 33))

    assert problems(raised) == [("milestones", "has 33 milestones, but a grant needs 1 to 32")]


def test_resolve_accepts_max_milestones_and_attestors():
    milestone = {"title": "Step", "amount": "1", "deadline": "90d"}
    attestors = [f"0x{index:040x}" for index in range(1, 17)]

    grant = resolve(spec_data(milestones=[milestone] * 32, attestors=attestors, quorum=16))

    assert len(grant.milestone_amounts) == 32
    assert len(grant.attestors) == 16


def test_resolve_rejects_no_milestones_and_no_attestors():
    with pytest.raises(SpecErrors) as raised:
        resolve(spec_data(milestones=[], attestors=[], quorum=1))

    assert problems(raised) == [
        ("milestones", "has 0 milestones, but a grant needs 1 to 32"),
        ("attestors", "has 0 attestors, but a grant needs 1 to 16"),
    ]


def test_resolve_rejects_too_many_attestors():
    attestors = [f"0x{index:040x}" for index in range(1, 18)]

    with pytest.raises(SpecErrors) as raised:
        resolve(spec_data(attestors=attestors))

    assert problems(raised) == [("attestors", "has 17 attestors, but a grant needs 1 to 16")]


def test_resolve_rejects_amounts_beyond_escrow_limit():
    huge = f"{2**128 // 10**6 + 1} USDC"

    with pytest.raises(SpecErrors) as raised:
        resolve(spec_data(milestones=[{"title": "Huge", "amount": huge, "deadline": "90d"}]))

    assert problems(raised) == [
        ("milestones[0].amount", "larger than the escrow can hold for one milestone"),
        ("milestones", "the amounts add up to more than the escrow can hold for one grant"),
    ]


def test_resolve_rejects_total_beyond_escrow_limit():
    half = f"{2**127 // 10**6 + 1} USDC"
    milestone = {"title": "Half", "amount": half, "deadline": "90d"}

    with pytest.raises(SpecErrors) as raised:
        resolve(spec_data(milestones=[milestone, milestone]))

    assert problems(raised) == [
        ("milestones", "the amounts add up to more than the escrow can hold for one grant")
    ]


def test_resolve_reports_missing_terms_file(tmp_path):
    data = spec_data(terms={"file": "missing.md", "uri": "ipfs://bafy"})
    spec = GrantSpec.from_data(data, base_dir=tmp_path)

    with pytest.raises(SpecErrors) as raised:
        spec.resolve(now=NOW, token=USDC, resolve_account=resolve_account)

    assert problems(raised) == [("terms.file", "file not found")]
    assert raised.value.errors[0].value == str(tmp_path / "missing.md")


def test_resolved_grant_is_frozen():
    grant = resolve(spec_data())

    assert isinstance(grant, ResolvedGrant)
    with pytest.raises(AttributeError):
        grant.quorum = 1


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BD", "the mixed-case checksum does not match, "
         "which usually means a typo"),
        ("0x3C44", "not an address"),
        ("ngo", "not an address"),
    ],
)
def test_resolve_address_rejects(value, problem):
    with pytest.raises(SpecError) as raised:
        resolve_address(value, "recipient")

    assert raised.value.problem == problem


def test_resolve_address_checksums_lowercase():
    assert resolve_address(NGO.lower(), "recipient") == NGO


@pytest.mark.parametrize("model", [GrantSpec, MilestoneSpec, TermsSpec])
def test_every_field_has_a_description(model):
    missing = [name for name, field in model.model_fields.items() if not field.description]

    assert missing == []


def test_titles_are_not_in_terms():
    grant = resolve(spec_data(title="Secret title"))

    assert "Secret title" not in repr(grant.as_terms())
    assert "Hotline staffed" not in repr(grant.as_terms())
