"""Fixtures of the MilestoneEscrow and DonationRegistry tests.

The roles, contracts, tokens and `make_terms` come from tests/conftest.py. This file deploys them
all before the first test, and adds grants in known states, the project roles of the registry
tests and an ETH-rejecting contract. The assertion helpers are in assertions.py.
"""

import pytest
from assertions import ETH, ETH_AMOUNTS, EVIDENCE, EVIDENCE_URI, USDC_AMOUNTS, Grant, address_of, assert_books


@pytest.fixture(scope="session", autouse=True)
def deployed_contracts(escrow, registry, usdc, no_return_token, fee_token, blocklist_token):
    """Deploy the contracts and tokens once, before the first test of the session.

    ape snapshots the chain around each module and test. A session-scoped fixture that a test
    first requests in the middle of a module would deploy inside those snapshots, and ape would
    rebuild the snapshots and raise InvalidIsolationWarning.
    """


@pytest.fixture(scope="session")
def project_admin(ngo):
    """The admin of a registry project: the NGO."""
    return ngo


@pytest.fixture(scope="session")
def payout(accounts):
    """The payout wallet of a registry project. It has no other role and sends no transactions,
    so its ETH balance changes only by the donations it receives."""
    return accounts[9]


@pytest.fixture(params=["eth", "usdc"])
def grant_token(request):
    """The token of a grant, once ETH (the zero address) and once the 6-decimal usdc."""
    if request.param == "eth":
        return ETH
    return request.getfixturevalue("usdc")


@pytest.fixture
def rejecter(project, deployer):
    """A contract that rejects every ETH transfer."""
    return deployer.deploy(project.EthRejecter)


@pytest.fixture
def fund(escrow):
    """`fund(grant, payer, amount, funder=None)` adds `amount` from `payer`, approving the
    escrow first for an ERC-20 grant. With `funder`, it calls fundFor instead of fund."""

    def _fund(grant, payer, amount, funder=None):
        value = amount if grant.token_address == ETH else 0
        if grant.token_address != ETH:
            grant.token.approve(escrow, amount, sender=payer)
        if funder is None:
            return escrow.fund(grant.id, amount, value=value, sender=payer)
        return escrow.fundFor(grant.id, address_of(funder), amount, value=value, sender=payer)

    return _fund


@pytest.fixture
def create_grant(escrow, grant_maker, make_terms, fund):
    """`create_grant(funded=False, token=ETH, **terms)` creates a grant with `make_terms`
    arguments and, with `funded=True`, funds it in full from the grant maker."""

    def _create(funded=False, token=ETH, **terms_kwargs):
        terms = make_terms(token=token, **terms_kwargs)
        escrow.createGrant(terms, sender=grant_maker)
        grant = Grant(id=escrow.grantCount(), terms=terms, token=token)
        if funded:
            fund(grant, grant_maker, grant.total)
        return grant

    return _create


@pytest.fixture
def eth_grant(create_grant):
    """A 2-of-3 ETH grant of 1,000, 2,000 and 3,000 wei, created and not funded."""
    return create_grant(amounts=ETH_AMOUNTS)


@pytest.fixture
def funded_eth_grant(create_grant):
    """The default ETH grant, funded in full by the grant maker."""
    return create_grant(funded=True, amounts=ETH_AMOUNTS)


@pytest.fixture
def funded_usdc_grant(create_grant, usdc):
    """A 2-of-3 grant of 1,000, 2,000 and 3,000 USDC, funded in full by the grant maker."""
    return create_grant(funded=True, token=usdc, amounts=USDC_AMOUNTS)


@pytest.fixture
def release(escrow, ngo, attestors):
    """`release(grant, index)` submits EVIDENCE for the milestone and approves it with the
    first `threshold` attestors, and returns the receipt of the releasing approval."""

    def _release(grant, index, evidence=EVIDENCE):
        escrow.submitEvidence(grant.id, index, evidence, EVIDENCE_URI, sender=ngo)
        receipt = None
        for attestor in attestors[: grant.threshold]:
            receipt = escrow.approve(grant.id, index, evidence, sender=attestor)
        return receipt

    return _release


@pytest.fixture
def books_balance_at_end(escrow):
    """Check the accounting identities once more on the final state of a test. The escrow test
    modules use it through `pytestmark`; the balance check is `>=` here, because a test may
    have forced ETH into the escrow."""
    yield
    assert_books(escrow, exact=False)
