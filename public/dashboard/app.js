// The merchant dashboard: pages that read and act through the worker's /dashboard/api routes.
// No rule of the business lives here: amounts, statuses and what may be done come from the
// worker, which also decides who may do it. Everything shown is text (never HTML from data).

import { barChart, lineChart } from "./charts.js";

const CURRENCIES = { 752: "SEK", 978: "EUR", 208: "DKK" };

// ---- talking to the worker ---------------------------------------------------------------------

async function call(method, path, body, headers = {}) {
  const init = { method, headers: { ...headers }, credentials: "same-origin" };
  if (method !== "GET") init.headers["X-Dashboard-Request"] = "1";
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`/dashboard/api/${path}`, init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON: the status says enough.
  }
  if (response.status === 401) {
    location.assign("/dashboard/login.html");
    throw new Error("Signed out");
  }
  if (!response.ok) {
    const error = new Error(data?.detail ?? data?.title ?? `HTTP ${response.status}`);
    error.status = response.status;
    error.problem = typeof data?.type === "string" ? data.type.split("/").pop() : undefined;
    throw error;
  }
  return data;
}

const get = (path) => call("GET", path);

// ---- building pages (text only) ------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function money(amount, currency) {
  if (amount === null || amount === undefined) return "—";
  const code = CURRENCIES[currency] ?? currency ?? "";
  const sign = amount < 0 ? "−" : "";
  const abs = Math.abs(amount);
  return `${sign}${Math.floor(abs / 100).toLocaleString("en")}.${String(abs % 100).padStart(2, "0")} ${code}`;
}

function when(text) {
  if (!text) return "—";
  return text.replace("T", " ").replace(/:\d\d\.\d{3}Z$/, " UTC");
}

function badge(status) {
  const tone = {
    succeeded: "good", active: "good", settled: "good", delivered: "good",
    failed: "bad", unpaid: "bad", canceled: "bad", needs_attention: "bad", voided: "warn",
    past_due: "warn", pending: "warn", paused: "warn", processed: "warn", error: "bad",
  }[status] ?? "";
  return el("span", { class: `badge ${tone}` }, status ?? "—");
}

function table(caption, columns, rows) {
  const head = el("tr", {}, columns.map((c) => el("th", { scope: "col", class: c.num ? "num" : undefined }, c.title)));
  const body = rows.map((row) =>
    el("tr", {}, columns.map((c) => el("td", { class: c.num ? "num" : undefined }, c.value(row)))),
  );
  // The wrapper scrolls a wide table on a narrow screen; it can take focus, so a keyboard can
  // scroll it too.
  return el(
    "div",
    { class: "scroll", tabindex: "0", role: "region", "aria-label": caption },
    el("table", {}, el("caption", {}, caption), el("thead", {}, head), el("tbody", {}, body.length ? body : el("tr", {}, el("td", { colspan: columns.length, class: "muted" }, "None.")))),
  );
}

function link(href, text) {
  return el("a", { href }, text);
}

let me = null;
const main = () => document.getElementById("main");

function show(title, ...content) {
  const target = main();
  target.replaceChildren(el("h1", {}, title), ...content);
  document.title = `${title} · recurring-edge dashboard`;
}

function failure(error) {
  return el("p", { class: "error", role: "alert" }, error.message);
}

/// A button that acts once per click, shows it is busy, and reports the outcome in `status`.
function action(label, run, { danger = false, secondary = false } = {}) {
  const status = el("span", { role: "status", class: "muted" });
  const button = el("button", { type: "button", class: danger ? "danger" : secondary ? "secondary" : undefined }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = "Working…";
    try {
      status.textContent = (await run()) ?? "Done.";
    } catch (error) {
      status.textContent = error.message;
      status.className = "error";
    } finally {
      button.disabled = false;
    }
  });
  return el("span", { class: "actions" }, button, status);
}

const isAdmin = () => me?.role === "admin";

// ---- pages -------------------------------------------------------------------------------------

async function overview() {
  const currency = me.currencies[0];
  const data = await get(`overview?currency=${encodeURIComponent(currency)}`);
  const attention = data.attention;
  const mrrNow = data.mrr.at(-1)?.mrr ?? 0;
  const last30 = data.daily.reduce(
    (sum, d) => ({ gross: sum.gross + d.gross, refunds: sum.refunds + d.refunds, fees: sum.fees + d.fees, net: sum.net + d.net }),
    { gross: 0, refunds: 0, fees: 0, net: 0 },
  );
  const stat = (value, label) => el("div", { class: "stat" }, el("div", { class: "value" }, value), el("div", { class: "label" }, label));
  show(
    "Overview",
    el("p", { class: "muted" }, `As of ${when(data.asOf)}, in ${CURRENCIES[currency] ?? currency}.`),
    el(
      "div",
      { class: "card stats" },
      stat(money(mrrNow, currency), "MRR"),
      stat(money(last30.gross, currency), "Gross, 30 days"),
      stat(money(last30.net, currency), "Net, 30 days"),
      stat(String(data.dunning.recovered), `Recovered by dunning, 30 days (${money(data.dunning.recoveredAmount, currency)})`),
      stat(String(attention.charges), "Charges needing attention"),
      stat(String(attention.eventsFailed + attention.eventsRetrying), "Events failing delivery"),
    ),
    el(
      "div",
      { class: "grid" },
      el(
        "section",
        { class: "card" },
        el("h2", {}, "MRR, last 12 months"),
        lineChart(data.mrr.map((p) => ({ label: p.month, value: p.mrr / 100 })), "Monthly recurring revenue by month"),
        table("MRR by month", [
          { title: "Month", value: (p) => p.month },
          { title: "MRR", num: true, value: (p) => money(p.mrr, currency) },
          { title: "Subscriptions", num: true, value: (p) => p.subscriptions },
        ], data.mrr),
      ),
      el(
        "section",
        { class: "card" },
        el("h2", {}, "Net by day, last 30 days"),
        barChart(data.daily.map((d) => ({ label: d.period.slice(5), value: d.net / 100 })), "Net by day"),
        moneyTable("By day", data.daily, currency),
      ),
      el(
        "section",
        { class: "card" },
        el("h2", {}, "By month"),
        barChart(data.monthly.map((d) => ({ label: d.period, value: d.gross / 100 })), "Gross by month"),
        moneyTable("By month", data.monthly, currency),
      ),
      el(
        "section",
        { class: "card" },
        el("h2", {}, "Failed charges by reason, 30 days"),
        table("Failures", [
          { title: "Reason", value: (f) => el("code", {}, f.reason) },
          { title: "Charges", num: true, value: (f) => f.count },
          { title: "Amount", num: true, value: (f) => money(f.amount, currency) },
        ], data.failuresByReason),
      ),
      el(
        "section",
        { class: "card" },
        el("h2", {}, "Recent incidents"),
        table("Newest first", [
          { title: "When", value: (i) => when(i.createdAt) },
          { title: "Type", value: (i) => el("code", {}, i.type) },
          { title: "Charge", value: (i) => (i.chargeId ? link(`#/charges/${i.chargeId}`, i.chargeId) : "—") },
        ], data.incidents),
        el("p", {}, link("#/incidents", "All incidents")),
      ),
      el(
        "section",
        { class: "card" },
        el("h2", {}, "Events failing delivery"),
        el("p", {}, `${attention.eventsFailed} failed for good, ${attention.eventsRetrying} being retried.`),
        el("p", {}, link("#/events", "Events")),
      ),
    ),
  );
}

function moneyTable(caption, rows, currency) {
  return table(caption, [
    { title: "Period", value: (d) => d.period },
    { title: "Gross", num: true, value: (d) => money(d.gross, currency) },
    { title: "Refunds", num: true, value: (d) => money(d.refunds, currency) },
    { title: "Fees", num: true, value: (d) => money(d.fees, currency) },
    { title: "Net", num: true, value: (d) => money(d.net, currency) },
  ], rows);
}

async function customers(params) {
  const q = params.get("q") ?? "";
  const input = el("input", { id: "q", name: "q", type: "search", value: q, required: true, autocomplete: "off" });
  const form = el(
    "form",
    { class: "inline", role: "search", onsubmit: (e) => { e.preventDefault(); location.hash = `#/customers?q=${encodeURIComponent(input.value.trim())}`; } },
    el("div", {}, el("label", { for: "q" }, "Reference or email"), input),
    el("button", { type: "submit" }, "Search"),
  );
  if (!q) {
    show("Customers", form);
    return;
  }
  const found = await get(`customers?q=${encodeURIComponent(q)}`);
  show(
    "Customers",
    form,
    table(`Customers matching “${q}”`, [
      { title: "Reference", value: (c) => link(`#/customers/${encodeURIComponent(c.customerRef)}`, c.customerRef) },
      { title: "Email", value: (c) => c.email ?? "—" },
      { title: "Name", value: (c) => c.name ?? "—" },
      { title: "Since", value: (c) => when(c.createdAt) },
    ], found.data),
  );
}

function chargesTable(caption, charges) {
  return table(caption, [
    { title: "Charge", value: (c) => link(`#/charges/${c.id}`, c.id) },
    { title: "Status", value: (c) => badge(c.status) },
    { title: "Kind", value: (c) => c.kind },
    { title: "Amount", num: true, value: (c) => money(c.amount, c.currency) },
    { title: "Refunded", num: true, value: (c) => money(c.refundedAmount, c.currency) },
    { title: "Created", value: (c) => when(c.createdAt) },
  ], charges);
}

function refundsTable(caption, refunds) {
  return table(caption, [
    { title: "Refund", value: (r) => el("code", {}, r.id) },
    { title: "Charge", value: (r) => link(`#/charges/${r.chargeId}`, r.chargeId) },
    { title: "Status", value: (r) => badge(r.status) },
    { title: "Method", value: (r) => r.method ?? "—" },
    { title: "Amount", num: true, value: (r) => money(r.amount, r.currency) },
    { title: "Created", value: (r) => when(r.createdAt) },
  ], refunds);
}

function eventsTable(caption, events) {
  return table(caption, [
    { title: "Event", value: (e) => link(`#/events/${e.id}`, e.id) },
    { title: "Type", value: (e) => el("code", {}, e.type) },
    { title: "When", value: (e) => when(e.createdAt) },
  ], events);
}

async function customer(ref) {
  const data = await get(`customers/${encodeURIComponent(ref)}`);
  const card = data.paymentMethod;
  show(
    `Customer ${data.customer.customerRef}`,
    el(
      "dl",
      { class: "facts card" },
      el("dt", {}, "Email"), el("dd", {}, data.customer.email ?? "—"),
      el("dt", {}, "Name"), el("dd", {}, data.customer.name ?? "—"),
      el("dt", {}, "Card on file"),
      el("dd", {}, card ? `${card.brand ?? "Card"} •••• ${card.last4 ?? "????"}, expires ${card.expMonth ?? "?"}/${card.expYear ?? "?"}` : "None"),
    ),
    el("h2", {}, "Subscriptions"),
    subscriptionsTable("Subscriptions", data.subscriptions),
    el("h2", {}, "Charges"),
    chargesTable("Newest first", data.charges),
    el("h2", {}, "Refunds"),
    refundsTable("Newest first", data.refunds),
    el("h2", {}, "Events"),
    eventsTable("Newest first", data.events),
  );
}

function refundForm(charge) {
  const remaining = charge.amount - charge.refundedAmount;
  if (!isAdmin() || charge.status !== "succeeded" || remaining <= 0) return null;
  const amount = el("input", { id: "refund-amount", type: "number", min: "1", max: String(remaining), step: "1", value: String(remaining), inputmode: "numeric" });
  const area = el("div", { id: "refund-confirm" });
  // One key per confirmed refund: a retry of the same confirmation cannot refund twice.
  let key = null;
  const ask = el("button", { type: "button", class: "danger", id: "refund" }, "Refund…");
  ask.addEventListener("click", () => {
    const value = Number(amount.value);
    key = crypto.randomUUID();
    area.replaceChildren(
      el(
        "div",
        { class: "confirm", role: "alertdialog", "aria-labelledby": "confirm-text" },
        el("p", { id: "confirm-text" }, `Refund ${money(value, charge.currency)} of ${charge.id} to the customer? This moves money.`),
        action("Confirm refund", async () => {
          const refund = await call("POST", `v1/charges/${charge.id}/refunds`, { amount: value }, { "Idempotency-Key": `dashboard-${key}` });
          setTimeout(() => route(), 600);
          return refund.status === "succeeded"
            ? `Refunded (${refund.method}).`
            : `Refund ${refund.status}: it goes back once the payment has settled.`;
        }, { danger: true }),
        el("button", { type: "button", class: "secondary", onclick: () => area.replaceChildren() }, "Cancel"),
      ),
    );
  });
  return el(
    "section",
    { class: "card" },
    el("h2", {}, "Refund"),
    el("div", { class: "inline" }, el("label", { for: "refund-amount" }, `Amount in minor units (up to ${remaining})`), amount, ask),
    area,
  );
}

async function charge(id) {
  const data = await get(`charges/${encodeURIComponent(id)}/timeline`);
  const c = data.charge;
  const s = c.settlement;
  const receipt = c.receiptUrl
    ? el("a", { href: c.receiptUrl, rel: "noreferrer noopener", target: "_blank" }, "Receipt")
    : c.status === "succeeded"
      ? action("Get receipt", async () => {
          const r = await get(`v1/charges/${c.id}/receipt`);
          setTimeout(() => route(), 300);
          return `Receipt: ${r.receiptUrl}`;
        }, { secondary: true })
      : "—";
  show(
    `Charge ${c.id}`,
    el(
      "dl",
      { class: "facts card" },
      el("dt", {}, "Status"), el("dd", {}, badge(c.status)),
      el("dt", {}, "Amount"), el("dd", {}, money(c.amount, c.currency)),
      el("dt", {}, "Refunded"), el("dd", {}, money(c.refundedAmount, c.currency)),
      el("dt", {}, "Customer"), el("dd", {}, link(`#/customers/${encodeURIComponent(c.customerRef)}`, c.customerRef)),
      el("dt", {}, "Kind"), el("dd", {}, c.kind, c.periodIndex !== undefined ? ` (period ${c.periodIndex})` : ""),
      el("dt", {}, "Description"), el("dd", {}, c.description),
      c.failureReason ? [el("dt", {}, "Failure"), el("dd", {}, el("code", {}, c.failureReason))] : null,
      el("dt", {}, "Settlement"),
      el("dd", {}, s ? [badge(s.status), s.fee !== undefined ? ` fee ${money(s.fee, c.currency)}, net ${money(s.net, c.currency)}` : "", s.payoutId ? `, payout ${s.payoutId} (${s.settlementDate})` : ""] : "not yet"),
      el("dt", {}, "Receipt"), el("dd", {}, receipt),
      c.incidents?.length ? [el("dt", {}, "Incidents"), el("dd", {}, c.incidents.join(", "))] : null,
    ),
    refundForm(c),
    el("h2", {}, "Timeline"),
    el(
      "ol",
      { class: "timeline" },
      data.timeline.map((step) =>
        el(
          "li",
          {},
          el("div", { class: "when" }, when(step.at)),
          el("strong", {}, step.what),
          " ",
          el("span", { class: "mono" }, Object.entries(step.detail ?? {}).filter(([, v]) => v !== null && v !== undefined && typeof v !== "object").map(([k, v]) => `${k}: ${v}`).join(" · ")),
        ),
      ),
    ),
    el("h2", {}, "Refunds"),
    refundsTable("Oldest first", data.refunds),
    el("h2", {}, "Events"),
    eventsTable("Newest first", data.events),
  );
}

function subscriptionsTable(caption, subscriptions, withActions = false) {
  const columns = [
    { title: "Subscription", value: (s) => el("code", {}, s.id) },
    { title: "Customer", value: (s) => link(`#/customers/${encodeURIComponent(s.customerRef)}`, s.customerRef) },
    { title: "Plan", value: (s) => s.planId },
    { title: "Status", value: (s) => [badge(s.status), s.cancelAtPeriodEnd ? " ends at period end" : ""] },
    { title: "Price", num: true, value: (s) => money(s.amount, s.currency) },
    { title: "Period ends", value: (s) => when(s.currentPeriodEnd) },
  ];
  if (withActions && isAdmin()) {
    columns.push({ title: "Actions", value: subscriptionActions });
  }
  return table(caption, columns, subscriptions);
}

function subscriptionActions(s) {
  const act = (label, path, body, danger = false) =>
    action(label, async () => {
      if (danger && !window.confirm(`${label}: ${s.id} of ${s.customerRef}?`)) return "Not changed.";
      const updated = await call("POST", `v1/subscriptions/${s.id}/${path}`, body);
      setTimeout(() => route(), 600);
      return `Now ${updated.status}${updated.cancelAtPeriodEnd ? ", ending at period end" : ""}.`;
    }, { danger, secondary: !danger });
  const buttons = [];
  if (s.status === "active" && s.kind === "recurring") buttons.push(act("Pause", "pause"));
  if (s.status === "paused") buttons.push(act("Resume", "resume"));
  if (["active", "past_due", "unpaid", "paused"].includes(s.status)) {
    if (s.status === "active" && s.kind === "recurring" && !s.cancelAtPeriodEnd) {
      buttons.push(act("Cancel at period end", "cancel", { atPeriodEnd: true }, true));
    }
    buttons.push(act("Cancel now", "cancel", {}, true));
  }
  return el("div", { class: "actions" }, buttons);
}

async function subscriptions(params) {
  const status = params.get("status") ?? "";
  const select = el(
    "select",
    { id: "status", name: "status", onchange: (e) => { location.hash = `#/subscriptions${e.target.value ? `?status=${e.target.value}` : ""}`; } },
    ["", "active", "past_due", "unpaid", "paused", "canceled", "completed"].map((s) => el("option", { value: s, selected: s === status }, s || "any status")),
  );
  const list = await get(`v1/subscriptions?limit=100${status ? `&status=${status}` : ""}`);
  show(
    "Subscriptions",
    el("form", { class: "inline" }, el("div", {}, el("label", { for: "status" }, "Status"), select)),
    subscriptionsTable("Newest first", list.data, true),
  );
}

async function events() {
  const list = await get("v1/events?limit=100");
  show("Events", eventsTable("Oldest first (the feed's order)", list.data));
}

async function event(id) {
  const e = await get(`v1/events/${encodeURIComponent(id)}`);
  const attempts = e.delivery?.attempts ?? [];
  show(
    `Event ${e.id}`,
    el(
      "dl",
      { class: "facts card" },
      el("dt", {}, "Type"), el("dd", {}, el("code", {}, e.type)),
      el("dt", {}, "When"), el("dd", {}, when(e.createdAt)),
      el("dt", {}, "Delivery"), el("dd", {}, badge(e.delivery?.status ?? "none")),
      el("dt", {}, "Resource"), el("dd", {}, e.data?.id && e.type.startsWith("charge.") ? link(`#/charges/${e.data.id}`, e.data.id) : el("code", {}, e.data?.id ?? "—")),
    ),
    isAdmin()
      ? el("p", {}, action("Redeliver", async () => {
          await call("POST", `v1/events/${e.id}/redeliver`);
          setTimeout(() => route(), 600);
          return "Queued for delivery.";
        }, { secondary: true }))
      : null,
    el("h2", {}, "Delivery attempts"),
    table("Each attempt, as the endpoint answered", [
      { title: "Attempt", num: true, value: (a) => a.attempt },
      { title: "At", value: (a) => when(a.at) },
      { title: "Status", value: (a) => a.statusCode ?? "—" },
      { title: "Latency", num: true, value: (a) => `${a.latencyMs} ms` },
      { title: "Error", value: (a) => a.error ?? "—" },
    ], attempts),
  );
}

async function incidents() {
  const list = await get("v1/incidents?limit=100");
  show(
    "Incidents",
    table("Oldest first", [
      { title: "When", value: (i) => when(i.createdAt) },
      { title: "Type", value: (i) => el("code", {}, i.type) },
      { title: "Charge", value: (i) => (i.chargeId ? link(`#/charges/${i.chargeId}`, i.chargeId) : "—") },
      { title: "Amount", num: true, value: (i) => (i.amount !== undefined ? money(i.amount, i.currency) : "—") },
      { title: "Detail", value: (i) => i.detail },
    ], list.data),
  );
}

async function clock() {
  const now = await get("v1/test-clock");
  const input = el("input", { id: "clock-now", type: "text", value: now.now, autocomplete: "off", spellcheck: "false" });
  show(
    "Test clock",
    el("p", {}, `Business time is ${when(now.now)}. Moving it forward runs the scheduler as of then.`),
    isAdmin()
      ? el(
          "div",
          { class: "inline" },
          el("label", { for: "clock-now" }, "Move to (RFC 3339)"),
          input,
          action("Move the clock", async () => {
            const report = await call("POST", "v1/test-clock/tick", { now: input.value.trim() });
            return `Ran as of ${when(report.asOf)}: ${report.chargesDriven} charges driven.`;
          }),
        )
      : el("p", { class: "muted" }, "Only admins move the clock."),
  );
}

// ---- routing -----------------------------------------------------------------------------------

async function route() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query ?? "");
  const parts = (path || "/").split("/").filter(Boolean).map(decodeURIComponent);
  for (const a of document.querySelectorAll(".top nav a")) {
    const target = a.getAttribute("href").replace(/^#/, "");
    const current = target === "/" ? parts.length === 0 : `/${parts[0] ?? ""}` === target;
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  try {
    if (parts.length === 0) await overview();
    else if (parts[0] === "customers" && parts[1]) await customer(parts[1]);
    else if (parts[0] === "customers") await customers(params);
    else if (parts[0] === "charges" && parts[1]) await charge(parts[1]);
    else if (parts[0] === "subscriptions") await subscriptions(params);
    else if (parts[0] === "events" && parts[1]) await event(parts[1]);
    else if (parts[0] === "events") await events();
    else if (parts[0] === "incidents") await incidents();
    else if (parts[0] === "clock" && me.testClock) await clock();
    else show("Not found", el("p", {}, link("#/", "Overview")));
  } catch (error) {
    show("Something went wrong", failure(error));
  }
}

async function start() {
  me = await get("me");
  document.getElementById("who").textContent = `${me.email} (${me.role})`;
  if (me.testClock) document.querySelector("[data-test-clock]").hidden = false;
  document.getElementById("sign-out").addEventListener("click", async () => {
    // Behind Cloudflare Access, signing out is Access's own page.
    if (me.via === "access") {
      location.assign("/cdn-cgi/access/logout");
      return;
    }
    await call("POST", "logout");
    location.assign("/dashboard/login.html");
  });
  window.addEventListener("hashchange", route);
  await route();
}

start().catch((error) => {
  document.getElementById("main").replaceChildren(failure(error));
});
