// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IDonationRegistry
/// @notice Registry of NGO projects that accept donations, and the record of every donation:
/// direct gifts to a verified project, and gifts into a MilestoneEscrow grant.
/// @dev The registrar (the contract owner, in production a consortium Safe) verifies and
/// suspends projects. The registrar never holds or moves donated money: a direct donation goes
/// straight to the project's payout address, and a grant donation goes into the escrow.
interface IDonationRegistry {
    /*//////////////////////////////////////////////////////////////
                                 TYPES
    //////////////////////////////////////////////////////////////*/

    /// @notice Review state of a project. Only Verified projects receive direct donations.
    enum ProjectStatus {
        Pending,
        Verified,
        Suspended
    }

    /// @notice A registered project, as returned by {getProject}.
    struct Project {
        address admin;
        address payout;
        ProjectStatus status;
        bytes32 metadataHash;
        string metadataUri;
    }

    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Emitted when a project is registered. It starts as Pending.
    event ProjectRegistered(
        uint256 indexed projectId, address indexed admin, address indexed payout, bytes32 metadataHash, string metadataUri
    );

    /// @notice Emitted when the registrar changes a project's status.
    event ProjectStatusChanged(uint256 indexed projectId, ProjectStatus previousStatus, ProjectStatus newStatus);

    /// @notice Emitted when the project admin changes the payout address.
    event ProjectPayoutChanged(uint256 indexed projectId, address indexed previousPayout, address indexed newPayout);

    /// @notice Emitted when the project admin changes the metadata.
    event ProjectMetadataChanged(uint256 indexed projectId, bytes32 metadataHash, string metadataUri);

    /// @notice Emitted for a direct donation, already forwarded to `payout`.
    /// @param donorRef A salted commitment the donor may use to prove the gift later; never a name.
    event ProjectDonation(
        uint256 indexed donationId,
        uint256 indexed projectId,
        address indexed donor,
        address token,
        uint256 amount,
        address payout,
        bytes32 donorRef
    );

    /// @notice Emitted for a donation into a MilestoneEscrow grant; the donor is the grant's
    /// co-funder.
    event GrantDonation(
        uint256 indexed donationId, uint256 indexed grantId, address indexed donor, address token, uint256 amount, bytes32 donorRef
    );

    /*//////////////////////////////////////////////////////////////
                                 ERRORS
    //////////////////////////////////////////////////////////////*/

    /// @notice The escrow given to the constructor is the zero address.
    error ZeroEscrow();
    /// @notice No project has this id.
    error ProjectNotFound(uint256 projectId);
    /// @notice The project admin is the zero address.
    error ZeroAdmin();
    /// @notice The payout address is the zero address.
    error ZeroPayout();
    /// @notice Only the project's admin may do this.
    error NotProjectAdmin(uint256 projectId, address caller);
    /// @notice The project already has the requested status.
    error ProjectStatusUnchanged(uint256 projectId, ProjectStatus status);
    /// @notice The project is not verified, or is suspended, so it takes no donations.
    error ProjectNotVerified(uint256 projectId, ProjectStatus status);
    /// @notice A donation of zero.
    error ZeroDonation();
    /// @notice For an ETH donation, the ETH sent differs from the amount stated.
    error EthAmountMismatch(uint256 sent, uint256 amount);
    /// @notice ETH was sent with an ERC-20 donation.
    error UnexpectedEth(uint256 sent);
    /// @notice The receiver got a different amount of tokens than stated, as with a
    /// fee-on-transfer token.
    error TokenAmountMismatch(address token, uint256 expected, uint256 received);

    /*//////////////////////////////////////////////////////////////
                                PROJECTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Registers a project as Pending. Anyone may register; the registrar then reviews it.
    /// @param metadataHash Hash of the project's public description.
    /// @param metadataUri Where the description can be read. It must not contain personal data.
    function registerProject(address admin, address payout, bytes32 metadataHash, string calldata metadataUri)
        external
        returns (uint256 projectId);

    /// @notice Marks a project Verified. Only the registrar may call it.
    function verifyProject(uint256 projectId) external;

    /// @notice Marks a project Suspended, which stops its direct donations. Only the registrar
    /// may call it; {verifyProject} lifts the suspension.
    function suspendProject(uint256 projectId) external;

    /// @notice Changes the project's payout address. Only the project admin may call it.
    function setProjectPayout(uint256 projectId, address payout) external;

    /// @notice Changes the project's metadata. Only the project admin may call it.
    function setProjectMetadata(uint256 projectId, bytes32 metadataHash, string calldata metadataUri) external;

    /*//////////////////////////////////////////////////////////////
                               DONATIONS
    //////////////////////////////////////////////////////////////*/

    /// @notice Gives `amount` of `token` (`address(0)` for ETH) to a verified project. The
    /// money goes to the project's payout address in the same transaction; if that transfer
    /// fails, the whole donation reverts and the donor keeps the money.
    /// @dev Emits {ProjectDonation}. For ERC-20 the donor must have approved this registry.
    function donate(uint256 projectId, address token, uint256 amount, bytes32 donorRef)
        external
        payable
        returns (uint256 donationId);

    /// @notice Gives `amount` into a MilestoneEscrow grant, recording the caller as a co-funder
    /// so that refunds and reclaimed shares go back to the caller.
    /// @dev Emits {GrantDonation}. The grant's token is used; for ERC-20 the donor must have
    /// approved this registry.
    function donateToGrant(uint256 grantId, uint256 amount, bytes32 donorRef)
        external
        payable
        returns (uint256 donationId);

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @notice The MilestoneEscrow that grant donations go into.
    function escrow() external view returns (address);

    /// @notice Number of projects registered so far; the latest project's id.
    function projectCount() external view returns (uint256);

    /// @notice Number of donations recorded so far; the latest donation's id.
    function donationCount() external view returns (uint256);

    /// @notice The project's admin, payout address, status and metadata.
    function getProject(uint256 projectId) external view returns (Project memory);

    /// @notice Sum of the project's direct donations in `token`.
    function totalDonated(uint256 projectId, address token) external view returns (uint256);
}
