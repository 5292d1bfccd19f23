// The storefront: lists the server's plans and starts a checkout for the visitor, who is the
// customer of the session (never a reference typed here). Prices shown here are for display
// only; the server prices the checkout from its own catalog.
import { api, customerApi, customerRef, profile, saveProfile, money, every } from "/common.js";

const form = document.getElementById("checkout");
const plansBox = document.getElementById("plans");
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
  document.getElementById("pay").disabled = false;
  const field = document.getElementById("installments-field");
  field.hidden = !plan.installments;
  if (plan.installments) {
    form.installments.replaceChildren(
      ...plan.installments.map((n) =>
        Object.assign(document.createElement("option"), { value: n, textContent: `${n} × ${money(Math.floor(plan.amount / n), plan.currency)}` }),
      ),
    );
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  // In a real store the profile is the merchant's record of the customer; the session carries it.
  saveProfile({ name: form.name.value.trim() || undefined, email: form.email.value.trim() || undefined });
  const body = { planId: selected.id, returnUrl: `${location.origin}/return` };
  if (selected.installments) body.installments = Number(form.installments.value);
  try {
    // One key per click: a double submit or a network retry reuses the same checkout.
    const checkout = await customerApi("POST", "/v1/checkout", body, { "Idempotency-Key": crypto.randomUUID() });
    location.assign(checkout.paymentPageUrl);
  } catch (e) {
    error.textContent = e.message;
  }
});

api("GET", "/v1/plans")
  .then(({ plans }) => renderPlans(plans))
  .catch((e) => (plansBox.textContent = `Could not load plans: ${e.message}`));
