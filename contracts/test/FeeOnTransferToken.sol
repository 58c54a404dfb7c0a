// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice Test token that burns a fee of `feeBasisPoints` from every transfer, as some
/// deflationary tokens do, so the receiver gets less than the amount sent.
contract FeeOnTransferToken is ERC20 {
    uint256 public immutable feeBasisPoints;

    constructor(uint256 feeBasisPoints_) ERC20("Fee Token", "FEE") {
        feeBasisPoints = feeBasisPoints_;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0) || to == address(0)) {
            super._update(from, to, value);
            return;
        }
        uint256 fee = (value * feeBasisPoints) / 10_000;
        super._update(from, address(0), fee);
        super._update(from, to, value - fee);
    }
}
