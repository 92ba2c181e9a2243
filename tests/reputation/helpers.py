"""Real chain history for reputation tests: projects with a spec on the store, rounds
finalized with a round report whose reward table hashes to the on-chain rewards root."""

from __future__ import annotations

import hashlib

from market.aggregator.report import RoundReport, SubmissionEntry
from market.chain import ZERO32
from market.proofs.merkle import MerkleTree
from market.reputation import AdmissionPolicy
from market.spec import ProjectSpec
from market.storage.cid import digest_of_cid

WINDOWS = (100, 100, 100)


def h(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def publish_spec(store, policy: AdmissionPolicy | None, name: str = "p") -> bytes:
    """A spec whose only field that matters here is ``admission``; returns its digest."""
    spec = ProjectSpec(
        name=name,
        model={},
        layout=[],
        initial_model="none",
        admission=policy.to_dict() if policy else {"policy": "open"},
    )
    return digest_of_cid(store.put(spec.to_bytes()))


def create_project(
    env, store, owner, policy=None, rounds: int = 3, reward: int = 10**18, aggregator=None
) -> int:
    aggregator = aggregator or env.aggregator
    pid, _ = env.market.create_project(
        owner, publish_spec(store, policy), aggregator.address, rounds, reward, *WINDOWS
    )
    return pid


def pay_round(
    env, store, pid: int, rewards: dict[str, int], root: bytes = ZERO32, aggregator=None
) -> int:
    """Open a round, let its windows pass and finalize it paying ``rewards`` (wei)."""
    aggregator = aggregator or env.aggregator
    rnd, _ = env.market.open_round(aggregator, pid, h(f"model{pid}"), root)
    env.advance(WINDOWS[0] + WINDOWS[1] + 1)
    finalize_with(env, store, pid, rnd, rewards, aggregator)
    return rnd


def finalize_with(env, store, pid: int, rnd: int, rewards: dict[str, int], aggregator=None) -> str:
    leaves = [(a, v) for a, v in rewards.items() if v > 0]
    rewards_root = MerkleTree.of_rewards(leaves).root if leaves else ZERO32
    report = RoundReport(
        chain_id=env.w3.eth.chain_id,
        contract=env.market.address,
        project_id=pid,
        round=rnd,
        rule="fedavg",
        rule_params={},
        global_model="none",
        new_model="none",
        budget_wei=10**18,
        total_wei=sum(rewards.values()),
        rewards_root="0x" + rewards_root.hex(),
        submissions=[
            SubmissionEntry(a, None, "accepted", None, 0.0, 0, v) for a, v in rewards.items()
        ],
    )
    cid = store.put(report.to_bytes())
    env.market.finalize_round(
        aggregator or env.aggregator,
        pid,
        rnd,
        h("new"),
        digest_of_cid(cid),
        rewards_root,
        sum(rewards.values()),
    )
    return cid
