// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketCaller} from "./MarketCaller.sol";

/// @title HostileReceiver (test only)
/// @notice A contract account that plays any market role (owner, trainer) by forwarding
/// calls, and that misbehaves when paid: it reverts, burns all the gas it is given, or
/// reverts with a huge return payload (a "return bomb" that makes the payer copy it).
/// Tests use it to show that such a receiver only ever hurts its own payment, never the
/// escrow or anyone else's claim.
contract HostileReceiver is MarketCaller {
    enum Mode {
        Accept,
        Revert,
        BurnAllGas,
        ReturnBomb
    }

    Mode public mode;
    uint256 public received;

    constructor(address market_) MarketCaller(market_) {}

    /// @notice Choose how the next payments are received.
    function setMode(Mode mode_) external {
        mode = mode_;
    }

    receive() external payable {
        Mode m = mode;
        if (m == Mode.Revert) revert("no payments, thanks");
        if (m == Mode.BurnAllGas) {
            // spin until out of gas: the call fails having used every unit forwarded to it
            uint256 x;
            while (true) {
                x = uint256(keccak256(abi.encode(x)));
            }
        }
        if (m == Mode.ReturnBomb) {
            assembly {
                revert(0, 1000000)
            }
        }
        received += msg.value;
    }
}
