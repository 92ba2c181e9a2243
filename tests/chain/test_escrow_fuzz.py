"""Randomised whole-project scenarios: the escrow invariant holds after every step, and a
refused action always fails with a named rule, never a panic or an unknown error.

Each scenario runs projects round by round, but every step is drawn at random: who commits
(some too late), who reveals (some with a wrong salt), whether the aggregator finalizes in
time (with a random reward table) or the round expires, who claims (some twice or with the
wrong amount), and when the owner cancels or asks for a refund.
"""

from __future__ import annotations

import random

import pytest
from chain_helpers import digest, make_update

from market.chain import ContractRevert, RoundState
from market.proofs import MerkleTree

WINDOW = 50
NOT_A_RULE = {"Panic", "Unknown", "Error"}


class Scenario:
    def __init__(self, env, rng: random.Random) -> None:
        self.env, self.m, self.rng = env, env.market, rng
        self.refused: dict[str, int] = {}
        self.done: dict[str, int] = {}

    def attempt(self, name: str, fn, *args) -> bool:
        """Run one action; a refusal must be a named rule. Checks the invariant after."""
        try:
            fn(*args)
            self.done[name] = self.done.get(name, 0) + 1
            ok = True
        except ContractRevert as exc:
            assert exc.error_name not in NOT_A_RULE, str(exc)
            self.refused[exc.error_name] = self.refused.get(exc.error_name, 0) + 1
            ok = False
        self.env.assert_escrow_balanced()
        return ok

    def maybe_owner_acts(self, pid: int) -> None:
        if self.rng.random() < 0.15:
            self.attempt("refund", self.m.refund, self.env.owner, pid)
        if self.rng.random() < 0.04:
            self.attempt("cancel", self.m.cancel_project, self.env.owner, pid)

    def run_round(self, pid: int) -> None:
        env, m, rng = self.env, self.m, self.rng
        if not self.attempt("open", m.open_round, env.aggregator, pid, digest("g")):
            return
        rnd = m.get_project(pid).rounds_opened
        trainers = rng.sample(env.trainers[:6], rng.randint(0, 6))
        updates = [make_update(t, f"{pid}:{rnd}") for t in trainers]
        late = [u for u in updates if rng.random() < 0.15]
        for u in updates:
            if u not in late:
                self.attempt("commit", m.commit_update, u.trainer, pid, rnd, u.commitment)
            if rng.random() < 0.1:  # duplicate commit
                self.attempt("commit", m.commit_update, u.trainer, pid, rnd, u.commitment)
        self.maybe_owner_acts(pid)
        env.advance(WINDOW + 1)
        for u in late:
            self.attempt("commit", m.commit_update, u.trainer, pid, rnd, u.commitment)
        revealers = []
        for u in updates:
            roll = rng.random()
            if roll < 0.15:
                self.attempt(
                    "reveal",
                    m.reveal_update,
                    u.trainer,
                    pid,
                    rnd,
                    u.update_digest,
                    u.trainer.key[:32],
                )
            elif roll < 0.85 and self.attempt(
                "reveal", m.reveal_update, u.trainer, pid, rnd, u.update_digest, u.salt
            ):
                revealers.append(u.trainer)
        self.maybe_owner_acts(pid)
        env.advance(WINDOW + 1)
        budget = m.get_round(pid, rnd).budget
        if rng.random() < 0.7:
            if rng.random() < 0.2:
                env.advance(WINDOW)  # the aggregator is too late: FinalizeTooLate
            self.finalize_and_claim(pid, rnd, revealers, budget)
        if m.get_round(pid, rnd).state == RoundState.OPEN:
            self.attempt("expire", m.expire_round, env.outsider, pid, rnd)  # maybe too early
            env.advance(WINDOW)
            self.attempt("expire", m.expire_round, env.outsider, pid, rnd)
            for t in trainers:
                if rng.random() < 0.8:
                    self.attempt("claimExpired", m.claim_expired, t, pid, rnd)
                if rng.random() < 0.1:
                    self.attempt("claimExpired", m.claim_expired, t, pid, rnd)
        self.maybe_owner_acts(pid)

    def finalize_and_claim(self, pid: int, rnd: int, revealers, budget: int) -> None:
        m, env, rng = self.m, self.env, self.rng
        entries = [(t.address, rng.randint(0, budget // max(1, len(revealers)))) for t in revealers]
        tree = MerkleTree.of_rewards(entries) if entries else None
        total = sum(a for _, a in entries)
        if rng.random() < 0.1:
            total += rng.randint(1, budget)  # over budget, or a declared total above the table
        root = tree.root if tree else b"\0" * 32
        if not self.attempt(
            "finalize",
            m.finalize_round,
            env.aggregator,
            pid,
            rnd,
            digest("m"),
            digest("r"),
            root,
            total,
        ):
            return
        for i, (t, (_, amount)) in enumerate(zip(revealers, entries, strict=True)):
            if rng.random() < 0.1:
                self.attempt("claim", m.claim, t, pid, rnd, amount + 1, tree.proof(i))
            if rng.random() < 0.85:
                self.attempt("claim", m.claim, t, pid, rnd, amount, tree.proof(i))
            if rng.random() < 0.1:
                self.attempt("claim", m.claim, t, pid, rnd, amount, tree.proof(i))

    def run(self, projects: int) -> None:
        for _ in range(projects):
            rounds = self.rng.randint(1, 3)
            reward = 10**15 * self.rng.randint(1, 7) + self.rng.randint(0, 999)
            pid = self.env.create_project(
                rounds=rounds, reward_per_round=reward, windows=(WINDOW,) * 3
            )
            for _ in range(rounds + 1):  # one more than allowed: NoRoundsLeft
                self.run_round(pid)
            self.attempt("refund", self.m.refund, self.env.owner, pid)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_random_scenarios_keep_the_escrow_balanced(market_env, seed):
    scenario = Scenario(market_env, random.Random(seed))
    scenario.run(projects=3)
    print(f"seed {seed}: done {scenario.done}, refused {scenario.refused}")
    assert sum(scenario.done.values()) > 20
    assert len(scenario.refused) >= 4  # several different rules were exercised
    # every project ended and was refunded: what is left is exactly unclaimed rewards
    m = market_env.market
    left = sum(
        m.get_round(pid, r).unpaid
        for pid in range(1, m.project_count() + 1)
        for r in range(1, m.get_project(pid).rounds_opened + 1)
    )
    assert m.balance() == left + sum(
        m.get_project(pid).refundable for pid in range(1, m.project_count() + 1)
    )
