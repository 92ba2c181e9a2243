"""A Python model of LearningMarket's state and rules, for the stateful fuzzer.

Each ``check_*`` method mirrors one contract function: it returns the custom error the
contract must revert with (name only), or None when the call must succeed; ``apply_*``
then updates the model and returns the events the call must emit. The fuzzer compares
the chain with this model after every call, so a call that succeeds where the model says
it must not (an unauthorised action) or a payment the model does not expect fails the run.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

MAX_WINDOW = 365 * 24 * 3600
NONE, OPEN, FINALIZED, EXPIRED = 0, 1, 2, 3


@dataclass
class MProject:
    owner: str
    aggregator: str
    rounds: int
    reward: int
    windows: tuple[int, int, int]
    opened: int = 0
    cancelled: bool = False
    refundable: int = 0


@dataclass
class MRound:
    state: int = NONE
    commit_deadline: int = 0
    reveal_deadline: int = 0
    finalize_deadline: int = 0
    commits: int = 0
    reveals: int = 0
    admitted: frozenset[str] | None = None  # None: admission open
    budget: int = 0
    total: int = 0
    claimed: int = 0
    rewards: dict[str, int] = field(default_factory=dict)  # the finalized reward table


@dataclass
class MSubmission:
    commitment: bytes = b""
    revealed: bool = False
    claimed: bool = False


@dataclass
class Model:
    """What the contract must hold. ``escrow`` = Σ created − Σ paid; ``paid`` per account."""

    projects: dict[int, MProject] = field(default_factory=dict)
    rounds: dict[tuple[int, int], MRound] = field(default_factory=dict)
    subs: dict[tuple[int, int, str], MSubmission] = field(default_factory=dict)
    escrow: int = 0
    paid: dict[str, int] = field(default_factory=dict)
    allocated: dict[str, int] = field(default_factory=dict)  # what each account may receive

    def round(self, pid: int, rnd: int) -> MRound:
        return self.rounds.get((pid, rnd), MRound())

    def sub(self, pid: int, rnd: int, who: str) -> MSubmission:
        return self.subs.setdefault((pid, rnd, who), MSubmission())

    def ended(self, pid: int) -> bool:
        p = self.projects[pid]
        if p.cancelled:
            return True
        if p.opened < p.rounds:
            return False
        return self.round(pid, p.opened).state != OPEN

    def _pay(self, who: str, amount: int) -> None:
        self.escrow -= amount
        self.paid[who] = self.paid.get(who, 0) + amount

    def _allocate(self, who: str, amount: int) -> None:
        self.allocated[who] = self.allocated.get(who, 0) + amount

    # ------------------------------------------------------------ owner

    def check_create(self, agg: str, rounds: int, reward: int, windows, value: int) -> str | None:
        if int(agg, 16) == 0:
            return "ZeroAddress"
        if rounds == 0:
            return "ZeroRounds"
        if reward == 0:
            return "ZeroReward"
        if reward >= 2**128:
            return "RewardTooLarge"
        if 0 in windows:
            return "ZeroWindow"
        if any(w > MAX_WINDOW for w in windows):
            return "WindowTooLong"
        if value != rounds * reward:
            return "WrongBudget"
        return None

    def apply_create(self, sender: str, agg: str, rounds: int, reward: int, windows, value: int):
        pid = len(self.projects) + 1
        self.projects[pid] = MProject(sender, agg, rounds, reward, tuple(windows))
        self.escrow += value
        return pid, [("ProjectCreated", {"project_id": pid, "owner": sender})]

    def check_cancel(self, sender: str, pid: int) -> str | None:
        p = self.projects.get(pid)
        if p is None:
            return "UnknownProject"
        if sender != p.owner:
            return "NotOwner"
        if p.cancelled:
            return "ProjectIsCancelled"
        return None

    def apply_cancel(self, pid: int):
        p = self.projects[pid]
        unopened = (p.rounds - p.opened) * p.reward
        p.cancelled = True
        p.refundable += unopened
        self._allocate(p.owner, unopened)
        return [("ProjectCancelled", {"project_id": pid, "unopened_budget": unopened})]

    def check_refund(self, sender: str, pid: int) -> str | None:
        p = self.projects.get(pid)
        if p is None:
            return "UnknownProject"
        if sender != p.owner:
            return "NotOwner"
        if not self.ended(pid):
            return "ProjectNotEnded"
        if p.refundable == 0:
            return "NothingToRefund"
        return None

    def apply_refund(self, pid: int):
        p = self.projects[pid]
        amount, p.refundable = p.refundable, 0
        self._pay(p.owner, amount)
        return [("Refunded", {"project_id": pid, "owner": p.owner, "amount": amount})]

    # ------------------------------------------------------- aggregator

    def check_open(self, sender: str, pid: int) -> str | None:
        p = self.projects.get(pid)
        if p is None:
            return "UnknownProject"
        if sender != p.aggregator:
            return "NotAggregator"
        if p.cancelled:
            return "ProjectIsCancelled"
        if p.opened >= p.rounds:
            return "NoRoundsLeft"
        if p.opened > 0 and self.round(pid, p.opened).state == OPEN:
            return "PreviousRoundNotSettled"
        return None

    def apply_open(self, pid: int, now: int, admitted: frozenset[str] | None):
        p = self.projects[pid]
        p.opened += 1
        sw, rw, fw = p.windows
        r = MRound(OPEN, now + sw, now + sw + rw, now + sw + rw + fw, admitted=admitted)
        r.budget = p.reward
        self.rounds[(pid, p.opened)] = r
        return p.opened, [("RoundOpened", {"project_id": pid, "round": p.opened})]

    def check_finalize(self, sender: str, pid: int, rnd: int, total: int, now: int) -> str | None:
        p = self.projects.get(pid)
        if p is None:
            return "UnknownProject"
        if sender != p.aggregator:
            return "NotAggregator"
        r = self.round(pid, rnd)
        if r.state != OPEN:
            return "RoundNotOpen"
        if now <= r.reveal_deadline:
            return "FinalizeTooEarly"
        if now > r.finalize_deadline:
            return "FinalizeTooLate"
        if total > r.budget:
            return "TotalExceedsBudget"
        return None

    def apply_finalize(self, pid: int, rnd: int, table: dict[str, int], total: int):
        r = self.rounds[(pid, rnd)]
        r.state, r.total, r.rewards = FINALIZED, total, dict(table)
        self.projects[pid].refundable += r.budget - total
        self._allocate(self.projects[pid].owner, r.budget - total)
        for who, amount in table.items():
            self._allocate(who, amount)
        args = {"project_id": pid, "round": rnd, "total": total, "unallocated": r.budget - total}
        return [("RoundFinalized", args)]

    def check_expire(self, pid: int, rnd: int, now: int) -> str | None:
        if pid not in self.projects:
            return "UnknownProject"
        r = self.round(pid, rnd)
        if r.state != OPEN:
            return "RoundNotOpen"
        if now <= r.finalize_deadline:
            return "RoundNotExpirable"
        return None

    def apply_expire(self, pid: int, rnd: int):
        r = self.rounds[(pid, rnd)]
        share = r.budget // r.reveals if r.reveals else 0
        r.state, r.total = EXPIRED, share * r.reveals
        self.projects[pid].refundable += r.budget - r.total
        self._allocate(self.projects[pid].owner, r.budget - r.total)
        for (p, n, who), s in self.subs.items():
            if (p, n) == (pid, rnd) and s.revealed:
                self._allocate(who, share)
        args = {"project_id": pid, "round": rnd, "reveals": r.reveals, "share": share}
        return [("RoundExpired", args)]

    # ---------------------------------------------------------- trainer

    def check_commit(
        self, sender: str, pid: int, rnd: int, commitment: bytes, proof_for: str | None, now: int
    ) -> str | None:
        r = self.round(pid, rnd)  # no project check: an unknown project has no open round
        if r.state != OPEN:
            return "RoundNotOpen"
        if now > r.commit_deadline:
            return "CommitWindowClosed"
        if not any(commitment[:28]):  # the contract keeps the 224-bit prefix
            return "ZeroCommitment"
        if self.sub(pid, rnd, sender).commitment:
            return "AlreadyCommitted"
        if r.admitted is not None and not (sender in r.admitted and proof_for == sender):
            return "NotAdmitted"
        return None

    def apply_commit(self, sender: str, pid: int, rnd: int, commitment: bytes):
        self.sub(pid, rnd, sender).commitment = commitment[:28]
        self.rounds[(pid, rnd)].commits += 1
        return [("UpdateCommitted", {"project_id": pid, "round": rnd, "trainer": sender})]

    def check_reveal(
        self, sender: str, pid: int, rnd: int, computed: bytes, now: int
    ) -> str | None:
        r = self.round(pid, rnd)
        if r.state != OPEN:
            return "RoundNotOpen"
        if now <= r.commit_deadline:
            return "RevealWindowNotOpen"
        if now > r.reveal_deadline:
            return "RevealWindowClosed"
        s = self.sub(pid, rnd, sender)
        if not s.commitment:
            return "NotCommitted"
        if s.revealed:
            return "AlreadyRevealed"
        if computed[:28] != s.commitment:
            return "CommitmentMismatch"
        return None

    def apply_reveal(self, sender: str, pid: int, rnd: int):
        self.sub(pid, rnd, sender).revealed = True
        self.rounds[(pid, rnd)].reveals += 1
        return [("UpdateRevealed", {"project_id": pid, "round": rnd, "trainer": sender})]

    def check_claim(self, sender: str, pid: int, rnd: int, amount: int, proof_ok: bool):
        r = self.round(pid, rnd)
        if r.state != FINALIZED:
            return "RoundNotFinalized"
        s = self.sub(pid, rnd, sender)
        if not s.revealed:
            return "NotRevealed"
        if s.claimed:
            return "AlreadyClaimed"
        if not proof_ok:
            return "InvalidProof"
        if amount > r.total - r.claimed:
            return "ClaimExceedsTotal"
        return None

    def apply_claim(self, sender: str, pid: int, rnd: int, amount: int):
        self.sub(pid, rnd, sender).claimed = True
        self.rounds[(pid, rnd)].claimed += amount
        self._pay(sender, amount)
        args = {"project_id": pid, "round": rnd, "account": sender, "amount": amount}
        return [("RewardClaimed", args)]

    def check_claim_many(
        self, sender: str, pid: int, claims: list[tuple[int, int, bool]], lengths_match: bool
    ) -> str | None:
        """``claims``: (round, amount, proof_ok) per entry. All or nothing: the first entry
        that fails, judged after the entries before it (a round listed twice fails)."""
        if not claims:
            return "NoRounds"
        if not lengths_match:
            return "LengthMismatch"
        trial = copy.deepcopy(self)
        for rnd, amount, proof_ok in claims:
            error = trial.check_claim(sender, pid, rnd, amount, proof_ok)
            if error is not None:
                return error
            trial.apply_claim(sender, pid, rnd, amount)
        return None

    def apply_claim_many(self, sender: str, pid: int, claims: list[tuple[int, int, bool]]):
        return [
            ev for rnd, amount, _ in claims for ev in self.apply_claim(sender, pid, rnd, amount)
        ]

    def check_claim_expired(self, sender: str, pid: int, rnd: int) -> str | None:
        if self.round(pid, rnd).state != EXPIRED:
            return "RoundNotExpired"
        s = self.sub(pid, rnd, sender)
        if not s.revealed:
            return "NotRevealed"
        if s.claimed:
            return "AlreadyClaimed"
        return None

    def apply_claim_expired(self, sender: str, pid: int, rnd: int):
        r = self.rounds[(pid, rnd)]
        share = r.total // r.reveals
        self.sub(pid, rnd, sender).claimed = True
        r.claimed += share
        self._pay(sender, share)
        args = {"project_id": pid, "round": rnd, "account": sender, "amount": share}
        return [("ExpiredShareClaimed", args)]
