// The return page: polls the checkout until the payment is confirmed (the backend asks the
// provider itself if the webhook is late), then shows the subscription and its charges.
import { api, money, date } from "/common.js";

const params = new URLSearchParams(location.search);
const checkoutId = params.get("checkoutId");
const statusBox = document.getElementById("status");
const keyInput = document.getElementById("key");
const consoleError = document.getElementById("console-error");
let subscriptionId = null;
let customerRef = sessionStorage.getItem("customerRef");

if (["127.0.0.1", "localhost"].includes(location.hostname)) keyInput.value = "dev-merchant-key";

async function poll() {
  if (!checkoutId) {
    statusBox.textContent = "No checkout to show.";
    return;
  }
  for (let i = 0; i < 60; i++) {
    const checkout = await api("GET", `/v1/checkout/${encodeURIComponent(checkoutId)}`);
    if (checkout.status === "paid") return paid(checkout);
    if (checkout.status === "failed") {
      statusBox.textContent = `The payment did not go through (${checkout.failureReason ?? "declined"}). Nothing was charged.`;
      statusBox.className = "status failed";
      return;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  statusBox.textContent = "Still waiting for the provider. This page can be reloaded later.";
}

function paid(checkout) {
  statusBox.textContent = `Paid ${money(checkout.amount, checkout.currency)}. Your subscription is active.`;
  statusBox.className = "status paid";
  const card = checkout.card ?? {};
  document.getElementById("card-text").textContent =
    `${card.brand ?? "Card"} •••• ${card.last4 ?? "????"}, expires ${String(card.expMonth ?? "").padStart(2, "0")}/${card.expYear ?? ""}`;
  document.getElementById("subscription-id").textContent = checkout.subscriptionId;
  document.getElementById("card").hidden = false;
  subscriptionId = checkout.subscriptionId;
  document.getElementById("console").hidden = false;
  refresh();
}

const merchant = () => ({ Authorization: `Bearer ${keyInput.value}` });

async function refresh() {
  consoleError.textContent = "";
  try {
    const sub = await api("GET", `/v1/subscriptions/${subscriptionId}`, undefined, merchant());
    customerRef = sub.customerRef;
    const rows = [
      ["Status", `${sub.status} (${sub.statusReason})`],
      ["Plan", `${sub.planId}: ${money(sub.amount, sub.currency)} per ${sub.interval}`],
      ["Current period", `${date(sub.currentPeriodStart)} → ${date(sub.currentPeriodEnd)}`],
      ["Next charge", sub.nextChargeAt ? date(sub.nextChargeAt) : "none scheduled"],
    ];
    document.getElementById("subscription").replaceChildren(
      ...rows.flatMap(([k, v]) => [
        Object.assign(document.createElement("dt"), { textContent: k }),
        Object.assign(document.createElement("dd"), { textContent: v }),
      ]),
    );
    const { data } = await api("GET", `/v1/customers/${encodeURIComponent(customerRef)}/charges?limit=50`, undefined, merchant());
    document.getElementById("charges").replaceChildren(
      ...data.map((c) => {
        const tr = document.createElement("tr");
        const details = c.status === "failed"
          ? `${c.failureReason ?? ""}${c.nextRetryAt ? `, retry ${date(c.nextRetryAt)}` : ""}`
          : c.refundedAmount ? `refunded ${money(c.refundedAmount, c.currency)}` : "";
        for (const text of [date(c.createdAt), c.description, money(c.amount, c.currency), c.status, details]) {
          tr.append(Object.assign(document.createElement("td"), { textContent: text }));
        }
        tr.className = c.status;
        return tr;
      }),
    );
    return sub;
  } catch (e) {
    consoleError.textContent = e.message;
  }
}

document.getElementById("refresh").addEventListener("click", refresh);
document.getElementById("advance").addEventListener("click", async () => {
  const sub = await refresh();
  if (!sub) return;
  try {
    // Business time jumps to the end of the current period; the tick bills the next one.
    await api("POST", "/v1/test-clock/tick", { now: sub.currentPeriodEnd }, merchant());
    await refresh();
  } catch (e) {
    consoleError.textContent = e.message;
  }
});
document.getElementById("cancel").addEventListener("click", async () => {
  try {
    await api("POST", `/v1/subscriptions/${subscriptionId}/cancel`, { atPeriodEnd: true }, merchant());
    await refresh();
  } catch (e) {
    consoleError.textContent = e.message;
  }
});

poll().catch((e) => (statusBox.textContent = e.message));
