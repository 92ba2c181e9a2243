"""``market``: the command line for owners, trainers, aggregators and developers.

Every command talks to a chain given by ``--rpc-url`` (default: the local dev chain that
``market dev chain`` starts) and a store given by ``--store`` (default: the embedded store
under ``--data-dir``). Keys: anvil's dev accounts (``--account N``) on chain 31337 only;
elsewhere ``MARKET_PRIVATE_KEY`` or ``--keystore``. Errors print as one line; ``--debug``
shows the trace. ``--json`` prints one JSON document on stdout for scripts.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from market.errors import ConfigError, MarketError

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="learning-market: pay trainers to improve a model, trusting nobody.",
)
dev_app = typer.Typer(no_args_is_help=True, help="Local development chain.")
owner_app = typer.Typer(no_args_is_help=True, help="Project owners: create, cancel, refund.")
trainer_app = typer.Typer(no_args_is_help=True, help="Trainers: join rounds, reveal, claim.")
aggregator_app = typer.Typer(no_args_is_help=True, help="Aggregators: open and finalize rounds.")
store_app = typer.Typer(no_args_is_help=True, help="The content-addressed store.")
app.add_typer(dev_app, name="dev")
app.add_typer(owner_app, name="owner")
app.add_typer(trainer_app, name="trainer")
app.add_typer(aggregator_app, name="aggregator")
app.add_typer(store_app, name="store")
reputation_app = typer.Typer(
    no_args_is_help=True, help="Reputation: MeritRank scores and round admission."
)
app.add_typer(reputation_app, name="reputation")
config_app = typer.Typer(no_args_is_help=True, help="Service configuration.")
app.add_typer(config_app, name="config")

out = Console()
err = Console(stderr=True)

DEV_CHAIN_ID = 31337
ROLE_DEV_ACCOUNT = {"deployer": 0, "owner": 1, "aggregator": 2, "trainer": 3}
WEI_PER_ETH = 10**18

RpcUrl = Annotated[
    str, typer.Option("--rpc-url", envvar="MARKET_RPC_URL", help="EVM JSON-RPC URL.")
]
StoreSpec = Annotated[
    str,
    typer.Option(
        "--store",
        envvar="MARKET_STORE",
        help="'embedded' (on disk under --data-dir), 'ipfs:URL' (an IPFS node's RPC API) "
        "or 'ipfs' (the node at $MARKET_IPFS_API, default http://127.0.0.1:5001).",
    ),
]
DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="MARKET_DATA_DIR",
        help="Where the embedded store, database and deployments live.",
    ),
]
DbUrl = Annotated[
    str | None,
    typer.Option(
        "--db-url", envvar="MARKET_DB_URL", help="SQLAlchemy URL (default: SQLite in --data-dir)."
    ),
]
ContractOpt = Annotated[
    str | None,
    typer.Option(
        "--contract",
        envvar="MARKET_CONTRACT",
        help="LearningMarket address (default: the one deployed by `market dev chain`).",
    ),
]
AccountOpt = Annotated[
    int | None, typer.Option("--account", help="Dev account index (chain 31337 only).")
]
KeystoreOpt = Annotated[
    Path | None,
    typer.Option("--keystore", help="Keystore JSON file; password from MARKET_KEYSTORE_PASSWORD."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
ProjectOpt = Annotated[int, typer.Option("--project", "-p", help="Project id.")]
RoundOpt = Annotated[
    int | None, typer.Option("--round", "-r", help="Round number (default: latest).")
]

DEFAULT_RPC = "http://127.0.0.1:8545"
DEFAULT_DATA = Path(".market")


class Env:
    """What a command needs, built lazily from its options."""

    def __init__(
        self,
        rpc_url: str,
        store: str,
        data_dir: Path,
        db_url: str | None = None,
        contract: str | None = None,
    ) -> None:
        self.rpc_url, self.store_spec, self.data_dir = rpc_url, store, data_dir
        self.db_url, self.contract_address = db_url, contract

    @cached_property
    def w3(self):  # noqa: ANN201
        from market.chain import connect

        return connect(self.rpc_url)

    @cached_property
    def chain_id(self) -> int:
        return self.w3.eth.chain_id

    @cached_property
    def market(self):  # noqa: ANN201
        from market.chain import LearningMarket

        address = self.contract_address or read_deployment(self.data_dir, self.chain_id)
        return LearningMarket(self.w3, address)

    @cached_property
    def store(self):  # noqa: ANN201
        from market.storage import open_store

        return open_store(self.store_spec, self.data_dir)

    @cached_property
    def db(self):  # noqa: ANN201
        from market.db import Database

        return Database.at(self.data_dir, self.db_url)

    def account(self, role: str, index: int | None, keystore: Path | None):  # noqa: ANN201
        """Dev account by index (or the role's default) on 31337; else keystore or env key."""
        from market.chain import dev_accounts, load_account

        if index is not None or (
            keystore is None and self.chain_id == DEV_CHAIN_ID and not _env_key_set()
        ):
            if self.chain_id != DEV_CHAIN_ID:
                raise ConfigError(
                    f"--account works only on the dev chain (31337), not chain {self.chain_id}; "
                    "use --keystore or MARKET_PRIVATE_KEY"
                )
            accounts = dev_accounts(self.w3)
            chosen = ROLE_DEV_ACCOUNT[role] if index is None else index
            if not 0 <= chosen < len(accounts):
                raise ConfigError(f"--account must be 0..{len(accounts) - 1}, got {chosen}")
            return accounts[chosen]
        return load_account(self.w3, keystore=keystore)


def _env_key_set() -> bool:

    return bool(os.environ.get("MARKET_PRIVATE_KEY"))


def deployment_file(data_dir: Path, chain_id: int) -> Path:
    return data_dir / "deployments" / f"{chain_id}.json"


def read_deployment(data_dir: Path, chain_id: int) -> str:
    path = deployment_file(data_dir, chain_id)
    try:
        return json.loads(path.read_text())["LearningMarket"]
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"no LearningMarket deployment known for chain {chain_id} ({path}); "
            "start `market dev chain`, run `market dev deploy`, or pass --contract"
        ) from exc


def write_deployment(data_dir: Path, chain_id: int, address: str) -> Path:
    path = deployment_file(data_dir, chain_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"LearningMarket": address}, indent=2))
    tmp.replace(path)
    return path


def parse_eth(value: str) -> int:
    """An ETH amount as text ('1.5') in wei, exactly."""
    try:
        wei = Decimal(value) * WEI_PER_ETH
    except InvalidOperation as exc:
        raise ConfigError(f"not an ETH amount: {value!r}") from exc
    if wei != wei.to_integral_value() or wei < 0:
        raise ConfigError(f"ETH amount {value!r} is negative or finer than one wei")
    return int(wei)


def parse_params(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values parsed as JSON when they are JSON, else kept as text."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"rule parameter {item!r} is not key=value")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


def emit(data: dict[str, Any], as_json: bool, table: Table | None = None) -> None:
    if as_json:
        print(json.dumps(data, indent=2, default=str))
    elif table is not None:
        out.print(table)
    else:
        for key, value in data.items():
            out.print(f"[bold]{key}[/]: {value}")


def eth(wei: int) -> str:
    return f"{Decimal(wei) / WEI_PER_ETH:f} ETH"


# --------------------------------------------------------------------------------- dev


@dev_app.command("chain")
def dev_chain(
    port: Annotated[int, typer.Option(help="Loopback port for the JSON-RPC server.")] = 8545,
    data_dir: DataDir = DEFAULT_DATA,
    block_time: Annotated[float | None, typer.Option(help="Mine every N seconds.")] = None,
) -> None:
    """Start anvil on 127.0.0.1, deploy LearningMarket, print the URL; stays up until Ctrl-C."""
    from market.chain import AnvilNode, connect, deploy_market, dev_accounts

    with AnvilNode.start(port=port, block_time=block_time) as node:
        w3 = connect(node.rpc_url)
        market = deploy_market(w3, dev_accounts(w3)[ROLE_DEV_ACCOUNT["deployer"]])
        path = write_deployment(data_dir, w3.eth.chain_id, market.address)
        out.print(f"dev chain: [bold]{node.rpc_url}[/] (chain id {w3.eth.chain_id})")
        out.print(f"LearningMarket: [bold]{market.address}[/] (recorded in {path})")
        out.print("dev accounts: 1 owner, 2 aggregator, 3+ trainers. Ctrl-C to stop.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            out.print("stopping the dev chain")


@dev_app.command("deploy")
def dev_deploy(
    rpc_url: RpcUrl = DEFAULT_RPC,
    data_dir: DataDir = DEFAULT_DATA,
    account: AccountOpt = None,
    keystore: KeystoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compile and deploy LearningMarket to the chain at --rpc-url and record its address."""
    from market.chain import deploy_market

    env = Env(rpc_url, "embedded", data_dir)
    market = deploy_market(env.w3, env.account("deployer", account, keystore))
    write_deployment(data_dir, env.chain_id, market.address)
    emit({"chain_id": env.chain_id, "contract": market.address}, as_json)


@dev_app.command("advance")
def dev_advance(
    seconds: Annotated[int, typer.Argument(help="Seconds to move the dev chain's clock.")],
    rpc_url: RpcUrl = DEFAULT_RPC,
    as_json: JsonOpt = False,
) -> None:
    """Fast-forward the dev chain's clock (evm_increaseTime) and mine a block: close windows now."""
    from market.chain import increase_time

    env = Env(rpc_url, "embedded", DEFAULT_DATA)
    emit({"chain_time": increase_time(env.w3, seconds)}, as_json)


# ------------------------------------------------------------------------------- owner


@owner_app.command("create-project")
def owner_create_project(
    name: Annotated[str, typer.Option(help="Project name.")] = "digits",
    rounds: Annotated[int, typer.Option(help="Number of rounds.")] = 3,
    reward_per_round: Annotated[str, typer.Option(help="Reward per round in ETH.")] = "1",
    submission_window: Annotated[int, typer.Option(help="Commit window, seconds.")] = 120,
    reveal_window: Annotated[int, typer.Option(help="Reveal window, seconds.")] = 120,
    finalize_window: Annotated[int, typer.Option(help="Finalize window, seconds.")] = 3600,
    rule: Annotated[
        str, typer.Option(help="Aggregation rule (market aggregator rules lists them).")
    ] = "guard",
    rule_param: Annotated[list[str] | None, typer.Option(help="Rule parameter key=value.")] = None,
    hidden: Annotated[str, typer.Option(help="Hidden layer widths, comma-separated.")] = "64,64",
    aggregator: Annotated[str | None, typer.Option(help="Aggregator address.")] = None,
    max_update_norm: Annotated[float | None, typer.Option(help="Reject larger updates.")] = None,
    admission: Annotated[
        str,
        typer.Option(
            help="'open', or a MeritRank policy: 'top_k=5,min_reputation=0.01,newcomer_quota=2'."
        ),
    ] = "open",
    seed: Annotated[int, typer.Option(help="Seed of the initial model.")] = 0,
    proof: Annotated[
        bool,
        typer.Option(
            help="Require a Groth16 proof of the reward split in every round "
            "(deploys the 8-trainer × 16-dim score-split verifier)."
        ),
    ] = False,
    rpc_url: RpcUrl = DEFAULT_RPC,
    store: StoreSpec = "embedded",
    data_dir: DataDir = DEFAULT_DATA,
    contract: ContractOpt = None,
    account: AccountOpt = None,
    keystore: KeystoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Publish the spec and initial model, and escrow rounds × reward on chain."""
    from market.aggregator.rules import get_rule
    from market.owner import Windows, check_provable, create_project, require_proofs
    from market.reputation.commands import parse_admission
    from market.trainer.model import ModelSpec

    params = parse_params(rule_param or [])
    get_rule(rule, **params)  # a bad rule or parameter fails here, before money moves
    env = Env(rpc_url, store, data_dir, contract=contract)
    if aggregator is None:
        if env.chain_id != DEV_CHAIN_ID:
            raise ConfigError("--aggregator ADDRESS is required outside the dev chain")
        aggregator = env.account("aggregator", None, None).address
    owner = env.account("owner", account, keystore)
    reward_wei = parse_eth(reward_per_round)
    if proof:
        check_provable(reward_wei)  # before money moves: no project without its verifier
    created = create_project(
        env.market,
        env.store,
        owner,
        aggregator=aggregator,
        rounds=rounds,
        reward_per_round_wei=reward_wei,
        windows=Windows(submission_window, reveal_window, finalize_window),
        name=name,
        model=ModelSpec(hidden=tuple(int(h) for h in hidden.split(",") if h)),
        seed=seed,
        rule=rule,
        rule_params=params,
        max_update_norm=max_update_norm,
        admission=parse_admission(admission),
    )
    verifier = require_proofs(env.market, owner, created.project_id)[0] if proof else None
    emit(
        {
            "project_id": created.project_id,
            "spec_cid": created.spec_cid,
            "budget_wei": rounds * parse_eth(reward_per_round),
            "tx": created.tx.tx_hash,
            "gas_used": created.tx.gas_used,
            "proof_verifier": verifier,
        },
        as_json,
    )


@owner_app.command("cancel")
def owner_cancel(
    project: ProjectOpt,
    rpc_url: RpcUrl = DEFAULT_RPC,
    data_dir: DataDir = DEFAULT_DATA,
    contract: ContractOpt = None,
    account: AccountOpt = None,
    keystore: KeystoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stop a project: no more rounds open; unopened budgets become refundable."""
    env = Env(rpc_url, "embedded", data_dir, contract=contract)
    tx = env.market.cancel_project(env.account("owner", account, keystore), project)
    emit({"project_id": project, "tx": tx.tx_hash}, as_json)


@owner_app.command("refund")
def owner_refund(
    project: ProjectOpt,
    rpc_url: RpcUrl = DEFAULT_RPC,
    data_dir: DataDir = DEFAULT_DATA,
    contract: ContractOpt = None,
    account: AccountOpt = None,
    keystore: KeystoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reclaim what no trainer is owed, once the project has ended."""
    env = Env(rpc_url, "embedded", data_dir, contract=contract)
    tx = env.market.refund(env.account("owner", account, keystore), project)
    amount = sum(e["args"]["amount"] for e in tx.events if e["event"] == "Refunded")
    emit({"project_id": project, "refunded_wei": amount, "tx": tx.tx_hash}, as_json)


# ----------------------------------------------------------------------------- trainer


@trainer_app.command("join")
def trainer_join(
    project: ProjectOpt,
    data: Annotated[
        str, typer.Option(help="'digits', or a .npz/.csv file of your data.")
    ] = "digits",
    part: Annotated[int, typer.Option(help="With digits: which Dirichlet part is yours.")] = 0,
    parts: Annotated[int, typer.Option(help="With digits: into how many parts to split.")] = 5,
    alpha: Annotated[float, typer.Option(help="With digits: Dirichlet concentration.")] = 0.5,
    seed: Annotated[int, typer.Option(help="Seed for training and quantisation.")] = 0,
    wait: Annotated[
        bool, typer.Option(help="Wait for the commit window to close, then reveal.")
    ] = True,
    admission_cid: Annotated[
        str | None, typer.Option(help="CID of the round's admission document (default: indexed).")
    ] = None,
    rpc_url: RpcUrl = DEFAULT_RPC,
    store: StoreSpec = "embedded",
    data_dir: DataDir = DEFAULT_DATA,
    db_url: DbUrl = None,
    contract: ContractOpt = None,
    account: AccountOpt = None,
    keystore: KeystoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train on local data and submit to the project's open round (commit, then reveal)."""
    from market.trainer.client import TrainerClient
    from market.trainer.data import dirichlet_split, load_dataset, train_test_split

    env = Env(rpc_url, store, data_dir, db_url, contract)
    client = TrainerClient(env.market, env.store, env.account("trainer", account, keystore), env.db)
    number = client.open_round(project)
    client.admission_proof(project, number, admission_cid)  # refused: say so before training
    dataset = load_dataset(data)
    if data == "digits":
        train, _ = train_test_split(dataset, test_fraction=0.2, seed=0)
        dataset = train.subset(dirichlet_split(train.y, parts, alpha, seed=0)[part])
    result: dict[str, Any] = {
        "project_id": project,
        "round": number,
        "trainer": client.address,
        "samples": len(dataset),
    }
    with _spinner(as_json) as progress:
        progress.add_task(f"training on {len(dataset)} samples and committing", total=None)
        sub = client.prepare(project, number, dataset, seed=seed)
        tx = client.commit(project, number, admission_cid=admission_cid)
    result |= {"update_cid": sub.update_cid, "commit_tx": tx.tx_hash if tx else None}
    if wait:
        with _spinner(as_json) as progress:
            progress.add_task("waiting for the commit window to close", total=None)
            client.wait_for_reveal_window(project, number)
        tx = client.reveal(project, number)
        result["reveal_tx"] = tx.tx_hash if tx else None
    emit(result, as_json)


@trainer_app.command("reveal")
def trainer_reveal(
    project: ProjectOpt,
    round_number: RoundOpt = None,
    rpc_url: RpcUrl = DEFAULT_RPC,
    store: StoreSpec = "embedded",
    data_dir: DataDir = DEFAULT_DATA,
    db_url: DbUrl = None,
    contract: ContractOpt = None,
    account: AccountOpt = None,
    keystore: KeystoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Publish a committed update and reveal it (after the commit window has closed)."""
    from market.trainer.client import TrainerClient

    env = Env(rpc_url, store, data_dir, db_url, contract)
    client = TrainerClient(env.market, env.store, env.account("trainer", account, keystore), env.db)
    number = round_number or env.market.get_project(project).rounds_opened
    tx = client.reveal(project, number)
    emit({"project_id": project, "round": number, "reveal_tx": tx.tx_hash if tx else None}, as_json)


@trainer_app.command("claim")
def trainer_claim(
    project: ProjectOpt,
    round_number: RoundOpt = None,
    rpc_url: RpcUrl = DEFAULT_RPC,
    store: StoreSpec = "embedded",
    data_dir: DataDir = DEFAULT_DATA,
    db_url: DbUrl = None,
    contract: ContractOpt = None,
    account: AccountOpt = None,
    keystore: KeystoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Claim rewards of one round, or of every finalized round not yet claimed."""
    from market.chain import RoundState
    from market.trainer.client import TrainerClient

    env = Env(rpc_url, store, data_dir, db_url, contract)
    client = TrainerClient(env.market, env.store, env.account("trainer", account, keystore), env.db)
    numbers = (
        [round_number]
        if round_number
        else [
            n
            for n in range(1, env.market.get_project(project).rounds_opened + 1)
            if env.market.get_round(project, n).state == RoundState.FINALIZED
        ]
    )
    claims = client.claim_rounds(project, numbers)  # several rounds: one claimMany
    rows = [
        {"round": c.round, "claimed_wei": c.amount_wei, "tx": c.tx.tx_hash if c.tx else None}
        for c in claims
    ]
    table = Table("round", "claimed", "tx", title=f"claims of {client.address}")
    for row in rows:
        table.add_row(str(row["round"]), eth(row["claimed_wei"]), row["tx"] or "-")
    emit({"trainer": client.address, "claims": rows}, as_json, table)


# -------------------------------------------------------------------------- aggregator


@aggregator_app.command("rules")
def aggregator_rules(as_json: JsonOpt = False) -> None:
    """The aggregation rules a project can name (--rule), with their parameters' defaults
    (--rule-param key=value overrides one)."""
    from market.aggregator.rules import catalogue

    rules = catalogue()
    table = Table("rule", "what it does", "history", "parameters (defaults)", title="rules")
    table.columns[3].overflow = "fold"  # a cut-off default is a wrong default
    for r in rules:
        params = "\n".join(
            f"{k}={json.dumps(v)}: {r['help'][k]}" for k, v in r["parameters"].items()
        )
        table.add_row(r["name"], r["summary"], "yes" if r["stateful"] else "", params)
    emit({"rules": rules}, as_json, table)


@aggregator_app.command("open-round")
def aggregator_open_round(
    project: ProjectOpt,
    admission_root: Annotated[
        str | None, typer.Option(help="0x… Merkle root of admitted trainers.")
    ] = None,
    rpc_url: RpcUrl = DEFAULT_RPC,
    store: StoreSpec = "embedded",
    data_dir: DataDir = DEFAULT_DATA,
    db_url: DbUrl = None,
    contract: ContractOpt = None,
    account: AccountOpt = None,
    keystore: KeystoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open the next round from the last finalized model.

    Without --admission-root, the project's admission policy decides: MeritRank admission is
    computed from the signed applications, published, and its root sent (zero root if open).
    """
    from market.aggregator.service import Aggregator

    env = Env(rpc_url, store, data_dir, db_url, contract)
    agg = Aggregator(env.market, env.store, env.account("aggregator", account, keystore), env.db)
    admission: dict[str, Any] | None = None
    if admission_root:
        number, tx = agg.open_round(project, bytes.fromhex(admission_root.removeprefix("0x")))
    else:
        from market.reputation.commands import open_round

        number, tx, admission = open_round(agg, env.market, env.store, env.db, project)
    chain_round = env.market.get_round(project, number)
    emit(
        {
            "project_id": project,
            "round": number,
            "tx": tx.tx_hash,
            "commit_deadline": chain_round.commit_deadline,
            "reveal_deadline": chain_round.reveal_deadline,
            "admission": admission,
        },
        as_json,
    )


@aggregator_app.command("run-round")
def aggregator_run_round(
    project: ProjectOpt,
    round_number: RoundOpt = None,
    wait: Annotated[bool, typer.Option(help="Wait for the reveal window to close.")] = True,
    rpc_url: RpcUrl = DEFAULT_RPC,
    store: StoreSpec = "embedded",
    data_dir: DataDir = DEFAULT_DATA,
    db_url: DbUrl = None,
    contract: ContractOpt = None,
    account: AccountOpt = None,
    keystore: KeystoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """After the reveal window: validate, aggregate, score, publish and finalize the round."""
    from market.aggregator.service import Aggregator
    from market.chain import chain_time, increase_time

    env = Env(rpc_url, store, data_dir, db_url, contract)
    agg = Aggregator(env.market, env.store, env.account("aggregator", account, keystore), env.db)
    number = round_number or env.market.get_project(project).rounds_opened
    deadline = env.market.get_round(project, number).reveal_deadline
    if wait:
        with _spinner(as_json) as progress:
            progress.add_task("waiting for the reveal window to close", total=None)
            while chain_time(env.w3) <= deadline:
                if env.chain_id == DEV_CHAIN_ID and time.time() > deadline:
                    increase_time(env.w3, 0)  # anvil mines on demand: let its clock move on
                time.sleep(1)
    with _spinner(as_json) as progress:
        progress.add_task("aggregating and finalizing", total=None)
        outcome = agg.finalize_round(project, number)
    report = outcome.report
    table = Table(
        "trainer",
        "status",
        "reason",
        "coefficient",
        "reward",
        title=f"project {project} round {number}: model {outcome.model_cid}",
    )
    for s in report.submissions:
        table.add_row(
            s.trainer, s.status, s.reason or "", f"{s.coefficient:.4f}", eth(s.reward_wei)
        )
    emit(
        {
            "project_id": project,
            "round": number,
            "model_cid": outcome.model_cid,
            "report_cid": outcome.report_cid,
            "rewards_root": report.rewards_root,
            "total_wei": report.total_wei,
            "finalize_tx": outcome.finalize_tx.tx_hash if outcome.finalize_tx else None,
            "finalize_gas": outcome.finalize_tx.gas_used if outcome.finalize_tx else None,
            "submissions": [s.__dict__ for s in report.submissions],
        },
        as_json,
        table,
    )


# -------------------------------------------------------------------------- reputation


@trainer_app.command("apply")
def trainer_apply(
    project: ProjectOpt,
    round_number: Annotated[
        int | None, typer.Option("--round", "-r", help="Round to apply to (default: the next).")
    ] = None,
    rpc_url: RpcUrl = DEFAULT_RPC,
    data_dir: DataDir = DEFAULT_DATA,
    db_url: DbUrl = None,
    contract: ContractOpt = None,
    account: AccountOpt = None,
    keystore: KeystoreOpt = None,
    aggregator_api: Annotated[
        str | None,
        typer.Option(help="Deliver it to this aggregator API (http://host:port), not only the DB."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Sign an application (EIP-712, no gas) to a round of a project with admission."""
    from market.reputation.commands import apply
    from market.reputation.remote import AggregatorApi

    env = Env(rpc_url, "embedded", data_dir, db_url, contract)
    signed = apply(
        env.market,
        env.db,
        env.account("trainer", account, keystore),
        project,
        round_number,
        AggregatorApi(aggregator_api) if aggregator_api else None,
    )
    emit(signed, as_json)


@reputation_app.command("show")
def reputation_show(
    address: Annotated[str | None, typer.Option(help="One address's reputation.")] = None,
    project: Annotated[int | None, typer.Option("--project", "-p", help="Project id.")] = None,
    top: Annotated[int, typer.Option(help="How many top addresses per project.")] = 10,
    rpc_url: RpcUrl = DEFAULT_RPC,
    store: StoreSpec = "embedded",
    data_dir: DataDir = DEFAULT_DATA,
    db_url: DbUrl = None,
    contract: ContractOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Index the chain's paid rounds, then show MeritRank reputations from owners' seeds."""
    from market.reputation.commands import show

    env = Env(rpc_url, store, data_dir, db_url, contract)
    data = show(env.market, env.store, env.db, address=address, project_id=project, top=top)
    table = None
    if address is None:
        table = Table("project", "address", "reputation", title="reputation (MeritRank)")
        for pid, info in data["projects"].items():
            for row in info["top"]:
                table.add_row(pid, row["address"], f"{row['reputation']:.4f}")
    emit(data, as_json, table)


@reputation_app.command("admission")
def reputation_admission(
    project: ProjectOpt,
    round_number: RoundOpt = None,
    admission_cid: Annotated[
        str | None, typer.Option(help="CID of the admission document (default: indexed).")
    ] = None,
    preview: Annotated[
        bool, typer.Option(help="Compute the next round's admission without publishing it.")
    ] = False,
    verify: Annotated[
        bool, typer.Option(help="Re-derive the list from the chain alone and compare.")
    ] = False,
    rpc_url: RpcUrl = DEFAULT_RPC,
    store: StoreSpec = "embedded",
    data_dir: DataDir = DEFAULT_DATA,
    db_url: DbUrl = None,
    contract: ContractOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Who was admitted to a round and why others were refused (checked against the chain)."""
    from market.reputation.commands import admission

    env = Env(rpc_url, store, data_dir, db_url, contract)
    data = admission(
        env.market,
        env.store,
        env.db,
        project,
        round_number,
        cid=admission_cid,
        preview=preview,
        verify=verify,
    )
    table = None
    if not data.get("open"):
        table = Table("address", "decision", title=f"project {project} round {data['round']}")
        for a in data["admitted"]:
            table.add_row(a, "newcomer" if a in data["newcomers"] else "established")
        for a, why in {**data["refused"], **data["dropped"]}.items():
            table.add_row(a, f"refused: {why}")
    emit(data, as_json, table)
    if verify and not data.get("open"):
        check = data["verification"]
        if not as_json:
            err.print("verified: " + ("ok" if check["ok"] else "; ".join(check["problems"])))
        if not check["ok"]:
            raise typer.Exit(1)


# ------------------------------------------------------------ long-running services

ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", "-c", exists=True, dir_okay=False, help="TOML config file."),
]
# Unset service flags stay None so that the config file and MARKET_* variables apply.
SvcRpc = Annotated[str | None, typer.Option("--rpc-url", help="EVM JSON-RPC URL.")]
SvcStore = Annotated[str | None, typer.Option("--store", help="'embedded' or 'ipfs:URL'.")]
SvcDataDir = Annotated[Path | None, typer.Option("--data-dir", help="Store/database dir.")]
SvcDbUrl = Annotated[str | None, typer.Option("--db-url", help="SQLAlchemy database URL.")]
SvcContract = Annotated[str | None, typer.Option("--contract", help="LearningMarket address.")]
UntilIdle = Annotated[bool, typer.Option(help="Exit after a pass with nothing to do.")]
MaxPasses = Annotated[int | None, typer.Option(help="Exit after this many passes.")]
ServiceJson = Annotated[bool, typer.Option("--json", help="JSON log lines on stdout.")]


def _service_flags(**flags: Any) -> dict[str, Any]:
    if flags.get("json_logs") is False:
        flags["json_logs"] = None  # an absent --json must not override the file
    return flags


def _service_command(kind: str, summary: str) -> Callable[..., None]:
    """The `run` command of one service kind; trainer and aggregator take the same flags."""

    def run(
        config: ConfigFile = None,
        rpc_url: SvcRpc = None,
        store: SvcStore = None,
        data_dir: SvcDataDir = None,
        db_url: SvcDbUrl = None,
        contract: SvcContract = None,
        account: AccountOpt = None,
        keystore: KeystoreOpt = None,
        until_idle: UntilIdle = False,
        max_passes: MaxPasses = None,
        as_json: ServiceJson = False,
    ) -> None:
        from market.runtime import run_service

        run_service(
            kind,
            config,
            until_idle=until_idle,
            max_passes=max_passes,
            **_service_flags(
                rpc_url=rpc_url,
                store=store,
                data_dir=data_dir,
                db_url=db_url,
                contract=contract,
                account=account,
                keystore=keystore,
                json_logs=as_json,
            ),
        )

    run.__doc__ = summary
    return run


trainer_app.command("run")(
    _service_command(
        "trainer",
        "Stay up: join matching projects, train, commit, reveal and claim as rounds come.",
    )
)
aggregator_app.command("run")(
    _service_command(
        "aggregator",
        "Stay up: open rounds of every project naming this aggregator and finalize them.",
    )
)


@config_app.command("show")
def config_show(
    kind: Annotated[str, typer.Argument(help="'trainer' or 'aggregator'.")] = "trainer",
    config: ConfigFile = None,
    db_url: SvcDbUrl = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the effective service configuration (file + MARKET_* + flags), secrets masked."""
    from market.runtime import build_config

    shown = build_config(kind, config, db_url=db_url).show()
    table = Table("setting", "value", title=f"{kind} configuration")
    for key, value in shown.items():
        table.add_row(key, str(value))
    emit(shown, as_json, table)


# ------------------------------------------------------------------------------ status


@app.command("status")
def status(
    project: Annotated[int | None, typer.Option("--project", "-p", help="Project id.")] = None,
    rpc_url: RpcUrl = DEFAULT_RPC,
    data_dir: DataDir = DEFAULT_DATA,
    contract: ContractOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Projects and their rounds as the chain sees them."""
    env = Env(rpc_url, "embedded", data_dir, contract=contract)
    market = env.market
    ids = [project] if project else list(range(1, market.project_count() + 1))
    projects = []
    table = Table(
        "project",
        "round",
        "state",
        "commits",
        "reveals",
        "budget",
        "paid out",
        title=f"LearningMarket {market.address} on chain {env.chain_id}",
    )
    for pid in ids:
        info = market.get_project(pid)
        rounds = []
        for n in range(1, info.rounds_opened + 1):
            r = market.get_round(pid, n)
            rounds.append(
                {
                    "round": n,
                    "state": r.state.name.lower(),
                    "commits": r.commits,
                    "reveals": r.reveals,
                    "budget_wei": r.budget,
                    "total_wei": r.total,
                    "claimed_wei": r.claimed,
                }
            )
            table.add_row(
                str(pid),
                str(n),
                r.state.name.lower(),
                str(r.commits),
                str(r.reveals),
                eth(r.budget),
                eth(r.claimed),
            )
        if not rounds:
            table.add_row(str(pid), "-", "no round yet", "", "", "", "")
        projects.append(
            {
                "project_id": pid,
                "owner": info.owner,
                "aggregator": info.aggregator,
                "rounds": info.rounds,
                "rounds_opened": info.rounds_opened,
                "reward_per_round_wei": info.reward_per_round,
                "round_details": rounds,
            }
        )
    emit(
        {"chain_id": env.chain_id, "contract": market.address, "projects": projects}, as_json, table
    )


# ------------------------------------------------------------------------------- store


@store_app.command("put")
def store_put(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="File to store.")],
    store: StoreSpec = "embedded",
    data_dir: DataDir = DEFAULT_DATA,
    as_json: JsonOpt = False,
) -> None:
    """Store a file; print its CID (the one `ipfs add --cid-version 1 --raw-leaves` gives)."""
    env = Env(DEFAULT_RPC, store, data_dir)
    data = file.read_bytes()
    cid = env.store.put(data)
    env.store.pin(cid)
    emit({"cid": cid, "size": len(data)}, as_json) if as_json else print(cid)


@store_app.command("get")
def store_get(
    cid: Annotated[str, typer.Argument(help="CID to fetch.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the bytes.")],
    store: StoreSpec = "embedded",
    data_dir: DataDir = DEFAULT_DATA,
    as_json: JsonOpt = False,
) -> None:
    """Fetch a CID, verify it, and write it to a file atomically."""
    env = Env(DEFAULT_RPC, store, data_dir)
    data = env.store.get(cid)
    tmp = output.with_name(output.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(output)
    emit({"cid": cid, "size": len(data), "output": str(output)}, as_json)


@store_app.command("cid")
def store_cid(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="File to hash.")],
    as_json: JsonOpt = False,
) -> None:
    """Compute a file's CID without storing it."""
    from market.storage.cid import cid_of

    data = file.read_bytes()
    cid = cid_of(data)
    emit({"cid": cid, "size": len(data)}, as_json) if as_json else print(cid)


@app.command("verify")
def verify(
    project: ProjectOpt,
    round_number: RoundOpt = None,
    tolerance: Annotated[
        float, typer.Option(help="Allowed max |Δcoefficient| of the rule's re-solve.")
    ] = 1e-6,
    rpc_url: RpcUrl = DEFAULT_RPC,
    store: StoreSpec = "embedded",
    data_dir: DataDir = DEFAULT_DATA,
    contract: ContractOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-execute a finalized round from the chain and the store; exit 1 on any mismatch."""
    from market.proofs.verify import checks_table, verify_round

    env = Env(rpc_url, store, data_dir, None, contract)
    number = round_number or env.market.get_project(project).rounds_opened
    result = verify_round(env.market, env.store, project, number, tolerance)
    emit(result.to_dict(), as_json, checks_table(result))
    if not result.ok:
        raise typer.Exit(1)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Listen address (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port.")] = 8000,
    dev_chain: Annotated[
        bool, typer.Option(help="Start a fresh anvil with LearningMarket deployed first.")
    ] = False,
    holdout: Annotated[str, typer.Option(help="Held-out set for accuracy: digits|none.")] = (
        "digits"
    ),
    rpc_url: RpcUrl = DEFAULT_RPC,
    store: StoreSpec = "embedded",
    data_dir: DataDir = DEFAULT_DATA,
    contract: ContractOpt = None,
) -> None:
    """The owner dashboard (web page + API) for one chain, market and store."""
    from market.api import Settings
    from market.api.serve import serve as run

    settings = Settings(rpc_url, contract, store, data_dir, holdout=holdout)
    run(settings, host, port, dev_chain, on_ready=out.print)


# -------------------------------------------------------------------------------- demo


@app.command("demo")
def demo(
    rounds: Annotated[int, typer.Option(help="Rounds to run.")] = 3,
    trainers: Annotated[int, typer.Option(help="Trainers (1–7).")] = 5,
    alpha: Annotated[float, typer.Option(help="Dirichlet concentration of the data split.")] = 0.5,
    seed: Annotated[int, typer.Option(help="Seed of everything random.")] = 0,
    store: StoreSpec = "embedded",
    data_dir: Annotated[Path | None, typer.Option(help="Keep the demo's data here.")] = None,
    proof: Annotated[
        bool, typer.Option(help="Finalize every round with a Groth16 proof of the reward split.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """One whole marketplace on a fresh local anvil: escrow, rounds, rewards, claims, refund."""
    from market.demo import DemoConfig, run_demo, total_steps

    config = DemoConfig(
        rounds=rounds,
        trainers=trainers,
        alpha=alpha,
        seed=seed,
        store=store,
        data_dir=data_dir,
        proof=proof,
    )
    with _progress(as_json) as progress:
        task = progress.add_task("starting anvil", total=total_steps(config))

        class Observer:
            def step(self, description: str) -> None:
                progress.update(task, advance=1, description=description)

            def round_finished(self, row: dict[str, Any]) -> None:
                progress.console.print(
                    f"round {row['round']}: accuracy [bold]{row['accuracy']:.3f}[/], "
                    f"finalize gas {row['finalize_gas']}, paid {eth(row['total_wei'])} "
                    f"to {row['accepted']} trainers, model {row['model_cid']}"
                )

        summary = run_demo(config, Observer())
    if as_json:
        print(json.dumps(summary, indent=2))
        if not summary["balanced"]:
            raise typer.Exit(1)
        return
    _print_summary(summary)
    if not summary["balanced"]:
        raise typer.Exit(1)


def _print_summary(summary: dict[str, Any]) -> None:
    rounds = Table(
        "round",
        "accuracy",
        "finalize gas",
        "paid",
        "rewards root",
        "model CID",
        title=f"demo on chain {summary['chain_id']}, project {summary['project_id']} "
        f"(initial accuracy {summary['initial_accuracy']:.3f})",
    )
    for r in summary["rounds"]:
        rounds.add_row(
            str(r["round"]),
            f"{r['accuracy']:.3f}",
            str(r["finalize_gas"]),
            eth(r["total_wei"]),
            r["rewards_root"][:18] + "…",
            r["model_cid"],
        )
    out.print(rounds)
    trainers = Table("trainer", "claimed", title="rewards claimed")
    for t in summary["trainers"]:
        trainers.add_row(t["address"], eth(t["claimed_wei"]))
    out.print(trainers)
    gas = Table("function", "calls", "mean gas", "max gas", title="gas used")
    for name, g in summary["gas"].items():
        gas.add_row(name, str(g["calls"]), str(g["mean"]), str(g["max"]))
    out.print(gas)
    mark = "[green]balanced[/]" if summary["balanced"] else "[red]NOT balanced[/]"
    out.print(
        f"escrow: budget {eth(summary['budget_wei'])} = claimed {eth(summary['claimed_wei'])} + "
        f"refunded {eth(summary['refunded_wei'])} + still escrowed "
        f"{eth(summary['escrowed_wei'])} → {mark}  ({summary['wall_time_s']} s)"
    )


def _progress(quiet: bool) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
        transient=False,
    )


def _spinner(quiet: bool) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
        transient=True,
    )


def main() -> None:
    """Console entry point: MarketError and bad input become one readable line."""
    debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    try:
        app()
    except MarketError as exc:
        if debug:
            raise
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
