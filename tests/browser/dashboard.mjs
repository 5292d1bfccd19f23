// The merchant dashboard in a real browser (Debian's Chromium, driven by playwright-core), and
// the proofs it asks of whoever calls it. Run by tests/e2e/dashboard.rs against a stack it
// prepared:
//
//   node tests/browser/dashboard.mjs <fixture.json>
//
// This suite plays Cloudflare Access: it makes an RSA key pair, writes the public key where the
// stack's Access team domain serves it, and signs tokens as Access would (RS256, `aud`, `iss`,
// `exp`, `email`). It checks:
//   - who is refused: no session (the page redirects to the development sign-in, the API
//     answers 401), a forged token (another key under the same key id), an expired one, one
//     for another application or team, a read-only member of staff writing (403), and a write
//     from another site or without the dashboard's header (403);
//   - at 1280×800 and 390×844, signed in (development sign-in, an admin) and through Access (a
//     viewer): every page (overview, customers, a customer, a charge, subscriptions, events, an
//     event, incidents, the test clock) shows what it must, with no console error, no
//     horizontal scroll and no serious or critical accessibility violation (axe-core);
//   - a refund made through the page, with its confirmation, moves money once (the page's key);
//     the viewer has no refund button and no subscription actions;
//   - no answer the pages received carries a card token id;
//   - the JavaScript the first page loads stays under 150 KB gzip (printed).
// Every wait is for a condition with a generous deadline. Screenshots of each page at the desktop
// size go to the fixture's screenshot directory.

import { generateKeyPairSync, sign } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { chromium } from "playwright-core";

const fixture = JSON.parse(readFileSync(process.argv[2], "utf8"));
const { workerUrl, sandboxUrl, team, audience, admin } = fixture;
const WAIT = 30_000;
const SIZES = [
  { name: "desktop", viewport: { width: 1280, height: 800 } },
  { name: "phone", viewport: { width: 390, height: 844 } },
];
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const started = Date.now();
const log = (message) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${message}`);
const failures = [];
function check(ok, message) {
  if (!ok) {
    failures.push(message);
    log(`FAIL ${message}`);
  }
  return ok;
}

// ---- playing Cloudflare Access -------------------------------------------------------------

const KID = "e2e-key-1";
const access = generateKeyPairSync("rsa", { modulusLength: 2048 });
const forger = generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...access.publicKey.export({ format: "jwk" }), kid: KID, alg: "RS256", use: "sig" };
writeFileSync(fixture.keySet, JSON.stringify({ keys: [jwk] }));

const b64url = (data) => Buffer.from(data).toString("base64url");
function token(claims, key = access.privateKey, kid = KID) {
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: "RS256", kid, typ: "JWT" }));
  const payload = b64url(
    JSON.stringify({ aud: [audience], iss: team, iat: now, nbf: now, exp: now + 600, type: "app", ...claims }),
  );
  const signature = sign("sha256", Buffer.from(`${header}.${payload}`), key);
  return `${header}.${payload}.${b64url(signature)}`;
}
const viewer = "viewer@shop.test";
const viewerToken = token({ email: viewer });
const adminToken = token({ email: admin });

async function dashboard(path, { method = "GET", headers = {}, body } = {}) {
  const init = { method, headers: { ...headers }, redirect: "manual" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(`${workerUrl}${path}`, init);
  const text = await r.text();
  return { status: r.status, text, headers: r.headers };
}

async function refusals() {
  const me = "/dashboard/api/me";
  check((await dashboard(me)).status === 401, "no session: the API answers 401");
  const page = await dashboard("/dashboard/");
  check(
    page.status === 303 && page.headers.get("location")?.endsWith("/dashboard/login.html"),
    `no session: a page sends the browser to the sign-in (${page.status} ${page.headers.get("location")})`,
  );
  check((await dashboard("/dashboard/app.js")).status !== 200, "no session: the dashboard's script is not served");
  const refused = async (what, value) => {
    const r = await dashboard(me, { headers: { "Cf-Access-Jwt-Assertion": value } });
    check(r.status === 401, `${what}: refused with 401 (was ${r.status} ${r.text.slice(0, 200)})`);
  };
  await refused("a forged token (another key, the same key id)", token({ email: admin }, forger.privateKey));
  await refused("an expired token", token({ email: admin, exp: Math.floor(Date.now() / 1000) - 3600 }));
  await refused("a token for another application", token({ email: admin, aud: ["another-app"] }));
  await refused("a token of another team", token({ email: admin, iss: "https://other.cloudflareaccess.com" }));
  await refused("an unsigned token", `${adminToken.split(".").slice(0, 2).join(".")}.`);
  await refused("a token with alg none", `${b64url(JSON.stringify({ alg: "none", kid: KID }))}.${adminToken.split(".")[1]}.`);
  await refused("a token signed by an unknown key", token({ email: admin }, forger.privateKey, "unknown-kid"));

  const asViewer = await dashboard(me, { headers: { "Cf-Access-Jwt-Assertion": viewerToken } });
  check(asViewer.status === 200 && JSON.parse(asViewer.text).role === "viewer", `a viewer's token is accepted as a viewer: ${asViewer.text}`);
  const asAdmin = await dashboard(me, { headers: { "Cf-Access-Jwt-Assertion": adminToken } });
  check(asAdmin.status === 200 && JSON.parse(asAdmin.text).role === "admin", `an admin's token is accepted as an admin: ${asAdmin.text}`);

  const refundPath = `/dashboard/api/v1/charges/${fixture.settledCharge}/refunds`;
  const write = (token, headers) =>
    dashboard(refundPath, {
      method: "POST",
      headers: { "Cf-Access-Jwt-Assertion": token, "Idempotency-Key": `refused-${Math.random()}`, ...headers },
      body: { amount: 1 },
    });
  const byViewer = await write(viewerToken, { "X-Dashboard-Request": "1" });
  check(byViewer.status === 403, `a viewer cannot refund: 403 (was ${byViewer.status})`);
  const noHeader = await write(adminToken, {});
  check(noHeader.status === 403, `a write without the dashboard's header is refused (was ${noHeader.status})`);
  const crossSite = await write(adminToken, { "X-Dashboard-Request": "1", Origin: "https://evil.example" });
  check(crossSite.status === 403, `a write from another site is refused (was ${crossSite.status})`);
  const preflight = await dashboard(refundPath, { method: "OPTIONS", headers: { Origin: "https://evil.example" } });
  check(preflight.status >= 400 && !preflight.headers.get("access-control-allow-origin"), `no CORS preflight is granted (was ${preflight.status})`);
  const forbiddenWrite = await dashboard("/dashboard/api/v1/charges", {
    method: "POST",
    headers: { "Cf-Access-Jwt-Assertion": adminToken, "X-Dashboard-Request": "1", "Idempotency-Key": "no" },
    body: {},
  });
  check(forbiddenWrite.status === 403, `the dashboard does not charge cards (was ${forbiddenWrite.status})`);
  const leaked = [asAdmin, asViewer].some((r) => /MERCHANT|e2e-merchant-key/.test(r.text));
  check(!leaked, "no answer names the merchant key");
}

// ---- the pages -----------------------------------------------------------------------------

const bodies = [];
const errors = [];

async function open(browser, size, headers) {
  // axe-core is injected into the page: the dashboard's own policy (script-src 'self') would
  // refuse it, rightly, so this context alone looks past it.
  const context = await browser.newContext({ viewport: size.viewport, bypassCSP: true, extraHTTPHeaders: headers });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (e) => errors.push(`${size.name}: ${page.url()}: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`${size.name}: console: ${m.text()} (${m.location().url})`);
  });
  page.on("response", async (response) => {
    if (!response.url().startsWith(workerUrl)) return;
    if (response.status() === 404) errors.push(`${size.name}: 404 ${response.url()}`);
    try {
      bodies.push(await response.text());
    } catch {
      // A redirect, or a page that went away: nothing to read.
    }
  });
  return { context, page };
}

async function inspect(page, label) {
  const width = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  check(width.scroll <= width.inner, `${label}: no horizontal scroll (${width.scroll} > ${width.inner})`);
  await page.addScriptTag({ path: "node_modules/axe-core/axe.min.js" });
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const serious = result.violations.filter((v) => ["serious", "critical"].includes(v.impact));
  check(
    serious.length === 0,
    `${label}: accessibility: ${JSON.stringify(serious.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map((n) => n.target) })))}`,
  );
}

async function visit(page, size, hash, heading, name) {
  await page.goto(`${workerUrl}/dashboard/${hash}`);
  await page.getByRole("heading", { level: 1, name: heading }).waitFor();
  // The page's data is in: the loading line is gone.
  await page.waitForFunction(() => !document.querySelector("main .muted")?.textContent?.startsWith("Loading"));
  await inspect(page, `${size.name} ${name}`);
  if (size.name === "desktop" && !name.endsWith("-viewer")) {
    mkdirSync(fixture.screenshots, { recursive: true });
    await page.screenshot({ path: join(fixture.screenshots, `${name}.png`), fullPage: false });
  }
}

async function asAdmin(browser, size) {
  const { context, page } = await open(browser, size, {});
  // Signed out, the dashboard sends the browser to the development sign-in.
  await page.goto(`${workerUrl}/dashboard/`);
  await page.waitForURL(/\/dashboard\/login\.html$/);
  await inspect(page, `${size.name} sign-in`);
  await page.getByLabel("Email").fill(admin);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { level: 1, name: "Overview" }).waitFor();
  check((await page.textContent("#who")).includes("admin"), `${size.name}: signed in as an admin`);

  await visit(page, size, "#/", "Overview", "overview");
  check(await page.getByText("MRR, last 12 months").isVisible(), `${size.name}: the overview charts MRR`);
  check((await page.locator("table").count()) >= 4, `${size.name}: each chart has its table`);

  await visit(page, size, "#/customers?q=dash", "Customers", "customers");
  await page.getByRole("link", { name: fixture.customer }).click();
  await page.getByRole("heading", { level: 1, name: `Customer ${fixture.customer}` }).waitFor();
  await inspect(page, `${size.name} customer`);
  check(/•••• 1111/.test(await page.textContent("main")), `${size.name}: the card on file shows masked`);
  if (size.name === "desktop") await page.screenshot({ path: join(fixture.screenshots, "customer.png") });

  await visit(page, size, `#/charges/${fixture.settledCharge}`, `Charge ${fixture.settledCharge}`, "charge");
  const text = await page.textContent("main");
  check(/settled/.test(text) && /payout/.test(text), `${size.name}: the charge shows its settlement`);
  check(/refund/.test(text), `${size.name}: the charge's timeline shows its refund`);

  await visit(page, size, "#/subscriptions", "Subscriptions", "subscriptions");
  check((await page.getByRole("button", { name: "Cancel now" }).count()) > 0, `${size.name}: an admin sees subscription actions`);
  if (size.name === "desktop") {
    // Pause a subscription from its row, then resume it: the worker's answer is what shows.
    const row = () => page.locator("tr", { hasText: fixture.subscription });
    await row().getByRole("button", { name: "Pause" }).click();
    await row().getByRole("button", { name: "Resume" }).click();
    await row().getByRole("button", { name: "Pause" }).waitFor();
    const state = await (await fetch(`${workerUrl}/dashboard/api/v1/subscriptions/${fixture.subscription}`, { headers: { "Cf-Access-Jwt-Assertion": adminToken } })).json();
    check(state.status === "active" && state.pausedAt === undefined, `paused and resumed through the page: ${JSON.stringify(state)}`);
  }
  await page.selectOption("#status", "active");
  await page.waitForURL(/status=active/);
  await page.getByRole("heading", { level: 1, name: "Subscriptions" }).waitFor();

  await visit(page, size, "#/events", "Events", "events");
  await page.locator("main table a").first().click();
  await page.getByRole("heading", { level: 1, name: /^Event evt_/ }).waitFor();
  await inspect(page, `${size.name} event`);

  await visit(page, size, "#/incidents", "Incidents", "incidents");
  await visit(page, size, "#/clock", "Test clock", "clock");

  if (size.name === "desktop") await refundThroughThePage(page);
  await context.close();
}

async function refundThroughThePage(page) {
  await page.goto(`${workerUrl}/dashboard/#/charges/${fixture.refundCharge}`);
  await page.getByRole("heading", { level: 1, name: `Charge ${fixture.refundCharge}` }).waitFor();
  const posts = [];
  page.on("request", (r) => {
    if (r.method() === "POST" && r.url().includes("/refunds")) posts.push(r.headers()["idempotency-key"]);
  });
  await page.getByRole("button", { name: "Refund…" }).click();
  const confirm = page.getByRole("button", { name: "Confirm refund" });
  await confirm.waitFor();
  check((await page.getByRole("alertdialog").textContent()).includes("50.00 SEK"), "the confirmation names the amount");
  await inspect(page, "desktop refund confirmation");
  await page.screenshot({ path: join(fixture.screenshots, "refund.png") });
  // A double click sends one refund: the button is busy while the first is on its way.
  await confirm.dblclick();
  await page.getByText(/Refunded \(void\)\./).waitFor();
  check(posts.length === 1 && posts[0]?.startsWith("dashboard-"), `one refund request, with the page's key: ${JSON.stringify(posts)}`);
  await page.waitForFunction(() => /Refunded\s*50\.00 SEK/.test(document.querySelector("main dl")?.textContent ?? ""));
}

async function asViewer(browser, size) {
  const { context, page } = await open(browser, size, { "Cf-Access-Jwt-Assertion": viewerToken });
  await visit(page, size, "#/", "Overview", "overview-viewer");
  check((await page.textContent("#who")).includes("viewer"), `${size.name}: a viewer through Access`);
  await visit(page, size, `#/charges/${fixture.settledCharge}`, `Charge ${fixture.settledCharge}`, "charge-viewer");
  check((await page.getByRole("button", { name: "Refund…" }).count()) === 0, `${size.name}: a viewer has no refund button`);
  await visit(page, size, "#/subscriptions", "Subscriptions", "subscriptions-viewer");
  check((await page.getByRole("button", { name: /Cancel|Pause|Resume/ }).count()) === 0, `${size.name}: a viewer has no subscription actions`);
  await context.close();
}

function scriptSize() {
  const files = ["public/dashboard/app.js", "public/dashboard/charts.js"];
  const gz = files.reduce((sum, f) => sum + gzipSync(readFileSync(f), { level: 9 }).length, 0);
  log(`the JavaScript the first page loads: ${gz} bytes gzip (${files.join(", ")})`);
  check(gz < 150 * 1024, `the first page's JavaScript is under 150 KB gzip (${gz})`);
}

async function main() {
  await refusals();
  scriptSize();
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
  try {
    for (const size of SIZES) {
      log(`${size.name}: an admin, signed in`);
      await asAdmin(browser, size);
      log(`${size.name}: a viewer, through Access`);
      await asViewer(browser, size);
    }
  } finally {
    await browser.close();
  }
  check(errors.length === 0, `no script error, console error or 404: ${JSON.stringify(errors.slice(0, 10))}`);
  const ledger = await (await fetch(`${sandboxUrl}/_sandbox/ledger`)).json();
  const tokens = ledger.tokens.map((t) => t.tokenId);
  check(tokens.length > 0, "the run issued tokens to look for");
  const leaks = tokens.filter((t) => bodies.some((b) => b.includes(t)));
  check(leaks.length === 0, `no answer carries a token id: ${leaks}`);
  if (failures.length) {
    console.log(`${failures.length} check(s) failed`);
    process.exit(1);
  }
  log("every check passed");
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
