// The storefront: lists the server's plans and starts a checkout for the visitor, who is the
// customer of the session (never a reference typed here). Prices shown here are for display
// only; the server prices the checkout from its own catalog.
import { api, customerApi, customerRef, profile, saveProfile, startPayment, busy, statusBadge, money, every } from "/common.js";

const form = document.getElementById("checkout");
const plansBox = document.getElementById("plans");
const payButton = document.getElementById("pay");
const error = document.getElementById("error");
let selected = null;

document.getElementById("customer-ref").textContent = customerRef();
const known = profile();
form.name.value = known.name ?? "";
form.email.value = known.email ?? "";

function renderPlans(plans) {
  plansBox.replaceChildren(
    ...plans.map((plan) => {
      const label = document.createElement("label");
      label.className = "plan";
      const input = Object.assign(document.createElement("input"), {
        type: "radio",
        name: "plan",
        value: plan.id,
      });
      input.addEventListener("change", () => select(plan));
      const title = Object.assign(document.createElement("strong"), { textContent: plan.name });
      const price = Object.assign(document.createElement("span"), { textContent: describe(plan) });
      label.append(input, title, price);
      return label;
    }),
  );
}

function describe(plan) {
  const base = `${money(plan.amount, plan.currency)} ${every(plan.interval, plan.intervalCount)}`;
  if (plan.installments) return `${money(plan.amount, plan.currency)} in ${plan.installments.join(", ")} installments`;
  if (plan.unitAmount != null) return `${base} + ${money(plan.unitAmount, plan.currency)} per unit used`;
  return base;
}

function select(plan) {
  selected = plan;
  if (!payButton.hasAttribute("aria-busy")) payButton.disabled = false;
  const field = document.getElementById("installments-field");
  field.hidden = !plan.installments;
  form.installments.replaceChildren(
    ...(plan.installments ?? []).map((n) =>
      Object.assign(document.createElement("option"), { value: n, textContent: `${n} × ${money(Math.floor(plan.amount / n), plan.currency)}` }),
    ),
  );
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!selected) return;
  error.textContent = "";
  busy(
    payButton,
    "Starting payment…",
    async () => {
      // In a real store the profile is the merchant's record of the customer; the session carries it.
      saveProfile({ name: form.name.value.trim() || undefined, email: form.email.value.trim() || undefined });
      const body = { planId: selected.id, returnUrl: `${location.origin}/return` };
      if (selected.installments) body.installments = Number(form.installments.value);
      try {
        const checkout = await startPayment("/v1/checkout", body);
        location.assign(checkout.paymentPageUrl);
      } catch (e) {
        error.textContent = `The payment could not start. ${e.message}`;
        throw e;
      }
    },
    { stay: true },
  ).catch(() => {});
});

// What the customer already has, with the status the API gives (the same on every page).
async function mine() {
  const { data } = await customerApi("GET", "/v1/portal/subscriptions");
  document.getElementById("mine").hidden = !data.length;
  document.getElementById("my-subscriptions").replaceChildren(
    ...data.map((sub) => {
      const li = document.createElement("li");
      li.dataset.subscriptionId = sub.id;
      li.append(`${sub.planId}: `, statusBadge(sub.status), " ", Object.assign(document.createElement("a"), { href: "/return", textContent: "details" }));
      return li;
    }),
  );
}

api("GET", "/v1/plans")
  .then(({ plans }) => renderPlans(plans))
  .catch((e) => (plansBox.textContent = `Could not load plans: ${e.message}`));
mine().catch((e) => (error.textContent = `Could not load your subscriptions. ${e.message}`));
