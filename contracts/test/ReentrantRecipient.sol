// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IMilestoneEscrow} from "../interfaces/IMilestoneEscrow.sol";

/// @notice Test grant recipient that, on receiving ETH, tries to re-enter the escrow to take a
/// second payout. It records whether the re-entry succeeded and the revert data it got.
contract ReentrantRecipient {
    IMilestoneEscrow public immutable escrow;
    uint256 public grantId;
    uint256 public milestoneIndex;
    bool public reentered;
    bytes public reentryError;

    constructor(IMilestoneEscrow escrow_) {
        escrow = escrow_;
    }

    function setTarget(uint256 grantId_, uint256 milestoneIndex_) external {
        grantId = grantId_;
        milestoneIndex = milestoneIndex_;
    }

    function submitEvidence(uint256 grantId_, uint256 milestoneIndex_, bytes32 evidenceHash) external {
        escrow.submitEvidence(grantId_, milestoneIndex_, evidenceHash, "");
    }

    receive() external payable {
        // Try to reclaim the same milestone during the payout.
        try escrow.reclaim(grantId, milestoneIndex) {
            reentered = true;
        } catch (bytes memory reason) {
            reentryError = reason;
        }
    }
}
