// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice The parts of LearningMarket the attacker calls.
interface ILearningMarket {
    function commitUpdate(uint256, uint32, bytes32, bytes32[] calldata) external;
    function revealUpdate(uint256, uint32, bytes32, bytes32) external;
    function claim(uint256, uint32, uint256, bytes32[] calldata) external;
    function claimExpired(uint256, uint32) external;
    function refund(uint256) external;
}

/// @title ReentrantClaimer (test only)
/// @notice A trainer contract that, when paid, tries to call back into the market
/// (mode Reenter) or refuses the payment (mode Reject). Tests use it to show that the
/// reentrancy guard holds and that a failed payment reverts the whole claim.
contract ReentrantClaimer {
    enum Mode {
        Accept,
        Reenter,
        Reject
    }

    ILearningMarket public immutable market;
    Mode public mode;
    uint256 public reentryAttempts;
    bytes public lastReentryError;

    uint256 private _projectId;
    uint32 private _round;
    uint256 private _amount;
    bytes32[] private _proof;
    bool private _expired;

    constructor(address market_) {
        market = ILearningMarket(market_);
    }

    /// @notice Choose how the next payment is received.
    function setMode(Mode mode_) external {
        mode = mode_;
    }

    /// @notice Commit as this contract.
    function commit(uint256 projectId, uint32 round, bytes32 commitment, bytes32[] calldata proof)
        external
    {
        market.commitUpdate(projectId, round, commitment, proof);
    }

    /// @notice Reveal as this contract.
    function reveal(uint256 projectId, uint32 round, bytes32 digest, bytes32 salt) external {
        market.revealUpdate(projectId, round, digest, salt);
    }

    /// @notice Claim a reward as this contract, remembering the call to replay it.
    function attackClaim(uint256 projectId, uint32 round, uint256 amount, bytes32[] calldata proof)
        external
    {
        _projectId = projectId;
        _round = round;
        _amount = amount;
        _proof = proof;
        _expired = false;
        market.claim(projectId, round, amount, proof);
    }

    /// @notice Claim an expired-round share as this contract, remembering the call.
    function attackClaimExpired(uint256 projectId, uint32 round) external {
        _projectId = projectId;
        _round = round;
        _expired = true;
        market.claimExpired(projectId, round);
    }

    receive() external payable {
        if (mode == Mode.Reject) revert("ReentrantClaimer: payment refused");
        if (mode == Mode.Reenter && reentryAttempts == 0) {
            reentryAttempts += 1;
            if (_expired) {
                try market.claimExpired(_projectId, _round) {} catch (bytes memory err) {
                    lastReentryError = err;
                }
            } else {
                try market.claim(_projectId, _round, _amount, _proof) {} catch (bytes memory err) {
                    lastReentryError = err;
                }
            }
        }
    }
}
