// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IMilestoneEscrow} from "../interfaces/IMilestoneEscrow.sol";

/// @notice Test party that rejects every ETH transfer, and can act as a grant recipient or
/// funder through the calls below.
contract EthRejecter {
    error EthRejected();

    receive() external payable {
        revert EthRejected();
    }

    function fund(IMilestoneEscrow escrow, uint256 grantId, uint256 amount) external payable {
        escrow.fund{value: msg.value}(grantId, amount);
    }

    function submitEvidence(IMilestoneEscrow escrow, uint256 grantId, uint256 milestoneIndex, bytes32 evidenceHash)
        external
    {
        escrow.submitEvidence(grantId, milestoneIndex, evidenceHash, "");
    }

    function withdraw(IMilestoneEscrow escrow, address token, address to) external {
        escrow.withdraw(token, to);
    }
}
