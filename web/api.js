// JSON calls to the dashboard API and small formatting helpers shared by the views.

export class ApiError extends Error {
  constructor(message, status, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export async function api(path, { method = "GET", body } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(`the dashboard server is unreachable (${err.message})`, 0, null);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: text };
  }
  if (!response.ok) {
    throw new ApiError(describe(data, response.status), response.status, data);
  }
  return data;
}

function describe(data, status) {
  if (data && typeof data.error === "string") return data.error;
  if (data && Array.isArray(data.detail)) {
    // FastAPI validation errors: name the field and the rule.
    return data.detail
      .map((d) => `${(d.loc || []).filter((x) => x !== "body").join(".")}: ${d.msg}`)
      .join("; ");
  }
  return `request failed with HTTP ${status}`;
}

const WEI = 10n ** 18n;

export function eth(wei, digits = 4) {
  if (wei === null || wei === undefined) return "–";
  const v = BigInt(wei);
  const whole = v / WEI;
  const frac = (v % WEI).toString().padStart(18, "0").slice(0, digits).replace(/0+$/, "");
  return `${whole}${frac ? "." + frac : ""} ETH`;
}

export function short(addr) {
  if (!addr) return "–";
  return addr.length > 14 ? `${addr.slice(0, 6)}…${addr.slice(-4)}` : addr;
}

export function shortCid(cid) {
  if (!cid) return "–";
  return cid.length > 16 ? `${cid.slice(0, 8)}…${cid.slice(-6)}` : cid;
}

/** Build DOM: h("div", {class: "x", onclick: f}, child, "text", [children]). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function errorBox(err) {
  return h("div", { class: "error", role: "alert", "data-testid": "error" }, err.message || err);
}
