// The demo storefront in a real browser (Debian's Chromium, driven by playwright-core), at a
// desktop and a phone size, against a running worker and PSP sandbox:
//
//   node tests/browser/storefront.mjs <worker-url> <sandbox-url> <screenshot-dir> [merchant-key]
//
// Flows, at 1280×800 and at 390×844, each as a new visitor (a new customer):
//   - subscribe: pick a plan (double click on the button) → the sandbox's hosted page → pay with
//     4111 1111 1111 1111 → the return page says paid, the subscription active → the merchant
//     console moves the test clock → the renewal is charged and shown, the period shown is the
//     one the latest charge names, and the first payment's message gives way to the account;
//   - decline: 4000 0000 0000 0002 is declined → a decline page that offers another card → a
//     retry whose first answer is lost on the way back (the page retries with the same key) →
//     pay with a good card → active;
//   - dunning: 4000 0000 0000 9995 pays now and soft-declines later → the renewal fails → every
//     page (return page, merchant console, store) shows past_due, as the API does.
// On every page: no horizontal scroll, every visible text at WCAG AA contrast, every control a
// target of at least 24×24 px, no status badge stretched wider than its word, no JavaScript
// error, no 404. Over the whole run: one provider order per payment attempt (the sandbox's
// ledger), one Idempotency-Key per attempt, and no response the pages received carries a card
// token id. Every wait is for a condition, with a generous deadline (a slow, busy machine).
// Exits 0 when every check passed; on failure, screenshots of the open pages go to
// <screenshot-dir>.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [workerUrl, sandboxUrl, shotDir, merchantKey = "dev-merchant-key"] = process.argv.slice(2);
if (!workerUrl || !sandboxUrl || !shotDir) {
  console.error("usage: node tests/browser/storefront.mjs <worker-url> <sandbox-url> <screenshot-dir> [merchant-key]");
  process.exit(2);
}

const WAIT = 30_000;
const GOOD_CARD = "4111 1111 1111 1111";
const DECLINED_CARD = "4000 0000 0000 0002";
const SOFT_DECLINE_LATER = "4000 0000 0000 9995";
const SIZES = [
  { name: "desktop", viewport: { width: 1280, height: 800 } },
  { name: "phone", viewport: { width: 390, height: 844 } },
];
// Chromium must not reach out (the network is closed); playwright-core adds --headless and a
// fresh profile directory of its own.
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
class Stop extends Error {}
function must(ok, message) {
  if (!check(ok, message)) throw new Stop(message);
}

// Everything the pages received, over every visitor, for the checks at the end.
const seen = { bodies: [], notFound: [], errors: [], dropped: [], checkoutKeys: new Map(), payPosts: new Map() };
const openPages = new Set();

async function visitor(browser, size, flow) {
  const context = await browser.newContext({ viewport: size.viewport });
  const label = `${size.name}/${flow}`;
  // Every answer of the worker passes through here and is kept as the page receives it (a page
  // that reads an answer and navigates at once leaves nothing to read afterwards).
  await context.route(`${workerUrl}/**`, async (route) => {
    let response, body;
    try {
      response = await route.fetch({ maxRedirects: 0 });
      body = await response.body();
    } catch {
      // The visitor's context closed while this answer was on its way (a poll in flight when a
      // flow ends): nobody is left to read it, and nothing was checked against it.
      await route.abort().catch(() => {});
      return;
    }
    seen.bodies.push({ url: route.request().url(), status: response.status(), text: body.toString("utf8") });
    // A request the page gave up meanwhile (it navigated away) has nobody to answer.
    await route.fulfill({ response, body }).catch(() => {});
  });
  // Busy buttons report themselves (see clickExpectingBusy): a page about to navigate may not
  // answer an evaluate any more, but its bindings still reach this process.
  const busyReports = [];
  await context.exposeBinding("reportBusy", (_source, state) => busyReports.push(state));
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.setDefaultNavigationTimeout(WAIT * 2);
  openPages.add({ page, label });
  page.on("response", (response) => {
    if (response.status() === 404) seen.notFound.push(`${label}: ${response.url()}`);
  });
  page.on("request", (request) => {
    const { pathname } = new URL(request.url());
    if (request.method() === "POST" && request.url().startsWith(workerUrl) && pathname === "/v1/checkout") {
      seen.checkoutKeys.set(label, [...(seen.checkoutKeys.get(label) ?? []), request.headers()["idempotency-key"]]);
    }
    if (request.method() === "POST" && request.url().startsWith(sandboxUrl) && pathname.startsWith("/pay/")) {
      seen.payPosts.set(label, (seen.payPosts.get(label) ?? 0) + 1);
    }
  });
  page.on("pageerror", (e) => seen.errors.push(`${label}: ${page.url()}: ${e.message}`));
  page.on("console", (m) => {
    // The browser reports the answer this suite drops on purpose (a lost response); nothing else.
    const dropped = m.text().includes("ERR_CONNECTION_RESET") && seen.dropped.includes(m.location().url);
    if (m.type() === "error" && !dropped) seen.errors.push(`${label}: console: ${m.text()} (${m.location().url})`);
  });
  return { page, label, size, context, busyReports };
}

async function sandboxLedger() {
  const r = await fetch(`${sandboxUrl}/_sandbox/ledger`);
  must(r.ok, `the sandbox ledger answers (${r.status})`);
  return r.json();
}

// Orders of the hosted page: one per checkout the worker made at the provider.
const pageOrders = (ledger) => ledger.orders.filter((o) => o.terminal === "PaymentPage");

async function merchant(path) {
  const r = await fetch(`${workerUrl}${path}`, { headers: { Authorization: `Bearer ${merchantKey}` } });
  must(r.ok, `merchant GET ${path} answers (${r.status})`);
  return r.json();
}

// The checks every page gets: it fits the screen, its text is readable.
async function inspect(v, where) {
  const { page, label } = v;
  const width = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    inner: window.innerWidth,
  }));
  check(width.scroll <= width.inner, `${label} ${where}: no horizontal scroll (scrollWidth ${width.scroll} > innerWidth ${width.inner})`);
  const poor = await page.evaluate(lowContrastTexts);
  check(poor.length === 0, `${label} ${where}: text below WCAG AA contrast: ${JSON.stringify(poor.slice(0, 5))}`);
  const small = await page.evaluate(smallTargets);
  check(small.length === 0, `${label} ${where}: controls smaller than 24×24 px (WCAG 2.5.8): ${JSON.stringify(small.slice(0, 5))}`);
  const stretched = await page.evaluate(stretchedBadges);
  check(stretched.length === 0, `${label} ${where}: status badges wider than their word: ${JSON.stringify(stretched.slice(0, 5))}`);
}

// Runs in the page: every visible button, field and radio smaller than 24×24 CSS pixels.
function smallTargets() {
  return [...document.querySelectorAll("button, input:not([type=hidden]), select")]
    .filter((el) => el.getClientRects().length && getComputedStyle(el).visibility === "visible")
    .map((el) => ({ el, box: el.getBoundingClientRect() }))
    .filter(({ box }) => box.width < 24 || box.height < 24)
    .map(({ el, box }) => ({ what: `${el.tagName.toLowerCase()}${el.type ? `[${el.type}]` : ""} ${el.name || el.id}`, width: box.width, height: box.height }));
}

// Runs in the page: every visible status badge whose box is wider than its text with its own
// padding and border (a badge stretched by the grid or flex box it sits in).
function stretchedBadges() {
  return [...document.querySelectorAll(".badge")]
    .filter((el) => el.getClientRects().length)
    .map((el) => {
      const range = document.createRange();
      range.selectNodeContents(el);
      const style = getComputedStyle(el);
      const own = ["paddingLeft", "paddingRight", "borderLeftWidth", "borderRightWidth"].reduce((sum, p) => sum + parseFloat(style[p]), 0);
      return { text: el.textContent, width: el.getBoundingClientRect().width, content: range.getBoundingClientRect().width + own };
    })
    .filter((b) => b.width > b.content + 2);
}

// Runs in the page: every visible text whose contrast with what is behind it is under 4.5:1
// (3:1 for large text), WCAG 2's formula. Backgrounds are composed up the tree.
function lowContrastTexts() {
  const rgba = (css) => {
    const m = css.match(/rgba?\(([^)]*)\)/);
    if (!m) return null;
    const p = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, bottom) => top.slice(0, 3).map((c, i) => c * top[3] + bottom[i] * (1 - top[3])).concat(1);
  const luminance = ([r, g, b]) =>
    [r, g, b]
      .map((v) => v / 255)
      .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4))
      .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const bg = rgba(getComputedStyle(e).backgroundColor);
      if (bg && bg[3] > 0) layers.push(bg);
      if (bg && bg[3] === 1) break;
    }
    return layers.reduceRight((below, layer) => over(layer, below), [255, 255, 255, 1]);
  };
  const poor = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
    const field = el.matches("input:not([type=radio]):not([type=checkbox]):not([type=hidden]), select") && el.value;
    if (!own && !field) continue;
    const style = getComputedStyle(el);
    if (!el.getClientRects().length || style.visibility !== "visible" || Number(style.opacity) === 0) continue;
    const bg = background(el);
    const fg = over(rgba(style.color), bg);
    const [hi, lo] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      poor.push({ text: (el.textContent || el.value).trim().slice(0, 40), ratio: Number(ratio.toFixed(2)), color: style.color, background: `rgb(${bg.slice(0, 3).map(Math.round)})` });
    }
  }
  return poor;
}

// Holds the POST a click sends until `release`, so its button's busy state can be seen however
// fast the answer would be; then lets it through to the recording route.
async function holdRequest(page, match) {
  let release;
  const gate = new Promise((resolve) => (release = resolve));
  let passed;
  const through = new Promise((resolve) => (passed = resolve));
  let seen;
  const body = new Promise((resolve) => (seen = resolve));
  const handler = async (route) => {
    if (route.request().method() !== "POST") return route.fallback();
    seen(route.request().postDataJSON());
    await gate;
    await route.fallback();
    passed();
  };
  await page.route(match, handler);
  return {
    // The held request's JSON body, once the page has sent it.
    body: () => body,
    release: async () => {
      release();
      await through;
      await page.unroute(match, handler);
    },
  };
}

// Clicks (or double-clicks) a button and waits until it turned busy: disabled, aria-busy, and
// saying `text`. The button reports its own change through the reportBusy binding.
async function clickExpectingBusy(v, selector, text, { double = false } = {}) {
  const { page, label, busyReports } = v;
  busyReports.length = 0;
  await page.locator(selector).evaluate((b) => {
    new MutationObserver(() => {
      if (b.disabled) window.reportBusy({ text: b.textContent, busy: b.getAttribute("aria-busy") });
    }).observe(b, { attributes: true, childList: true, characterData: true, subtree: true });
  });
  await (double ? page.locator(selector).dblclick() : page.locator(selector).click());
  const deadline = Date.now() + WAIT;
  const busy = () => busyReports.find((r) => r.busy === "true" && r.text.includes(text));
  while (!busy() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  check(busy(), `${label}: ${selector} turns busy ("${text}") when clicked: ${JSON.stringify(busyReports)}`);
}

async function openStore(v) {
  await v.page.goto(`${workerUrl}/`);
  await v.page.locator("#plans input[type=radio]").first().waitFor();
  await inspect(v, "store");
}

// The Installments field shows only for a plan paid in installments (hidden wins over grid).
async function checkInstallmentsField(v) {
  const { page, label } = v;
  const field = page.locator("#installments-field");
  await page.locator('input[name=plan][value="course"]').check();
  await field.waitFor({ state: "visible" });
  check((await page.locator("#installments-field option").count()) === 3, `${label}: the course plan offers 3 installment options`);
  await page.locator('input[name=plan][value="basic-monthly"]').check();
  await field.waitFor({ state: "hidden" });
}

// Picks the plan and double-clicks the button; the button is busy while the checkout is made.
async function startCheckout(v, planId) {
  const { page, label } = v;
  await page.locator(`input[name=plan][value="${planId}"]`).check();
  const held = await holdRequest(page, `${workerUrl}/v1/checkout`);
  await clickExpectingBusy(v, "#pay", "Starting payment", { double: true });
  await held.release();
  await page.waitForURL(`${sandboxUrl}/pay/**`);
  log(`${label}: on the hosted page`);
}

// Pays on the sandbox's hosted page (double click on Pay: the button is busy while it pays).
async function payOnHostedPage(v, card) {
  const { page, label } = v;
  await page.locator("input[name=cardNumber]").waitFor();
  await inspect(v, "hosted page");
  const fieldsInside = await page.evaluate(() => {
    const box = document.querySelector("main").getBoundingClientRect();
    return [...document.querySelectorAll("main input, main button")]
      .filter((e) => {
        const r = e.getBoundingClientRect();
        return r.left < box.left || r.right > box.right;
      })
      .map((e) => e.name || e.textContent);
  });
  check(fieldsInside.length === 0, `${label} hosted page: fields inside the card: ${fieldsInside.join(", ")} overflow`);
  await page.locator("input[name=cardNumber]").fill(card);
  await page.locator("input[name=expiry]").fill("12/31");
  await page.locator("input[name=cvc]").fill("123");
  await page.locator("input[name=name]").fill("Ada Lovelace");
  const posts = seen.payPosts.get(label) ?? 0;
  const held = await holdRequest(page, `${sandboxUrl}/pay/**`);
  await clickExpectingBusy(v, "button[type=submit]", "Processing payment", { double: true });
  await held.release();
  await page.waitForURL(`${workerUrl}/return?**`);
  check((seen.payPosts.get(label) ?? 0) - posts === 1, `${label}: a double click on Pay posted the form once`);
  log(`${label}: back on the return page`);
}

async function waitForOutcome(v) {
  const { page } = v;
  await page.waitForFunction(() => /Payment (received|declined)/.test(document.querySelector("h1").textContent), null, { timeout: WAIT });
  // The account below loads after the outcome; wait for it too.
  await page.waitForFunction(() => !/Loading/.test(document.querySelector("#subscriptions").textContent), null, { timeout: WAIT });
}

const badge = (scope) => `${scope} .badge[data-status]`;
async function statuses(page, scope) {
  return page.locator(badge(scope)).evaluateAll((els) => els.map((e) => e.dataset.status));
}

async function expectPaidAndActive(v) {
  const { page, label } = v;
  await waitForOutcome(v);
  must((await page.locator("h1").textContent()) === "Payment received", `${label}: the return page is headed "Payment received"`);
  await page.locator(badge("#payment-subscription")).waitFor();
  check((await statuses(page, "#payment-subscription"))[0] === "active", `${label}: the payment box says active`);
  check((await statuses(page, "#subscriptions")).includes("active"), `${label}: the portal lists the subscription active`);
  await page.locator(badge("#merchant-subscriptions")).first().waitFor();
  check((await statuses(page, "#merchant-subscriptions")).includes("active"), `${label}: the merchant console shows it active`);
  // The card on file is shown masked, once it is read.
  await page.waitForFunction(() => /•••• \d{4}/.test(document.querySelector("#card-text").textContent), null, { timeout: WAIT });
  await inspect(v, "return page (paid)");
}

// Once the subscription was charged again, the return page no longer speaks of the first
// payment as news ("Payment received … Thank you!" above a later status): it is the account.
async function expectPaymentIsHistory(v) {
  const { page, label } = v;
  await page.waitForFunction(() => document.querySelector("#payment").hidden, null, { timeout: WAIT });
  check((await page.locator("h1").textContent()) === "Your account", `${label}: after a later charge the page is headed "Your account" (got "${await page.locator("h1").textContent()}")`);
  const visible = await page.locator("main").innerText();
  check(!/thank you|payment received/i.test(visible), `${label}: nothing visible still announces the first payment`);
}

// The merchant console's own control moves business time to the next charge.
async function advanceClock(v) {
  const { page } = v;
  await page.locator("#key").fill(merchantKey);
  const held = await holdRequest(page, `${workerUrl}/v1/test-clock/tick`);
  await clickExpectingBusy(v, "#advance", "Billing");
  // The visitor's own clock moves: nobody else's subscriptions are billed by this click.
  const ref = await customerRefOf(page);
  const tick = await held.body();
  check(tick?.clock === `clock-${ref}`, `${v.label}: the tick names the visitor's clock (${JSON.stringify(tick)})`);
  await held.release();
  await page.waitForFunction(() => !document.querySelector("#advance").disabled, null, { timeout: WAIT * 2 });
  check((await page.locator("#console-error").textContent()) === "", `${v.label}: the clock moved without error: ${await page.locator("#console-error").textContent()}`);
}

async function customerRefOf(page) {
  return page.evaluate(() => localStorage.getItem("demoCustomerRef"));
}

async function flowSubscribe(browser, size) {
  const v = await visitor(browser, size, "subscribe");
  const { page, label } = v;
  const before = pageOrders(await sandboxLedger()).length;
  await openStore(v);
  await checkInstallmentsField(v);
  await startCheckout(v, "basic-monthly");
  await payOnHostedPage(v, GOOD_CARD);
  await expectPaidAndActive(v);
  const ledger = await sandboxLedger();
  check(pageOrders(ledger).length - before === 1, `${label}: a double click made one provider order (made ${pageOrders(ledger).length - before})`);
  const keys = seen.checkoutKeys.get(label) ?? [];
  check(keys.length === 1, `${label}: a double click sent one checkout request (sent ${keys.length})`);

  const periodShown = async () => (await page.locator("#subscriptions dd").nth(2).textContent()) ?? "";
  const first = await periodShown();
  await advanceClock(v);
  await page.waitForFunction(() => document.querySelectorAll("#charges tr.succeeded").length === 2, null, { timeout: WAIT });
  check((await statuses(page, "#subscriptions"))[0] === "active", `${label}: still active after the renewal`);
  const next = await periodShown();
  check(parseInt(next) === parseInt(first) + 1, `${label}: the next period is shown after the renewal (${first} then ${next})`);
  // The period the page shows is the one the latest charge says it paid for, in the portal and
  // in the merchant console alike.
  const descriptions = await page.locator('#charges td[data-label="Description"]').allTextContents();
  const charged = Math.max(...descriptions.map((d) => Number(/period (\d+)/.exec(d)?.[1] ?? 0)));
  check(parseInt(next) === charged, `${label}: the portal's period (${next}) is the latest charge's ("${descriptions.join('", "')}")`);
  const consolePeriod = await page.locator('#merchant-subscriptions td[data-label="Period"]').first().textContent();
  check(parseInt(consolePeriod) === charged, `${label}: the merchant console's period (${consolePeriod}) is the latest charge's (${charged})`);
  await expectPaymentIsHistory(v);
  await inspect(v, "return page (renewed)");
  log(`${label}: renewed`);
  await v.context.close();
}

async function flowDecline(browser, size) {
  const v = await visitor(browser, size, "decline");
  const { page, label } = v;
  const before = pageOrders(await sandboxLedger()).length;
  await openStore(v);
  await startCheckout(v, "basic-monthly");
  await payOnHostedPage(v, DECLINED_CARD);
  await waitForOutcome(v);
  const heading = await page.locator("h1").textContent();
  must(heading === "Payment declined", `${label}: the decline page is headed "Payment declined" (got "${heading}")`);
  check(!/thank you/i.test(await page.locator("main").textContent()), `${label}: the decline page does not thank anyone`);
  check(/declined/i.test(await page.title()), `${label}: the decline page's title says declined (${await page.title()})`);
  const retry = page.locator("#retry");
  must(await retry.isVisible(), `${label}: the decline page offers another card`);
  check((await retry.textContent()) === "Try another card", `${label}: the action reads "Try another card"`);
  check((await page.locator("#subscriptions").textContent()).includes("No subscriptions"), `${label}: no subscription after a decline`);
  await inspect(v, "decline page");

  // The retry is a new attempt; its first answer is lost on the way back, and the page sends
  // the same attempt again with the same key: the worker answers with the same checkout.
  let lost = false;
  await page.route(`${workerUrl}/v1/checkout`, async (route) => {
    if (route.request().method() !== "POST" || lost) return route.fallback();
    lost = true;
    seen.dropped.push(route.request().url());
    await route.fetch();
    await route.abort("connectionreset");
  });
  await clickExpectingBusy(v, "#retry", "Opening the payment page");
  await page.waitForURL(`${sandboxUrl}/pay/**`);
  await page.unrouteAll({ behavior: "wait" });
  check(lost, `${label}: the first answer to the retry was dropped`);
  const keys = seen.checkoutKeys.get(label) ?? [];
  check(keys.length === 3 && keys[1] === keys[2] && keys[0] !== keys[1], `${label}: one key for the first attempt, another for the retry, sent twice (${JSON.stringify(keys)})`);
  await payOnHostedPage(v, GOOD_CARD);
  await expectPaidAndActive(v);
  const orders = pageOrders(await sandboxLedger()).length - before;
  check(orders === 2, `${label}: two provider orders, the declined one and the paid one (made ${orders})`);
  log(`${label}: paid with another card`);
  await v.context.close();
}

async function flowDunning(browser, size) {
  const v = await visitor(browser, size, "dunning");
  const { page, label } = v;
  await openStore(v);
  await startCheckout(v, "basic-monthly");
  await payOnHostedPage(v, SOFT_DECLINE_LATER);
  await expectPaidAndActive(v);
  await advanceClock(v);
  await page.locator(`${badge("#subscriptions")}[data-status="past_due"]`).waitFor();
  await page.locator("#charges tr.failed").first().waitFor();
  await page.locator(`${badge("#merchant-subscriptions")}[data-status="past_due"]`).waitFor();
  await expectPaymentIsHistory(v);
  check(!(await statuses(page, "main")).includes("active"), `${label}: nothing on the return page says active: ${await statuses(page, "main")}`);
  check(/retry/.test(await page.locator("#charges tr.failed").first().textContent()), `${label}: the failed renewal shows its retry`);

  const ref = await customerRefOf(page);
  const { data } = await merchant(`/v1/subscriptions?customerRef=${encodeURIComponent(ref)}`);
  check(data.length === 1 && data[0].status === "past_due", `${label}: the API says past_due (${data.map((s) => s.status)})`);
  await inspect(v, "return page (past due)");

  await page.goto(`${workerUrl}/`);
  await page.locator(badge("#my-subscriptions")).waitFor();
  check((await statuses(page, "#my-subscriptions")).join() === "past_due", `${label}: the store shows past_due`);
  await inspect(v, "store (past due)");
  log(`${label}: past_due everywhere`);
  await v.context.close();
}

async function screenshots() {
  mkdirSync(shotDir, { recursive: true });
  for (const { page, label } of openPages) {
    if (page.isClosed()) continue;
    const file = join(shotDir, `${label.replace("/", "-")}.png`);
    await page.unrouteAll({ behavior: "ignoreErrors" }).catch(() => {});
    await page.screenshot({ path: file, fullPage: true, timeout: 10_000 }).then(
      () => console.log(`screenshot: ${file} (${page.url()})`),
      () => {},
    );
  }
}

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
log(`Chromium ${browser.version()}`);
try {
  for (const size of SIZES) {
    for (const flow of [flowSubscribe, flowDecline, flowDunning]) {
      const t = Date.now();
      try {
        await flow(browser, size);
      } catch (e) {
        failures.push(`${size.name}/${flow.name}: ${e instanceof Stop ? e.message : e.stack}`);
        log(`FAIL ${size.name}/${flow.name}: ${e.message}`);
        await screenshots();
      }
      log(`${size.name}/${flow.name} took ${((Date.now() - t) / 1000).toFixed(1)} s`);
    }
  }

  // No response the pages received carries a card token (the provider's ledger lists them all).
  const tokenIds = (await sandboxLedger()).tokens.map((t) => t.tokenId);
  check(tokenIds.length >= 6, `the sandbox tokenized the paid cards (${tokenIds.length} tokens)`);
  const paidCheckouts = seen.bodies.filter((b) => /\/v1\/checkout\/co_/.test(b.url) && b.text.includes('"paid"'));
  check(paidCheckouts.length >= 6, `the paid checkouts' answers were read (${paidCheckouts.length})`);
  for (const body of seen.bodies) {
    const leaked = tokenIds.filter((id) => body.text.includes(id));
    check(leaked.length === 0, `no token id in ${body.url} (found ${leaked.length})`);
  }
  check(seen.notFound.length === 0, `no 404: ${seen.notFound.join(", ")}`);
  // The pages' icon loads, and so does the one browsers ask for by default.
  check(seen.bodies.some((b) => b.url === `${workerUrl}/favicon.svg` && b.status === 200), "the pages' icon /favicon.svg was loaded");
  const ico = await fetch(`${workerUrl}/favicon.ico`);
  check(ico.ok && /^image\//.test(ico.headers.get("content-type") ?? ""), `/favicon.ico answers an image (${ico.status})`);
  check(seen.errors.length === 0, `no JavaScript error: ${seen.errors.join("; ")}`);
  log(`${seen.bodies.length} answers of the worker read, ${tokenIds.length} token ids looked for`);
} finally {
  await browser.close();
}

if (failures.length) {
  console.log(`\n${failures.length} check(s) failed:\n- ${failures.join("\n- ")}`);
  process.exit(1);
}
log("every check passed");
