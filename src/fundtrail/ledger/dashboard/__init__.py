"""The dashboard: a static site of the ledger that works offline, read from the books alone.

`data` computes the figures from `Books`, `sankey` lays out the funds-flow diagrams, and `html`
writes the pages. `build_dashboard` runs all three on a ledger.
"""

import logging
from pathlib import Path

import sqlalchemy as sa

from fundtrail.ledger import schema
from fundtrail.ledger.books import rebuild
from fundtrail.ledger.dashboard.data import DashboardError, SiteData, build_site_data, ledger_tokens
from fundtrail.ledger.dashboard.html import write_site
from fundtrail.ledger.indexer import Ledger
from fundtrail.units import ETH, ETH_ADDRESS, TokenInfo

logger = logging.getLogger(__name__)

__all__ = [
    "DashboardError",
    "SiteData",
    "build_dashboard",
    "build_site_data",
    "ledger_tokens",
    "ledger_time",
    "site_data",
    "write_site",
]


def ledger_time(ledger: Ledger) -> int | None:
    """Return the timestamp of the ledger's last indexed block, or None before the first sync."""
    query = sa.select(schema.blocks.c.timestamp).where(schema.blocks.c.number == ledger.last_block)
    with ledger.engine.connect() as connection:
        return connection.execute(query).scalar_one_or_none()


def site_data(ledger: Ledger, token_info) -> SiteData:
    """Rebuild the books from `ledger` and compute the dashboard's figures.

    `token_info(address)` returns the `TokenInfo` of each token the books mention; ETH, which
    has no token contract to ask, is filled in here.
    """
    books = rebuild(ledger.events())
    tokens: dict[str, TokenInfo] = {
        address: ETH if address == ETH_ADDRESS else token_info(address) for address in ledger_tokens(books)
    }
    meta = ledger.meta()
    now = ledger_time(ledger)
    if now is None:
        # NOTE: Before the first sync the ledger stores no block, so there is no block time.
        # Statuses then refer to time 0, which is harmless because there are no grants yet.
        now = 0
    return build_site_data(
        books,
        tokens,
        chain_id=int(meta["chain_id"]),
        escrow=meta["escrow"],
        registry=meta["registry"],
        last_block=ledger.last_block,
        now=now,
    )


def build_dashboard(ledger: Ledger, token_info, out: Path) -> tuple[SiteData, Path]:
    """Write the dashboard of `ledger` into the folder `out`; return its data and start page."""
    data = site_data(ledger, token_info)
    return data, write_site(data, out)
