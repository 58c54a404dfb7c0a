"""The dashboard's figures, diagrams and pages, built from the demo's ledger and from hand-made
books. The browser test in test_dashboard_browser.py checks what a reader sees."""

import re
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

from fundtrail.cli import cli
from fundtrail.grants import GrantStatus, MilestoneStatus
from fundtrail.ledger.books import Books, Evidence, GrantBook, Mark, MilestoneBook, PayoutRecord, Vote
from fundtrail.ledger.dashboard import (
    DashboardError,
    build_dashboard,
    build_site_data,
    ledger_time,
    site_data,
)
from fundtrail.ledger.dashboard import data as dashboard_data
from fundtrail.ledger.dashboard import sankey
from fundtrail.ledger.dashboard.html import CONTENT_SECURITY_POLICY, MARKER
from fundtrail.units import TokenInfo

USDC = 10**6
NETWORK = "ethereum:local:test"


@pytest.fixture(scope="module")
def usdc_info(demo_ledger):
    """The demo stablecoin's symbol and decimals."""
    return demo_ledger.result.token


@pytest.fixture(scope="module")
def data(demo_ledger, usdc_info):
    return site_data(demo_ledger.indexer.ledger, {usdc_info.address: usdc_info}.__getitem__)


def test_totals_match_books(data, demo_ledger, usdc_info):
    books = demo_ledger.books
    grant = books.grants[demo_ledger.result.grant_id]

    assert len(data.totals) == 1
    totals = data.totals[0]
    assert totals.token == usdc_info
    assert totals.grants == 1
    assert totals.committed == grant.total == 45_000 * USDC
    assert totals.funded == grant.funded == 45_000 * USDC
    assert totals.released == grant.released == 37_500 * USDC
    assert totals.reclaimed == grant.reclaimed == 7_500 * USDC
    assert totals.held == 0
    # The 1,000 USDC direct gift and the 5,000 USDC gift into the grant.
    assert totals.donations == 6_000 * USDC
    assert totals.credits == 0


def test_site_time_is_last_indexed_block(data, demo_ledger, chain):
    ledger = demo_ledger.indexer.ledger

    assert data.last_block == ledger.last_block
    assert data.now == ledger_time(ledger)
    assert data.now == chain.provider.web3.eth.get_block(ledger.last_block)["timestamp"]


def test_grant_page_milestones(data, demo_ledger):
    (page,) = data.grants
    grant = demo_ledger.books.grants[page.grant_id]

    assert page.status == GrantStatus.Completed
    assert page.recipient == demo_ledger.result.roles.ngo.address
    assert page.recipient_project == demo_ledger.result.project_id
    assert [row.amount for row in page.milestones] == [12_500 * USDC, 25_000 * USDC, 7_500 * USDC]
    assert [row.status for row in page.milestones] == [
        MilestoneStatus.Released,
        MilestoneStatus.Released,
        MilestoneStatus.Reclaimed,
    ]
    assert [row.approvals for row in page.milestones] == [2, 2, 0]
    assert [row.settled_tx for row in page.milestones] == [m.settled.tx_hash for m in grant.milestones]
    assert [row.past_deadline for row in page.milestones] == [False, False, False]


def test_grant_timeline_in_chain_order(data, demo_ledger):
    (page,) = data.grants
    roles = demo_ledger.result.roles

    assert [entry.event for entry in page.timeline] == [
        "Grant created",
        "Funded",
        "Funded",
        "Milestone 0 evidence submitted",
        "Milestone 0 approved",
        "Milestone 0 approved",
        "Milestone 0 released",
        "Milestone 1 evidence submitted",
        "Milestone 1 approved",
        "Milestone 1 approved",
        "Milestone 1 released",
        "Milestone 2 reclaimed",
        "Milestone 2 reclaimed",
    ]
    positions = [(entry.block_number, entry.log_index) for entry in page.timeline]
    assert positions == sorted(positions)
    donor_funding = page.timeline[2]
    assert donor_funding.account == roles.grant_donor.address
    assert donor_funding.amount == 5_000 * USDC
    assert donor_funding.detail == "a gift through the donation registry"
    reclaims = {entry.account: entry.amount for entry in page.timeline[-2:]}
    assert reclaims == {roles.grant_maker.address: 6_666_666_667, roles.grant_donor.address: 833_333_333}


def test_donor_record_of_grant_donor(data, demo_ledger, usdc_info):
    roles = demo_ledger.result.roles
    record = next(donor for donor in data.donors if donor.address == roles.grant_donor.address)

    (gift,) = record.gifts
    assert (gift.kind, gift.grant_id, gift.amount) == ("grant", demo_ledger.result.grant_id, 5_000 * USDC)
    (share,) = record.shares
    assert share.contribution == 5_000 * USDC
    assert [(row.milestone, row.outcome, row.amount, row.exact) for row in share.rows] == [
        # 12,500 and 25,000 released, times 5,000 / 45,000, rounded down.
        (0, "released", 1_388_888_888, False),
        (1, "released", 2_777_777_777, False),
        # The reclaim paid the donor exactly this much.
        (2, "returned", 833_333_333, True),
    ]
    assert record.credits == []


def test_first_funder_shares_take_the_remainder(data, demo_ledger):
    roles = demo_ledger.result.roles
    record = next(donor for donor in data.donors if donor.address == roles.grant_maker.address)

    (share,) = record.shares
    # The first funder gets what the other funders' rounded-down shares leave, so each
    # milestone's shares add up to its amount, as in the statements and in a reclaim.
    assert [(row.milestone, row.outcome, row.amount) for row in share.rows] == [
        (0, "released", 12_500 * USDC - 1_388_888_888),
        (1, "released", 25_000 * USDC - 2_777_777_777),
        (2, "returned", 6_666_666_667),
    ]


def test_donor_records_cover_every_giver(data, demo_ledger):
    roles = demo_ledger.result.roles

    assert sorted(donor.address for donor in data.donors) == sorted(
        [roles.grant_maker.address, roles.grant_donor.address, roles.direct_donor.address]
    )
    direct = next(donor for donor in data.donors if donor.address == roles.direct_donor.address)
    assert [(gift.kind, gift.project_id, gift.amount, gift.forwarded_to) for gift in direct.gifts] == [
        ("project", demo_ledger.result.project_id, 1_000 * USDC, roles.ngo.address)
    ]
    assert direct.shares == []
    maker = next(donor for donor in data.donors if donor.address == roles.grant_maker.address)
    assert [(gift.kind, gift.amount) for gift in maker.gifts] == [("funding", 40_000 * USDC)]


def test_funds_flow_conserves_amounts(data):
    (flow,) = data.flows
    inflow: dict[str, int] = {}
    outflow: dict[str, int] = {}
    for link in flow.links:
        outflow[link.source] = outflow.get(link.source, 0) + link.amount
        inflow[link.target] = inflow.get(link.target, 0) + link.amount
    columns = {node.key: node.column for node in flow.nodes}

    for key in set(inflow) & set(outflow):
        assert inflow[key] == outflow[key], key
    sources = sum(amount for key, amount in outflow.items() if columns[key] == 0)
    sinks = {key: amount for key, amount in inflow.items() if columns[key] == 3}
    assert sources == 46_000 * USDC
    assert sum(sinks.values()) == sources
    assert sinks["returned"] == 7_500 * USDC
    assert "held" not in sinks


def test_site_data_requires_token_info(demo_ledger):
    books = demo_ledger.books

    with pytest.raises(DashboardError, match=r"No symbol and decimals for the token\(s\) 0x"):
        build_site_data(books, {}, chain_id=1, escrow="0x", registry="0x", last_block=0, now=0)


class _Links(HTMLParser):
    """Collects every URL-valued attribute and the CSP meta tag of a page."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.csp: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "meta" and attributes.get("http-equiv") == "Content-Security-Policy":
            self.csp.append(attributes["content"])
        for name in ("href", "src", "action", "xlink:href"):
            if attributes.get(name):
                self.urls.append(attributes[name])


def test_pages_link_only_within_site(demo_ledger, usdc_info, tmp_path):
    site = tmp_path / "site"
    _, start = build_dashboard(demo_ledger.indexer.ledger, {usdc_info.address: usdc_info}.__getitem__, site)

    assert start == site / "index.html"
    pages = sorted(site.rglob("*.html"))
    assert [page.relative_to(site).as_posix() for page in pages] == [
        "donors.html",
        "flow.html",
        "grants/grant-1.html",
        "index.html",
    ]
    for page in pages:
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        assert parser.csp == [CONTENT_SECURITY_POLICY], page
        for url in parser.urls:
            assert not re.match(r"^[a-z][a-z0-9+.-]*:|^//", url, re.IGNORECASE), (page, url)
            target = (page.parent / url.split("#")[0]).resolve() if url.split("#")[0] else page
            assert target.is_file(), (page, url)


def test_rebuild_replaces_own_site(demo_ledger, usdc_info, tmp_path):
    site = tmp_path / "site"
    token_info = {usdc_info.address: usdc_info}.__getitem__
    build_dashboard(demo_ledger.indexer.ledger, token_info, site)
    stale = site / "grants" / "grant-99.html"
    stale.write_text("from an older ledger")
    keep = site / "README.txt"
    keep.write_text("the publisher's own file")

    build_dashboard(demo_ledger.indexer.ledger, token_info, site)

    assert not stale.exists()
    assert keep.read_text() == "the publisher's own file"
    assert (site / "grants" / "grant-1.html").is_file()
    assert (site / MARKER).is_file()


def test_write_refuses_foreign_folder(demo_ledger, usdc_info, tmp_path):
    site = tmp_path / "photos"
    site.mkdir()
    (site / "holiday.jpg").write_bytes(b"\xff\xd8")

    with pytest.raises(DashboardError, match="is not empty and contains no earlier dashboard"):
        build_dashboard(demo_ledger.indexer.ledger, {usdc_info.address: usdc_info}.__getitem__, site)
    assert [path.name for path in site.iterdir()] == ["holiday.jpg"]


def test_write_refuses_file_as_folder(demo_ledger, usdc_info, tmp_path):
    target = tmp_path / "site"
    target.write_text("not a folder")

    with pytest.raises(DashboardError, match="is a file"):
        build_dashboard(demo_ledger.indexer.ledger, {usdc_info.address: usdc_info}.__getitem__, target)


# Hand-made books, for cases the demo does not reach.

TOKEN = TokenInfo("0x" + "11" * 20, "TKN", 18)
MARK = Mark("0x" + "aa" * 32, 5, 0, 1_000)


def _grant(grant_id: int, amounts: list[int], funded: dict[str, int], **changes) -> GrantBook:
    grant = GrantBook(
        grant_id=grant_id,
        creator="0x" + "c0" * 20,
        recipient="0x" + "0e" * 20,
        token=TOKEN.address,
        funding_deadline=2_000,
        threshold=1,
        attestors=["0x" + "a7" * 20],
        milestones=[MilestoneBook(index, amount, 3_000 + index) for index, amount in enumerate(amounts)],
        terms_hash="0x" + "00" * 32,
        terms_uri="ipfs://terms",
        created=MARK,
        contributions=dict(funded),
        funded=sum(funded.values()),
        fundings=[(funder, funder, amount, MARK) for funder, amount in funded.items()],
    )
    for name, value in changes.items():
        setattr(grant, name, value)
    return grant


def _site(books: Books, now: int = 1_500):
    return build_site_data(
        books, {TOKEN.address: TOKEN}, chain_id=1, escrow="0xe", registry="0xr", last_block=9, now=now
    )


def test_refunded_grant_flows_back():
    funder, other = "0x" + "f1" * 20, "0x" + "f2" * 20
    refund = PayoutRecord(1, funder, TOKEN.address, "refund", None, 300, False, MARK)
    grant = _grant(1, [1_000], {funder: 300, other: 200}, reclaimed=300, refunded={funder}, payouts=[refund])
    site = _site(Books(grants={1: grant}), now=2_500)

    (flow,) = site.flows
    assert {(link.source, link.target, link.amount) for link in flow.links} == {
        (f"donor:{funder}", "grant:1", 300),
        (f"donor:{other}", "grant:1", 200),
        ("grant:1", "returned", 300),
        ("grant:1", "held", 200),
    }
    assert site.grants[0].status == GrantStatus.FundingFailed
    shares = {donor.address: donor.shares[0].rows for donor in site.donors}
    assert [(row.outcome, row.amount, row.exact) for row in shares[funder]] == [("returned", 300, True)]
    assert [(row.outcome, row.amount, row.exact) for row in shares[other]] == [("held", 200, True)]


def test_timeline_marks_relays_and_rejections():
    funder, attestor, keeper = "0x" + "f1" * 20, "0x" + "a7" * 20, "0x" + "4e" * 20
    grant = _grant(1, [1_000], {funder: 1_000})
    milestone = grant.milestones[0]
    first, second = "0x" + "e1" * 32, "0x" + "e2" * 32
    milestone.evidence = [
        Evidence(first, "ipfs://first", grant.recipient, Mark("0x" + "01" * 32, 6, 0, 1_100), rejected=True),
        Evidence(second, "ipfs://second", grant.recipient, Mark("0x" + "03" * 32, 8, 0, 1_300)),
    ]
    milestone.votes = [
        Vote(attestor, first, False, "0x" + "bb" * 32, None, Mark("0x" + "02" * 32, 7, 0, 1_200)),
        Vote(attestor, second, True, None, keeper, Mark("0x" + "04" * 32, 9, 1, 1_400)),
    ]
    site = _site(Books(grants={1: grant}))

    entries = [(entry.event, entry.account, entry.detail) for entry in site.grants[0].timeline]
    assert entries == [
        ("Grant created", grant.creator, "1 milestone, 1 of 1 attestors"),
        ("Funded", funder, ""),
        ("Milestone 0 evidence submitted", grant.recipient, "ipfs://first (rejected)"),
        ("Milestone 0 rejected", attestor, ""),
        ("Milestone 0 evidence submitted", grant.recipient, "ipfs://second"),
        ("Milestone 0 approved", attestor, f"relayed by {keeper}"),
    ]


def test_open_milestone_past_deadline():
    funder = "0x" + "f1" * 20
    site = _site(Books(grants={1: _grant(1, [400, 600], {funder: 1_000})}), now=3_001)

    milestones = site.grants[0].milestones
    assert [row.past_deadline for row in milestones] == [True, False]
    assert [(row.outcome, row.amount) for row in site.donors[0].shares[0].rows] == [("held", 400), ("held", 600)]


def test_many_donors_share_one_node():
    funders = {f"0x{index:040x}": 100 + index for index in range(1, 21)}
    site = _site(Books(grants={1: _grant(1, [sum(funders.values())], funders)}))

    (flow,) = site.flows
    donor_nodes = [node for node in flow.nodes if node.kind == "donor"]
    assert len(donor_nodes) == dashboard_data.MAX_DONOR_NODES
    others = next(node for node in donor_nodes if node.key == "donor:others")
    grouped = len(funders) - dashboard_data.MAX_DONOR_NODES + 1
    assert others.label == f"{grouped} other donors"
    smallest = sorted(funders.values())[:grouped]
    assert next(link.amount for link in flow.links if link.source == "donor:others") == sum(smallest)


def test_sankey_nodes_never_overlap(data):
    chart = sankey.layout(data.flows[0])

    by_x: dict[float, list] = {}
    for node in chart.nodes:
        by_x.setdefault(node.x, []).append(node)
    assert len(by_x) == 4
    for nodes in by_x.values():
        nodes.sort(key=lambda node: node.y)
        for upper, lower in zip(nodes, nodes[1:]):
            assert upper.y + upper.height + sankey.NODE_GAP <= lower.y + 1e-9
    assert all(node.y + node.height <= chart.height for node in chart.nodes)
    grant = next(node for node in chart.nodes if node.key == "grant:1")
    maker = max((node for node in chart.nodes if node.kind == "donor"), key=lambda node: node.amount)
    assert grant.height / maker.height == pytest.approx(45 / 40)


def test_cli_writes_site(demo_ledger, tmp_path, chain):
    site = tmp_path / "site"
    result = _run_cli(chain, "dashboard", "--out", site, "--deployments", demo_ledger.deployments_path,
                      "--database", tmp_path / "fresh.sqlite")

    assert result.exit_code == 0, result.stderr
    output = " ".join(result.stdout.split())
    assert "Wrote the dashboard of 1 grant and 3 donors" in output
    assert f"Open {site / 'index.html'} in a browser: {(site / 'index.html').as_uri()}" in output
    assert "45,000 USDC" in (site / "grants" / "grant-1.html").read_text(encoding="utf-8")


def test_cli_no_sync_shows_ledger_as_is(demo_ledger, tmp_path, chain):
    site = tmp_path / "site"
    result = _run_cli(chain, "dashboard", "--out", site, "--no-sync", "--deployments",
                      demo_ledger.deployments_path, "--database", tmp_path / "empty.sqlite")

    assert result.exit_code == 0, result.stderr
    assert "Wrote the dashboard of 0 grants and 0 donors" in " ".join(result.stdout.split())
    assert "No grants yet." in (site / "index.html").read_text(encoding="utf-8")


def test_cli_rejects_foreign_folder(demo_ledger, tmp_path, chain):
    site = tmp_path / "photos"
    site.mkdir()
    (site / "holiday.jpg").write_bytes(b"\xff\xd8")
    result = _run_cli(chain, "dashboard", "--out", site, "--no-sync", "--deployments",
                      demo_ledger.deployments_path, "--database", demo_ledger.database)

    assert result.exit_code == 2
    assert "is not empty and contains no earlier dashboard" in " ".join(result.stderr.split())


def test_cli_help_has_no_account():
    result = CliRunner(mix_stderr=False).invoke(cli, ["dashboard", "--help"])
    text = " ".join(result.stdout.split())

    assert result.exit_code == 0, result.stderr
    assert "--account" not in text
    assert "--out DIRECTORY" in text
    assert "--sync / --no-sync" in text


def _run_cli(chain, *args):
    # NOTE: As in test_cli.py, `--network` makes ape 0.8.51 empty the chain's snapshot list,
    # which ape's test isolation needs, so it is put back after the command.
    snapshots = list(chain._snapshots[chain.chain_id])
    try:
        argv = [str(arg) for arg in args] + ["--network", NETWORK]
        return CliRunner(mix_stderr=False).invoke(cli, argv, env={"COLUMNS": "300"})
    finally:
        chain._snapshots[chain.chain_id] = snapshots
