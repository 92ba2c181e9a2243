// The owner dashboard: hash routes, header (chain, live dot, signer), and the views.
//   #/                      projects
//   #/new                   create a project
//   #/project/ID[/round/R]  one project (and round)
//   #/reputation[/ADDRESS]  reputation graph, one trainer
//   #/txs                   transactions sent from this page

import { api, errorBox, eth, h, short, shortCid } from "./api.js";
import { starGraph } from "./charts.js";
import { projectView } from "./project.js";
import { accountPicker, onSignerChange, sendWithWallet, signer, walletTxs } from "./wallet.js";

const main = document.getElementById("main");
const status = document.getElementById("chain-status");
let health = null;
let rendering = false;
let renderAgain = false;

async function render() {
  if (rendering) {
    renderAgain = true;
    return;
  }
  rendering = true;
  try {
    const view = await route(location.hash.replace(/^#/, "") || "/");
    main.replaceChildren(view);
    document.querySelectorAll("nav a").forEach((a) => {
      a.classList.toggle("active", location.hash.startsWith(a.getAttribute("href")) && a.getAttribute("href") !== "#/"
        || (a.getAttribute("href") === "#/" && (location.hash === "" || location.hash === "#/")));
    });
  } catch (err) {
    main.replaceChildren(errorBox(err));
  } finally {
    rendering = false;
    main.setAttribute("data-ready", "1");
    if (renderAgain) {
      renderAgain = false;
      render();
    }
  }
}

async function route(path) {
  let m;
  if ((m = path.match(/^\/project\/(\d+)(?:\/round\/(\d+))?$/))) {
    return projectView(Number(m[1]), m[2] ? Number(m[2]) : null);
  }
  if (path === "/new") return createView();
  if ((m = path.match(/^\/reputation(?:\/(0x[0-9a-fA-F]{40}))?$/))) return reputationView(m[1]);
  if (path === "/txs") return txView();
  return projectsView();
}

// ------------------------------------------------------------------------- projects

async function projectsView() {
  const projects = await api("/api/projects");
  const rows = projects.map((p) =>
    h("tr", { "data-project": p.id },
      h("td", {}, h("a", { href: `#/project/${p.id}` }, `#${p.id}`)),
      h("td", {}, p.name ?? "(spec not in store)"),
      h("td", {}, p.rule ?? "?"),
      h("td", { class: "num" }, `${p.rounds_opened} / ${p.rounds}`),
      h("td", { class: "num" }, eth(p.reward_per_round_wei)),
      h("td", { class: "num" }, eth(p.escrow_wei)),
      h("td", { title: p.owner }, short(p.owner)),
      h("td", {}, p.cancelled ? "cancelled" : "active")));
  return h("section", { "data-testid": "projects" },
    h("h2", {}, "Projects"),
    projects.length
      ? h("table", {}, h("thead", {}, h("tr", {}, ["Id", "Name", "Rule", "Rounds", "Reward/round", "Escrow", "Owner", ""]
        .map((t) => h("th", {}, t)))), h("tbody", {}, rows))
      : h("p", { class: "muted" }, "No project yet. ", h("a", { href: "#/new" }, "Create one.")));
}

// ------------------------------------------------------------------------- create

// The rules and their parameters come from the server's registry (GET /api/rules), so the
// form offers exactly what a spec may name. guard is preselected: it equals FedAvg when
// nobody misbehaves and resists the attacks the others do not (benchmarks/README.md).
const DEFAULT_RULE = "guard";

function ruleDefaults(rule) {
  return Object.entries(rule.parameters).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ");
}

function field(label, input, hint) {
  return h("label", { class: "field" }, h("span", {}, label), input, hint ? h("small", {}, hint) : "");
}

function createView() {
  const out = h("div", { "data-testid": "create-result" });
  const specOut = h("div", { class: "spec-out", "data-testid": "spec-cid" });
  const inp = (name, value, attrs = {}) => h("input", { name, value, ...attrs });
  const form = h("form", { class: "create", "data-testid": "create-form", novalidate: true });
  const rule = h("select", { name: "rule", "data-testid": "rule-select" });
  const params = inp("rule_params", "{}");
  const ruleHint = h("span", { "data-testid": "rule-hint" });
  let rules = [];
  const describe = () => {
    const r = rules.find((x) => x.name === rule.value);
    ruleHint.textContent = r ? `${r.summary} Parameters (defaults): ${ruleDefaults(r) || "none"}` : "";
  };
  rule.addEventListener("change", () => { params.value = "{}"; describe(); });
  api("/api/rules").then((list) => {
    rules = list;
    const chosen = rule.value || DEFAULT_RULE;  // a spec file loaded meanwhile wins
    rule.replaceChildren(...list.map((r) => h("option", { value: r.name }, r.name)));
    rule.value = list.some((r) => r.name === chosen) ? chosen : list[0].name;
    describe();
  }).catch((err) => ruleHint.replaceChildren(errorBox(err)));
  const admission = h("select", { name: "admission" },
    h("option", { value: "open" }, "open (anyone may submit)"),
    h("option", { value: "meritrank" }, "MeritRank (top-k by reputation + newcomers)"));
  const specFile = h("input", { type: "file", accept: ".json,application/json", name: "spec_file" });
  specFile.addEventListener("change", async () => {
    try {
      const doc = JSON.parse(await specFile.files[0].text());
      const model = doc.model || doc;
      for (const [k, v] of Object.entries({ name: doc.name, input_dim: model.input_dim,
        hidden: (model.hidden || []).join(","), num_classes: model.num_classes, rule: doc.rule,
        rule_params: doc.rule_params ? JSON.stringify(doc.rule_params) : undefined })) {
        if (v !== undefined && form.elements[k]) form.elements[k].value = v;
      }
      specOut.replaceChildren(h("span", { class: "muted" }, "spec file loaded into the form: publish it"));
    } catch (err) {
      specOut.replaceChildren(errorBox(new Error(`not a spec JSON file: ${err.message}`)));
    }
  });

  form.append(
    h("fieldset", {}, h("legend", {}, "1. Model spec → store"),
      field("Spec file (optional)", specFile, "a model spec JSON fills the fields below"),
      field("Name", inp("name", "digits", { required: true })),
      field("Input size", inp("input_dim", "64", { type: "number" })),
      field("Hidden layers", inp("hidden", "32"), "comma-separated widths"),
      field("Classes", inp("num_classes", "10", { type: "number" })),
      field("Aggregation rule", rule),
      field("Rule parameters (JSON)", params, ruleHint),
      field("Admission", admission),
      field("top k / newcomer quota", h("span", {}, inp("top_k", "10", { type: "number", class: "short" }),
        inp("newcomer_quota", "3", { type: "number", class: "short" })), "MeritRank only"),
      h("button", { type: "button", "data-testid": "publish-spec", onclick: publish }, "Publish spec"),
      specOut),
    h("fieldset", {}, h("legend", {}, "2. Escrow the budget → chain"),
      field("Spec CID", inp("spec_cid", "", { "data-testid": "spec-cid-input" })),
      field("Rounds", inp("rounds", "3", { type: "number" })),
      field("Reward per round (ETH)", inp("reward", "1")),
      field("Commit window (s)", inp("submission_window", "120", { type: "number" })),
      field("Reveal window (s)", inp("reveal_window", "120", { type: "number" })),
      field("Finalize window (s)", inp("finalize_window", "3600", { type: "number" })),
      field("Aggregator address", inp("aggregator", "", { placeholder: "dev chain: account #2" })),
      h("button", { type: "submit", "data-testid": "create-project" }, "Create and fund project"),
      out),
  );

  async function publish() {
    specOut.replaceChildren(h("span", { class: "muted" }, "uploading…"));
    try {
      const e = form.elements;
      let ruleParams;
      try {
        ruleParams = JSON.parse(e.rule_params.value || "{}");
      } catch {
        throw new Error("rule parameters must be JSON, e.g. {\"f\": 1}");
      }
      const hidden = e.hidden.value.split(",").map((x) => x.trim()).filter(Boolean).map(Number);
      if (hidden.some((x) => !Number.isInteger(x) || x < 1)) throw new Error("hidden layers must be positive integers, e.g. 64,64");
      const body = { name: e.name.value, input_dim: Number(e.input_dim.value), hidden,
        num_classes: Number(e.num_classes.value), rule: e.rule.value, rule_params: ruleParams,
        admission: e.admission.value === "open" ? { policy: "open" }
          : { policy: "meritrank", top_k: Number(e.top_k.value), newcomer_quota: Number(e.newcomer_quota.value) } };
      const res = await api("/api/specs", { method: "POST", body });
      e.spec_cid.value = res.spec_cid;
      specOut.replaceChildren(h("span", {}, "spec CID ", h("code", { "data-testid": "published-cid" }, res.spec_cid)),
        h("br"), h("small", { class: "muted" }, `initial model ${shortCid(res.initial_model_cid)}`));
    } catch (err) {
      specOut.replaceChildren(errorBox(err));
    }
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const e = form.elements;
    const button = form.querySelector("[data-testid=create-project]");
    const body = { account: signer.address, spec_cid: e.spec_cid.value, rounds: Number(e.rounds.value),
      reward_per_round_eth: e.reward.value, submission_window: Number(e.submission_window.value),
      reveal_window: Number(e.reveal_window.value), finalize_window: Number(e.finalize_window.value),
      aggregator: e.aggregator.value.trim() || null };
    if (!signer.address) {
      out.replaceChildren(errorBox(new Error("choose a dev account or connect a wallet first")));
      return;
    }
    if (!body.spec_cid) {
      out.replaceChildren(errorBox(new Error("publish the spec first (step 1): its CID goes on chain")));
      return;
    }
    button.disabled = true;
    out.replaceChildren(h("span", { class: "muted" }, "sending createProject…"));
    try {
      let tx;
      if (signer.kind === "wallet") {
        const unsigned = await api("/api/projects/prepare", { method: "POST", body });
        tx = await sendWithWallet(unsigned, "createProject", () => {});
        if (tx.status !== "mined") throw new Error(`createProject ${tx.status}: ${tx.message ?? ""}`);
        // ProjectCreated(projectId indexed, …) is the one event createProject emits.
        const created = tx.logs.find((l) => l.address.toLowerCase() === unsigned.to.toLowerCase());
        if (created) tx.project_id = Number(BigInt(created.topics[1]));
      } else {
        tx = await api("/api/projects", { method: "POST", body });
      }
      out.replaceChildren(h("div", { class: "ok", "data-testid": "tx-ok" },
        `createProject mined in block ${tx.block}: `, h("code", { "data-testid": "tx-hash" }, tx.tx_hash), " ",
        tx.project_id ? h("a", { href: `#/project/${tx.project_id}`, "data-testid": "new-project-link" },
          `open project ${tx.project_id}`) : ""));
    } catch (err) {
      out.replaceChildren(errorBox(err));
    } finally {
      button.disabled = false;
    }
  });
  return h("section", { "data-testid": "create-view" }, h("h2", {}, "New project"),
    h("p", { class: "muted" }, "Step 1 stores the spec and a fresh initial model (content-addressed: publishing twice is harmless). ",
      "Step 2 sends one transaction that creates the project and escrows rounds × reward; nothing exists on chain until it is mined."),
    form);
}

// ------------------------------------------------------------------------- reputation

async function reputationView(address) {
  const graph = await api("/api/graph");
  const root = h("section", { "data-testid": "reputation-view" }, h("h2", {}, "Reputation (MeritRank)"));
  const s = graph.summary;
  root.append(h("p", {}, `${s.nodes ?? "?"} nodes · ${s.edges ?? graph.edges.length} edges · `,
    `${s.projects} projects · ${s.rounds} rounds recorded`));
  if (graph.skipped.length) root.append(errorBox(new Error(`skipped: ${graph.skipped.join("; ")}`)));
  const lookup = h("form", { class: "inline" }, h("input", { name: "address", placeholder: "0x… trainer address",
    value: address ?? "", size: 44 }), h("button", { type: "submit" }, "Show"));
  lookup.addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = `#/reputation/${lookup.elements.address.value.trim()}`;
  });
  root.append(lookup);
  if (address) {
    const rep = await api(`/api/reputation/${address}`);
    root.append(h("div", { class: "panel", "data-testid": "trainer-reputation" },
      h("h3", {}, `Trainer ${short(address)}`),
      h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Project"), h("th", {}, "Reputation from its seeds"))),
        h("tbody", {}, Object.entries(rep.per_project).map(([pid, v]) =>
          h("tr", {}, h("td", {}, h("a", { href: `#/project/${pid}` }, `#${pid}`)), h("td", { class: "num" }, v.toFixed(4)))))),
      rep.edges.length ? starGraph(address, rep.edges, { short }) : h("p", { class: "muted" }, "Not in the graph yet.")));
  }
  for (const [pid, reps] of Object.entries(graph.reputation)) {
    const rows = Object.entries(reps).filter(([a]) => a.toLowerCase() !== "");
    root.append(h("div", { class: "panel", "data-testid": `reputation-${pid}` },
      h("h3", {}, `Reputation seen from project ${pid}'s seeds`),
      h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Address"), h("th", {}, "Reputation"))),
        h("tbody", {}, rows.map(([a, v]) => h("tr", {},
          h("td", {}, h("a", { href: `#/reputation/${a}` }, a)), h("td", { class: "num" }, v.toFixed(4))))))));
  }
  const projects = await api("/api/projects");
  for (const p of projects) {
    for (let r = 1; r <= p.rounds_opened; r++) {
      const adm = await api(`/api/projects/${p.id}/admission/${r}`);
      root.append(h("div", { class: "panel", "data-testid": `admission-${p.id}-${r}` },
        h("h4", {}, `Project ${p.id} round ${r}: ${adm.open ? "open admission" : `admission root ${shortCid(adm.admission_root)}`}`),
        h("p", {}, `admitted (committed on chain): ${adm.admitted.length}`,
          adm.open ? "" : ` · policy ${JSON.stringify(adm.policy)}`),
        h("ul", { class: "admitted" }, adm.admitted.map((a) =>
          h("li", {}, h("a", { href: `#/reputation/${a.address}` }, short(a.address)), ` reputation ${a.reputation.toFixed(4)}`))),
        adm.document_error ? errorBox(new Error(`admission document: ${adm.document_error}`)) : "",
        adm.decided ? h("p", {}, `admission document ${shortCid(adm.cid)}: ${adm.decided.length} admitted `,
          `(${(adm.newcomers || []).length} newcomers), ${Object.keys(adm.refused || {}).length} refused`) : "",
        Object.keys(adm.refused || {}).length ? h("table", { "data-testid": "refused" },
          h("thead", {}, h("tr", {}, h("th", {}, "Refused"), h("th", {}, "Why"))),
          h("tbody", {}, Object.entries({ ...adm.refused, ...(adm.dropped || {}) }).map(([a, why]) =>
            h("tr", {}, h("td", {}, short(a)), h("td", {}, why))))) : ""));
    }
  }
  const edges = h("table", { "data-testid": "edges" }, h("thead", {}, h("tr", {}, ["From (owner)", "To (trainer)", "Weight (ETH paid)"]
    .map((t) => h("th", {}, t)))), h("tbody", {}, graph.edges.map((e) => h("tr", {},
    h("td", {}, short(e.from)), h("td", {}, h("a", { href: `#/reputation/${e.to}` }, short(e.to))),
    h("td", { class: "num" }, (e.weight / 1e18).toFixed(6))))));
  root.append(h("h3", {}, "Feedback edges"), edges);
  return root;
}

// ------------------------------------------------------------------------- transactions

async function txView() {
  const server = await api("/api/txs");
  const all = walletTxs.concat(server);
  return h("section", { "data-testid": "tx-view" }, h("h2", {}, "Transactions sent from this page"),
    all.length ? h("table", {}, h("thead", {}, h("tr", {}, ["Time", "Action", "From", "Hash", "Status", "Detail"]
      .map((t) => h("th", {}, t)))), h("tbody", {}, all.map((t) => h("tr", { class: `tx-${t.status}` },
      h("td", {}, new Date(t.time * 1000).toLocaleTimeString()), h("td", {}, t.action), h("td", {}, short(t.from)),
      h("td", {}, t.tx_hash ? h("code", {}, shortCid(t.tx_hash)) : "–"), h("td", {}, t.status),
      h("td", {}, t.project_id ? h("a", { href: `#/project/${t.project_id}` }, `project ${t.project_id}`) : t.message ?? "")))))
      : h("p", { class: "muted" }, "None yet."));
}

// ------------------------------------------------------------------------- boot

function live() {
  const dot = document.getElementById("live");
  const source = new EventSource("/api/events");
  let timer = null;
  source.addEventListener("block", (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.error) {
      dot.className = "live bad";
      dot.title = msg.error;
      return;
    }
    dot.className = "live on";
    dot.title = "live";
    status.textContent = `chain ${health.chain_id} · block ${msg.block}`;
    // The create form keeps what the owner typed: only views of chain data re-render.
    if (msg.events.length && !location.hash.startsWith("#/new")) {
      clearTimeout(timer);
      timer = setTimeout(render, 150);
    }
  });
  source.onerror = () => { dot.className = "live bad"; dot.title = "disconnected, retrying"; };
}

async function boot() {
  try {
    health = await api("/api/health");
  } catch (err) {
    main.replaceChildren(errorBox(err));
    main.setAttribute("data-ready", "1");
    return;
  }
  if (!health.ok) {
    main.replaceChildren(errorBox(new Error(health.error)));
    main.setAttribute("data-ready", "1");
    return;
  }
  status.textContent = `chain ${health.chain_id} · block ${health.block}`;
  document.getElementById("signer-slot").replaceChildren(await accountPicker(health));
  onSignerChange(() => render());
  window.addEventListener("hashchange", render);
  live();
  render();
}

boot();
