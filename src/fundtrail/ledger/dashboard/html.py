"""Write `SiteData` as a static site of HTML pages, one stylesheet and one small script.

The pages load nothing from the network: no fonts, scripts or images from elsewhere. A
Content-Security-Policy meta tag on every page makes the browser enforce that, and also
rules out inline scripts and styles.
"""

import logging
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import jinja2

from fundtrail.grants import GrantStatus, MilestoneStatus
from fundtrail.ledger.dashboard import sankey
from fundtrail.ledger.dashboard.data import DashboardError, ShareRow, SiteData
from fundtrail.units import TokenInfo, format_amount

logger = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'"
)
"""Only the site's own stylesheet and script may load; the diagrams are inline SVG markup."""

MARKER = ".fundtrail-dashboard"
"""A file in every site folder this module writes. A non-empty folder without it is someone
else's, and is never overwritten."""

OWN_ENTRIES = ("index.html", "flow.html", "donors.html", "grants", "assets", MARKER)
"""The entries a rebuild replaces in a folder it wrote before. Other files there stay."""

_PACKAGE = Path(__file__).parent

# GrantStatus and MilestoneStatus are IntEnums with overlapping values, which would collide as
# keys of one dict, so each has its own.
_GRANT_STATUS_NAMES = {
    GrantStatus.Funding: "Funding",
    GrantStatus.FundingFailed: "Funding failed",
    GrantStatus.Active: "Active",
    GrantStatus.Completed: "Completed",
}
_MILESTONE_STATUS_NAMES = {
    MilestoneStatus.AwaitingEvidence: "Awaiting evidence",
    MilestoneStatus.EvidenceSubmitted: "Evidence submitted",
    MilestoneStatus.Released: "Released",
    MilestoneStatus.Reclaimed: "Reclaimed",
}
_FLOW_KINDS = {
    "gift": "Gift to project",
    "funding": "Grant funding",
    "forward": "Forwarded by the registry",
    "allocation": "Milestone amount",
    "release": "Paid to recipient",
    "return": "Returned to funders",
    "held": "Held in escrow",
}
_OUTCOMES = {
    "released": "Released to the recipient",
    "returned": "Returned to you",
    "held": "Held in escrow",
}


def show_time(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _iso_time(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _amount(base_units: int, token: TokenInfo) -> str:
    return format_amount(base_units, token)


def _outcome(row: ShareRow) -> str:
    return _OUTCOMES[row.outcome]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_PACKAGE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        amount=_amount,
        time=show_time,
        isotime=_iso_time,
        short=lambda address: f"{address[:6]}…{address[-4:]}",
        grant_status=lambda status: _GRANT_STATUS_NAMES[GrantStatus(status)],
        milestone_status=lambda status: _MILESTONE_STATUS_NAMES[MilestoneStatus(status)],
        flow_kind=lambda kind: _FLOW_KINDS[kind],
        outcome=_outcome,
        slug=_slug,
    )
    return environment


def write_site(data: SiteData, out: Path) -> Path:
    """Write the site into the folder `out` and return the path of its start page.

    Raises `DashboardError` if `out` is a file, or a non-empty folder that this function did
    not write.
    """
    _prepare(out)
    environment = _environment()
    common = {"site": data, "csp": CONTENT_SECURITY_POLICY}

    def render(template: str, path: Path, root: str, **context) -> None:
        html = environment.get_template(template).render(**common, root=root, **context)
        path.write_text(html, encoding="utf-8")

    render("index.html", out / "index.html", "", title="Overview", page="overview")
    render(
        "flow.html",
        out / "flow.html",
        "",
        title="Funds flow",
        page="flow",
        flows=[(flow, sankey.layout(flow)) for flow in data.flows],
        labels={node.key: node.label for flow in data.flows for node in flow.nodes},
        node_width=sankey.NODE_WIDTH,
    )
    render("donors.html", out / "donors.html", "", title="Donor lookup", page="donors")
    (out / "grants").mkdir()
    for grant in data.grants:
        render(
            "grant.html",
            out / "grants" / f"grant-{grant.grant_id}.html",
            "../",
            title=f"Grant {grant.grant_id}",
            page="grant",
            grant=grant,
        )
    shutil.copytree(_PACKAGE / "assets", out / "assets")
    (out / MARKER).write_text("Written by `fundtrail dashboard`; a rebuild replaces this site.\n")
    logger.info("Wrote the dashboard of %s grants and %s donors to %s", len(data.grants), len(data.donors), out)
    return out / "index.html"


def _prepare(out: Path) -> None:
    """Make `out` an empty folder for the site, or clear the site this module wrote there."""
    if out.exists() and not out.is_dir():
        raise DashboardError(f"{out} is a file. Pass a folder for the site with --out.")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise DashboardError(
                f"{out} is not empty and contains no earlier dashboard (no {MARKER} file), so "
                "it was not changed. Pass an empty or new folder with --out."
            )
        for name in OWN_ENTRIES:
            entry = out / name
            if entry.is_dir():
                shutil.rmtree(entry)
            elif entry.exists():
                entry.unlink()
    out.mkdir(parents=True, exist_ok=True)
