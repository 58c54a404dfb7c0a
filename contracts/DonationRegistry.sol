// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IDonationRegistry} from "./interfaces/IDonationRegistry.sol";
import {IMilestoneEscrow} from "./interfaces/IMilestoneEscrow.sol";

/// @title DonationRegistry
/// @notice Registers NGO projects, lets a registrar verify them, and records every donation.
/// @dev Note:
/// - The registrar (the Ownable2Step owner) decides which projects may receive donations, but
///   can never move donated money: the registry holds no funds between transactions.
/// - Donor identities never go on-chain. A donation carries only the donor's address and an
///   optional salted commitment (`donorRef`) that the donor can later open off-chain.
/// - NOTE: Project totals count direct donations only. Grant donations are counted by the
///   escrow as the donor's contribution to the grant.
contract DonationRegistry is IDonationRegistry, Ownable2Step, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice Version of this contract's code.
    string public constant VERSION = "0.1.0";

    /// @inheritdoc IDonationRegistry
    address public immutable escrow;

    uint256 private _projectCount;
    uint256 private _donationCount;
    mapping(uint256 projectId => Project) private _projects;
    mapping(uint256 projectId => mapping(address token => uint256)) private _totalDonated;

    /// @param escrow_ The MilestoneEscrow that grant donations go into.
    /// @param registrar The first registrar, for example a consortium Safe.
    constructor(address escrow_, address registrar) Ownable(registrar) {
        if (escrow_ == address(0)) {
            revert ZeroEscrow();
        }
        escrow = escrow_;
    }

    /*//////////////////////////////////////////////////////////////
                                PROJECTS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IDonationRegistry
    function registerProject(address admin, address payout, bytes32 metadataHash, string calldata metadataUri)
        external
        returns (uint256 projectId)
    {
        if (admin == address(0)) {
            revert ZeroAdmin();
        }
        if (payout == address(0)) {
            revert ZeroPayout();
        }

        projectId = ++_projectCount;

        _projects[projectId] = Project({
            admin: admin,
            payout: payout,
            status: ProjectStatus.Pending,
            metadataHash: metadataHash,
            metadataUri: metadataUri
        });
        emit ProjectRegistered(projectId, admin, payout, metadataHash, metadataUri);
    }

    /// @inheritdoc IDonationRegistry
    function verifyProject(uint256 projectId) external onlyOwner {
        _setStatus(projectId, ProjectStatus.Verified);
    }

    /// @inheritdoc IDonationRegistry
    function suspendProject(uint256 projectId) external onlyOwner {
        _setStatus(projectId, ProjectStatus.Suspended);
    }

    /// @inheritdoc IDonationRegistry
    function setProjectPayout(uint256 projectId, address payout) external {
        Project storage project = _getProjectAsAdmin(projectId);
        if (payout == address(0)) {
            revert ZeroPayout();
        }

        address previousPayout = project.payout;
        project.payout = payout;
        emit ProjectPayoutChanged(projectId, previousPayout, payout);
    }

    /// @inheritdoc IDonationRegistry
    function setProjectMetadata(uint256 projectId, bytes32 metadataHash, string calldata metadataUri) external {
        Project storage project = _getProjectAsAdmin(projectId);

        project.metadataHash = metadataHash;
        project.metadataUri = metadataUri;
        emit ProjectMetadataChanged(projectId, metadataHash, metadataUri);
    }

    /*//////////////////////////////////////////////////////////////
                               DONATIONS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IDonationRegistry
    function donate(uint256 projectId, address token, uint256 amount, bytes32 donorRef)
        external
        payable
        nonReentrant
        returns (uint256 donationId)
    {
        // Checks.
        Project storage project = _getProject(projectId);
        if (project.status != ProjectStatus.Verified) {
            revert ProjectNotVerified(projectId, project.status);
        }
        _requireAmount(token, amount);

        // Effects.
        address payout = project.payout;
        donationId = ++_donationCount;
        _totalDonated[projectId][token] += amount;
        emit ProjectDonation(donationId, projectId, msg.sender, token, amount, payout, donorRef);

        // Interactions: the money goes straight to the payout address. Unlike escrow payouts, a
        // failure here reverts, because the donor is present and keeps the money.
        if (token == address(0)) {
            Address.sendValue(payable(payout), amount);
        } else {
            uint256 balanceBefore = IERC20(token).balanceOf(payout);
            IERC20(token).safeTransferFrom(msg.sender, payout, amount);
            uint256 received = IERC20(token).balanceOf(payout) - balanceBefore;
            if (received != amount) {
                revert TokenAmountMismatch(token, amount, received);
            }
        }
    }

    /// @inheritdoc IDonationRegistry
    function donateToGrant(uint256 grantId, uint256 amount, bytes32 donorRef)
        external
        payable
        nonReentrant
        returns (uint256 donationId)
    {
        // Checks: the escrow checks the grant itself; this reads the grant's token.
        address token = IMilestoneEscrow(escrow).getGrant(grantId).token;
        _requireAmount(token, amount);

        // Effects.
        donationId = ++_donationCount;
        emit GrantDonation(donationId, grantId, msg.sender, token, amount, donorRef);

        // Interactions: the registry passes the money through to the escrow in this transaction
        // and records the donor, not itself, as the funder.
        if (token == address(0)) {
            IMilestoneEscrow(escrow).fundFor{value: amount}(grantId, msg.sender, amount);
        } else {
            uint256 balanceBefore = IERC20(token).balanceOf(address(this));
            IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
            uint256 received = IERC20(token).balanceOf(address(this)) - balanceBefore;
            if (received != amount) {
                revert TokenAmountMismatch(token, amount, received);
            }
            IERC20(token).forceApprove(escrow, amount);
            IMilestoneEscrow(escrow).fundFor(grantId, msg.sender, amount);
        }
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IDonationRegistry
    function projectCount() external view returns (uint256) {
        return _projectCount;
    }

    /// @inheritdoc IDonationRegistry
    function donationCount() external view returns (uint256) {
        return _donationCount;
    }

    /// @inheritdoc IDonationRegistry
    function getProject(uint256 projectId) external view returns (Project memory) {
        return _getProject(projectId);
    }

    /// @inheritdoc IDonationRegistry
    function totalDonated(uint256 projectId, address token) external view returns (uint256) {
        return _totalDonated[projectId][token];
    }

    /*//////////////////////////////////////////////////////////////
                                PRIVATE
    //////////////////////////////////////////////////////////////*/

    function _getProject(uint256 projectId) private view returns (Project storage project) {
        project = _projects[projectId];
        if (project.admin == address(0)) {
            revert ProjectNotFound(projectId);
        }
    }

    function _getProjectAsAdmin(uint256 projectId) private view returns (Project storage project) {
        project = _getProject(projectId);
        if (msg.sender != project.admin) {
            revert NotProjectAdmin(projectId, msg.sender);
        }
    }

    function _setStatus(uint256 projectId, ProjectStatus newStatus) private {
        Project storage project = _getProject(projectId);
        ProjectStatus previousStatus = project.status;
        if (previousStatus == newStatus) {
            revert ProjectStatusUnchanged(projectId, newStatus);
        }

        project.status = newStatus;
        emit ProjectStatusChanged(projectId, previousStatus, newStatus);
    }

    /// @dev Checks the amount and that ETH is sent exactly with ETH donations and never with
    /// token donations.
    function _requireAmount(address token, uint256 amount) private view {
        if (amount == 0) {
            revert ZeroDonation();
        }
        if (token == address(0)) {
            if (msg.value != amount) {
                revert EthAmountMismatch(msg.value, amount);
            }
        } else if (msg.value != 0) {
            revert UnexpectedEth(msg.value);
        }
    }
}
