"""Stateful fuzzing of LearningMarket against a real anvil (hypothesis RuleBasedStateMachine).

Random actors (any of anvil's ten dev accounts, so most calls come from someone who is not
the owner, aggregator or trainer in question) create, cancel and refund projects, open,
commit, reveal, finalize, expire and claim, while the clock jumps at random across window
boundaries. Every call is first predicted by :class:`tests.security.model.Model`; the chain
must agree exactly — same custom error, or success with the same events and the same state.
After every step: contract balance = Σ escrowed − Σ paid, no account was paid more than
allocated to it, no round paid more than its total, no total above its budget.

Each example starts from an anvil snapshot and reverts to it. Block times are made exact
(one second per block, jumps by ``evm_setNextBlockTimestamp``), so window boundaries are
hit on purpose.

CI runs a small bounded campaign (tests/security/test_fuzz.py); the big one is::

    .venv/bin/python -m tests.security.fuzz --examples 400 --steps 40
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from web3 import Web3

from market.chain import AnvilNode, LearningMarket, connect, deploy_market, dev_accounts
from market.chain.errors import decode_revert, error_selectors
from market.proofs import MerkleTree
from tests.security.model import EXPIRED, FINALIZED, Model

ZERO32 = b"\0" * 32
ZERO_ADDRESS = "0x" + "00" * 20
GAS = 3_000_000
JUMPS = [1, 2, 3, 5, 8, 13, 21, 40]


def h(*parts: object) -> bytes:
    return hashlib.sha256(repr(parts).encode()).digest()


@dataclass
class Stats:
    """Counts over a whole campaign (all examples)."""

    examples: int = 0
    calls: int = 0
    steps: int = 0
    done: Counter = field(default_factory=Counter)
    refused: Counter = field(default_factory=Counter)
    attempted: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {
            "examples": self.examples,
            "steps": self.steps,
            "calls": self.calls,
            "attempted": dict(sorted(self.attempted.items())),
            "succeeded": dict(sorted(self.done.items())),
            "refused": dict(sorted(self.refused.items())),
        }


@dataclass
class FuzzEnv:
    """The chain the machine runs against (set by the test or the runner)."""

    w3: Web3
    market: LearningMarket
    actors: list[str]
    stats: Stats = field(default_factory=Stats)


ENV: FuzzEnv | None = None


def make_env(node: AnvilNode) -> FuzzEnv:
    """Deploy a market on ``node`` (own anvil: the block interval is changed) for fuzzing."""
    w3 = connect(node.rpc_url)
    accounts = dev_accounts(w3)
    market = deploy_market(w3, accounts[0])
    w3.provider.make_request("anvil_setBlockTimestampInterval", [1])
    return FuzzEnv(w3, market, [a.address for a in accounts])


class MarketMachine(RuleBasedStateMachine):
    """Random calls by random actors; the model predicts each outcome."""

    def __init__(self) -> None:
        super().__init__()
        assert ENV is not None, "set tests.security.fuzz.ENV first (make_env)"
        self.env, self.w3, self.m = ENV, ENV.w3, ENV.market
        self.errors = error_selectors(self.m.abi)
        self.snap = self._rpc("evm_snapshot", [])
        self.now = int(self.w3.eth.get_block("latest")["timestamp"])
        self.model = Model()
        self.escrow_before = self.m.balance()
        self.trees: dict[tuple[int, int], MerkleTree] = {}
        self.env.stats.examples += 1

    def teardown(self) -> None:
        self._rpc("evm_revert", [self.snap])

    # ------------------------------------------------------------ plumbing

    def _rpc(self, method: str, params: list):
        reply = self.w3.provider.make_request(method, params)
        if "error" in reply:
            raise AssertionError(f"{method}: {reply['error']}")
        return reply["result"]

    def call(self, sender: str, function: str, args: list, expected: str | None, value: int = 0):
        """Run one call: eth_call at the next block (exact time), then send if it passes.
        Returns the decoded events; checks the outcome is the model's."""
        stats = self.env.stats
        stats.calls += 1
        stats.attempted[function] += 1
        data = self.m.contract.encode_abi(function, args=args)
        tx = {"from": sender, "to": self.m.address, "data": data, "value": hex(value)}
        reply = self.w3.provider.make_request("eth_call", [tx, "pending"])
        if "error" in reply:
            raw = reply["error"].get("data") or "0x"
            name = decode_revert(bytes.fromhex(raw[2:]), self.errors, function).error_name
            stats.refused[name] += 1
            assert name == expected, f"{function} by {sender}: reverted {name}, model {expected}"
            return None
        assert expected is None, f"{function} by {sender} SUCCEEDED, model says {expected}"
        # a unique gas limit: after evm_revert the same sender, nonce and data would give the
        # same hash, which anvil takes for a known transaction and silently drops
        tx_hash = self._rpc("eth_sendTransaction", [{**tx, "gas": hex(GAS + stats.calls)}])
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.005)
        assert receipt["status"] == 1, f"{function}: eth_call passed but the tx reverted"
        self.now += 1
        block = self.w3.eth.get_block(receipt["blockNumber"])
        assert block["timestamp"] == self.now, "block time drifted from the model's clock"
        stats.done[function] += 1
        return self.m.decode_logs(receipt["logs"])

    def expect_events(self, events, expected: list[tuple[str, dict]]) -> None:
        assert [e["event"] for e in events] == [name for name, _ in expected], events
        for event, (_, args) in zip(events, expected, strict=True):
            for key, want in args.items():
                assert event["args"][key] == want, (event, key, want)

    def pick_project(self, data) -> int:
        """Mostly the first project (so its rounds get far), else any, or an unknown id."""
        known = list(self.model.projects)
        return data.draw(st.sampled_from([1] * 6 + known + [len(known) + 1]))

    def pick_round(self, data, pid: int) -> int:
        p = self.model.projects.get(pid)
        current = p.opened if p else 1
        return data.draw(st.sampled_from([current, current, max(current - 1, 0), current + 1]))

    def actor(self, data, *likely: str) -> str:
        """Mostly the account the rule is meant for, often anyone else."""
        pool = [a for a in likely if a]
        if pool and data.draw(st.integers(0, 9)) < 6:
            return data.draw(st.sampled_from(pool))
        return data.draw(st.sampled_from(self.env.actors))

    def check_round_state(self, pid: int, rnd: int) -> None:
        """The chain's round and project equal the model's."""
        if pid not in self.model.projects:
            return
        chain_p, p = self.m.get_project(pid), self.model.projects[pid]
        assert (chain_p.rounds_opened, chain_p.cancelled, chain_p.refundable) == (
            p.opened,
            p.cancelled,
            p.refundable,
        ), (chain_p, p)
        if rnd < 1 or (pid, rnd) not in self.model.rounds:
            return
        chain_r, r = self.m.get_round(pid, rnd), self.model.rounds[(pid, rnd)]
        got = (int(chain_r.state), chain_r.commits, chain_r.reveals, chain_r.total)
        assert got == (r.state, r.commits, r.reveals, r.total), (chain_r, r)
        assert (chain_r.claimed, chain_r.budget) == (r.claimed, r.budget), (chain_r, r)

    def owed(self, pid: int, sender: str | None = None) -> list[tuple[int, str]]:
        """(round, account) of every unclaimed leaf of the project's finalized rounds."""
        return [
            (rnd, who)
            for (p, rnd), r in sorted(self.model.rounds.items())
            if p == pid and r.state == FINALIZED
            for who in sorted(r.rewards)
            if not self.model.sub(pid, rnd, who).claimed and sender in (None, who)
        ]

    def send_claim_many(self, sender: str, pid: int, claims, proofs, lengths_match=True):
        """claimMany of ``claims`` ((round, amount, proof_ok) each) against the model."""
        rounds = [rnd for rnd, _, _ in claims]
        amounts = [amount for _, amount, _ in claims]
        if not lengths_match:
            amounts = amounts[:-1]
        expected = self.model.check_claim_many(sender, pid, claims, lengths_match)
        before = self.m.balance()
        events = self.call(sender, "claimMany", [pid, rounds, amounts, proofs], expected)
        if events is not None:
            self.expect_events(events, self.model.apply_claim_many(sender, pid, claims))
            assert before - self.m.balance() == sum(amounts)
            for rnd in set(rounds):
                self.check_round_state(pid, rnd)

    # --------------------------------------------------------------- rules

    @rule(
        data=st.data(),
        rounds=st.sampled_from([1, 1, 2, 3]),
        reward=st.sampled_from([1, 7, 1000, 10**15 + 3]),
        windows=st.tuples(*[st.sampled_from([1, 2, 5, 10, 20])] * 3),
        off_by=st.sampled_from([0, 0, 0, 0, 1, -1]),
        broken=st.integers(0, 24),
    )
    def create_project(self, data, rounds, reward, windows, off_by, broken):
        sender = self.actor(data)
        agg = ZERO_ADDRESS if broken == 0 else data.draw(st.sampled_from(self.env.actors))
        if broken == 1:
            rounds = 0
        elif broken == 2:
            reward = 0
        elif broken in (3, 4):  # a zero or an over-long window
            windows = (*windows[:2], 0 if broken == 3 else 365 * 86400 + 1)
        value = max(rounds * reward + off_by, 0)
        expected = self.model.check_create(agg, rounds, reward, windows, value)
        args = [h("spec", sender), agg, rounds, reward, *windows]
        events = self.call(sender, "createProject", args, expected, value=value)
        if events is not None:
            pid, want = self.model.apply_create(sender, agg, rounds, reward, windows, value)
            self.expect_events(events, want)
            self.check_round_state(pid, 0)

    @initialize(data=st.data(), windows=st.tuples(*[st.sampled_from([2, 8, 15, 30])] * 3))
    def first_project(self, data, windows):
        """Every sequence starts with one valid project, so most calls have a target."""
        owner, agg = self.env.actors[0], self.env.actors[1]
        if data.draw(st.booleans()):
            owner, agg = data.draw(st.sampled_from(self.env.actors)), self.env.actors[2]
        reward = data.draw(st.sampled_from([5, 10**15 + 1]))
        rounds = data.draw(st.integers(1, 3))
        args = [h("spec"), agg, rounds, reward, *windows]
        events = self.call(owner, "createProject", args, None, value=rounds * reward)
        _, want = self.model.apply_create(owner, agg, rounds, reward, windows, rounds * reward)
        self.expect_events(events, want)

    @rule(data=st.data(), by_owner=st.integers(0, 9))
    def cancel_project(self, data, by_owner):
        pid = self.pick_project(data)
        p = self.model.projects.get(pid)
        sender = self.actor(data, p.owner if p and by_owner < 2 else "")
        expected = self.model.check_cancel(sender, pid)
        events = self.call(sender, "cancelProject", [pid], expected)
        if events is not None:
            self.expect_events(events, self.model.apply_cancel(pid))
            self.check_round_state(pid, 0)

    @rule(data=st.data())
    def refund(self, data):
        pid = self.pick_project(data)
        p = self.model.projects.get(pid)
        sender = self.actor(data, p.owner if p else "")
        expected = self.model.check_refund(sender, pid)
        before = self.m.balance()
        events = self.call(sender, "refund", [pid], expected)
        if events is not None:
            want = self.model.apply_refund(pid)
            self.expect_events(events, want)
            assert before - self.m.balance() == want[0][1]["amount"]
            self.check_round_state(pid, 0)

    @rule(data=st.data(), gated=st.booleans())
    def open_round(self, data, gated):
        pid = self.pick_project(data)
        p = self.model.projects.get(pid)
        sender = self.actor(data, p.aggregator if p else "")
        admitted = None
        root = ZERO32
        if gated:
            chosen = data.draw(st.lists(st.sampled_from(self.env.actors), min_size=1, max_size=6))
            admitted = frozenset(chosen)
            root = MerkleTree.of_addresses(sorted(admitted)).root
        expected = self.model.check_open(sender, pid)
        events = self.call(sender, "openRound", [pid, h("model", pid), root], expected)
        if events is not None:
            rnd, want = self.model.apply_open(pid, self.now, admitted)
            self.expect_events(events, want)
            self.check_round_state(pid, rnd)

    @rule(data=st.data(), zero=st.integers(0, 19), wrong_proof=st.integers(0, 9))
    def commit(self, data, zero, wrong_proof):
        pid = self.pick_project(data)
        rnd = self.pick_round(data, pid)
        sender = self.actor(data, *self.env.actors[2:9])
        commitment = (
            ZERO32
            if zero == 0
            else self.m.compute_commitment(
                h("update", pid, rnd, sender), sender, h("salt", pid, rnd, sender)
            )
        )
        r = self.model.rounds.get((pid, rnd))
        proof, proof_for = [], None
        if r is not None and r.admitted is not None:
            members = sorted(r.admitted)
            proof_for = sender if sender in r.admitted and wrong_proof else members[0]
            proof = MerkleTree.of_addresses(members).proof_for(proof_for)
        expected = self.model.check_commit(sender, pid, rnd, commitment, proof_for, self.now + 1)
        if expected is None and proof_for is not None and len(r.admitted) == 1:
            pass  # a one-leaf tree: empty proof, root is the leaf
        events = self.call(sender, "commitUpdate", [pid, rnd, commitment, proof], expected)
        if events is not None:
            self.expect_events(events, self.model.apply_commit(sender, pid, rnd, commitment))
            self.check_round_state(pid, rnd)

    @rule(data=st.data())
    def progress(self, data):
        """Move the first project's round one phase on, honestly: open it, let the crowd
        commit or reveal, finalize with a table of the revealed trainers, or claim. The
        other rules interleave random (often hostile) calls with this traffic."""
        p, agg = self.model.projects[1], self.model.projects[1].aggregator
        r = self.model.round(1, p.opened)
        t = self.now + 1
        settled = r.state in (FINALIZED, EXPIRED)
        unpaid = [
            who
            for who in (r.rewards if r.state == FINALIZED else self.env.actors)
            if settled
            and not self.model.sub(1, p.opened, who).claimed
            and (r.state == FINALIZED or self.model.sub(1, p.opened, who).revealed)
        ]
        can_open = self.model.check_open(agg, 1) is None
        if r.state == 0 or (settled and can_open and not (unpaid and data.draw(st.booleans()))):
            expected = self.model.check_open(agg, 1)
            events = self.call(agg, "openRound", [1, h("model"), ZERO32], expected)
            if events is not None:
                self.expect_events(events, self.model.apply_open(1, self.now, None)[1])
        elif r.state == 1 and t <= r.commit_deadline:
            if r.commits and data.draw(st.booleans()):
                self.wait(r.commit_deadline - self.now)  # next call lands in the reveal window
            else:
                self.crowd(data, 5)
        elif r.state == 1 and t <= r.reveal_deadline:
            for who in self.env.actors:
                sub = self.model.sub(1, p.opened, who)
                if sub.commitment and not sub.revealed:
                    update, salt = h("update", 1, p.opened, who), h("salt", 1, p.opened, who)
                    computed = self.m.compute_commitment(update, who, salt)
                    expected = self.model.check_reveal(who, 1, p.opened, computed, self.now + 1)
                    args = [1, p.opened, update, salt]
                    if self.call(who, "revealUpdate", args, expected) is not None:
                        self.model.apply_reveal(who, 1, p.opened)
            if self.now < r.reveal_deadline:
                self.wait(r.reveal_deadline - self.now)
        elif r.state == 1 and t <= r.finalize_deadline and data.draw(st.integers(0, 2)) == 0:
            self.wait(r.finalize_deadline - self.now + 1)  # the aggregator never shows up
        elif r.state == 1 and t <= r.finalize_deadline:
            revealed = [a for a in self.env.actors if self.model.sub(1, p.opened, a).revealed]
            share = r.budget // max(len(revealed), 1)
            table = {a: data.draw(st.integers(0, share)) for a in revealed}
            tree = MerkleTree.of_rewards(sorted(table.items())) if table else None
            total = sum(table.values())
            args = [1, p.opened, h("new"), h("report"), tree.root if tree else ZERO32, total]
            events = self.call(agg, "finalizeRound", args, None)
            self.expect_events(events, self.model.apply_finalize(1, p.opened, table, total))
            if tree is not None:
                self.trees[(1, p.opened)] = tree
        elif r.state == 1:
            events = self.call(agg, "expireRound", [1, p.opened], None)
            self.expect_events(events, self.model.apply_expire(1, p.opened))
        else:
            for who in unpaid if r.state == FINALIZED else unpaid or self.env.actors[2:9]:
                if r.state == 2 and data.draw(st.booleans()):
                    # every round still owed to who (older ones too) in one claimMany
                    rounds = [rnd for rnd, _ in self.owed(1, who)]
                    claims = [(rnd, self.model.round(1, rnd).rewards[who], True) for rnd in rounds]
                    proofs = [self.trees[(1, rnd)].proof_for(who) for rnd in rounds]
                    self.send_claim_many(who, 1, claims, proofs)
                elif r.state == 2:
                    amount, proof = r.rewards[who], self.trees[(1, p.opened)].proof_for(who)
                    expected = self.model.check_claim(who, 1, p.opened, amount, True)
                    events = self.call(who, "claim", [1, p.opened, amount, proof], expected)
                    if events is not None:
                        self.model.apply_claim(who, 1, p.opened, amount)
                else:
                    expected = self.model.check_claim_expired(who, 1, p.opened)
                    events = self.call(who, "claimExpired", [1, p.opened], expected)
                    if events is not None:
                        self.model.apply_claim_expired(who, 1, p.opened)
        self.check_round_state(1, p.opened)

    @rule(data=st.data(), n=st.integers(1, 5))
    def crowd(self, data, n):
        """Several trainers of the first project's current round commit or reveal at once
        (honest traffic, so rounds get reveals and reward tables get payees)."""
        p = self.model.projects[1]
        rnd = p.opened
        r = self.model.round(1, rnd)
        reveal = self.now + 1 > r.commit_deadline
        for sender in data.draw(st.lists(st.sampled_from(self.env.actors[2:9]), max_size=n)):
            update, salt = h("update", 1, rnd, sender), h("salt", 1, rnd, sender)
            if reveal:
                computed = self.m.compute_commitment(update, sender, salt)
                expected = self.model.check_reveal(sender, 1, rnd, computed, self.now + 1)
                events = self.call(sender, "revealUpdate", [1, rnd, update, salt], expected)
                if events is not None:
                    self.expect_events(events, self.model.apply_reveal(sender, 1, rnd))
                continue
            commitment = self.m.compute_commitment(update, sender, salt)
            proof, proof_for = [], None
            if r.admitted is not None:
                members = sorted(r.admitted)
                proof_for = sender if sender in r.admitted else members[0]
                proof = MerkleTree.of_addresses(members).proof_for(proof_for)
            now = self.now + 1
            expected = self.model.check_commit(sender, 1, rnd, commitment, proof_for, now)
            events = self.call(sender, "commitUpdate", [1, rnd, commitment, proof], expected)
            if events is not None:
                self.expect_events(events, self.model.apply_commit(sender, 1, rnd, commitment))
        self.check_round_state(1, rnd)

    @rule(data=st.data(), wrong_salt=st.integers(0, 9))
    def reveal(self, data, wrong_salt):
        pid = self.pick_project(data)
        rnd = self.pick_round(data, pid)
        sender = self.actor(data, *self.env.actors[2:9])
        update = h("update", pid, rnd, sender)
        salt = h("salt", pid, rnd, sender) if wrong_salt else h("wrong")
        computed = self.m.compute_commitment(update, sender, salt)
        expected = self.model.check_reveal(sender, pid, rnd, computed, self.now + 1)
        events = self.call(sender, "revealUpdate", [pid, rnd, update, salt], expected)
        if events is not None:
            self.expect_events(events, self.model.apply_reveal(sender, pid, rnd))
            self.check_round_state(pid, rnd)

    @rule(data=st.data(), declared_off=st.sampled_from([0, 0, 0, 0, 1, -1, 10**18]))
    def finalize(self, data, declared_off):
        pid = self.pick_project(data)
        rnd = self.pick_round(data, pid)
        p = self.model.projects.get(pid)
        sender = self.actor(data, p.aggregator if p else "")
        budget = self.model.round(pid, rnd).budget
        revealed = [a for a in self.env.actors if self.model.sub(pid, rnd, a).revealed]
        pool = revealed if revealed and data.draw(st.integers(0, 3)) else self.env.actors
        payees = data.draw(st.lists(st.sampled_from(pool), max_size=5, unique=True))
        table = {a: data.draw(st.integers(0, max(budget // 4, 1))) for a in payees}
        total = max(sum(table.values()) + declared_off, 0)
        tree = MerkleTree.of_rewards(sorted(table.items())) if table else None
        root = tree.root if tree else ZERO32
        expected = self.model.check_finalize(sender, pid, rnd, total, self.now + 1)
        args = [pid, rnd, h("new", pid, rnd), h("report", pid, rnd), root, total]
        events = self.call(sender, "finalizeRound", args, expected)
        if events is not None:
            self.expect_events(events, self.model.apply_finalize(pid, rnd, table, total))
            if tree is not None:
                self.trees[(pid, rnd)] = tree
            self.check_round_state(pid, rnd)

    @rule(
        data=st.data(),
        lie=st.sampled_from([0, 0, 0, 1, -1]),
        stolen=st.integers(0, 9),
        many=st.integers(0, 2),
    )
    def claim(self, data, lie, stolen, many):
        if many == 0:  # a third of the claims go through claimMany
            self.claim_many(data, max(lie, 0), mismatch=stolen)
            return
        pid = self.pick_project(data)
        rnd = self.pick_round(data, pid)
        r = self.model.round(pid, rnd)
        sender = self.actor(data, *r.rewards)
        tree = self.trees.get((pid, rnd))
        amount, proof, proof_ok = 1, [], False
        if tree is not None:
            # usually the sender's own leaf; sometimes someone else's leaf and proof (theft)
            owner = sender if sender in r.rewards and stolen else sorted(r.rewards)[0]
            amount = max(r.rewards[owner] + lie, 0)
            proof = tree.proof_for(owner)
            proof_ok = owner == sender and amount == r.rewards[owner]
        expected = self.model.check_claim(sender, pid, rnd, amount, proof_ok)
        before = self.m.balance()
        events = self.call(sender, "claim", [pid, rnd, amount, proof], expected)
        if events is not None:
            self.expect_events(events, self.model.apply_claim(sender, pid, rnd, amount))
            assert before - self.m.balance() == amount
            self.check_round_state(pid, rnd)

    def claim_many(self, data, lie: int, mismatch: int) -> None:
        """Part of the ``claim`` rule: several rounds at once, the sender's unclaimed
        finalized rounds, sometimes with a wrong last amount, an extra (unpaid, unfinished
        or repeated) round, or (rarely) arrays of different lengths."""
        pid = self.pick_project(data)
        sender = self.actor(data, *sorted({who for _, who in self.owed(pid)}))
        rounds = [rnd for rnd, _ in self.owed(pid, sender)]
        extra = data.draw(st.sampled_from([0, 0, 0, 1, 2]))
        rounds += [self.pick_round(data, pid) for _ in range(extra)]
        claims, proofs = [], []
        for i, rnd in enumerate(rounds):
            r, tree = self.model.round(pid, rnd), self.trees.get((pid, rnd))
            if tree is None or sender not in r.rewards:
                claims.append((rnd, 1, False))
                proofs.append([])
                continue
            wrong = lie if i == len(rounds) - 1 else 0
            claims.append((rnd, r.rewards[sender] + wrong, wrong == 0))
            proofs.append(tree.proof_for(sender))
        self.send_claim_many(sender, pid, claims, proofs, lengths_match=mismatch != 0)

    @rule(data=st.data())
    def expire(self, data):
        pid = self.pick_project(data)
        rnd = self.pick_round(data, pid)
        sender = self.actor(data)  # anyone may expire
        expected = self.model.check_expire(pid, rnd, self.now + 1)
        events = self.call(sender, "expireRound", [pid, rnd], expected)
        if events is not None:
            self.expect_events(events, self.model.apply_expire(pid, rnd))
            self.check_round_state(pid, rnd)

    @rule(data=st.data())
    def claim_expired(self, data):
        pid = self.pick_project(data)
        rnd = self.pick_round(data, pid)
        sender = self.actor(data, *self.env.actors[2:9])
        expected = self.model.check_claim_expired(sender, pid, rnd)
        before = self.m.balance()
        events = self.call(sender, "claimExpired", [pid, rnd], expected)
        if events is not None:
            want = self.model.apply_claim_expired(sender, pid, rnd)
            self.expect_events(events, want)
            assert before - self.m.balance() == want[0][1]["amount"]
            self.check_round_state(pid, rnd)

    @rule(seconds=st.sampled_from(JUMPS))
    def wait(self, seconds):
        self.now += seconds
        self._rpc("evm_setNextBlockTimestamp", [self.now])
        self._rpc("evm_mine", [])

    # ---------------------------------------------------------- invariants

    @invariant()
    def escrow_balanced(self):
        self.env.stats.steps += 1
        assert self.m.balance() - self.escrow_before == self.model.escrow

    @invariant()
    def nobody_paid_beyond_allocation(self):
        for who, amount in self.model.paid.items():
            assert amount <= self.model.allocated.get(who, 0), (who, amount)
        for r in self.model.rounds.values():
            assert r.claimed <= r.total <= r.budget
            if r.state == FINALIZED:
                assert r.claimed <= sum(r.rewards.values())
            if r.state == EXPIRED and r.reveals:
                assert r.claimed <= r.total


def campaign(node: AnvilNode, examples: int, steps: int, derandomize: bool = False) -> Stats:
    """Run ``examples`` random sequences of up to ``steps`` calls; raises on a failure."""
    global ENV
    ENV = make_env(node)
    config = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        derandomize=derandomize,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    run_state_machine_as_test(MarketMachine, settings=config)
    return ENV.stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=400)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--json", help="write the counts to this file")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with AnvilNode.start() as node:
        try:
            stats = campaign(node, args.examples, args.steps)
            failed = None
        except Exception as exc:  # report the counts with the failure
            stats, failed = ENV.stats if ENV else Stats(), f"{type(exc).__name__}: {exc}"
    result = {**stats.as_dict(), "seconds": round(time.monotonic() - started, 1)}
    result["failure"] = failed
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
