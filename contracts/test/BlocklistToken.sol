// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Pausable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Pausable.sol";

/// @notice Test token with the two controls of regulated stablecoins such as USDC: a
/// blocklist that stops transfers to and from listed addresses, and a pause that stops all
/// transfers. Anyone may change them, because only tests use this token.
contract BlocklistToken is ERC20Pausable {
    error AccountBlocked(address account);

    mapping(address account => bool) public isBlocked;

    constructor() ERC20("Regulated Dollar", "RUSD") {}

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function setBlocked(address account, bool blocked) external {
        isBlocked[account] = blocked;
    }

    function pause() external {
        _pause();
    }

    function unpause() external {
        _unpause();
    }

    function _update(address from, address to, uint256 value) internal override {
        if (isBlocked[from]) {
            revert AccountBlocked(from);
        }
        if (isBlocked[to]) {
            revert AccountBlocked(to);
        }
        super._update(from, to, value);
    }
}
