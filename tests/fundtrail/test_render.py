"""What the CLI prints, rendered into a recording rich Console of a fixed width."""

import re
from types import SimpleNamespace

import pytest
from rich.console import Console

from fundtrail import render
from fundtrail.grants import (
    FunderSummary,
    GrantStatus,
    GrantSummary,
    MilestoneStatus,
    MilestoneSummary,
)
from fundtrail.units import TokenInfo

USDC = TokenInfo("0x5FbDB2315678afecb367f032d93F642f64180aa3", "USDC", 6)
UNIT = 10**6
NGO = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
ATTESTORS = (
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
    "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
)
EVIDENCE_HASH = bytes.fromhex("74fbdaa498fca73f188b65d9eb5da0fd57fd6fe9ad0fcc0b02c1d2e3f4a5b6c7")
EVIDENCE_URI = "ipfs://bafkreigo5tnydhwdcvmelwbldobxe5bzd6gfypvev4o4y6wlccq3pd2ldi"
RELEASE_TX = "0x99419fe3173f231ac22b4b53a0e370783bb845a92860c8ce13a1b2c3d4e5f607"
SECOND_HASH = bytes.fromhex("5a" * 32)
# 88 characters, longer than the 66 columns left for a value at 80 columns.
LONG_URI = (
    "https://files.example.org/reports/2027/shelter-beds/second-quarter/beds-and-staffing.pdf"
)
RECLAIM_TX = "0x" + "c3" * 32
TERMS_HASH = bytes.fromhex("11" * 32)
CREATED_TX = "0x" + "ab" * 32


def grant_summary() -> GrantSummary:
    """A grant with one released, one attested and one reclaimed milestone."""
    milestones = (
        MilestoneSummary(
            index=0,
            amount=12_500 * UNIT,
            deadline=1_804_191_300,
            status=MilestoneStatus.Released,
            evidence_hash=EVIDENCE_HASH,
            evidence_uri=EVIDENCE_URI,
            approvals=ATTESTORS[:2],
            rejections=(),
            settlement_tx=RELEASE_TX,
        ),
        MilestoneSummary(
            index=1,
            amount=25_000 * UNIT,
            deadline=1_814_191_300,
            status=MilestoneStatus.EvidenceSubmitted,
            evidence_hash=SECOND_HASH,
            evidence_uri=LONG_URI,
            approvals=(ATTESTORS[0],),
            rejections=(ATTESTORS[2],),
            settlement_tx=None,
        ),
        MilestoneSummary(
            index=2,
            amount=7_500 * UNIT,
            deadline=1_824_191_300,
            status=MilestoneStatus.Reclaimed,
            evidence_hash=None,
            evidence_uri=None,
            approvals=(),
            rejections=(),
            settlement_tx=RECLAIM_TX,
        ),
    )
    return GrantSummary(
        grant_id=1,
        creator=ATTESTORS[0],
        recipient=NGO,
        token=USDC,
        funding_deadline=1_800_000_000,
        threshold=2,
        attestors=ATTESTORS,
        terms_hash=TERMS_HASH,
        terms_uri="ipfs://bafy-terms",
        status=GrantStatus.Completed,
        total=45_000 * UNIT,
        funded=45_000 * UNIT,
        released=12_500 * UNIT,
        reclaimed=7_500 * UNIT,
        held=25_000 * UNIT,
        milestones=milestones,
        funders=(FunderSummary(ATTESTORS[0], 45_000 * UNIT, False),),
        created_tx=CREATED_TX,
    )


def render_text(renderable, width: int) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def joined(text: str) -> str:
    """Join every line break and the indent after it, to find values folded over lines."""
    return re.sub(r"\s*\n\s*", "", text)


@pytest.mark.parametrize("width", [80, 120, 200])
def test_grant_view_shows_every_milestone_field(width):
    text = render_text(render.grant_view(grant_summary()), width)

    assert "#0  Released  12,500 USDC  deadline 2027-03-04T20:15:00Z" in text
    assert "#1  EvidenceSubmitted  25,000 USDC  deadline 2027-06-28T14:01:40Z" in text
    assert "#2  Reclaimed  7,500 USDC  deadline 2027-10-22T07:48:20Z" in text
    assert f"Evidence   0x{EVIDENCE_HASH.hex()}" in text
    assert f"URI        {EVIDENCE_URI}" in text
    assert f"Release tx {RELEASE_TX}" in text
    assert f"Evidence   0x{SECOND_HASH.hex()}" in text
    assert f"Rejections 1: {ATTESTORS[2]}" in text
    assert f"Reclaim tx {RECLAIM_TX}" in text
    assert "Evidence   none submitted" in text
    assert f"0x{TERMS_HASH.hex()}" in text
    assert CREATED_TX in text


@pytest.mark.parametrize("width", [80, 120, 200])
def test_grant_view_keeps_lines_within_width(width):
    text = render_text(render.grant_view(grant_summary()), width)

    assert max(len(line.rstrip()) for line in text.splitlines()) <= width


def test_grant_view_lists_approvers_in_full():
    text = joined(render_text(render.grant_view(grant_summary()), 80))

    assert f"Approvals  2 of 2: {ATTESTORS[0]},{ATTESTORS[1]}Release tx" in text
    assert f"Approvals  1 of 2: {ATTESTORS[0]}Rejections" in text


def test_grant_view_folds_long_uri_without_losing_it():
    narrow = render_text(render.grant_view(grant_summary()), 80)
    wide = render_text(render.grant_view(grant_summary()), 200)

    assert LONG_URI not in narrow
    assert LONG_URI in joined(narrow)
    assert f"URI        {LONG_URI}" in wide


def test_grant_view_marks_uri_missing_from_events():
    grant = grant_summary()
    milestone = grant.milestones[0]
    without_uri = MilestoneSummary(**{**vars(milestone), "evidence_uri": None})
    grant = GrantSummary(**{**vars(grant), "milestones": (without_uri,)})

    text = render_text(render.grant_view(grant), 80)

    assert "URI        unknown (no EvidenceSubmitted event)" in text


def test_receipt_line_groups_gas_digits():
    receipt = SimpleNamespace(txn_hash=RELEASE_TX, block_number=1_234, gas_used=440_242)

    text = render_text(render.receipt_line("Funded grant 1", receipt), 200)

    assert text == f"Funded grant 1: transaction {RELEASE_TX} in block 1234, gas used 440,242\n"
