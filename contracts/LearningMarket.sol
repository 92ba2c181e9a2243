// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title LearningMarket
/// @notice Escrow for federated-training projects: an owner locks the whole reward up front,
/// trainers commit and then reveal the digest of their model update, an aggregator posts the
/// Merkle root of the reward table, and trainers pull their reward with a Merkle proof.
/// @dev Invariant: this contract's balance equals, summed over projects, the unpaid part of
/// every opened round's budget, plus the refundable balance, plus the budget of rounds not
/// yet opened (zero once cancelled). Nobody, the owner included, can move escrowed funds
/// other than by the rules below. Digests are the 32-byte sha2-256 digests inside CIDs.
contract LearningMarket is ReentrancyGuard {
    /// @notice Life cycle of one round.
    enum RoundState {
        None,
        Open,
        Finalized,
        Expired
    }

    /// @notice A project: its escrow terms and progress.
    struct Project {
        address owner;
        address aggregator;
        bytes32 specDigest;
        uint32 rounds;
        uint32 roundsOpened;
        bool cancelled;
        uint64 submissionWindow;
        uint64 revealWindow;
        uint64 finalizeWindow;
        uint256 rewardPerRound;
        uint256 refundable;
    }

    /// @notice One round of a project. `total` is what trainers may claim in all (the reward
    /// table's total once finalized, the equal shares once expired); `claimed` what they have.
    struct Round {
        RoundState state;
        uint64 commitDeadline;
        uint64 revealDeadline;
        uint64 finalizeDeadline;
        uint32 commits;
        uint32 reveals;
        bytes32 globalModel;
        bytes32 admissionRoot;
        bytes32 newModel;
        bytes32 reportDigest;
        bytes32 rewardsRoot;
        uint256 budget;
        uint256 total;
        uint256 claimed;
    }

    /// @notice One trainer's submission in one round (`claimed` covers both claim kinds).
    struct Submission {
        bytes32 commitment;
        bytes32 updateDigest;
        bool revealed;
        bool claimed;
    }

    error UnknownProject(uint256 projectId);
    error ZeroAddress();
    error ZeroRounds();
    error ZeroReward();
    error ZeroWindow();
    error WindowTooLong(uint64 window, uint64 maxWindow);
    error WrongBudget(uint256 expected, uint256 sent);
    error NotOwner(address caller);
    error NotAggregator(address caller);
    error ProjectIsCancelled(uint256 projectId);
    error NoRoundsLeft(uint256 projectId);
    error PreviousRoundNotSettled(uint256 projectId, uint32 round);
    error RoundNotOpen(uint256 projectId, uint32 round);
    error CommitWindowClosed(uint64 commitDeadline);
    error ZeroCommitment();
    error AlreadyCommitted(address trainer);
    error NotAdmitted(address trainer);
    error RevealWindowNotOpen(uint64 commitDeadline);
    error RevealWindowClosed(uint64 revealDeadline);
    error NotCommitted(address trainer);
    error AlreadyRevealed(address trainer);
    error CommitmentMismatch(bytes32 expected, bytes32 computed);
    error FinalizeTooEarly(uint64 revealDeadline);
    error FinalizeTooLate(uint64 finalizeDeadline);
    error TotalExceedsBudget(uint256 total, uint256 budget);
    error RoundNotFinalized(uint256 projectId, uint32 round);
    error AlreadyClaimed(address account);
    error InvalidProof();
    error ClaimExceedsTotal(uint256 amount, uint256 remaining);
    error RoundNotExpirable(uint64 finalizeDeadline);
    error RoundNotExpired(uint256 projectId, uint32 round);
    error NotRevealed(address trainer);
    error ProjectNotEnded(uint256 projectId);
    error NothingToRefund(uint256 projectId);
    error TransferFailed(address to, uint256 amount);

    event ProjectCreated(
        uint256 indexed projectId,
        address indexed owner,
        address indexed aggregator,
        bytes32 specDigest,
        uint32 rounds,
        uint256 rewardPerRound
    );
    event RoundOpened(
        uint256 indexed projectId,
        uint32 indexed round,
        bytes32 globalModel,
        bytes32 admissionRoot,
        uint64 commitDeadline,
        uint64 revealDeadline,
        uint64 finalizeDeadline,
        uint256 budget
    );
    event UpdateCommitted(
        uint256 indexed projectId, uint32 indexed round, address indexed trainer, bytes32 commitment
    );
    event UpdateRevealed(
        uint256 indexed projectId, uint32 indexed round, address indexed trainer, bytes32 updateDigest
    );
    event RoundFinalized(
        uint256 indexed projectId,
        uint32 indexed round,
        bytes32 newModel,
        bytes32 reportDigest,
        bytes32 rewardsRoot,
        uint256 total,
        uint256 unallocated
    );
    event RewardClaimed(
        uint256 indexed projectId, uint32 indexed round, address indexed account, uint256 amount
    );
    event RoundExpired(
        uint256 indexed projectId, uint32 indexed round, uint32 reveals, uint256 share, uint256 toRefund
    );
    event ExpiredShareClaimed(
        uint256 indexed projectId, uint32 indexed round, address indexed account, uint256 amount
    );
    event ProjectCancelled(uint256 indexed projectId, uint256 unopenedBudget);
    event Refunded(uint256 indexed projectId, address indexed owner, uint256 amount);

    /// @notice Longest allowed window (each of submission, reveal, finalize): deadlines stay
    /// far from uint64 overflow and a round cannot lock its budget for decades.
    uint64 public constant MAX_WINDOW = 365 days;

    uint256 private _projectCount;
    mapping(uint256 projectId => Project) private _projects;
    mapping(uint256 projectId => mapping(uint32 round => Round)) private _rounds;
    mapping(uint256 projectId => mapping(uint32 round => mapping(address trainer => Submission)))
        private _submissions;

    // ------------------------------------------------------------------ owner

    /// @notice Create a project and lock its whole reward: `rounds × rewardPerRound` wei.
    /// @param specDigest digest of the project spec (model, data schema, rule, admission policy)
    /// @param aggregator the only account allowed to open and finalize rounds
    /// @param rounds number of rounds the budget pays for
    /// @param rewardPerRound reward of each round, in wei
    /// @param submissionWindow seconds from opening during which trainers may commit
    /// @param revealWindow seconds after the commit deadline during which trainers reveal
    /// @param finalizeWindow seconds after the reveal deadline the aggregator has to finalize
    /// @return projectId the new project's id (ids start at 1)
    function createProject(
        bytes32 specDigest,
        address aggregator,
        uint32 rounds,
        uint256 rewardPerRound,
        uint64 submissionWindow,
        uint64 revealWindow,
        uint64 finalizeWindow
    ) external payable returns (uint256 projectId) {
        if (aggregator == address(0)) revert ZeroAddress();
        if (rounds == 0) revert ZeroRounds();
        if (rewardPerRound == 0) revert ZeroReward();
        if (submissionWindow == 0 || revealWindow == 0 || finalizeWindow == 0) revert ZeroWindow();
        _checkWindow(submissionWindow);
        _checkWindow(revealWindow);
        _checkWindow(finalizeWindow);
        uint256 expected = uint256(rounds) * rewardPerRound;
        if (msg.value != expected) revert WrongBudget(expected, msg.value);

        projectId = ++_projectCount;
        Project storage p = _projects[projectId];
        p.owner = msg.sender;
        p.aggregator = aggregator;
        p.specDigest = specDigest;
        p.rounds = rounds;
        p.submissionWindow = submissionWindow;
        p.revealWindow = revealWindow;
        p.finalizeWindow = finalizeWindow;
        p.rewardPerRound = rewardPerRound;
        emit ProjectCreated(projectId, msg.sender, aggregator, specDigest, rounds, rewardPerRound);
    }

    /// @notice Stop the project: no further round may open, and the budget of the rounds
    /// never opened becomes refundable. A round already open runs to its end.
    /// @param projectId the project to cancel
    function cancelProject(uint256 projectId) external {
        Project storage p = _project(projectId);
        if (msg.sender != p.owner) revert NotOwner(msg.sender);
        if (p.cancelled) revert ProjectIsCancelled(projectId);
        uint256 unopened = uint256(p.rounds - p.roundsOpened) * p.rewardPerRound;
        p.cancelled = true;
        p.refundable += unopened;
        emit ProjectCancelled(projectId, unopened);
    }

    /// @notice Pay the owner the refundable balance (unallocated remainders, budgets of
    /// rounds nobody revealed in, unopened rounds after cancelling). Allowed once the
    /// project has ended: cancelled, or every round opened and settled.
    /// @param projectId the project to refund
    function refund(uint256 projectId) external nonReentrant {
        Project storage p = _project(projectId);
        if (msg.sender != p.owner) revert NotOwner(msg.sender);
        if (!_ended(projectId, p)) revert ProjectNotEnded(projectId);
        uint256 amount = p.refundable;
        if (amount == 0) revert NothingToRefund(projectId);
        p.refundable = 0;
        emit Refunded(projectId, msg.sender, amount);
        _pay(msg.sender, amount);
    }

    // ------------------------------------------------------------- aggregator

    /// @notice Open the next round with the current global model and the admitted set.
    /// @param projectId the project
    /// @param globalModel digest of the global model trainers start from
    /// @param admissionRoot Merkle root of admitted trainer addresses; zero admits anyone
    /// @return round the number of the round opened (rounds start at 1)
    function openRound(uint256 projectId, bytes32 globalModel, bytes32 admissionRoot)
        external
        returns (uint32 round)
    {
        Project storage p = _project(projectId);
        if (msg.sender != p.aggregator) revert NotAggregator(msg.sender);
        if (p.cancelled) revert ProjectIsCancelled(projectId);
        if (p.roundsOpened >= p.rounds) revert NoRoundsLeft(projectId);
        if (p.roundsOpened > 0 && _rounds[projectId][p.roundsOpened].state == RoundState.Open) {
            revert PreviousRoundNotSettled(projectId, p.roundsOpened);
        }

        round = ++p.roundsOpened;
        Round storage r = _rounds[projectId][round];
        uint64 commitDeadline = uint64(block.timestamp) + p.submissionWindow;
        uint64 revealDeadline = commitDeadline + p.revealWindow;
        uint64 finalizeDeadline = revealDeadline + p.finalizeWindow;
        r.state = RoundState.Open;
        r.commitDeadline = commitDeadline;
        r.revealDeadline = revealDeadline;
        r.finalizeDeadline = finalizeDeadline;
        r.globalModel = globalModel;
        r.admissionRoot = admissionRoot;
        r.budget = p.rewardPerRound;
        emit RoundOpened(
            projectId,
            round,
            globalModel,
            admissionRoot,
            commitDeadline,
            revealDeadline,
            finalizeDeadline,
            p.rewardPerRound
        );
    }

    /// @notice Close a round: publish the new model, the report and the reward table's root.
    /// @param projectId the project
    /// @param round the open round
    /// @param newModel digest of the aggregated model
    /// @param reportDigest digest of the round report (scores, flags, reasons, rewards)
    /// @param rewardsRoot Merkle root of (account, amount) leaves
    /// @param total sum of the amounts in the reward table; the rest of the budget is refundable
    function finalizeRound(
        uint256 projectId,
        uint32 round,
        bytes32 newModel,
        bytes32 reportDigest,
        bytes32 rewardsRoot,
        uint256 total
    ) external {
        Project storage p = _project(projectId);
        if (msg.sender != p.aggregator) revert NotAggregator(msg.sender);
        Round storage r = _openRound(projectId, round);
        if (block.timestamp <= r.revealDeadline) revert FinalizeTooEarly(r.revealDeadline);
        if (block.timestamp > r.finalizeDeadline) revert FinalizeTooLate(r.finalizeDeadline);
        if (total > r.budget) revert TotalExceedsBudget(total, r.budget);

        uint256 unallocated = r.budget - total;
        r.state = RoundState.Finalized;
        r.newModel = newModel;
        r.reportDigest = reportDigest;
        r.rewardsRoot = rewardsRoot;
        r.total = total;
        p.refundable += unallocated;
        emit RoundFinalized(projectId, round, newModel, reportDigest, rewardsRoot, total, unallocated);
    }

    // ---------------------------------------------------------------- trainer

    /// @notice Commit to an update without revealing it, inside the submission window.
    /// @param projectId the project
    /// @param round the open round
    /// @param commitment `computeCommitment(updateDigest, msg.sender, salt)`
    /// @param admissionProof proof that msg.sender is in the round's admitted set (empty if
    /// admission is open)
    function commitUpdate(
        uint256 projectId,
        uint32 round,
        bytes32 commitment,
        bytes32[] calldata admissionProof
    ) external {
        _project(projectId);
        Round storage r = _openRound(projectId, round);
        if (block.timestamp > r.commitDeadline) revert CommitWindowClosed(r.commitDeadline);
        if (commitment == bytes32(0)) revert ZeroCommitment();
        Submission storage s = _submissions[projectId][round][msg.sender];
        if (s.commitment != bytes32(0)) revert AlreadyCommitted(msg.sender);
        if (r.admissionRoot != bytes32(0)) {
            bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(msg.sender))));
            if (!MerkleProof.verifyCalldata(admissionProof, r.admissionRoot, leaf)) {
                revert NotAdmitted(msg.sender);
            }
        }
        s.commitment = commitment;
        r.commits += 1;
        emit UpdateCommitted(projectId, round, msg.sender, commitment);
    }

    /// @notice Reveal the committed update's digest, after the commit deadline and no later
    /// than the reveal deadline.
    /// @param projectId the project
    /// @param round the open round
    /// @param updateDigest digest of the update file uploaded to the store
    /// @param salt the secret salt used in the commitment
    function revealUpdate(uint256 projectId, uint32 round, bytes32 updateDigest, bytes32 salt)
        external
    {
        _project(projectId);
        Round storage r = _openRound(projectId, round);
        if (block.timestamp <= r.commitDeadline) revert RevealWindowNotOpen(r.commitDeadline);
        if (block.timestamp > r.revealDeadline) revert RevealWindowClosed(r.revealDeadline);
        Submission storage s = _submissions[projectId][round][msg.sender];
        if (s.commitment == bytes32(0)) revert NotCommitted(msg.sender);
        if (s.revealed) revert AlreadyRevealed(msg.sender);
        bytes32 computed = computeCommitment(updateDigest, msg.sender, salt);
        if (computed != s.commitment) revert CommitmentMismatch(s.commitment, computed);
        s.revealed = true;
        s.updateDigest = updateDigest;
        r.reveals += 1;
        emit UpdateRevealed(projectId, round, msg.sender, updateDigest);
    }

    /// @notice Pull the caller's reward from a finalized round's reward table.
    /// @param projectId the project
    /// @param round the finalized round
    /// @param amount the caller's amount in the reward table, in wei
    /// @param proof Merkle proof of the leaf (msg.sender, amount) against the rewards root
    function claim(uint256 projectId, uint32 round, uint256 amount, bytes32[] calldata proof)
        external
        nonReentrant
    {
        _project(projectId);
        Round storage r = _rounds[projectId][round];
        if (r.state != RoundState.Finalized) revert RoundNotFinalized(projectId, round);
        Submission storage s = _submissions[projectId][round][msg.sender];
        if (s.claimed) revert AlreadyClaimed(msg.sender);
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(msg.sender, amount))));
        if (!MerkleProof.verifyCalldata(proof, r.rewardsRoot, leaf)) revert InvalidProof();
        uint256 remaining = r.total - r.claimed;
        if (amount > remaining) revert ClaimExceedsTotal(amount, remaining);

        s.claimed = true;
        r.claimed += amount;
        emit RewardClaimed(projectId, round, msg.sender, amount);
        _pay(msg.sender, amount);
    }

    /// @notice Close a round its aggregator never finalized. Anyone may call it after the
    /// finalize deadline. The budget is split equally among the round's revealed trainers
    /// (the division remainder becomes refundable), or wholly refundable if nobody revealed.
    /// @param projectId the project
    /// @param round the open round past its finalize deadline
    function expireRound(uint256 projectId, uint32 round) external {
        Project storage p = _project(projectId);
        Round storage r = _openRound(projectId, round);
        if (block.timestamp <= r.finalizeDeadline) revert RoundNotExpirable(r.finalizeDeadline);

        uint256 share = r.reveals == 0 ? 0 : r.budget / r.reveals;
        uint256 total = share * r.reveals;
        uint256 toRefund = r.budget - total;
        r.state = RoundState.Expired;
        r.total = total;
        p.refundable += toRefund;
        emit RoundExpired(projectId, round, r.reveals, share, toRefund);
    }

    /// @notice Pull the caller's equal share of an expired round's budget.
    /// @param projectId the project
    /// @param round the expired round, in which the caller revealed an update
    function claimExpired(uint256 projectId, uint32 round) external nonReentrant {
        _project(projectId);
        Round storage r = _rounds[projectId][round];
        if (r.state != RoundState.Expired) revert RoundNotExpired(projectId, round);
        Submission storage s = _submissions[projectId][round][msg.sender];
        if (!s.revealed) revert NotRevealed(msg.sender);
        if (s.claimed) revert AlreadyClaimed(msg.sender);
        uint256 share = r.total / r.reveals;

        s.claimed = true;
        r.claimed += share;
        emit ExpiredShareClaimed(projectId, round, msg.sender, share);
        _pay(msg.sender, share);
    }

    // ------------------------------------------------------------------ views

    /// @notice The commitment a trainer must post for `updateDigest` with `salt`.
    /// @param updateDigest digest of the update
    /// @param trainer the committing account (binds the commitment to it: no copying)
    /// @param salt a secret random value
    /// @return the commitment keccak256(abi.encode(updateDigest, trainer, salt))
    function computeCommitment(bytes32 updateDigest, address trainer, bytes32 salt)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(updateDigest, trainer, salt));
    }

    /// @notice Number of projects created; ids run from 1 to this.
    /// @return the number of projects
    function projectCount() external view returns (uint256) {
        return _projectCount;
    }

    /// @notice A project's terms and progress.
    /// @param projectId the project
    /// @return the project
    function getProject(uint256 projectId) external view returns (Project memory) {
        return _project(projectId);
    }

    /// @notice A round's deadlines, digests and money.
    /// @param projectId the project
    /// @param round the round (state None if not opened yet)
    /// @return the round
    function getRound(uint256 projectId, uint32 round) external view returns (Round memory) {
        _project(projectId);
        return _rounds[projectId][round];
    }

    /// @notice A trainer's submission in a round.
    /// @param projectId the project
    /// @param round the round
    /// @param trainer the trainer
    /// @return the submission (all zero if none)
    function getSubmission(uint256 projectId, uint32 round, address trainer)
        external
        view
        returns (Submission memory)
    {
        _project(projectId);
        return _submissions[projectId][round][trainer];
    }

    /// @notice Whether `account` has claimed its reward (or expired share) in a round.
    /// @param projectId the project
    /// @param round the round
    /// @param account the account
    /// @return true once claimed
    function isClaimed(uint256 projectId, uint32 round, address account)
        external
        view
        returns (bool)
    {
        return _submissions[projectId][round][account].claimed;
    }

    // --------------------------------------------------------------- internal

    function _project(uint256 projectId) private view returns (Project storage p) {
        p = _projects[projectId];
        if (p.owner == address(0)) revert UnknownProject(projectId);
    }

    function _openRound(uint256 projectId, uint32 round) private view returns (Round storage r) {
        r = _rounds[projectId][round];
        if (r.state != RoundState.Open) revert RoundNotOpen(projectId, round);
    }

    function _ended(uint256 projectId, Project storage p) private view returns (bool) {
        if (p.cancelled) return true;
        if (p.roundsOpened < p.rounds) return false;
        return _rounds[projectId][p.roundsOpened].state != RoundState.Open;
    }

    function _checkWindow(uint64 window) private pure {
        if (window > MAX_WINDOW) revert WindowTooLong(window, MAX_WINDOW);
    }

    function _pay(address to, uint256 amount) private {
        (bool ok,) = payable(to).call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}
