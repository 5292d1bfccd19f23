// The storefront: lists the server's plans and starts a checkout. Prices shown here are for
// display only; the server prices the checkout from its own catalog.
import { api, money, every } from "/common.js";

const form = document.getElementById("checkout");
const plansBox = document.getElementById("plans");
const error = document.getElementById("error");
let selected = null;

form.customerRef.value = `demo-${crypto.randomUUID().slice(0, 8)}`;

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
  const body = {
    customerRef: form.customerRef.value,
    planId: selected.id,
    returnUrl: `${location.origin}/return`,
  };
  if (form.name.value) body.name = form.name.value;
  if (form.email.value) body.email = form.email.value;
  if (selected.installments) body.installments = Number(form.installments.value);
  sessionStorage.setItem("customerRef", body.customerRef);
  try {
    // One key per click: a double submit or a network retry reuses the same checkout.
    const checkout = await api("POST", "/v1/checkout", body, { "Idempotency-Key": crypto.randomUUID() });
    location.assign(checkout.paymentPageUrl);
  } catch (e) {
    error.textContent = e.message;
  }
});

api("GET", "/v1/plans")
  .then(({ plans }) => renderPlans(plans))
  .catch((e) => (plansBox.textContent = `Could not load plans: ${e.message}`));
