"""The FundTrail client against the in-process chain: results, read models and the checks
that stop a transaction before it is sent."""

import pytest
from eth_utils import keccak
from grant_setup import DAY, TERMS_HASH, TOTAL, USDC_UNIT

from fundtrail.accounts import resolve_account
from fundtrail.checks import PreconditionError
from fundtrail.client import FundTrail
from fundtrail.contracts import ESCROW, REGISTRY
from fundtrail.deployments import ContractRecord, Deployment
from fundtrail.donor import donor_commitment
from fundtrail.errors import DeploymentError, PrivacyError, SpecError
from fundtrail.grants import GrantStatus, MilestoneStatus
from fundtrail.units import ETH, ETH_ADDRESS, TokenInfo

REASON = b"\x5e" * 32
SALT = bytes(range(32))


def test_create_grant_returns_id_from_event(client, resolve, grant_maker, ngo, attestors, usdc):
    grant_id, receipt = client.create_grant(resolve(), grant_maker)

    assert grant_id == 1
    assert client.escrow.grantCount() == 1
    grant = client.grant(grant_id)
    assert grant.creator == grant_maker.address
    assert grant.recipient == ngo.address
    assert grant.token == TokenInfo(usdc.address, "USDC", 6)
    assert grant.attestors == tuple(attestor.address for attestor in attestors)
    assert grant.threshold == 2
    assert grant.terms_hash == bytes.fromhex(TERMS_HASH[2:])
    assert grant.terms_uri == "ipfs://bafy-terms"
    assert grant.status == GrantStatus.Funding
    assert (grant.total, grant.funded, grant.held) == (TOTAL, 0, 0)
    assert [milestone.amount for milestone in grant.milestones] == [
        1_000 * USDC_UNIT,
        2_000 * USDC_UNIT,
        3_000 * USDC_UNIT,
    ]
    assert grant.created_tx == receipt.txn_hash
    assert grant.funders == ()


def test_create_grant_funds_usdc(client, resolve, grant_maker, usdc, escrow):
    balance_before = usdc.balanceOf(grant_maker)

    grant_id, _ = client.create_grant(resolve(), grant_maker, fund=True)

    grant = client.grant(grant_id)
    assert grant.status == GrantStatus.Active
    assert (grant.funded, grant.held) == (TOTAL, TOTAL)
    assert [(funder.address, funder.contribution, funder.refunded) for funder in grant.funders] == [
        (grant_maker.address, TOTAL, False)
    ]
    assert usdc.balanceOf(grant_maker) == balance_before - TOTAL
    assert usdc.balanceOf(escrow) == TOTAL
    assert usdc.allowance(grant_maker, escrow) == 0


def test_create_grant_funds_eth(client, resolve, grant_maker, escrow):
    milestones = [{"title": "Hotline staffed", "amount": "0.5 ETH", "deadline": "30d"}]

    grant_id, _ = client.create_grant(
        resolve(token="ETH", milestones=milestones), grant_maker, fund=True
    )

    assert escrow.balance == 5 * 10**17
    assert client.grant(grant_id).token == ETH
    assert client.grant(grant_id).status == GrantStatus.Active


def test_fund_rejects_amount_above_remaining(client, resolve, grant_maker):
    grant_id, _ = client.create_grant(resolve(), grant_maker)
    nonce = grant_maker.nonce

    with pytest.raises(PreconditionError, match=r"the grant needs only 6,000 USDC more") as raised:
        client.fund(grant_id, TOTAL + 1, grant_maker)

    assert raised.value.field == "amount"
    assert raised.value.value == "6,000.000001 USDC"
    assert grant_maker.nonce == nonce


def test_fund_rejects_fully_funded_grant(client, grant_id, donor, chain):
    nonce = donor.nonce
    # A fully funded grant is reported as such even once funding has closed.
    chain.pending_timestamp += 7 * DAY

    with pytest.raises(PreconditionError) as raised:
        client.fund(grant_id, USDC_UNIT, donor)

    assert str(raised.value) == (
        f"grant id: invalid value {grant_id}: the grant is already fully funded (6,000 USDC), "
        "so nothing more can be added. Fund another grant, or give to a verified project with "
        "`fundtrail donate AMOUNT --project ID`."
    )
    assert donor.nonce == nonce


def test_fund_rejects_after_funding_deadline(client, resolve, grant_maker, chain):
    grant_id, _ = client.create_grant(resolve(), grant_maker)
    chain.pending_timestamp += 7 * DAY

    with pytest.raises(PreconditionError, match="funding closed at"):
        client.fund(grant_id, USDC_UNIT, grant_maker)


def test_fund_rejects_amount_above_balance(client, resolve, grant_maker, stranger):
    grant_id, _ = client.create_grant(resolve(), grant_maker)

    with pytest.raises(PreconditionError, match=f"{stranger.address} holds only 0 USDC"):
        client.fund(grant_id, USDC_UNIT, stranger)


def test_fund_records_contribution(client, resolve, grant_maker, donor):
    grant_id, _ = client.create_grant(resolve(), grant_maker)

    client.fund(grant_id, 1_500 * USDC_UNIT, donor)

    grant = client.grant(grant_id)
    assert grant.funded == 1_500 * USDC_UNIT
    assert grant.remaining == TOTAL - 1_500 * USDC_UNIT
    assert [(funder.address, funder.contribution) for funder in grant.funders] == [
        (donor.address, 1_500 * USDC_UNIT)
    ]


def test_grant_rejects_unknown_id(client):
    with pytest.raises(
        PreconditionError, match=r"no grant has this id \(no grant exists yet\)"
    ) as raised:
        client.grant(7)

    assert raised.value.field == "grant id"
    assert raised.value.value == 7
    assert "fundtrail grant list" in raised.value.fix


def test_grants_lists_every_grant(client, resolve, grant_maker):
    client.create_grant(resolve(), grant_maker)
    client.create_grant(resolve(quorum=3), grant_maker)

    grants = client.grants()

    assert [(grant.grant_id, grant.threshold) for grant in grants] == [(1, 2), (2, 3)]


def test_submit_evidence_records_hash_and_uri(client, grant_id, ngo, evidence_hash):
    receipt = client.submit_evidence(grant_id, 0, evidence_hash, "ipfs://bafy-evidence-0", ngo)

    milestone = client.grant(grant_id).milestones[0]
    assert milestone.status == MilestoneStatus.EvidenceSubmitted
    assert milestone.evidence_hash == evidence_hash
    assert milestone.evidence_uri == "ipfs://bafy-evidence-0"
    assert client.escrow.EvidenceSubmitted.from_receipt(receipt)[0].submitter == ngo.address


def test_submit_evidence_rejects_non_recipient(client, grant_id, stranger, evidence_hash, ngo):
    with pytest.raises(PreconditionError, match=f"not the recipient of grant {grant_id}") as raised:
        client.submit_evidence(grant_id, 0, evidence_hash, "ipfs://bafy-evidence-0", stranger)

    assert raised.value.value == stranger.address
    assert raised.value.fix == f"Send from the recipient, {ngo.address}."


def test_submit_evidence_rejects_email_in_uri(client, grant_id, ngo, evidence_hash):
    nonce = ngo.nonce

    with pytest.raises(PrivacyError) as raised:
        client.submit_evidence(
            grant_id,
            0,
            evidence_hash,
            "https://example.org/report?contact=jane.doe@example.org",
            ngo,
        )

    assert raised.value.field == "evidence URI"
    assert raised.value.kinds == ["e-mail address"]
    assert ngo.nonce == nonce


def test_submit_evidence_accepts_email_when_allowed(client, grant_id, ngo, evidence_hash):
    uri = "https://example.org/report?contact=press@example.org"

    client.submit_evidence(grant_id, 0, evidence_hash, uri, ngo, allow_personal_data=True)

    assert client.grant(grant_id).milestones[0].evidence_uri == uri


def test_submit_evidence_rejects_unknown_milestone(client, grant_id, ngo, evidence_hash):
    with pytest.raises(PreconditionError, match=f"grant {grant_id} has milestones 0 to 2"):
        client.submit_evidence(grant_id, 3, evidence_hash, "ipfs://bafy-evidence-3", ngo)


def test_submit_evidence_rejects_unfunded_grant(client, resolve, grant_maker, ngo, evidence_hash):
    grant_id, _ = client.create_grant(resolve(), grant_maker)

    with pytest.raises(PreconditionError, match="the grant holds 0 USDC of 6,000 USDC"):
        client.submit_evidence(grant_id, 0, evidence_hash, "ipfs://bafy-evidence-0", ngo)


def test_submit_evidence_rejects_after_deadline(client, grant_id, ngo, evidence_hash, chain):
    chain.pending_timestamp += 30 * DAY

    with pytest.raises(PreconditionError, match="passed its deadline"):
        client.submit_evidence(grant_id, 0, evidence_hash, "ipfs://bafy-evidence-0", ngo)


def test_approve_quorum_releases_milestone(client, grant_id, submitted, attestors, ngo, usdc):
    balance_before = usdc.balanceOf(ngo)

    first = client.approve(grant_id, 0, submitted, attestors[0])
    second = client.approve(grant_id, 0, submitted, attestors[1])

    assert client.escrow.MilestoneReleased.from_receipt(first) == []
    assert len(client.escrow.MilestoneReleased.from_receipt(second)) == 1
    milestone = client.grant(grant_id).milestones[0]
    assert milestone.status == MilestoneStatus.Released
    assert milestone.approvals == (attestors[0].address, attestors[1].address)
    assert milestone.approval_count == 2
    assert milestone.settlement_tx == second.txn_hash
    assert usdc.balanceOf(ngo) == balance_before + 1_000 * USDC_UNIT


def test_approve_rejects_non_attestor(client, grant_id, submitted, stranger):
    nonce = stranger.nonce

    with pytest.raises(PreconditionError, match=f"not an attestor of grant {grant_id}") as raised:
        client.approve(grant_id, 0, submitted, stranger)

    assert raised.value.field == "sender"
    assert raised.value.value == stranger.address
    assert stranger.nonce == nonce


def test_approve_rejects_other_evidence_hash(client, grant_id, submitted, attestors):
    other = b"\x22" * 32

    with pytest.raises(
        PreconditionError, match=f"awaits attestation of evidence 0x{submitted.hex()}"
    ) as raised:
        client.approve(grant_id, 0, other, attestors[0])

    assert raised.value.value == "0x" + other.hex()


def test_approve_rejects_second_vote(client, grant_id, submitted, attestors):
    client.approve(grant_id, 0, submitted, attestors[0])

    with pytest.raises(PreconditionError, match="already approved or rejected"):
        client.approve(grant_id, 0, submitted, attestors[0])


def test_approve_rejects_milestone_without_evidence(client, grant_id, attestors, evidence_hash):
    with pytest.raises(PreconditionError, match="has no evidence awaiting attestation"):
        client.approve(grant_id, 0, evidence_hash, attestors[0])


def test_reject_blocks_evidence_hash(client, grant_id, submitted, attestors, ngo):
    client.reject(grant_id, 0, submitted, REASON, attestors[0])
    receipt = client.reject(grant_id, 0, submitted, REASON, attestors[1])

    assert len(client.escrow.EvidenceRejected.from_receipt(receipt)) == 1
    milestone = client.grant(grant_id).milestones[0]
    assert milestone.status == MilestoneStatus.AwaitingEvidence
    assert milestone.evidence_hash is None
    with pytest.raises(PreconditionError, match="the attestors rejected this evidence"):
        client.submit_evidence(grant_id, 0, submitted, "ipfs://bafy-evidence-0", ngo)


def test_reclaim_rejects_before_deadline(client, grant_id, stranger):
    with pytest.raises(PreconditionError, match=f"milestone 0 of grant {grant_id} is open until"):
        client.reclaim(grant_id, 0, stranger)


def test_reclaim_after_deadline_pays_funder(client, grant_id, grant_maker, stranger, usdc, chain):
    balance_before = usdc.balanceOf(grant_maker)
    chain.pending_timestamp += 30 * DAY

    receipt = client.reclaim(grant_id, 0, stranger)

    milestone = client.grant(grant_id).milestones[0]
    assert milestone.status == MilestoneStatus.Reclaimed
    assert milestone.settlement_tx == receipt.txn_hash
    assert usdc.balanceOf(grant_maker) == balance_before + 1_000 * USDC_UNIT
    with pytest.raises(PreconditionError, match="is already Reclaimed"):
        client.reclaim(grant_id, 0, stranger)


def test_refund_rejects_while_funding(client, resolve, grant_maker, donor):
    grant_id, _ = client.create_grant(resolve(), grant_maker)
    client.fund(grant_id, USDC_UNIT, donor)

    with pytest.raises(
        PreconditionError, match="the grant is Funding, so its funders cannot take their money back"
    ):
        client.refund(grant_id, donor.address, donor)


def test_refund_returns_contribution(client, resolve, grant_maker, donor, stranger, usdc, chain):
    grant_id, _ = client.create_grant(resolve(), grant_maker)
    client.fund(grant_id, 250 * USDC_UNIT, donor)
    balance_before = usdc.balanceOf(donor)
    chain.pending_timestamp += 7 * DAY

    client.refund(grant_id, donor.address, stranger)

    assert usdc.balanceOf(donor) == balance_before + 250 * USDC_UNIT
    grant = client.grant(grant_id)
    assert grant.status == GrantStatus.FundingFailed
    assert [(funder.address, funder.refunded) for funder in grant.funders] == [
        (donor.address, True)
    ]
    with pytest.raises(PreconditionError, match=f"has nothing to take back from grant {grant_id}"):
        client.refund(grant_id, donor.address, stranger)


def test_withdraw_rejects_without_credit(client, ngo):
    with pytest.raises(PreconditionError, match=f"{ngo.address} has no ETH credit in the escrow"):
        client.withdraw(ETH_ADDRESS, ngo.address, ngo)


def test_withdraw_sends_blocked_credit(
    client, resolve, grant_maker, ngo, attestors, blocklist_token, deployer, evidence_hash, stranger
):
    milestones = [{"title": "Hotline staffed", "amount": "1,000 RUSD", "deadline": "30d"}]
    grant_id, _ = client.create_grant(
        resolve(token=blocklist_token.address, milestones=milestones), grant_maker, fund=True
    )
    client.submit_evidence(grant_id, 0, evidence_hash, "ipfs://bafy-evidence-0", ngo)
    blocklist_token.setBlocked(ngo, True, sender=deployer)
    client.approve(grant_id, 0, evidence_hash, attestors[0])
    client.approve(grant_id, 0, evidence_hash, attestors[1])
    assert client.escrow.creditOf(ngo, blocklist_token) == 1_000 * USDC_UNIT

    client.withdraw(blocklist_token.address, stranger.address, ngo)

    assert client.escrow.creditOf(ngo, blocklist_token) == 0
    assert blocklist_token.balanceOf(stranger) == 1_000 * USDC_UNIT


def test_donate_records_donor_commitment(client, ngo, registrar, donor, usdc):
    project_id, _ = client.register_project(
        ngo.address, ngo.address, b"\x33" * 32, "ipfs://bafy-project", ngo
    )
    client.verify_project(project_id, registrar)
    reference = donor_commitment(SALT, "Jane Doe")
    balance_before = usdc.balanceOf(ngo)

    donation_id, receipt = client.donate(project_id, usdc.address, 50 * USDC_UNIT, reference, donor)

    assert donation_id == 1
    event = client.registry.ProjectDonation.from_receipt(receipt)[0]
    assert bytes(event.donorRef) == keccak(SALT + b"Jane Doe")
    assert usdc.balanceOf(ngo) == balance_before + 50 * USDC_UNIT


def test_register_project_rejects_email(client, ngo):
    with pytest.raises(PrivacyError):
        client.register_project(
            ngo.address, ngo.address, b"\x33" * 32, "mailto:jane.doe@example.org", ngo
        )

    assert client.registry.projectCount() == 0


def test_verify_project_rejects_non_registrar(client, ngo, stranger, registrar):
    project_id, _ = client.register_project(
        ngo.address, ngo.address, b"\x33" * 32, "ipfs://bafy-project", ngo
    )

    with pytest.raises(PreconditionError, match="not the registrar") as raised:
        client.verify_project(project_id, stranger)

    assert raised.value.fix == f"Send from the registrar, {registrar.address}."


def test_donate_rejects_pending_project(client, ngo, donor):
    project_id, _ = client.register_project(
        ngo.address, ngo.address, b"\x33" * 32, "ipfs://bafy-project", ngo
    )

    with pytest.raises(PreconditionError, match="the project is Pending, so it takes no donations"):
        client.donate(project_id, ETH_ADDRESS, 10**15, b"\x00" * 32, donor)


def test_donate_to_grant_makes_donor_a_funder(client, resolve, grant_maker, donor):
    grant_id, _ = client.create_grant(resolve(), grant_maker)

    donation_id, _ = client.donate_to_grant(
        grant_id, 100 * USDC_UNIT, donor_commitment(SALT, "gift"), donor
    )

    assert donation_id == 1
    assert [(funder.address, funder.contribution) for funder in client.grant(grant_id).funders] == [
        (donor.address, 100 * USDC_UNIT)
    ]


def test_donor_commitment_rejects_short_salt():
    with pytest.raises(SpecError, match="shorter than 16 bytes"):
        donor_commitment(b"\x01" * 15, "Jane Doe")


def test_token_info_reads_symbol_and_decimals(client, usdc):
    assert client.token_info("usdc") == TokenInfo(usdc.address, "USDC", 6)
    assert client.token_info(usdc.address.lower()) == TokenInfo(usdc.address, "USDC", 6)
    assert client.token_info("ETH") == ETH


def test_token_info_rejects_unknown_symbol(client):
    with pytest.raises(SpecError, match="Use one of ETH, USDC, or the token's address"):
        client.token_info("DAI")


def test_resolve_account_suggests_close_alias():
    with pytest.raises(SpecError, match=r"Did you mean 'TEST::3'") as raised:
        resolve_account("TEST:3", "attestors[0]")

    assert raised.value.field == "attestors[0]"
    assert raised.value.problem == "no account has this alias"


def test_resolve_account_returns_test_account(accounts):
    assert resolve_account("TEST::4", "attestors[1]") == accounts[4].address
    assert resolve_account(accounts[4].address.lower(), "attestors[1]") == accounts[4].address


def test_deploy_records_contracts(deployer, registrar, chain):
    deployment = FundTrail.deploy(
        deployer,
        registrar=registrar.address,
        network="ethereum:local:test",
        tokens={"USDC": "0x" + "ab" * 20},
    )

    assert deployment.chain_id == chain.chain_id
    assert deployment.tokens == {"USDC": "0x" + "ab" * 20}
    escrow_record = deployment.contracts[ESCROW]
    receipt = chain.get_receipt(escrow_record.tx_hash)
    assert (receipt.contract_address, receipt.block_number) == (
        escrow_record.address,
        escrow_record.block,
    )
    client = FundTrail.from_deployment(deployment)
    assert client.registry.escrow() == escrow_record.address
    assert client.registry.owner() == registrar.address
    assert client.start_block == escrow_record.block


def test_from_deployment_rejects_other_chain(escrow, registry, chain):
    records = {
        name: ContractRecord(contract.address, 1, "0x" + "00" * 32)
        for name, contract in ((ESCROW, escrow), (REGISTRY, registry))
    }
    deployment = Deployment("ethereum:sepolia:node", chain.chain_id + 1, records, {})

    with pytest.raises(DeploymentError, match=f"connected chain is {chain.chain_id}"):
        FundTrail.from_deployment(deployment)
