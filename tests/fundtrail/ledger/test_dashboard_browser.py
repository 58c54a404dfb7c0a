"""The dashboard in a real headless Chromium: the numbers a reader sees match the books, and
no page sends a request outside the site.

Chromium comes from Debian (`apt-get install -y chromium`) and Playwright drives it; the test
never downloads a browser. Without /usr/bin/chromium the tests are skipped, unless the CI
environment variable is set: there a missing browser fails them, so CI cannot pass without
running them. Screenshots go to $FUNDTRAIL_TEST_ARTIFACTS, by default
.fundtrail/test-artifacts/ in the repository.
"""

import os
from pathlib import Path

import pytest

from fundtrail.ledger.dashboard import build_dashboard
from fundtrail.units import format_amount

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
REPOSITORY = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("FUNDTRAIL_TEST_ARTIFACTS", REPOSITORY / ".fundtrail" / "test-artifacts"))


_INSTALL = (
    "Install Chromium with `apt-get install -y chromium` and Playwright with "
    "`pip install playwright==1.65.2`."
)


def _missing(reason: str) -> None:
    """Skip the browser tests for `reason`, or fail them when the CI variable is set."""
    if "CI" in os.environ:
        pytest.fail(f"{reason}, and CI is set, so the browser tests must run. {_INSTALL}")
    pytest.skip(f"{reason}. {_INSTALL}")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        _missing(f"No Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright for Python is not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def site(demo_ledger, tmp_path_factory):
    token = demo_ledger.result.token
    folder = tmp_path_factory.mktemp("dashboard") / "site"
    build_dashboard(demo_ledger.indexer.ledger, {token.address: token}.__getitem__, folder)
    return folder


class Visit:
    """A browser page that records every request and every console message and page error."""

    def __init__(self, browser):
        self.context = browser.new_context(viewport={"width": 1200, "height": 900})
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.problems: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("console", lambda message: self.problems.append(f"console {message.type}: {message.text}"))
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        # A request that leaves the machine is recorded above and then refused here, so a
        # regression fails the assertion below instead of reaching the network.
        self.context.route("**/*", self._route)

    @staticmethod
    def _route(route):
        if _is_local(route.request.url):
            route.continue_()
        else:
            route.abort()

    def open(self, site: Path, path: str):
        """Open `path`, relative to `site`, which may end in a #fragment."""
        page_path, _, fragment = path.partition("#")
        url = (site / page_path).as_uri() + (f"#{fragment}" if fragment else "")
        self.page.goto(url)
        self.page.wait_for_load_state("load")
        return self.page

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"dashboard-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self):
        self.context.close()


def _is_local(url: str) -> bool:
    return url.startswith(("file://", "http://127.0.0.1:", "data:"))


@pytest.fixture
def visit(browser):
    session = Visit(browser)
    yield session
    session.close()
    outside = [url for url in session.requests if not _is_local(url)]
    assert outside == [], "the site sent requests outside the machine"
    assert session.problems == []


def test_overview_totals_match_books(visit, site, demo_ledger):
    token = demo_ledger.result.token
    books = demo_ledger.books
    grant = books.grants[demo_ledger.result.grant_id]
    page = visit.open(site, "index.html")
    row = page.locator(f'#totals tr[data-token="{token.address}"]')

    def cell(field: str) -> str:
        return row.locator(f'[data-field="{field}"]').inner_text()

    assert row.locator("th").inner_text() == "USDC"
    assert cell("grants") == "1"
    assert cell("committed") == format_amount(grant.total, token) == "45,000 USDC"
    assert cell("funded") == format_amount(grant.funded, token)
    assert cell("released") == format_amount(grant.released, token) == "37,500 USDC"
    assert cell("reclaimed") == format_amount(grant.reclaimed, token) == "7,500 USDC"
    assert cell("held") == format_amount(books.total_held(token.address), token) == "0 USDC"
    donations = sum(donation.amount for donation in books.donations)
    assert cell("donations") == format_amount(donations, token) == "6,000 USDC"
    assert cell("credits") == format_amount(books.total_credits(token.address), token)
    grant_row = page.locator(f'#grants tr[data-grant="{grant.grant_id}"]')
    assert grant_row.locator(".status").inner_text() == "Completed"
    visit.screenshot("overview")


def test_grant_page_shows_milestones(visit, site, demo_ledger):
    token = demo_ledger.result.token
    grant = demo_ledger.books.grants[demo_ledger.result.grant_id]
    page = visit.open(site, f"grants/grant-{grant.grant_id}.html")

    rows = page.locator("#milestones tbody tr")
    assert rows.count() == len(grant.milestones) == 3
    for milestone in grant.milestones:
        row = page.locator(f'#milestones tr[data-milestone="{milestone.index}"]')
        assert row.locator('[data-field="amount"]').inner_text() == format_amount(milestone.amount, token)
        assert milestone.settled.tx_hash in row.inner_text()
    statuses = [page.locator(f'#milestones tr[data-milestone="{i}"] .status').inner_text() for i in range(3)]
    assert statuses == ["Released", "Released", "Reclaimed"]
    for field, amount in (("funded", grant.funded), ("released", grant.released),
                          ("reclaimed", grant.reclaimed), ("held", grant.held)):
        assert page.locator(f'#grant-figures [data-field="{field}"]').inner_text() == format_amount(amount, token)
    timeline = page.locator("#timeline > li")
    assert timeline.count() == 13
    assert "Milestone 1 released" in timeline.nth(10).inner_text()
    assert grant.milestones[1].settled.tx_hash in timeline.nth(10).inner_text()
    visit.screenshot("grant")


def test_donor_lookup_shows_grant_donor(visit, site, demo_ledger):
    token = demo_ledger.result.token
    donor = demo_ledger.result.roles.grant_donor.address
    grant = demo_ledger.books.grants[demo_ledger.result.grant_id]
    page = visit.open(site, "donors.html")

    # Typed in lower case, the way addresses are often pasted.
    page.fill("#donor-address", donor.lower())
    page.click("#donor-lookup button[type=submit]")

    visible = page.locator("section.donor:visible")
    assert visible.count() == 1
    assert visible.locator("h2").inner_text() == donor
    assert visible.locator('.gifts [data-field="amount"]').all_inner_texts() == ["5,000 USDC"]
    share = visible.locator(f'table.share[data-grant="{grant.grant_id}"]')
    contribution = grant.contributions[donor]
    assert share.locator('[data-field="contribution"]').inner_text() == format_amount(contribution, token)
    amounts = share.locator('tbody [data-field="amount"]').all_inner_texts()
    released = [format_amount(m.amount * contribution // grant.funded, token) + "*" for m in grant.milestones[:2]]
    returned = sum(p.amount for p in grant.payouts if p.account == donor and p.kind == "reclaim")
    assert amounts == [*released, format_amount(returned, token)]
    assert amounts == ["1,388.888888 USDC*", "2,777.777777 USDC*", "833.333333 USDC"]
    assert page.locator("#donor-lookup-message").inner_text() == ""
    visit.screenshot("donor")


def test_donor_lookup_rejects_unknown_address(visit, site):
    page = visit.open(site, "donors.html")

    page.fill("#donor-address", "0x" + "ab" * 20)
    page.click("#donor-lookup button[type=submit]")
    assert page.locator("section.donor:visible").count() == 0
    assert page.locator("#donor-lookup-message").inner_text().startswith("No gifts from 0xabab")

    page.fill("#donor-address", "not an address")
    page.click("#donor-lookup button[type=submit]")
    assert page.locator("#donor-lookup-message").inner_text() == (
        "Enter an address: 0x followed by 40 hexadecimal digits."
    )

    page.click("#donor-show-all")
    assert page.locator("section.donor:visible").count() == 3


def test_donor_link_from_grant_page(visit, site, demo_ledger):
    maker = demo_ledger.result.roles.grant_maker.address
    page = visit.open(site, f"grants/grant-{demo_ledger.result.grant_id}.html")

    page.click(f'a[href="../donors.html#{maker}"]')
    page.wait_for_load_state("load")

    visible = page.locator("section.donor:visible")
    assert visible.count() == 1
    assert visible.locator("h2").inner_text() == maker


def test_funds_flow_diagram_and_table(visit, site, demo_ledger):
    page = visit.open(site, "flow.html")

    flow = page.locator("section.flow")
    assert flow.count() == 1
    assert flow.locator("svg path.band").count() == 11
    assert flow.locator("table.flows tbody tr").count() == 11
    recipient = flow.locator("svg g.node-recipient text").text_content()
    assert "38,500 USDC" in recipient
    assert "Returned to funders" in flow.locator("svg g.node-returned text").text_content()
    visit.screenshot("flow")


def test_page_with_external_image_is_caught(browser, tmp_path):
    # The guard itself: a page that requests an outside resource must show up in the record.
    page_file = tmp_path / "leak.html"
    page_file.write_text('<!doctype html><img src="https://example.org/pixel.png" alt="">')
    session = Visit(browser)
    try:
        session.open(tmp_path, "leak.html")
    finally:
        session.close()

    assert [url for url in session.requests if not _is_local(url)] == ["https://example.org/pixel.png"]


def test_missing_browser_fails_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set, so the browser tests must run"):
        _missing("No Chromium at /nowhere/chromium")

    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        _missing("No Chromium at /nowhere/chromium")
