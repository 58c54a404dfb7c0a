"""The grant spec the client and CLI tests start from, and helpers to change it.

The roles follow tests/conftest.py: the NGO is test account 2 and the attestors are test
accounts 3, 4 and 5, so specs can name them by their ape aliases.
"""

import copy
from pathlib import Path

import yaml

DAY = 24 * 60 * 60
USDC_UNIT = 10**6
TERMS_HASH = "0x" + "11" * 32

# Milestones of 1,000, 2,000 and 3,000 USDC, due 30, 60 and 90 days after now.
SPEC = {
    "title": "Hotline staffing 2027",
    "recipient": "TEST::2",
    "token": "USDC",
    "funding_deadline": "7d",
    "attestors": ["TEST::3", "TEST::4", "TEST::5"],
    "quorum": 2,
    "milestones": [
        {"title": "Hotline staffed", "amount": "1,000 USDC", "deadline": "30d"},
        {"title": "Shelter beds", "amount": "2,000 USDC", "deadline": "60d"},
        {"title": "Independent audit", "amount": "3,000 USDC", "deadline": "90d"},
    ],
    "terms": {"hash": TERMS_HASH, "uri": "ipfs://bafy-terms"},
}
TOTAL = 6_000 * USDC_UNIT


def spec_data(**changes) -> dict:
    """Return a copy of `SPEC` with top-level fields replaced."""
    data = copy.deepcopy(SPEC)
    data.update(changes)
    return data


def write_spec(folder: Path, **changes) -> Path:
    path = folder / "grant.yaml"
    path.write_text(yaml.safe_dump(spec_data(**changes), sort_keys=False), encoding="utf-8")
    return path
