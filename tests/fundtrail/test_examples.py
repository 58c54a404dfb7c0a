"""The example grant specs must stay valid: the README and the demo point users at them."""

from pathlib import Path

import pytest

from fundtrail.spec import GrantSpec, resolve_address
from fundtrail.units import ETH, TokenInfo

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
USDC = TokenInfo("0x5FbDB2315678afecb367f032d93F642f64180aa3", "USDC", 6)
NOW = 1_800_000_000
DAY = 86_400


@pytest.mark.parametrize(
    ("file_name", "token", "amounts"),
    [
        ("grant-hotline.yaml", USDC, [12_500 * 10**6, 25_000 * 10**6, 7_500 * 10**6]),
        ("grant-eth.yaml", ETH, [125 * 10**16, 25 * 10**17, 75 * 10**16]),
    ],
)
def test_example_spec_resolves(file_name, token, amounts):
    spec = GrantSpec.from_yaml(EXAMPLES / file_name)
    resolved = spec.resolve(now=NOW, token=token, resolve_account=resolve_address)

    assert resolved.milestone_amounts == amounts
    assert resolved.milestone_deadlines == [NOW + 90 * DAY, NOW + 180 * DAY, NOW + 270 * DAY]
    assert resolved.funding_deadline == NOW + 14 * DAY
    assert resolved.quorum == 2
    assert len(resolved.attestors) == 3
