// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice Test helper that forces ETH into an address through SELFDESTRUCT, which runs no
/// code at the receiver and so bypasses any receive function.
contract ForceEtherSender {
    constructor(address payable target) payable {
        selfdestruct(target);
    }
}
