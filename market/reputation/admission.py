"""Round admission: who may commit an update, as a list with a Merkle root for the chain.

Policy (per project, public in the project spec):

- **established** applicants — ``known``: reachable from the project's seeds through the
  feedback graph — are ranked by reputation; those below ``min_reputation`` are refused
  (the network has an opinion of them, and it is low), the best ``top_k`` are admitted.
  A Sybil region's reputation is bounded by its attack edges (MeritRank), so a crowd of
  connected Sybils splits a bounded mass and falls under the minimum as it grows.
- **newcomers** — unknown: no feedback path from the seeds leads to them — cannot be
  ranked; up to ``newcomer_quota`` of them are drawn by lottery so honest new trainers can
  still enter. Fresh identities cost nothing, so the quota is what bounds a crowd of them:
  never more than ``newcomer_quota`` per round, whatever the crowd's size (a crowd of fresh
  identities does dilute honest newcomers' odds: a cost per application, such as a bond,
  is the remedy, outside this module).

Every order is deterministic: ties and the lottery follow keccak256(public_seed ‖ address),
with a public seed (e.g. a block hash fixed before applications close), so anyone holding
the graph and the seed recomputes the same list, root and proofs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from eth_utils import is_address, keccak, to_canonical_address, to_checksum_address

from market.errors import ReputationError

if TYPE_CHECKING:
    from market.reputation.meritrank import MeritRank

EMPTY_ROOT = keccak(b"learning-market: nobody admitted")
"""Root published when nobody is admitted. Not zero — the contract reads a zero root as
"admission open" — and no address's leaf hashes to it, so every commit reverts."""

POLICY_NAME = "meritrank"
"""``ProjectSpec.admission["policy"]`` value selecting this policy (``"open"``: no list)."""


class AddressTree(Protocol):
    """What admission needs from a Merkle tree (``market.proofs.merkle.MerkleTree``)."""

    @property
    def root(self) -> bytes: ...

    def proof_for(self, value: Any) -> list[bytes]: ...


def _default_tree(addresses: list[str]) -> AddressTree:
    from market.proofs.merkle import MerkleTree

    return MerkleTree.of_addresses(addresses)


@dataclass(frozen=True)
class AdmissionPolicy:
    """A project's admission rule; see the module docstring."""

    top_k: int
    min_reputation: float = 0.0
    newcomer_quota: int = 0

    def __post_init__(self) -> None:
        if self.top_k < 0 or self.newcomer_quota < 0:
            raise ReputationError("top_k and newcomer_quota must be >= 0")
        if not self.min_reputation >= 0.0:
            raise ReputationError(f"min_reputation must be >= 0, got {self.min_reputation}")

    def to_dict(self) -> dict[str, Any]:
        """The form stored in a project spec's ``admission`` field."""
        return {
            "policy": POLICY_NAME,
            "top_k": self.top_k,
            "min_reputation": self.min_reputation,
            "newcomer_quota": self.newcomer_quota,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AdmissionPolicy:
        unknown = set(data) - {"policy", "top_k", "min_reputation", "newcomer_quota"}
        if unknown or "top_k" not in data or data.get("policy", POLICY_NAME) != POLICY_NAME:
            raise ReputationError(
                f"a {POLICY_NAME} admission policy needs top_k (and optionally "
                f"min_reputation, newcomer_quota); got {dict(data)}"
            )
        return cls(
            top_k=int(data["top_k"]),
            min_reputation=float(data.get("min_reputation", 0.0)),
            newcomer_quota=int(data.get("newcomer_quota", 0)),
        )


def policy_from_spec(admission: Mapping[str, Any]) -> AdmissionPolicy | None:
    """The policy in a project spec's ``admission`` field; None when admission is open."""
    if admission.get("policy", "open") == "open":
        return None
    return AdmissionPolicy.from_dict(admission)


@dataclass(frozen=True)
class Admission:
    """The admitted list of one round, its Merkle root and each member's proof."""

    admitted: list[str]
    established: list[str]
    newcomers: list[str]
    refused: dict[str, str]
    root: bytes
    proofs: dict[str, list[bytes]] = field(repr=False)

    def proof_for(self, address: str) -> list[bytes]:
        """Proof that ``address`` is admitted (for ``commitUpdate``)."""
        try:
            return self.proofs[normalise_address(address)]
        except KeyError:
            raise ReputationError(
                f"{address} is not admitted this round; see refused[{address!r}] for why"
            ) from None

    def to_json(self) -> dict[str, Any]:
        """JSON-able form, the document published in the store."""
        return {
            "admitted": self.admitted,
            "established": self.established,
            "newcomers": self.newcomers,
            "refused": self.refused,
            "root": "0x" + self.root.hex(),
            "proofs": {a: ["0x" + p.hex() for p in ps] for a, ps in self.proofs.items()},
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Admission:
        """Read back :meth:`to_json` (e.g. a trainer fetching its proof from the store)."""
        try:
            return cls(
                admitted=list(doc["admitted"]),
                established=list(doc["established"]),
                newcomers=list(doc["newcomers"]),
                refused=dict(doc["refused"]),
                root=bytes.fromhex(doc["root"].removeprefix("0x")),
                proofs={
                    a: [bytes.fromhex(p.removeprefix("0x")) for p in ps]
                    for a, ps in doc["proofs"].items()
                },
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ReputationError(f"malformed admission document: {exc!r}") from exc


def normalise_address(address: str) -> str:
    """EIP-55 checksummed form; raises ReputationError on anything else."""
    if not isinstance(address, str) or not is_address(address):
        raise ReputationError(f"not an Ethereum address: {address!r}")
    return to_checksum_address(address)


def lottery_key(public_seed: bytes, address: str) -> bytes:
    """keccak256(public_seed ‖ 20-byte address): the public, unbiasable tie-break order."""
    return keccak(bytes(public_seed) + to_canonical_address(normalise_address(address)))


def _address_order(address: str) -> int:
    return int(address, 16)


def admit(
    applicants: Iterable[str],
    reputations: Mapping[str, float],
    policy: AdmissionPolicy,
    public_seed: bytes,
    known: Collection[str] | None = None,
    tree_factory: Callable[[list[str]], AddressTree] | None = None,
) -> Admission:
    """Decide a round's admitted set.

    ``reputations`` maps addresses (any case) to reputation from the project's seeds
    (absent = 0); ``public_seed`` fixes ties and the newcomer lottery; ``known`` is the set
    of addresses the seeds reach (``FeedbackGraph.reachable``) — without it, an address is
    known when its reputation is positive, which a Monte-Carlo estimate can miss for a far
    node; ``tree_factory`` builds the Merkle tree of the sorted admitted addresses.
    """
    # Graph nodes that are not addresses (none in the market) cannot apply: skip them.
    rep = {to_checksum_address(a): float(v) for a, v in reputations.items() if is_address(a)}
    known_set = (
        {normalise_address(a) for a in known if is_address(a)}
        if known is not None
        else {a for a, v in rep.items() if v > 0.0}
    )
    seen: set[str] = set()
    ordered: list[str] = []
    for a in applicants:
        addr = normalise_address(a)
        if addr not in seen:
            seen.add(addr)
            ordered.append(addr)

    def tie(a: str) -> bytes:
        return lottery_key(public_seed, a)

    refused: dict[str, str] = {}
    established_pool = [a for a in ordered if a in known_set]
    newcomer_pool = [a for a in ordered if a not in known_set]

    eligible = []
    for a in established_pool:
        r = rep.get(a, 0.0)
        if r < policy.min_reputation:
            refused[a] = f"reputation {r:.6g} below the minimum {policy.min_reputation:.6g}"
        else:
            eligible.append(a)
    eligible.sort(key=lambda a: (-rep.get(a, 0.0), tie(a)))
    established = eligible[: policy.top_k]
    for a in eligible[policy.top_k :]:
        refused[a] = f"not in the top {policy.top_k} by reputation"

    newcomer_pool.sort(key=tie)
    newcomers = newcomer_pool[: policy.newcomer_quota]
    for a in newcomer_pool[policy.newcomer_quota :]:
        refused[a] = f"newcomer quota of {policy.newcomer_quota} already drawn"

    admitted = sorted(established + newcomers, key=_address_order)
    root, proofs = _tree(admitted, tree_factory or _default_tree)
    return Admission(
        admitted=admitted,
        established=sorted(established, key=_address_order),
        newcomers=sorted(newcomers, key=_address_order),
        refused=dict(sorted(refused.items())),
        root=root,
        proofs=proofs,
    )


def _tree(
    admitted: Sequence[str], factory: Callable[[list[str]], AddressTree]
) -> tuple[bytes, dict[str, list[bytes]]]:
    if not admitted:
        return EMPTY_ROOT, {}
    tree = factory(list(admitted))
    return bytes(tree.root), {a: [bytes(p) for p in tree.proof_for(a)] for a in admitted}


def admission_for(
    rank: MeritRank,
    seeds: str | Sequence[str],
    applicants: Iterable[str],
    policy: AdmissionPolicy,
    public_seed: bytes,
    tree_factory: Callable[[list[str]], AddressTree] | None = None,
) -> Admission:
    """A round's admission from the project's seeds over ``rank``'s current graph."""
    seed_list = [seeds] if isinstance(seeds, str) else list(seeds)
    return admit(
        applicants,
        rank.reputation(seed_list),
        policy,
        public_seed,
        known=rank.graph.reachable(seed_list),
        tree_factory=tree_factory,
    )
