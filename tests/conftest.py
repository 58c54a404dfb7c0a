"""Shared fixtures: the roles of a grant, the deployed contracts and real-world tokens.

ape takes a chain snapshot around every test, so each test starts from the state these
session-scoped fixtures build, and nothing one test does leaks into another.
"""

from dataclasses import dataclass

import pytest

ETH = "0x0000000000000000000000000000000000000000"
ZERO_HASH = b"\x00" * 32
DAY = 24 * 60 * 60


@pytest.fixture(scope="session")
def deployer(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def grant_maker(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def ngo(accounts):
    """The grant recipient: the NGO's payout address."""
    return accounts[2]


@pytest.fixture(scope="session")
def attestors(accounts):
    """Three independent attestors; the default grant needs two of them."""
    return [accounts[3], accounts[4], accounts[5]]


@pytest.fixture(scope="session")
def donor(accounts):
    return accounts[6]


@pytest.fixture(scope="session")
def registrar(accounts):
    """The registry owner, which verifies and suspends projects."""
    return accounts[7]


@pytest.fixture(scope="session")
def stranger(accounts):
    """An account with no role in any grant or project."""
    return accounts[8]


@pytest.fixture(scope="session")
def escrow(project, deployer):
    return deployer.deploy(project.MilestoneEscrow)


@pytest.fixture(scope="session")
def registry(project, deployer, escrow, registrar):
    return deployer.deploy(project.DonationRegistry, escrow.address, registrar.address)


@pytest.fixture(scope="session")
def usdc(project, deployer, grant_maker, donor):
    """A 6-decimal stablecoin, minted to the grant maker and the donor."""
    token = deployer.deploy(project.MockERC20, "Test USD Coin", "USDC", 6)
    for holder in (grant_maker, donor):
        token.mint(holder, 10_000_000 * 10**6, sender=deployer)
    return token


@pytest.fixture(scope="session")
def no_return_token(project, deployer, grant_maker, donor):
    """A USDT-like token whose transfer functions return no bool."""
    token = deployer.deploy(project.NoReturnToken)
    for holder in (grant_maker, donor):
        token.mint(holder, 10_000_000 * 10**6, sender=deployer)
    return token


@pytest.fixture(scope="session")
def fee_token(project, deployer, grant_maker, donor):
    """A token that burns 1% of every transfer."""
    token = deployer.deploy(project.FeeOnTransferToken, 100)
    for holder in (grant_maker, donor):
        token.mint(holder, 10_000_000 * 10**18, sender=deployer)
    return token


@pytest.fixture(scope="session")
def blocklist_token(project, deployer, grant_maker, donor):
    """A 6-decimal token with a blocklist and a pause, like regulated stablecoins."""
    token = deployer.deploy(project.BlocklistToken)
    for holder in (grant_maker, donor):
        token.mint(holder, 10_000_000 * 10**6, sender=deployer)
    return token


def address_of(account_or_address):
    """Return the address of an ape account or contract, or the value itself if it is a string."""
    return getattr(account_or_address, "address", account_or_address)


@dataclass
class TermsFactory:
    """Builds GrantTerms tuples relative to the current block time."""

    chain: object
    ngo: object
    attestors: list

    def __call__(
        self,
        token=ETH,
        amounts=(1_000, 2_000, 3_000),
        threshold=2,
        attestors=None,
        recipient=None,
        funding_in=7 * DAY,
        deadlines_in=None,
        terms_hash=b"\x11" * 32,
        terms_uri="ipfs://bafy-terms",
    ):
        now = self.chain.pending_timestamp
        deadlines_in = deadlines_in or [30 * DAY * (i + 1) for i in range(len(amounts))]
        attestors = self.attestors if attestors is None else attestors
        return (
            address_of(self.ngo if recipient is None else recipient),
            address_of(token),
            now + funding_in,
            threshold,
            [address_of(attestor) for attestor in attestors],
            [(amount, now + offset) for amount, offset in zip(amounts, deadlines_in)],
            terms_hash,
            terms_uri,
        )


@pytest.fixture
def make_terms(chain, ngo, attestors):
    """`make_terms(token=usdc, amounts=[...])` returns GrantTerms for `createGrant`."""
    return TermsFactory(chain, ngo, attestors)
