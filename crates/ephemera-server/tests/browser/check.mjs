// Opens Ephemera's login and consent pages in headless Chromium and reports
// what a person's browser did with them: dialogs, console errors, requests,
// the DOM and the layout. tests/api/browser.rs starts the server, pushes the
// hostile client metadata, runs this script and asserts on its report (the
// last line of standard output, JSON).
//
// Environment:
//   CHROMIUM        the browser binary (Debian's /usr/bin/chromium)
//   CLIENTS         JSON array of {"label", "authorize_url"}: each is opened in a
//                   fresh browser context, logged in, and stops at its consent page
//   LOGIN_USERNAME, LOGIN_PASSWORD
//   SCREENSHOT      where to write a PNG of the first client's consent page
//                   (or of the account page, with ACCOUNT)
//   SCREENSHOT_WIDTH  viewport width of that screenshot
//   ACCOUNT         optional JSON {"authorize_url", "redirect_uri", "token_url",
//                   "token_form", "token_headers", "account_url"}: the account
//                   page scenario instead. One browser logs in and approves the
//                   request, and the code is redeemed (token_form plus the
//                   code); another signs in on the account page at 360 px,
//                   reads the grant and ends it with the page's "End all"
//                   button. The report is one entry, "account".
import { chromium } from "playwright-core";

import { facts, grants, watched, widest } from "./pages.mjs";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const clients = JSON.parse(env("CLIENTS"));
const account = process.env.ACCOUNT ? JSON.parse(process.env.ACCOUNT) : null;
// Narrow as a phone, wide as a desktop: a long name must widen neither.
const WIDTHS = [360, 1280];

async function look(page) {
  const widths = [];
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: 900 });
    widths.push(
      await page.evaluate(() => ({
        viewport: window.innerWidth,
        scroll_width: document.documentElement.scrollWidth,
      })),
    );
  }
  return { ...(await page.evaluate(facts)), url: page.url(), widths };
}

const browser = await chromium.launch({
  executablePath: env("CHROMIUM"),
  headless: true,
  // Root in a container has no user namespaces for Chromium's sandbox.
  args: ["--no-sandbox"],
});
async function accountScenario() {
  const seen = { label: "account", dialogs: [], console: [], page_errors: [], requests: [] };
  // 1. The device that approves: login, consent, and the code in the
  // redirect to the client (nothing listens there: the request is enough),
  // redeemed for tokens.
  const approver = await watched(
    browser,
    { dialogs: [], console: [], page_errors: [], requests: [] },
    { viewport: { width: 1280, height: 900 } },
  );
  await approver.page.goto(account.authorize_url, { waitUntil: "load" });
  await approver.page.fill("#username", env("LOGIN_USERNAME"));
  await approver.page.fill("#password", env("LOGIN_PASSWORD"));
  await Promise.all([
    approver.page.waitForURL((url) => url.pathname === "/authorize", { waitUntil: "load" }),
    approver.page.click("button[type=submit]"),
  ]);
  await approver.page.waitForSelector("button[name=decision][value=approve]");
  const [redirect] = await Promise.all([
    approver.page.waitForRequest((req) => req.url().startsWith(account.redirect_uri)),
    approver.page.click("button[name=decision][value=approve]"),
  ]);
  const code = new URL(redirect.url()).searchParams.get("code");
  await approver.context.close();
  const res = await fetch(account.token_url, {
    method: "POST",
    headers: { ...account.token_headers, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ ...account.token_form, code }),
  });
  seen.token_status = res.status;
  seen.tokens = await res.json();

  // 2. Another device, as narrow as a phone: sign in on the account page.
  const { context, page } = await watched(browser, seen, { viewport: { width: 360, height: 900 } });
  const signIn = await page.goto(account.account_url, { waitUntil: "load" });
  seen.sign_in_status = signIn ? signIn.status() : null;
  await page.fill("#username", env("LOGIN_USERNAME"));
  await page.fill("#password", env("LOGIN_PASSWORD"));
  await Promise.all([
    page.waitForURL((url) => url.pathname === "/account", { waitUntil: "load" }),
    page.click("button[type=submit]"),
  ]);
  await page.waitForSelector("li.grant");
  seen.account = {
    ...(await page.evaluate(facts)),
    grants: await page.evaluate(grants),
    widest: await page.evaluate(widest),
    url: page.url(),
  };
  await page.screenshot({ path: env("SCREENSHOT"), fullPage: true });
  // 3. End it with the page's own button.
  await Promise.all([
    page.waitForURL((url) => url.search === "?revoked=all", { waitUntil: "load" }),
    page.click("#revoke-all button[type=submit]"),
  ]);
  seen.after = {
    ...(await page.evaluate(facts)),
    grants: await page.evaluate(grants),
    ended: (await page.$("#revoked-all")) !== null,
    none_left: (await page.$("#no-grants")) !== null,
    url: page.url(),
  };
  await context.close();
  return seen;
}

const report = [];
try {
  if (account) report.push(await accountScenario());
  for (const [i, client] of clients.entries()) {
    const context = await browser.newContext({ viewport: { width: WIDTHS[0], height: 900 } });
    const page = await context.newPage();
    const seen = { label: client.label, dialogs: [], console: [], page_errors: [], requests: [] };
    page.on("dialog", async (dialog) => {
      seen.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
      await dialog.dismiss();
    });
    page.on("console", (msg) =>
      seen.console.push({ type: msg.type(), text: msg.text(), url: msg.location().url }),
    );
    page.on("pageerror", (err) => seen.page_errors.push(String(err)));
    page.on("request", (req) => seen.requests.push(req.url()));

    const res = await page.goto(client.authorize_url, { waitUntil: "load" });
    seen.login_status = res ? res.status() : null;
    seen.login = await look(page);
    await page.fill("#username", env("LOGIN_USERNAME"));
    await page.fill("#password", env("LOGIN_PASSWORD"));
    await Promise.all([
      page.waitForURL((url) => url.pathname === "/authorize", { waitUntil: "load" }),
      page.click("button[type=submit]"),
    ]);
    await page.waitForSelector("button[name=decision]");
    seen.consent = await look(page);
    if (i === 0) {
      await page.setViewportSize({ width: Number(env("SCREENSHOT_WIDTH")), height: 900 });
      await page.screenshot({ path: env("SCREENSHOT"), fullPage: true });
    }
    report.push(seen);
    await context.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
