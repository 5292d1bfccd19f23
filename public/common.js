// Shared by the demo pages: API calls with problem+json errors, money and date formatting.

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
    throw new Error(message);
  }
  return data;
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
