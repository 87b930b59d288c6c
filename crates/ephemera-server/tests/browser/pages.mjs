// What check.mjs and upstream.mjs share: the functions that run in a page
// and report what a person's browser shows, and a browser context whose
// dialogs, console messages, errors and requests are noted.

// Runs in the page: the facts the test asserts on.
export function facts() {
  const all = [...document.querySelectorAll("*")];
  const attributes = all.flatMap((el) =>
    [...el.attributes].map((a) => ({ element: el.localName, name: a.name, value: a.value })),
  );
  const name = document.getElementById("client-name");
  const style = name ? getComputedStyle(name) : null;
  return {
    kind: document.querySelector("input[name=username]")
      ? "login"
      : document.querySelector("button[name=decision]")
        ? "consent"
        : "other",
    name_text: name ? name.textContent : null,
    name_element: name ? name.localName : null,
    name_unicode_bidi: style ? style.unicodeBidi : null,
    name_dir: name ? name.getAttribute("dir") : null,
    text: document.body.innerText,
    elements: [...new Set(all.map((el) => el.localName))].sort(),
    attributes,
    pwned: window.__ephemeraPwned === undefined ? null : String(window.__ephemeraPwned),
    scroll_width: document.documentElement.scrollWidth,
    inner_width: window.innerWidth,
  };
}

// Runs in the account page: its grants as a person reads them.
export function grants() {
  return [...document.querySelectorAll("li.grant")].map((li) => ({
    id: li.dataset.grantId,
    name: li.querySelector(".grant-name")?.textContent ?? null,
    fields: Object.fromEntries(
      [...li.querySelectorAll("dd[data-field]")].map((dd) => [dd.dataset.field, dd.innerText]),
    ),
  }));
}

// Runs in the page: the right edge of the widest element (nothing may
// reach past the viewport).
export function widest() {
  return Math.max(...[...document.querySelectorAll("body *")].map((el) => el.getBoundingClientRect().right));
}

// A context of `browser` (made with `options`) whose dialogs, console,
// errors and requests are noted in `seen`.
export async function watched(browser, seen, options) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  page.on("dialog", async (dialog) => {
    seen.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    await dialog.dismiss();
  });
  page.on("console", (msg) =>
    seen.console.push({ type: msg.type(), text: msg.text(), url: msg.location().url }),
  );
  page.on("pageerror", (err) => seen.page_errors.push(String(err)));
  page.on("request", (req) => seen.requests.push(req.url()));
  return { context, page };
}
