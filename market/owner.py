"""The project owner's actions: publish the spec and initial model, escrow the budget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_account.signers.local import LocalAccount

from market.aggregator.rules import rule_for
from market.chain import LearningMarket, TxResult, compile_contracts, deploy_contract
from market.errors import ProofError
from market.spec import ProjectSpec
from market.storage import ModelLayout, Store, encode_model
from market.storage.cid import digest_of_cid
from market.trainer.model import ModelSpec, build_model, get_weights

if TYPE_CHECKING:
    from market.proofs.zk import Circuit


@dataclass(frozen=True)
class Windows:
    """Seconds each phase of a round lasts on chain."""

    submission: int = 600
    reveal: int = 600
    finalize: int = 3600


@dataclass(frozen=True)
class CreatedProject:
    project_id: int
    spec_cid: str
    spec: ProjectSpec
    tx: TxResult


def publish_spec(
    store: Store,
    *,
    name: str,
    model: ModelSpec,
    seed: int = 0,
    rule: str = "guard",
    rule_params: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    max_update_norm: float | None = None,
    max_update_bytes: int | None = None,
    admission: dict[str, Any] | None = None,
) -> tuple[str, ProjectSpec]:
    """Upload a freshly initialised model and the spec that names it; return the spec CID."""
    weights = get_weights(build_model(model, seed=seed))
    layout = ModelLayout.from_tensors(weights)
    rule_for(rule, rule_params or {}, layout.entries)  # a head naming no layer fails here
    initial_cid = store.put(encode_model(weights))
    store.pin(initial_cid)
    extra: dict[str, Any] = {"training": training} if training else {}
    if max_update_bytes is not None:
        extra["max_update_bytes"] = max_update_bytes
    if admission is not None:  # e.g. AdmissionPolicy(...).to_dict(); default: open
        extra["admission"] = admission
    spec = ProjectSpec(
        name=name,
        model=model.to_dict(),
        layout=[[n, list(shape)] for n, shape in layout.entries],
        initial_model=initial_cid,
        rule=rule,
        rule_params=rule_params or {},
        max_update_norm=max_update_norm,
        **extra,
    )
    spec_cid = store.put(spec.to_bytes())
    store.pin(spec_cid)
    return spec_cid, spec


def create_project(
    market: LearningMarket,
    store: Store,
    owner: LocalAccount,
    *,
    aggregator: str,
    rounds: int,
    reward_per_round_wei: int,
    windows: Windows,
    **spec_options: Any,
) -> CreatedProject:
    """Publish the spec, then create the project with rounds × reward escrowed."""
    spec_cid, spec = publish_spec(store, **spec_options)
    project_id, tx = market.create_project(
        owner,
        digest_of_cid(spec_cid),
        aggregator,
        rounds,
        reward_per_round_wei,
        windows.submission,
        windows.reveal,
        windows.finalize,
    )
    return CreatedProject(project_id, spec_cid, spec, tx)


def check_provable(reward_per_round_wei: int, slots: int = 8, sketch_dim: int = 16) -> Circuit:
    """The score-split circuit a proof project would use, if its rounds can be proven: the
    setup files exist and the round budget fits the circuit's 96-bit reward range. Call it
    before creating the project, so a project is never left without its verifier."""
    from market.proofs.zk import MAX_WEI_BITS, Circuit

    circuit = Circuit(slots, sketch_dim)
    circuit.require()
    if reward_per_round_wei >= 1 << MAX_WEI_BITS:
        raise ProofError(
            f"reward per round {reward_per_round_wei} wei is too large to prove: the circuit "
            f"proves budgets below 2^{MAX_WEI_BITS} wei"
        )
    return circuit


def require_proofs(
    market: LearningMarket,
    owner: LocalAccount,
    project_id: int,
    slots: int = 8,
    sketch_dim: int = 16,
) -> tuple[str, TxResult]:
    """Deploy the generated Groth16 verifier of the score-split circuit and bind it to the
    project, so every round must be finalized with a proof. Only before the first round.

    The circuit proves rounds of at most ``slots`` accepted updates; a larger round cannot
    be proven and would expire, so choose the circuit for the expected crowd.
    """
    circuit = check_provable(market.get_project(project_id).reward_per_round, slots, sketch_dim)
    artifact = compile_contracts()[circuit.contract]
    verifier = deploy_contract(market.w3, owner, artifact.abi, artifact.bytecode)
    return verifier, market.set_proof_verifier(owner, project_id, verifier)
