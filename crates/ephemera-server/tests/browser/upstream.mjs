// Signing in through an upstream provider in headless Chromium, with
// passwords turned off, in two steps run by tests/api/browser.rs, which
// redeems the code between them. The report (the last line of standard
// output, JSON) says what the browser saw; the assertions are in the test.
//
// Environment:
//   CHROMIUM   the browser binary (Debian's /usr/bin/chromium)
//   STEP       "approve" or "account"
//   STATE      a file for the browser's cookies: written by "approve", read
//              by "account", so both steps are one browser's session
//   approve:   AUTHORIZE_URL, PROVIDER (its name in [upstream.<name>]),
//              REDIRECT_URI (the client's: the code is read from the
//              request to it; nothing listens there)
//   account:   ACCOUNT_URL, SCREENSHOT (a PNG of the account page at 360 px)
import { chromium } from "playwright-core";

import { facts, grants, watched, widest } from "./pages.mjs";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

// Runs in the sign-in page: its forms and buttons, and any password field.
function signIn() {
  return {
    forms: [...document.forms].map((f) => f.getAttribute("action")),
    buttons: [...document.querySelectorAll("button")].map((b) => ({ id: b.id, text: b.innerText })),
    password_inputs: document.querySelectorAll("input[type=password]").length,
    username_inputs: document.querySelectorAll("input[name=username]").length,
  };
}

// The login page shows the provider's button; the click goes to the
// provider, which sends the browser straight back signed in; the consent
// page is approved and the code read from the redirect to the client.
async function approve(browser, seen) {
  const { context, page } = await watched(browser, seen, { viewport: { width: 1280, height: 900 } });
  seen.navigations = [];
  page.on("request", (req) => {
    if (req.isNavigationRequest()) seen.navigations.push(`${req.method()} ${req.url()}`);
  });
  const res = await page.goto(env("AUTHORIZE_URL"), { waitUntil: "load" });
  seen.login_status = res ? res.status() : null;
  seen.login = { ...(await page.evaluate(facts)), ...(await page.evaluate(signIn)) };
  await page.click(`#upstream-${env("PROVIDER")}`);
  await page.waitForSelector("button[name=decision][value=approve]");
  seen.consent = { ...(await page.evaluate(facts)), url: page.url() };
  const [redirect] = await Promise.all([
    page.waitForRequest((req) => req.url().startsWith(env("REDIRECT_URI"))),
    page.click("button[name=decision][value=approve]"),
  ]);
  seen.redirect = redirect.url();
  await context.storageState({ path: env("STATE") });
  await context.close();
}

// The same session on the account page, as narrow as a phone: no sign-in,
// the grant listed, then ended with the page's "End all" button.
async function account(browser, seen) {
  const { context, page } = await watched(browser, seen, {
    storageState: env("STATE"),
    viewport: { width: 360, height: 900 },
  });
  const res = await page.goto(env("ACCOUNT_URL"), { waitUntil: "load" });
  seen.status = res ? res.status() : null;
  await page.waitForSelector("li.grant");
  seen.account = {
    ...(await page.evaluate(facts)),
    ...(await page.evaluate(signIn)),
    heading: await page.innerText("h1"),
    grants: await page.evaluate(grants),
    widest: await page.evaluate(widest),
    url: page.url(),
  };
  await page.screenshot({ path: env("SCREENSHOT"), fullPage: true });
  await Promise.all([
    page.waitForURL((url) => url.search === "?revoked=all", { waitUntil: "load" }),
    page.click("#revoke-all button[type=submit]"),
  ]);
  seen.after = {
    grants: await page.evaluate(grants),
    ended: (await page.$("#revoked-all")) !== null,
    none_left: (await page.$("#no-grants")) !== null,
    url: page.url(),
  };
  await context.close();
}

const step = env("STEP");
const seen = { step, dialogs: [], console: [], page_errors: [], requests: [] };
const browser = await chromium.launch({
  executablePath: env("CHROMIUM"),
  headless: true,
  // Root in a container has no user namespaces for Chromium's sandbox.
  args: ["--no-sandbox"],
});
try {
  if (step === "approve") await approve(browser, seen);
  else if (step === "account") await account(browser, seen);
  else throw new Error(`unknown STEP ${step}`);
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
