// The return and account page. After the hosted page it polls the checkout until the payment is
// confirmed (the backend asks the provider itself if the webhook is late): approved, or declined
// with a way to pay with another card. Then, and on a plain visit, it shows the customer portal
// (subscriptions, the card on file, the charges) as the customer of the session, and the merchant
// console (the merchant's view of the same subscriptions, and the test clock).
import { api, customerApi, customerRef, startPayment, endAttempt, busy, statusBadge, sleep, money, date } from "/common.js";
import { advanceClock } from "/clock.js";

const $ = (id) => document.getElementById(id);
const checkoutId = new URLSearchParams(location.search).get("checkoutId");
const keyInput = $("key");
let checkout = null;
let subscriptions = [];
let charges = [];
let chargesCursor = null;

if (["127.0.0.1", "localhost"].includes(location.hostname)) keyInput.value = "dev-merchant-key";

function headline(text) {
  $("title").textContent = text;
  document.title = `${text} · Demo store`;
}

function cardText(card) {
  if (!card) return "your card";
  return `${card.brand ?? "card"} •••• ${card.last4 ?? "????"}`;
}

async function poll() {
  $("payment").hidden = false;
  headline("Confirming your payment");
  for (let i = 0; i < 60; i++) {
    const found = await customerApi("GET", `/v1/checkout/${encodeURIComponent(checkoutId)}`);
    if (found.status !== "pending") {
      checkout = found;
      // The attempt is over either way: paying again is a new attempt, with a new key.
      endAttempt(found.checkoutId);
      return found.status === "paid" ? approved(found) : declined(found);
    }
    await sleep(1000);
  }
  $("status").textContent = "Still waiting for the provider. This page can be reloaded later.";
}

function approved(c) {
  const amount = money(c.amount, c.currency);
  headline(c.purpose === "card" ? "Card replaced" : "Payment received");
  $("payment-title").textContent = "Payment approved";
  $("status").textContent =
    c.purpose === "card"
      ? c.outcome === "settled"
        ? `Your new card (${cardText(c.card)}) is on file, and it paid the ${amount} that was outstanding.`
        : `Your new card (${cardText(c.card)}) is on file. The ${amount} verification payment is refunded.`
      : `Paid ${amount} with ${cardText(c.card)}. Thank you!`;
  $("status").className = "status paid";
}

function declined(c) {
  const amount = money(c.amount, c.currency);
  headline("Payment declined");
  $("payment-title").textContent = "Your card was declined";
  $("status").textContent =
    `The payment of ${amount} did not go through (${c.failureReason ?? "declined"}). ` +
    "Nothing was charged. You can pay with another card.";
  $("status").className = "status failed";
  $("payment-actions").hidden = false;
}

// Paying again after a decline: a new hosted page for the same purchase (a new attempt).
$("retry").addEventListener("click", () => {
  $("payment-error").textContent = "";
  const returnUrl = `${location.origin}/return`;
  const [path, body] =
    checkout.purpose === "card"
      ? ["/v1/portal/payment-method", { returnUrl }]
      : ["/v1/checkout", { planId: checkout.planId, returnUrl, ...(checkout.installments ? { installments: checkout.installments } : {}) }];
  busy(
    $("retry"),
    "Opening the payment page…",
    async () => {
      const next = await startPayment(path, body);
      location.assign(next.paymentPageUrl);
    },
    { stay: true },
  ).catch((e) => ($("payment-error").textContent = e.message));
});

// The subscription the payment started, in the state the API gives now, not the state it had
// when the payment was made. Once the subscription has been charged again (a renewal, a
// declined renewal, an installment, a plan change), the payment is history: the box goes, and
// the page is the account, whose charges list that payment among the others.
function renderPaymentSubscription() {
  const sub = checkout?.subscriptionId && subscriptions.find((s) => s.id === checkout.subscriptionId);
  const chargedSince = sub && charges.some((c) => c.subscriptionId === sub.id && c.kind !== "checkout");
  if (chargedSince) {
    $("payment").hidden = true;
    $("payment-subscription-status").replaceChildren();
    headline("Your account");
    return;
  }
  $("payment-subscription").hidden = !sub;
  if (sub) $("payment-subscription-status").replaceChildren(statusBadge(sub.status));
}

// Charge descriptions count periods from 1 ("period 3"), as a customer would; the API's
// currentPeriod counts from 0.
const periodNumber = (sub) => sub.currentPeriod + 1;

function rows(pairs) {
  const dl = document.createElement("dl");
  dl.append(
    ...pairs.flatMap(([k, v]) => {
      const dd = document.createElement("dd");
      dd.append(...(Array.isArray(v) ? v : [v]));
      return [Object.assign(document.createElement("dt"), { textContent: k }), dd];
    }),
  );
  return dl;
}

function button(text, onClick) {
  const b = Object.assign(document.createElement("button"), { textContent: text });
  b.addEventListener("click", () => onClick(b));
  return b;
}

function nextCharge(sub) {
  if (sub.nextChargeAt) return date(sub.nextChargeAt);
  const retry = charges.find((c) => c.subscriptionId === sub.id && c.status === "failed" && c.nextRetryAt);
  if (retry) return `payment retry ${date(retry.nextRetryAt)}`;
  return sub.cancelAtPeriodEnd ? "none: ends with this period" : "none scheduled";
}

function renderSubscriptions() {
  const box = $("subscriptions");
  if (!subscriptions.length) {
    box.textContent = "No subscriptions yet.";
    return;
  }
  box.replaceChildren(
    ...subscriptions.map((sub) => {
      const item = document.createElement("div");
      item.className = "subscription";
      item.dataset.subscriptionId = sub.id;
      item.append(
        rows([
          ["Plan", `${sub.planId}: ${money(sub.amount, sub.currency)} per ${sub.interval}`],
          ["Status", [statusBadge(sub.status), ` ${sub.statusReason}`]],
          ["Period", `${periodNumber(sub)}: ${date(sub.currentPeriodStart)} → ${date(sub.currentPeriodEnd)}`],
          ["Next charge", nextCharge(sub)],
        ]),
      );
      const actions = Object.assign(document.createElement("div"), { className: "actions" });
      if (sub.status === "active" && sub.kind === "recurring") {
        actions.append(
          sub.cancelAtPeriodEnd
            ? button("Keep my subscription", (b) => act(b, sub.id, "reactivate"))
            : button("Cancel at period end", (b) => act(b, sub.id, "cancel")),
        );
      }
      if (actions.childElementCount) item.append(actions);
      return item;
    }),
  );
}

async function renderCard() {
  const text = $("card-text");
  // A customer without a subscription never paid: there is no card to ask for.
  if (!subscriptions.length) {
    text.textContent = "No card on file.";
    return;
  }
  try {
    const card = await customerApi("GET", `/v1/customers/${customerRef()}/payment-method`);
    text.textContent = `${cardText(card)}, expires ${String(card.expMonth ?? "").padStart(2, "0")}/${card.expYear ?? ""}`;
  } catch (e) {
    if (e.status !== 404) throw e;
    text.textContent = "No card on file.";
  }
}

// Charges are read before subscriptions: a charge's outcome and its subscription's status are
// written together, so a settled charge read first is never shown beside a stale status.
async function refresh() {
  $("account-error").textContent = "";
  try {
    chargesCursor = null;
    charges = [];
    $("charges").replaceChildren();
    await moreCharges();
    ({ data: subscriptions } = await customerApi("GET", "/v1/portal/subscriptions"));
    renderSubscriptions();
    renderPaymentSubscription();
    await renderCard();
  } catch (e) {
    $("account-error").textContent = e.message;
  }
  await merchantView();
}

async function moreCharges() {
  const after = chargesCursor ? `&startingAfter=${encodeURIComponent(chargesCursor)}` : "";
  const page = await customerApi("GET", `/v1/portal/charges?limit=10${after}`);
  charges.push(...page.data);
  $("charges").append(
    ...page.data.map((c) => {
      const tr = document.createElement("tr");
      tr.className = c.status;
      tr.dataset.chargeId = c.id;
      const details =
        c.status === "failed"
          ? `${c.failureReason ?? ""}${c.nextRetryAt ? `, retry ${date(c.nextRetryAt)}` : ""}`
          : c.refundedAmount
            ? `refunded ${money(c.refundedAmount, c.currency)}`
            : "";
      const cells = { Created: date(c.createdAt), Description: c.description, Amount: money(c.amount, c.currency), Status: c.status, Details: details };
      for (const [label, text] of Object.entries(cells)) {
        const td = Object.assign(document.createElement("td"), { textContent: text });
        td.dataset.label = label;
        tr.append(td);
      }
      return tr;
    }),
  );
  chargesCursor = page.nextCursor ?? null;
  $("more-charges").hidden = !page.hasMore;
}

async function act(b, id, action) {
  await busy(b, action === "cancel" ? "Cancelling…" : "Keeping…", async () => {
    await customerApi("POST", `/v1/portal/subscriptions/${encodeURIComponent(id)}/${action}`);
    await refresh();
  }).catch((e) => ($("account-error").textContent = e.message));
}

// The merchant's own view of this customer's subscriptions (merchant API, API key): the same
// statuses the portal shows.
async function merchantView() {
  const body = $("merchant-subscriptions");
  if (!keyInput.value) {
    body.replaceChildren();
    return;
  }
  try {
    const page = await api("GET", `/v1/subscriptions?customerRef=${encodeURIComponent(customerRef())}`, undefined, {
      Authorization: `Bearer ${keyInput.value}`,
    });
    body.replaceChildren(
      ...page.data.map((sub) => {
        const tr = document.createElement("tr");
        tr.dataset.subscriptionId = sub.id;
        const cells = [
          ["Subscription", sub.id],
          ["Plan", sub.planId],
          ["Status", statusBadge(sub.status)],
          ["Period", `${periodNumber(sub)}, ends ${date(sub.currentPeriodEnd)}`],
        ];
        for (const [label, value] of cells) {
          const td = document.createElement("td");
          td.dataset.label = label;
          td.append(value);
          tr.append(td);
        }
        return tr;
      }),
    );
  } catch (e) {
    $("console-error").textContent = `Merchant view: ${e.message}`;
  }
}

// The next moment something is billed for this customer: a renewal, or a payment retry.
function nextDue() {
  const moments = [
    ...subscriptions.map((s) => s.nextChargeAt),
    ...charges.filter((c) => c.status === "failed").map((c) => c.nextRetryAt),
  ].filter(Boolean);
  return moments.sort((a, b) => Date.parse(a) - Date.parse(b))[0];
}

async function advance() {
  $("console-error").textContent = "";
  const due = nextDue();
  if (!due) {
    $("console-error").textContent = "Nothing is due: no renewal or payment retry is scheduled.";
    return;
  }
  const report = await advanceClock(due, keyInput.value);
  $("clock").textContent = `Business time is now ${date(report.asOf)}.`;
  // With the charges fanned out over the queue they are driven after the tick answered: show
  // the account again until nothing is pending and it stopped changing.
  let before = null;
  for (let i = 0; i < 30; i++) {
    await refresh();
    const now = JSON.stringify([subscriptions, charges]);
    if (now === before && !charges.some((c) => c.status === "pending")) break;
    before = now;
    await sleep(1000);
  }
}

$("advance").addEventListener("click", () =>
  busy($("advance"), "Billing…", advance).catch((e) => ($("console-error").textContent = e.message)),
);
keyInput.addEventListener("change", () => {
  $("console-error").textContent = "";
  merchantView();
});
$("more-charges").addEventListener("click", () =>
  busy($("more-charges"), "Loading…", moreCharges).catch((e) => ($("account-error").textContent = e.message)),
);
$("replace-card").addEventListener("click", () => {
  $("account-error").textContent = "";
  busy(
    $("replace-card"),
    "Opening the payment page…",
    async () => {
      const next = await startPayment("/v1/portal/payment-method", { returnUrl: `${location.origin}/return` });
      location.assign(next.paymentPageUrl);
    },
    { stay: true },
  ).catch((e) => ($("account-error").textContent = e.message));
});

(checkoutId ? poll() : Promise.resolve())
  .catch((e) => ($("status").textContent = e.message))
  .finally(refresh);
