// Who signs: a dev account (dev chain only; the server holds anvil's keys) or a browser
// wallet (EIP-1193 window.ethereum). Wallet transactions are tracked here, in the page.

import { api, eth, h, short } from "./api.js";

export const signer = { kind: "none", address: null };
export const walletTxs = [];
const listeners = [];

export function onSignerChange(fn) {
  listeners.push(fn);
}

function changed() {
  localStorage.setItem("market.signer", JSON.stringify(signer));
  listeners.forEach((fn) => fn(signer));
}

export async function accountPicker(health) {
  const box = h("div", { class: "signer", "data-testid": "signer" });
  const saved = JSON.parse(localStorage.getItem("market.signer") || "null");
  if (health.dev_keys) {
    const accounts = await api("/api/accounts");
    const select = h(
      "select",
      { "data-testid": "account-picker", "aria-label": "dev account" },
      accounts.map((a) =>
        h("option", { value: a.address }, `#${a.index} ${a.role} ${short(a.address)} · ${eth(a.balance_wei, 2)}`),
      ),
    );
    const preferred =
      saved && saved.kind === "dev" && accounts.some((a) => a.address === saved.address)
        ? saved.address
        : accounts[1].address;
    select.value = preferred;
    Object.assign(signer, { kind: "dev", address: preferred });
    select.addEventListener("change", () => {
      Object.assign(signer, { kind: "dev", address: select.value });
      changed();
    });
    box.append(h("label", {}, "Dev account ", select));
  }
  if (window.ethereum) {
    const button = h("button", { type: "button", class: "secondary" }, "Connect wallet");
    button.addEventListener("click", async () => {
      try {
        const [address] = await window.ethereum.request({ method: "eth_requestAccounts" });
        Object.assign(signer, { kind: "wallet", address });
        button.textContent = `Wallet ${short(address)}`;
        changed();
      } catch (err) {
        button.textContent = `Wallet refused: ${err.message}`;
      }
    });
    box.append(button);
  } else if (!health.dev_keys) {
    box.append(h("span", { class: "muted" }, "No wallet found: install an EIP-1193 wallet to send transactions."));
  }
  return box;
}

/** Send an unsigned transaction through the browser wallet and wait for its receipt. */
export async function sendWithWallet(tx, action, onUpdate) {
  const entry = { action, from: tx.from, status: "signing", time: Math.floor(Date.now() / 1000) };
  walletTxs.unshift(entry);
  onUpdate();
  try {
    entry.tx_hash = await window.ethereum.request({ method: "eth_sendTransaction", params: [tx] });
    entry.status = "pending";
    onUpdate();
    for (let i = 0; i < 120; i++) {
      const receipt = await window.ethereum.request({
        method: "eth_getTransactionReceipt",
        params: [entry.tx_hash],
      });
      if (receipt) {
        entry.status = receipt.status === "0x1" ? "mined" : "reverted";
        entry.block = parseInt(receipt.blockNumber, 16);
        entry.logs = receipt.logs || [];
        onUpdate();
        return entry;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    entry.status = "unknown (no receipt after 2 min)";
  } catch (err) {
    entry.status = "failed";
    entry.message = err.message;
  }
  onUpdate();
  return entry;
}
