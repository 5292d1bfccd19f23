// Shared by the demo pages: API calls with problem+json errors, the demo customer's session,
// checkout attempts and their Idempotency-Key, busy buttons, the subscription status as the API
// gives it, money and date formatting.

export async function api(method, path, body, headers = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON (a proxy's error page): the status says enough.
  }
  if (!response.ok) {
    const message = data && (data.detail || data.title) ? `${data.title}: ${data.detail ?? ""}` : `HTTP ${response.status}`;
    const error = new Error(message);
    error.status = response.status;
    error.problem = typeof data?.type === "string" ? data.type.split("/").pop() : undefined;
    error.retryAfter = Number(response.headers.get("Retry-After")) || undefined;
    throw error;
  }
  return data;
}

// The visitor is a customer of the demo store. A real store knows its customers (they are
// logged in) and its backend mints their sessions with POST /v1/customer-sessions; here the
// demo-only route POST /v1/demo/session plays that backend, for a random reference that this
// browser keeps. The visitor never types a customer reference.
export function customerRef() {
  let ref = localStorage.getItem("demoCustomerRef");
  if (!/^demo-[0-9a-f]{32}$/.test(ref ?? "")) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    ref = `demo-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
    localStorage.setItem("demoCustomerRef", ref);
  }
  return ref;
}

export function profile() {
  return JSON.parse(localStorage.getItem("demoProfile") ?? '{"name":"Ada Lovelace","email":"ada@example.com"}');
}

export function saveProfile(p) {
  if (JSON.stringify(p) === JSON.stringify(profile())) return;
  localStorage.setItem("demoProfile", JSON.stringify(p));
  sessionStorage.removeItem("demoSession");
}

async function session() {
  return (await minted()).clientSecret;
}

// The visitor's own test clock (the demo session names it): moving it bills this visitor only.
export async function testClock() {
  return (await minted()).testClock;
}

async function minted() {
  const cached = JSON.parse(sessionStorage.getItem("demoSession") ?? "null");
  if (cached && cached.customerRef === customerRef() && Date.parse(cached.expiresAt) - Date.now() > 60_000) {
    return cached;
  }
  const body = { customerRef: customerRef() };
  const { name, email } = profile();
  if (name) body.name = name;
  if (email) body.email = email;
  const fresh = await api("POST", "/v1/demo/session", body);
  sessionStorage.setItem("demoSession", JSON.stringify(fresh));
  return fresh;
}

// A call as the customer: the session names them; the body and the path never do.
export async function customerApi(method, path, body, headers = {}) {
  const call = async () => api(method, path, body, { ...headers, Authorization: `Bearer ${await session()}` });
  try {
    return await call();
  } catch (e) {
    if (e.status !== 401) throw e;
    sessionStorage.removeItem("demoSession");
    return call();
  }
}

// One payment attempt, one Idempotency-Key. The key is kept in this tab with the request it was
// made for, so every retry of the attempt (a double click, a network error, a slow provider, a
// reload, the back button) sends the same key and the worker answers with the same checkout
// instead of creating a second provider order. The attempt ends when its outcome is known (the
// return page ends it); paying again after a decline is a new attempt with a new key.
const ATTEMPT = "demoPaymentAttempt";

function attemptKey(path, body) {
  const request = JSON.stringify([customerRef(), path, body]);
  const saved = JSON.parse(sessionStorage.getItem(ATTEMPT) ?? "null");
  if (saved?.request === request) return saved;
  const fresh = { request, key: crypto.randomUUID() };
  sessionStorage.setItem(ATTEMPT, JSON.stringify(fresh));
  return fresh;
}

// Ends the attempt that created this checkout (and only that one: an older return page
// reloaded later must not end a newer attempt).
export function endAttempt(checkoutId) {
  const saved = JSON.parse(sessionStorage.getItem(ATTEMPT) ?? "null");
  if (saved && (checkoutId === undefined || saved.checkoutId === checkoutId)) sessionStorage.removeItem(ATTEMPT);
}

// Answers worth retrying with the same key: no answer at all, the same attempt still being
// created (409 checkout-in-progress), or the provider briefly unavailable.
function transient(e) {
  return e.status === undefined || e.problem === "checkout-in-progress" || [502, 503, 504].includes(e.status);
}

// Starts (or resumes) a hosted-page payment: `POST /v1/checkout` for a plan,
// `POST /v1/portal/payment-method` for a new card. Answers the checkout with its page URL.
export async function startPayment(path, body) {
  const attempt = attemptKey(path, body);
  for (let tries = 1; ; tries++) {
    try {
      const checkout = await customerApi("POST", path, body, { "Idempotency-Key": attempt.key });
      sessionStorage.setItem(ATTEMPT, JSON.stringify({ ...attempt, checkoutId: checkout.checkoutId }));
      return checkout;
    } catch (e) {
      // The worker gave up on this attempt: the next click is a new one.
      if (e.problem === "checkout-failed") endAttempt();
      if (!transient(e) || tries === 4) throw e;
      await sleep(Math.min((e.retryAfter ?? tries) * 1000, 5000));
    }
  }
}

// Runs `work` with the button disabled and saying what is happening, so a second click cannot
// start the same thing twice. `stay` keeps the button busy after success (the page is leaving).
export async function busy(button, text, work, { stay = false } = {}) {
  if (button.disabled) return;
  button.dataset.idle = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.textContent = text;
  let left = false;
  try {
    await work();
    left = stay;
  } finally {
    if (!left) idle(button);
  }
}

function idle(button) {
  button.disabled = false;
  button.removeAttribute("aria-busy");
  button.textContent = button.dataset.idle;
}

// Back from the payment page, the browser may show this page as it was left: busy, leaving.
window.addEventListener("pageshow", (event) => {
  if (event.persisted) document.querySelectorAll("button[aria-busy]").forEach(idle);
});

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The subscription's state is always the API's `status`, shown with the same words everywhere.
const STATUS_LABELS = {
  active: "Active",
  past_due: "Past due",
  unpaid: "Unpaid",
  paused: "Paused",
  canceled: "Canceled",
  completed: "Completed",
};

export function statusBadge(status) {
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.dataset.status = status;
  badge.textContent = STATUS_LABELS[status] ?? status;
  return badge;
}

const CURRENCIES = { 752: "SEK", 978: "EUR", 208: "DKK" };

export function money(minor, numericCurrency) {
  const code = CURRENCIES[numericCurrency] ?? "SEK";
  return new Intl.NumberFormat(undefined, { style: "currency", currency: code }).format(minor / 100);
}

export function every(unit, count = 1) {
  return count === 1 ? `per ${unit}` : `every ${count} ${unit}s`;
}

export function date(iso) {
  return iso ? new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short", timeZone: "UTC" }) + " UTC" : "–";
}
