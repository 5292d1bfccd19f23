// The return and account page. After the hosted page it polls the checkout until the payment is
// confirmed (the backend asks the provider itself if the webhook is late); then, and on a plain
// visit, it shows the customer portal: subscriptions, the card on file, the charges. Every call
// is made as the customer of the session.
import { api, customerApi, customerRef, money, date } from "/common.js";

const params = new URLSearchParams(location.search);
const checkoutId = params.get("checkoutId");
const statusBox = document.getElementById("status");
const accountError = document.getElementById("account-error");
const keyInput = document.getElementById("key");
const consoleError = document.getElementById("console-error");
let subscriptions = [];
let chargesCursor = null;

if (["127.0.0.1", "localhost"].includes(location.hostname)) keyInput.value = "dev-merchant-key";

async function poll() {
  document.getElementById("payment").hidden = false;
  for (let i = 0; i < 60; i++) {
    const checkout = await customerApi("GET", `/v1/checkout/${encodeURIComponent(checkoutId)}`);
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
  const amount = money(checkout.amount, checkout.currency);
  statusBox.textContent =
    checkout.purpose === "card"
      ? checkout.outcome === "settled"
        ? `Your new card is on file, and it paid the ${amount} that was outstanding.`
        : `Your new card is on file. The ${amount} verification payment is refunded.`
      : `Paid ${amount}. Your subscription is active.`;
  statusBox.className = "status paid";
}

function rows(pairs) {
  const dl = document.createElement("dl");
  dl.append(
    ...pairs.flatMap(([k, v]) => [
      Object.assign(document.createElement("dt"), { textContent: k }),
      Object.assign(document.createElement("dd"), { textContent: v }),
    ]),
  );
  return dl;
}

function button(text, onClick) {
  const b = Object.assign(document.createElement("button"), { textContent: text });
  b.addEventListener("click", onClick);
  return b;
}

async function refresh() {
  accountError.textContent = "";
  try {
    ({ data: subscriptions } = await customerApi("GET", "/v1/portal/subscriptions"));
    const box = document.getElementById("subscriptions");
    if (!subscriptions.length) box.textContent = "No subscriptions yet.";
    else
      box.replaceChildren(
        ...subscriptions.map((sub) => {
          const item = document.createElement("div");
          item.append(
            rows([
              ["Plan", `${sub.planId}: ${money(sub.amount, sub.currency)} per ${sub.interval}`],
              ["Status", `${sub.status} (${sub.statusReason})`],
              ["Current period", `${date(sub.currentPeriodStart)} → ${date(sub.currentPeriodEnd)}`],
              ["Next charge", sub.nextChargeAt ? date(sub.nextChargeAt) : sub.cancelAtPeriodEnd ? "none: ends with this period" : "none scheduled"],
            ]),
          );
          const actions = Object.assign(document.createElement("div"), { className: "actions" });
          if (sub.status === "active" && sub.kind === "recurring") {
            actions.append(
              sub.cancelAtPeriodEnd
                ? button("Keep my subscription", () => act(sub.id, "reactivate"))
                : button("Cancel at period end", () => act(sub.id, "cancel")),
            );
          }
          item.append(actions);
          return item;
        }),
      );
    try {
      const card = await customerApi("GET", `/v1/customers/${customerRef()}/payment-method`);
      document.getElementById("card-text").textContent =
        `${card.brand ?? "Card"} •••• ${card.last4 ?? "????"}, expires ${String(card.expMonth ?? "").padStart(2, "0")}/${card.expYear ?? ""}`;
    } catch (e) {
      if (e.status !== 404) throw e;
      document.getElementById("card-text").textContent = "No card on file.";
    }
    chargesCursor = null;
    document.getElementById("charges").replaceChildren();
    await moreCharges();
  } catch (e) {
    accountError.textContent = e.message;
  }
}

async function moreCharges() {
  const after = chargesCursor ? `&startingAfter=${encodeURIComponent(chargesCursor)}` : "";
  const page = await customerApi("GET", `/v1/portal/charges?limit=10${after}`);
  document.getElementById("charges").append(
    ...page.data.map((c) => {
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
  chargesCursor = page.nextCursor ?? null;
  document.getElementById("more-charges").hidden = !page.hasMore;
}

async function act(id, action) {
  try {
    await customerApi("POST", `/v1/portal/subscriptions/${encodeURIComponent(id)}/${action}`);
    await refresh();
  } catch (e) {
    accountError.textContent = e.message;
  }
}

document.getElementById("more-charges").addEventListener("click", () => moreCharges().catch((e) => (accountError.textContent = e.message)));
document.getElementById("replace-card").addEventListener("click", async () => {
  try {
    const checkout = await customerApi(
      "POST",
      "/v1/portal/payment-method",
      { returnUrl: `${location.origin}/return` },
      { "Idempotency-Key": crypto.randomUUID() },
    );
    location.assign(checkout.paymentPageUrl);
  } catch (e) {
    accountError.textContent = e.message;
  }
});
document.getElementById("advance").addEventListener("click", async () => {
  consoleError.textContent = "";
  const due = subscriptions
    .filter((s) => ["active", "past_due", "unpaid"].includes(s.status))
    .map((s) => s.currentPeriodEnd)
    .sort()[0];
  if (!due) return (consoleError.textContent = "No subscription to bill.");
  try {
    // Business time jumps to the next period end; the tick bills what is due then.
    await api("POST", "/v1/test-clock/tick", { now: due }, { Authorization: `Bearer ${keyInput.value}` });
    await refresh();
  } catch (e) {
    consoleError.textContent = e.message;
  }
});

(checkoutId ? poll() : Promise.resolve())
  .catch((e) => (statusBox.textContent = e.message))
  .finally(refresh);
