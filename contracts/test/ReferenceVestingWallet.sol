// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {VestingWallet} from "@openzeppelin/contracts/finance/VestingWallet.sol";

/// @notice OpenZeppelin's VestingWallet with nothing added. It lives in this project only so
/// that the compiler emits a contract type the gas benchmark can deploy as a reference.
contract ReferenceVestingWallet is VestingWallet {
    constructor(address beneficiary, uint64 startTimestamp, uint64 durationSeconds)
        VestingWallet(beneficiary, startTimestamp, durationSeconds)
    {}
}
