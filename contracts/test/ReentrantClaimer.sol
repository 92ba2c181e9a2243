// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketCaller} from "./MarketCaller.sol";

/// @title ReentrantClaimer (test only)
/// @notice A contract account that can play any market role (owner, trainer) by forwarding
/// calls, and that, when paid, either calls back into the market (mode Reenter) or refuses
/// the payment (mode Reject). Tests use it to show that the reentrancy guard holds and that
/// a refused payment reverts the whole claim or refund.
contract ReentrantClaimer is MarketCaller {
    enum Mode {
        Accept,
        Reenter,
        Reject
    }

    error PaymentRefused();

    Mode public mode;
    bytes public reentryCall;
    uint256 public reentryAttempts;
    bool public reentrySucceeded;
    bytes public lastReentryError;
    uint256 public received;

    constructor(address market_) MarketCaller(market_) {}

    /// @notice Choose how the next payment is received and which call re-enters.
    function setMode(Mode mode_, bytes calldata reentryCall_) external {
        mode = mode_;
        reentryCall = reentryCall_;
        reentryAttempts = 0;
    }

    receive() external payable {
        if (mode == Mode.Reject) revert PaymentRefused();
        received += msg.value;
        if (mode == Mode.Reenter && reentryAttempts == 0) {
            reentryAttempts += 1;
            (bool ok, bytes memory err) = market.call(reentryCall);
            reentrySucceeded = ok;
            lastReentryError = err;
        }
    }
}
