// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title MarketCaller (test only)
/// @notice A contract account that plays any market role (owner, trainer) by forwarding
/// calls: the base of the test contracts that misbehave when the market pays them.
abstract contract MarketCaller {
    address public immutable market;

    constructor(address market_) {
        market = market_;
    }

    /// @notice Call the market as this contract (value forwarded); reverts bubble up as-is.
    function execute(bytes calldata data) external payable returns (bytes memory result) {
        bool ok;
        (ok, result) = market.call{value: msg.value}(data);
        if (!ok) {
            assembly {
                revert(add(result, 32), mload(result))
            }
        }
    }
}
