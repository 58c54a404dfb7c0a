"""DonationRegistry: project registration, review by the registrar, project admin changes and
the Ownable2Step handover of the registrar role."""

import pytest
from assertions import (
    METADATA_HASH,
    METADATA_URI,
    ZERO_ADDRESS,
    ProjectStatus,
    assert_view_reverts,
    expected_event,
    register_project,
    reverts,
)

NEW_METADATA_HASH = b"\x6e" * 32
NEW_METADATA_URI = "ipfs://bafy-project-v2"


@pytest.fixture
def project_id(registry, project_admin, payout, stranger):
    """A Pending project registered by a stranger on behalf of the NGO."""
    return register_project(registry, project_admin, payout, sender=stranger)


@pytest.fixture
def verified_project_id(registry, registrar, project_id):
    registry.verifyProject(project_id, sender=registrar)
    return project_id


def assert_project(registry, project_id, admin, payout, status, metadata_hash, metadata_uri):
    project = registry.getProject(project_id)
    assert project.admin == admin.address
    assert project.payout == getattr(payout, "address", payout)
    assert project.status == status
    assert project.metadataHash == metadata_hash
    assert project.metadataUri == metadata_uri


# Registration.


def test_registry_starts_empty(registry, escrow, registrar):
    assert registry.escrow() == escrow.address
    assert registry.owner() == registrar.address
    assert registry.pendingOwner() == ZERO_ADDRESS
    assert registry.projectCount() == 0
    assert registry.donationCount() == 0
    assert registry.VERSION() == "0.1.0"


def test_constructor_rejects_zero_escrow(project, registry, deployer, registrar):
    with reverts(registry.ZeroEscrow):
        deployer.deploy(project.DonationRegistry, ZERO_ADDRESS, registrar)


def test_register_project_stores_pending_project(registry, project_admin, payout, stranger):
    args = (project_admin, payout, METADATA_HASH, METADATA_URI)
    assert registry.registerProject.call(*args, sender=stranger) == 1

    receipt = registry.registerProject(*args, sender=stranger)

    assert receipt.events == [
        expected_event(
            registry.ProjectRegistered,
            projectId=1,
            admin=project_admin,
            payout=payout,
            metadataHash=METADATA_HASH,
            metadataUri=METADATA_URI,
        )
    ]
    assert registry.projectCount() == 1
    assert_project(registry, 1, project_admin, payout, ProjectStatus.PENDING, METADATA_HASH, METADATA_URI)


def test_register_project_assigns_increasing_ids(registry, project_admin, payout, stranger):
    first = register_project(registry, project_admin, payout, sender=stranger)
    second = register_project(
        registry, stranger, stranger, sender=stranger, metadata_hash=NEW_METADATA_HASH, metadata_uri=""
    )

    assert (first, second) == (1, 2)
    assert registry.projectCount() == 2
    assert_project(registry, 1, project_admin, payout, ProjectStatus.PENDING, METADATA_HASH, METADATA_URI)
    assert_project(registry, 2, stranger, stranger, ProjectStatus.PENDING, NEW_METADATA_HASH, "")


def test_register_project_rejects_zero_admin(registry, payout, stranger):
    with reverts(registry.ZeroAdmin):
        registry.registerProject(ZERO_ADDRESS, payout, METADATA_HASH, METADATA_URI, sender=stranger)

    assert registry.projectCount() == 0


def test_register_project_rejects_zero_payout(registry, project_admin, stranger):
    with reverts(registry.ZeroPayout):
        registry.registerProject(project_admin, ZERO_ADDRESS, METADATA_HASH, METADATA_URI, sender=stranger)

    assert registry.projectCount() == 0


@pytest.mark.parametrize("unknown_id", [0, 1])
def test_get_project_rejects_unknown_id(registry, unknown_id):
    assert_view_reverts(registry.ProjectNotFound, registry.getProject, unknown_id, projectId=unknown_id)


# Review by the registrar.


@pytest.mark.parametrize(
    ("earlier_changes", "method", "previous_status", "new_status"),
    [
        pytest.param([], "verifyProject", ProjectStatus.PENDING, ProjectStatus.VERIFIED, id="verify-pending"),
        pytest.param([], "suspendProject", ProjectStatus.PENDING, ProjectStatus.SUSPENDED, id="suspend-pending"),
        pytest.param(
            ["verifyProject"], "suspendProject", ProjectStatus.VERIFIED, ProjectStatus.SUSPENDED, id="suspend-verified"
        ),
        pytest.param(
            ["verifyProject", "suspendProject"],
            "verifyProject",
            ProjectStatus.SUSPENDED,
            ProjectStatus.VERIFIED,
            id="verify-suspended",
        ),
    ],
)
def test_registrar_changes_project_status(
    registry, registrar, project_id, project_admin, payout, earlier_changes, method, previous_status, new_status
):
    for earlier_method in earlier_changes:
        getattr(registry, earlier_method)(project_id, sender=registrar)

    receipt = getattr(registry, method)(project_id, sender=registrar)

    assert receipt.events == [
        expected_event(
            registry.ProjectStatusChanged,
            projectId=project_id,
            previousStatus=previous_status,
            newStatus=new_status,
        )
    ]
    assert_project(registry, project_id, project_admin, payout, new_status, METADATA_HASH, METADATA_URI)


@pytest.mark.parametrize("method", ["verifyProject", "suspendProject"])
@pytest.mark.parametrize("caller", ["stranger", "project_admin", "deployer"])
def test_status_change_rejects_non_registrar(registry, project_id, method, caller, request):
    account = request.getfixturevalue(caller)

    with reverts(registry.OwnableUnauthorizedAccount, account=account):
        getattr(registry, method)(project_id, sender=account)

    assert registry.getProject(project_id).status == ProjectStatus.PENDING


@pytest.mark.usefixtures("project_id")
@pytest.mark.parametrize("method", ["verifyProject", "suspendProject"])
@pytest.mark.parametrize("unknown_id", [0, 2])
def test_status_change_rejects_unknown_project(registry, registrar, method, unknown_id):
    with reverts(registry.ProjectNotFound, projectId=unknown_id):
        getattr(registry, method)(unknown_id, sender=registrar)


def test_verify_project_rejects_verified_project(registry, registrar, verified_project_id):
    with reverts(
        registry.ProjectStatusUnchanged, projectId=verified_project_id, status=ProjectStatus.VERIFIED
    ):
        registry.verifyProject(verified_project_id, sender=registrar)


def test_suspend_project_rejects_suspended_project(registry, registrar, project_id):
    registry.suspendProject(project_id, sender=registrar)

    with reverts(registry.ProjectStatusUnchanged, projectId=project_id, status=ProjectStatus.SUSPENDED):
        registry.suspendProject(project_id, sender=registrar)


# Changes by the project admin.


def test_set_project_payout_changes_payout(registry, project_admin, payout, verified_project_id, stranger):
    receipt = registry.setProjectPayout(verified_project_id, stranger, sender=project_admin)

    assert receipt.events == [
        expected_event(
            registry.ProjectPayoutChanged,
            projectId=verified_project_id,
            previousPayout=payout,
            newPayout=stranger,
        )
    ]
    # The payout change keeps the review status: the registrar verified the project, not the wallet.
    assert_project(
        registry, verified_project_id, project_admin, stranger, ProjectStatus.VERIFIED, METADATA_HASH, METADATA_URI
    )


@pytest.mark.parametrize("caller", ["stranger", "registrar", "payout"])
def test_set_project_payout_rejects_non_admin(registry, project_id, payout, caller, request):
    account = request.getfixturevalue(caller)

    with reverts(registry.NotProjectAdmin, projectId=project_id, caller=account):
        registry.setProjectPayout(project_id, account, sender=account)

    assert registry.getProject(project_id).payout == payout.address


def test_set_project_payout_rejects_zero_payout(registry, project_admin, payout, project_id):
    with reverts(registry.ZeroPayout):
        registry.setProjectPayout(project_id, ZERO_ADDRESS, sender=project_admin)

    assert registry.getProject(project_id).payout == payout.address


def test_set_project_payout_rejects_unknown_project(registry, project_admin, payout):
    with reverts(registry.ProjectNotFound, projectId=1):
        registry.setProjectPayout(1, payout, sender=project_admin)


def test_set_project_metadata_changes_metadata(registry, project_admin, payout, project_id):
    receipt = registry.setProjectMetadata(project_id, NEW_METADATA_HASH, NEW_METADATA_URI, sender=project_admin)

    assert receipt.events == [
        expected_event(
            registry.ProjectMetadataChanged,
            projectId=project_id,
            metadataHash=NEW_METADATA_HASH,
            metadataUri=NEW_METADATA_URI,
        )
    ]
    assert_project(
        registry, project_id, project_admin, payout, ProjectStatus.PENDING, NEW_METADATA_HASH, NEW_METADATA_URI
    )


@pytest.mark.parametrize("caller", ["stranger", "registrar", "payout"])
def test_set_project_metadata_rejects_non_admin(registry, project_id, caller, request):
    account = request.getfixturevalue(caller)

    with reverts(registry.NotProjectAdmin, projectId=project_id, caller=account):
        registry.setProjectMetadata(project_id, NEW_METADATA_HASH, NEW_METADATA_URI, sender=account)

    assert registry.getProject(project_id).metadataHash == METADATA_HASH
    assert registry.getProject(project_id).metadataUri == METADATA_URI


def test_set_project_metadata_rejects_unknown_project(registry, project_admin):
    with reverts(registry.ProjectNotFound, projectId=1):
        registry.setProjectMetadata(1, NEW_METADATA_HASH, NEW_METADATA_URI, sender=project_admin)


# Handover of the registrar role (OpenZeppelin Ownable2Step).


def test_transfer_ownership_only_nominates(registry, registrar, stranger, project_id):
    receipt = registry.transferOwnership(stranger, sender=registrar)

    assert receipt.events == [
        expected_event(registry.OwnershipTransferStarted, previousOwner=registrar, newOwner=stranger)
    ]
    assert registry.owner() == registrar.address
    assert registry.pendingOwner() == stranger.address

    # Until the nominee accepts, the old registrar keeps the role and the nominee has none.
    with reverts(registry.OwnableUnauthorizedAccount, account=stranger):
        registry.verifyProject(project_id, sender=stranger)
    registry.verifyProject(project_id, sender=registrar)


def test_accept_ownership_hands_over_registrar_role(registry, registrar, stranger, project_id):
    registry.transferOwnership(stranger, sender=registrar)

    receipt = registry.acceptOwnership(sender=stranger)

    assert receipt.events == [
        expected_event(registry.OwnershipTransferred, previousOwner=registrar, newOwner=stranger)
    ]
    assert registry.owner() == stranger.address
    assert registry.pendingOwner() == ZERO_ADDRESS

    with reverts(registry.OwnableUnauthorizedAccount, account=registrar):
        registry.verifyProject(project_id, sender=registrar)
    registry.verifyProject(project_id, sender=stranger)
    assert registry.getProject(project_id).status == ProjectStatus.VERIFIED


@pytest.mark.parametrize("caller", ["registrar", "donor"])
def test_accept_ownership_rejects_non_nominee(registry, registrar, stranger, caller, request):
    account = request.getfixturevalue(caller)
    registry.transferOwnership(stranger, sender=registrar)

    with reverts(registry.OwnableUnauthorizedAccount, account=account):
        registry.acceptOwnership(sender=account)

    assert registry.owner() == registrar.address
    assert registry.pendingOwner() == stranger.address


def test_accept_ownership_rejects_without_nomination(registry, registrar, stranger):
    with reverts(registry.OwnableUnauthorizedAccount, account=stranger):
        registry.acceptOwnership(sender=stranger)

    assert registry.owner() == registrar.address


def test_transfer_ownership_rejects_non_owner(registry, registrar, stranger):
    with reverts(registry.OwnableUnauthorizedAccount, account=stranger):
        registry.transferOwnership(stranger, sender=stranger)

    assert registry.pendingOwner() == ZERO_ADDRESS
    assert registry.owner() == registrar.address


def test_transfer_ownership_replaces_nominee(registry, registrar, stranger, donor):
    registry.transferOwnership(stranger, sender=registrar)
    registry.transferOwnership(donor, sender=registrar)

    assert registry.pendingOwner() == donor.address
    with reverts(registry.OwnableUnauthorizedAccount, account=stranger):
        registry.acceptOwnership(sender=stranger)

    registry.acceptOwnership(sender=donor)
    assert registry.owner() == donor.address


def test_transfer_ownership_to_zero_cancels_nomination(registry, registrar, stranger):
    registry.transferOwnership(stranger, sender=registrar)

    receipt = registry.transferOwnership(ZERO_ADDRESS, sender=registrar)

    assert receipt.events == [
        expected_event(registry.OwnershipTransferStarted, previousOwner=registrar, newOwner=ZERO_ADDRESS)
    ]
    assert registry.pendingOwner() == ZERO_ADDRESS
    with reverts(registry.OwnableUnauthorizedAccount, account=stranger):
        registry.acceptOwnership(sender=stranger)
    assert registry.owner() == registrar.address


def test_renounce_ownership_rejects_non_owner(registry, registrar, stranger):
    with reverts(registry.OwnableUnauthorizedAccount, account=stranger):
        registry.renounceOwnership(sender=stranger)

    assert registry.owner() == registrar.address


def test_renounce_ownership_ends_review_and_nomination(registry, registrar, stranger, project_id):
    registry.transferOwnership(stranger, sender=registrar)

    receipt = registry.renounceOwnership(sender=registrar)

    assert receipt.events == [
        expected_event(registry.OwnershipTransferred, previousOwner=registrar, newOwner=ZERO_ADDRESS)
    ]
    assert registry.owner() == ZERO_ADDRESS
    assert registry.pendingOwner() == ZERO_ADDRESS
    with reverts(registry.OwnableUnauthorizedAccount, account=stranger):
        registry.acceptOwnership(sender=stranger)
    with reverts(registry.OwnableUnauthorizedAccount, account=registrar):
        registry.verifyProject(project_id, sender=registrar)
