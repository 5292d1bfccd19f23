// Shared by the demo pages: API calls with problem+json errors, the demo customer's session,
// money and date formatting.

export async function api(method, path, body, headers = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const message = data && (data.detail || data.title) ? `${data.title}: ${data.detail ?? ""}` : `HTTP ${response.status}`;
    const error = new Error(message);
    error.status = response.status;
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
  localStorage.setItem("demoProfile", JSON.stringify(p));
  sessionStorage.removeItem("demoSession");
}

async function session() {
  const cached = JSON.parse(sessionStorage.getItem("demoSession") ?? "null");
  if (cached && cached.customerRef === customerRef() && Date.parse(cached.expiresAt) - Date.now() > 60_000) {
    return cached.clientSecret;
  }
  const body = { customerRef: customerRef() };
  const { name, email } = profile();
  if (name) body.name = name;
  if (email) body.email = email;
  const minted = await api("POST", "/v1/demo/session", body);
  sessionStorage.setItem("demoSession", JSON.stringify(minted));
  return minted.clientSecret;
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
