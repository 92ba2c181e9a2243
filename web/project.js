// The project view: summary, rounds timeline, accuracy chart, and one round in detail
// (submissions, reward distribution, the rule's evidence, verification, downloads).

import { api, errorBox, eth, h, short, shortCid } from "./api.js";
import { barChart, heatMap, lineChart } from "./charts.js";
import { signer } from "./wallet.js";

const PHASES = {
  unopened: "not opened",
  open: "open (commit)",
  reveal: "reveal",
  submitted: "submitted, awaiting finalization",
  expirable: "past deadline, expirable",
  finalized: "finalized",
  expired: "expired",
  cancelled: "cancelled",
};

function download(cid, name, text, testid) {
  if (!cid) return h("span", { class: "muted" }, "–");
  return h("a", { href: `/api/blobs/${cid}?name=${encodeURIComponent(name)}`, download: name,
    title: cid, "data-testid": testid }, text);
}

// Seconds left in the current window, by the chain's clock (the dev chain's can jump).
function deadline(r, now) {
  const until = { open: r.commit_deadline, reveal: r.reveal_deadline, submitted: r.finalize_deadline }[r.phase];
  if (!until) return "";
  const what = { open: "commits close", reveal: "reveals close", submitted: "must finalize" }[r.phase];
  const left = until - now;
  const text = left > 3600 ? `${Math.floor(left / 3600)} h ${Math.floor((left % 3600) / 60)} min` : `${left} s`;
  return h("div", { class: "muted", "data-testid": `deadline-${r.round}` }, `${what} in ${text}`);
}

function card(title, value, testid) {
  return h("div", { class: "card", "data-testid": testid }, h("div", { class: "label" }, title),
    h("div", { class: "value" }, value));
}

export async function projectView(id, selectedRound) {
  const p = await api(`/api/projects/${id}`);
  const root = h("section", { class: "project", "data-testid": "project-view" });
  root.append(
    h("h2", {}, `Project ${p.id}: ${p.name ?? "(spec not in this store)"}`),
    h("div", { class: "cards" },
      card("Budget", eth(p.budget_wei), "budget"),
      card("In escrow", eth(p.escrow_wei), "escrow"),
      card("Reward per round", eth(p.reward_per_round_wei)),
      card("Rounds", `${p.rounds_opened} / ${p.rounds} opened`, "rounds"),
      card("Rule", `${p.rule ?? "?"} ${p.rule_params && Object.keys(p.rule_params).length ? JSON.stringify(p.rule_params) : ""}`, "rule"),
      card("Admission", p.admission ? (p.admission.policy === "open" ? "open" : `${p.admission.policy} top ${p.admission.top_k}, newcomers ${p.admission.newcomer_quota}`) : "?"),
      card("Windows", `commit ${p.windows.submission}s · reveal ${p.windows.reveal}s · finalize ${p.windows.finalize}s`),
      card("Owner", short(p.owner)),
    ),
    h("p", { class: "muted" }, "Spec ", download(p.spec_cid, "spec.json", p.spec_cid, "download-spec"),
      p.cancelled ? h("strong", { class: "bad" }, " · cancelled") : ""),
  );

  root.append(ownerActions(p));

  const timeline = h("ol", { class: "timeline", "data-testid": "timeline" });
  p.round_list.forEach((r) => {
    const item = h("li", { class: `phase-${r.phase}${r.round === selectedRound ? " selected" : ""}`,
      "data-testid": `round-${r.round}`, "data-phase": r.phase },
      h("div", { class: "round-no" }, `Round ${r.round}`),
      h("div", { class: "round-phase" }, PHASES[r.phase] ?? r.phase),
      r.reveals !== undefined ? h("div", { class: "muted" }, `${r.commits} commits · ${r.reveals} reveals`) : "",
      deadline(r, p.chain_time),
      r.accuracy !== null && r.accuracy !== undefined
        ? h("div", { class: "acc" }, `accuracy ${(r.accuracy * 100).toFixed(1)}%`) : "");
    if (r.phase !== "unopened" && r.phase !== "cancelled") {
      item.classList.add("clickable");
      item.addEventListener("click", () => { location.hash = `#/project/${p.id}/round/${r.round}`; });
    }
    timeline.append(item);
  });
  root.append(h("h3", {}, "Rounds"), timeline);

  const points = [{ x: "start", y: p.initial_accuracy }].concat(
    p.round_list.filter((r) => r.phase === "finalized").map((r) => ({ x: `R${r.round}`, y: r.accuracy })));
  root.append(h("div", { class: "panel", "data-testid": "accuracy-chart" },
    h("h3", {}, "Accuracy on the held-out set"),
    points.some((pt) => pt.y !== null && pt.y !== undefined)
      ? lineChart(points, { label: "accuracy per round" })
      : h("p", { class: "muted" }, "No accuracy yet (no finalized round, or no held-out set).")));

  const opened = p.round_list.filter((r) => r.phase !== "unopened" && r.phase !== "cancelled");
  const chosen = selectedRound ?? (opened.length ? opened[opened.length - 1].round : null);
  if (chosen !== null) root.append(await roundView(p, chosen));
  return root;
}

async function roundView(p, number) {
  const r = await api(`/api/projects/${p.id}/rounds/${number}`);
  const box = h("section", { class: "panel round", "data-testid": "round-view" },
    h("h3", {}, `Round ${number} — ${PHASES[r.phase] ?? r.phase}`),
    h("p", {},
      `Budget ${eth(r.budget_wei)} · allocated ${eth(r.total_wei)} · claimed ${eth(r.claimed_wei)} · `,
      "model ", download(r.model_cid, `model-r${number}.safetensors`, shortCid(r.model_cid), "download-model"),
      " · report ", download(r.report_cid, `report-r${number}.json`, shortCid(r.report_cid), "download-report"),
      r.accuracy !== null ? ` · accuracy ${(r.accuracy * 100).toFixed(1)}%` : ""),
  );
  if (r.report_error) box.append(errorBox(new Error(r.report_error)));

  const table = h("table", { class: "submissions", "data-testid": "submissions" },
    h("thead", {}, h("tr", {}, ["Trainer", "Update", "Validation", "Status", "Score", "Reward", "Claimed"]
      .map((t) => h("th", {}, t)))));
  const body = h("tbody");
  r.submissions.forEach((s) => {
    body.append(h("tr", { class: `status-${s.status}`, "data-trainer": s.trainer },
      h("td", { title: s.trainer }, h("a", { href: `#/reputation/${s.trainer}` }, short(s.trainer))),
      h("td", { title: s.update_cid ?? "" }, s.update_cid ? download(s.update_cid, `update-${short(s.trainer)}.safetensors`, shortCid(s.update_cid)) : "–"),
      h("td", {}, s.validation ?? "pending"),
      h("td", {}, s.status, s.reason ? h("div", { class: "reason" }, s.reason) : ""),
      h("td", { class: "num" }, s.score_points ?? "–"),
      h("td", { class: "num" }, s.reward_wei === null ? "–" : eth(s.reward_wei, 6)),
      h("td", { class: s.claimed ? "good" : "muted" }, s.reward_wei === null || s.reward_wei === "0" ? "–" : s.claimed === null ? "?" : s.claimed ? "yes" : "no")));
  });
  if (!r.submissions.length) body.append(h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No submissions yet.")));
  table.append(body);
  box.append(h("h4", {}, "Submissions"), table);

  const paid = r.submissions.filter((s) => s.reward_wei !== null);
  if (paid.length) {
    box.append(h("div", { class: "panel", "data-testid": "reward-chart" }, h("h4", {}, "Reward distribution"),
      barChart(paid.map((s) => ({ label: short(s.trainer), value: Number(BigInt(s.reward_wei)) / 1e18,
        cls: s.status, note: `${s.trainer}: ${eth(s.reward_wei, 8)}` })), { label: "rewards", unit: " ETH" })));
  }
  box.append(await evidenceView(p, number, r));
  box.append(verifyBox(p.id, number, r.phase));
  return box;
}

async function evidenceView(p, number, r) {
  const box = h("div", { class: "panel", "data-testid": "evidence" }, h("h4", {}, "Rule evidence"));
  const n = r.submissions.filter((s) => s.status !== "rejected").length;
  for (const [key, value] of Object.entries(r.evidence || {})) {
    if (Array.isArray(value) && value.length === n && value.every((v) => typeof v === "number")) {
      const accepted = r.submissions.filter((s) => s.status !== "rejected");
      box.append(h("div", {}, h("h5", {}, key.replaceAll("_", " ")),
        barChart(value.map((v, i) => ({ label: short(accepted[i].trainer), value: v })), { label: key })));
    } else if (typeof value === "number" || typeof value === "string") {
      box.append(h("div", { class: "kv" }, `${key.replaceAll("_", " ")}: ${value}`));
    }
  }
  if (r.reveals > 1) {
    try {
      const sim = await api(`/api/projects/${p.id}/rounds/${number}/similarity`);
      if (sim.trainers.length > 1) {
        box.append(h("div", { "data-testid": "heatmap" },
          h("h5", {}, "Cosine similarity between updates (Sybil clones show as dark off-diagonal cells)"),
          heatMap(sim.trainers.map(short), sim.matrix)));
      }
    } catch (err) {
      box.append(errorBox(err));
    }
  }
  if (box.childNodes.length === 1) box.append(h("p", { class: "muted" }, "No evidence yet."));
  return box;
}

function verifyBox(projectId, number, phase) {
  const out = h("div", { class: "verify-result", "data-testid": "verify-result" });
  const button = h("button", { type: "button", "data-testid": "verify", disabled: phase !== "finalized" },
    "Verify this round (re-execute)");
  button.addEventListener("click", async () => {
    button.disabled = true;
    out.replaceChildren(h("span", { class: "muted" }, "re-executing the round on the server…"));
    try {
      const res = await api(`/api/projects/${projectId}/rounds/${number}/verify`, { method: "POST" });
      out.replaceChildren(h("strong", { class: res.ok ? "good" : "bad" },
        res.ok ? `verified in ${res.seconds}s` : "verification FAILED"),
        h("pre", {}, JSON.stringify(res.result, null, 2)));
    } catch (err) {
      out.replaceChildren(errorBox(err));
    } finally {
      button.disabled = false;
    }
  });
  return h("div", { class: "panel" }, h("h4", {}, "Verification"),
    h("p", { class: "muted" }, `Same check as \`market verify --project ${projectId} --round ${number}\`.`),
    button, " ", h("a", { href: `/api/projects/${projectId}/rounds/${number}/verify`, target: "_blank",
      "data-testid": "verify-link" }, "result as JSON"), out);
}

// Cancel (stops unopened rounds) and refund (returns what no round can pay) for the owner.
function ownerActions(p) {
  const out = h("div", { "data-testid": "owner-result" });
  const box = h("div", { class: "owner-actions", "data-testid": "owner-actions" });
  const isOwner = signer.address && signer.address.toLowerCase() === p.owner.toLowerCase();
  if (!isOwner) {
    box.append(h("span", { class: "muted" }, `Owner actions need the owner's account (${short(p.owner)}).`));
    return box;
  }
  if (signer.kind !== "dev") {
    box.append(h("span", { class: "muted" }, "Cancel and refund from a browser wallet: use `market owner cancel|refund`."));
    return box;
  }
  const send = (action, label) => h("button", { type: "button", class: "secondary", "data-testid": action,
    onclick: async (ev) => {
      if (action === "cancel" && !confirm("Cancel the project? Rounds not yet opened will never open.")) return;
      ev.target.disabled = true;
      out.replaceChildren(h("span", { class: "muted" }, `sending ${label}…`));
      try {
        const tx = await api(`/api/projects/${p.id}/${action}`, { method: "POST", body: { account: signer.address } });
        out.replaceChildren(h("div", { class: "ok" }, `${tx.action} mined in block ${tx.block}: `, h("code", {}, tx.tx_hash)));
      } catch (err) {
        out.replaceChildren(errorBox(err));
      } finally {
        ev.target.disabled = false;
      }
    } }, label);
  box.append(send("cancel", "Cancel project"), " ", send("refund", "Refund unallocated"), out);
  return box;
}
