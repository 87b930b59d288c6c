// Just enough of a browser for Ephemera's login and consent pages, shared
// by the Node scripts of the tests (mcp/flow.mjs, oidc-rp/flow.mjs,
// mcp-conformance/run.mjs): cookies, redirects followed by hand, and each
// page's one form filled in where a user would: the username and password
// on the login page, "approve" on the consent page. Plain Node (fetch), no
// package of its own.

export class UserAgent {
    /** A user agent that signs in as `username` with `password`. */
    constructor(username, password) {
        this.username = username;
        this.password = password;
        this.cookies = new Map();
        /** The pages filled in, in order: `login`, `consent`. */
        this.pages = [];
    }

    async request(url, init = {}) {
        const headers = new Headers(init.headers);
        if (this.cookies.size > 0) {
            headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
        }
        const res = await fetch(url, { ...init, headers, redirect: 'manual' });
        for (const line of res.headers.getSetCookie()) {
            const [pair] = line.split(';', 1);
            const eq = pair.indexOf('=');
            if (eq > 0) this.cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
        }
        return res;
    }

    /**
     * Opens `url`, signs in and approves, and returns the URL the server
     * finally redirects to under `callbackPrefix`, without following it.
     */
    async authorize(url, callbackPrefix) {
        let current = new URL(url);
        let res = await this.request(current);
        for (let step = 0; step < 12; step++) {
            if (res.status >= 300 && res.status < 400) {
                const to = new URL(res.headers.get('location'), current);
                await res.body?.cancel();
                if (to.href.startsWith(callbackPrefix)) return to;
                current = to;
                res = await this.request(current);
                continue;
            }
            const html = await res.text();
            if (res.status !== 200) {
                throw new Error(`${current} answered ${res.status}: ${html.slice(0, 2000)}`);
            }
            const form = pageForm(html, current);
            if ('password' in form.fields) {
                this.pages.push('login');
                form.fields.username = this.username;
                form.fields.password = this.password;
            } else if (form.decisions.includes('approve')) {
                this.pages.push('consent');
                form.fields.decision = 'approve';
            } else {
                throw new Error(`neither the login nor the consent page at ${current}: ${html.slice(0, 2000)}`);
            }
            current = form.action;
            res = await this.request(current, { method: 'POST', body: new URLSearchParams(form.fields) });
        }
        throw new Error('no redirect to the callback after 12 steps');
    }
}

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

const unescapeHtml = s =>
    s.replace(/&(?:#x([0-9a-f]+)|#([0-9]+)|([a-z]+));/gi, (whole, hex, dec, name) => {
        if (hex) return String.fromCodePoint(parseInt(hex, 16));
        if (dec) return String.fromCodePoint(parseInt(dec, 10));
        return ENTITIES[name.toLowerCase()] ?? whole;
    });

const attrs = tag =>
    Object.fromEntries(
        [...tag.matchAll(/([\w:-]+)\s*=\s*"([^"]*)"/g)].map(([, k, v]) => [k.toLowerCase(), unescapeHtml(v)]),
    );

/** The page's first form: its action, its named inputs, the values of its `decision` buttons. */
function pageForm(html, base) {
    const form = html.match(/<form\b([^>]*)>([\s\S]*?)<\/form>/i);
    if (!form) throw new Error(`no form at ${base}: ${html.slice(0, 2000)}`);
    const fields = {};
    for (const [tag] of form[2].matchAll(/<input\b[^>]*>/gi)) {
        const a = attrs(tag);
        if (a.name) fields[a.name] = a.value ?? '';
    }
    const decisions = [...form[2].matchAll(/<button\b[^>]*>/gi)]
        .map(([tag]) => attrs(tag))
        .filter(a => a.name === 'decision')
        .map(a => a.value);
    return { action: new URL(attrs(form[1]).action ?? '', base), fields, decisions };
}
