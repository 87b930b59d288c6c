"""The official MCP Python SDK as an OAuth client of Ephemera, run by
`tests/api/mcp_python.rs`.

The SDK's `OAuthClientProvider` is the `auth` of an HTTP client (httpx2, the
httpx fork the SDK is built on). Its first, unauthenticated request to the
protected resource gets a 401 whose `WWW-Authenticate` names the resource's
metadata; from there the SDK discovers the authorization server (RFC 9728,
then RFC 8414), registers (Dynamic Client Registration, RFC 7591, or a Client
ID Metadata Document URL as client_id), sends the user to the authorization
endpoint with PKCE (RFC 7636) and `resource` (RFC 8707), checks the `state`
and RFC 9207 `iss` that come back, redeems the code, and repeats the request
with the token. Where a real client opens a browser, the redirect handler
fills in Ephemera's login and consent forms; the callback handler hands the
SDK the `code`, `state` and `iss` of the redirect.

The last line on stdout is one JSON object describing what happened;
everything else goes to stderr.

Environment:
  RESOURCE_URL          the protected resource, e.g. http://127.0.0.1:9090/api/whoami
  LOGIN_USERNAME, LOGIN_PASSWORD   the user who logs in and approves
  REGISTRATION          `dcr` (register at the registration endpoint) or
                        `cimd` (the client_id is CLIENT_METADATA_URL)
  CLIENT_METADATA_URL   the https URL of the client's metadata document (cimd)
  REDIRECT_URL          the redirect_uri; nothing needs to listen there
                        (default http://127.0.0.1:9999/callback)
"""

import asyncio
import json
import logging
import os
import sys
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.auth.utils import extract_resource_metadata_from_www_auth
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken


def env(name, default=None):
    value = os.environ.get(name) or default
    if not value:
        raise SystemExit(f"{name} is required")
    return value


RESOURCE_URL = env("RESOURCE_URL")
USERNAME = env("LOGIN_USERNAME")
PASSWORD = env("LOGIN_PASSWORD")
MODE = env("REGISTRATION", "dcr")
REDIRECT_URL = env("REDIRECT_URL", "http://127.0.0.1:9999/callback")
if MODE not in ("dcr", "cimd"):
    raise SystemExit(f"REGISTRATION must be dcr or cimd, not {MODE}")
CLIENT_METADATA_URL = env("CLIENT_METADATA_URL") if MODE == "cimd" else None


def log(*args):
    print("[mcp-python-flow]", *args, file=sys.stderr, flush=True)


class MemoryStorage:
    """The SDK's `TokenStorage`, in memory."""

    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


class Form(HTMLParser):
    """The page's first form: its action, its inputs' values, its buttons' values."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.action = None
        self.fields = {}
        self.buttons = {}
        self._state = "before"

    def handle_starttag(self, tag, attrs):
        a = {name: value or "" for name, value in attrs}
        if tag == "form" and self._state == "before":
            self._state = "inside"
            self.action = a.get("action", "")
        elif self._state == "inside" and tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")
        elif self._state == "inside" and tag == "button" and a.get("name"):
            self.buttons.setdefault(a["name"], []).append(a.get("value", ""))

    def handle_endtag(self, tag):
        if tag == "form" and self._state == "inside":
            self._state = "after"


def parse_form(html, base):
    form = Form()
    form.feed(html)
    if form.action is None:
        raise RuntimeError(f"no form at {base}: {html[:2000]}")
    form.action = urljoin(base, form.action)
    return form


class Browser:
    """Just enough of a browser for Ephemera's pages: cookies, redirects, forms."""

    def __init__(self):
        self.pages = []

    async def authorize(self, url):
        """Follows `url` through the login and consent pages; returns the
        redirect to REDIRECT_URL."""
        # Its own client: the SDK's carries the OAuth provider, a browser
        # carries cookies (kept by the client across these requests).
        async with httpx2.AsyncClient(follow_redirects=False, trust_env=False) as http:
            current = url
            res = await http.get(current)
            for _ in range(12):
                if 300 <= res.status_code < 400:
                    to = urljoin(current, res.headers["location"])
                    if to.startswith(REDIRECT_URL):
                        return to
                    current = to
                    res = await http.get(current)
                    continue
                if res.status_code != 200:
                    raise RuntimeError(f"{current} answered {res.status_code}: {res.text[:2000]}")
                form = parse_form(res.text, current)
                if "password" in form.fields:
                    self.pages.append("login")
                    form.fields["username"] = USERNAME
                    form.fields["password"] = PASSWORD
                elif "approve" in form.buttons.get("decision", []):
                    self.pages.append("consent")
                    form.fields["decision"] = "approve"
                else:
                    raise RuntimeError(f"neither a login nor a consent page at {current}: {res.text[:2000]}")
                current = form.action
                res = await http.post(current, data=form.fields)
        raise RuntimeError("too many steps before the redirect to the client")


class User:
    """The SDK's redirect and callback handlers: the user in a browser."""

    def __init__(self):
        self.browser = Browser()
        self.authorization_request = None
        self.callback = None

    async def redirect_handler(self, url):
        parts = urlsplit(url)
        q = parse_qs(parts.query)

        def one(name):
            return q.get(name, [None])[0]

        self.authorization_request = {
            "endpoint": f"{parts.scheme}://{parts.netloc}{parts.path}",
            "client_id": one("client_id"),
            "response_type": one("response_type"),
            "redirect_uri": one("redirect_uri"),
            "scope": one("scope"),
            "resource": q.get("resource", []),
            "code_challenge_method": one("code_challenge_method"),
            "has_code_challenge": bool(one("code_challenge")),
            "has_state": bool(one("state")),
        }
        log("authorization request", json.dumps(self.authorization_request))
        self.callback = await self.browser.authorize(url)
        log(f"back at the redirect_uri with {self.callback_parameters()}")

    def callback_parameters(self):
        return sorted(parse_qs(urlsplit(self.callback).query)) if self.callback else []

    async def callback_handler(self):
        q = parse_qs(urlsplit(self.callback).query)
        if "error" in q:
            raise RuntimeError(f"authorization failed: {q['error'][0]}: {q.get('error_description', [''])[0]}")
        if "code" not in q:
            raise RuntimeError(f"no code in {self.callback}")
        # The SDK compares state, and iss (RFC 9207), with what it expects.
        return AuthorizationCodeResult(
            code=q["code"][0],
            state=q.get("state", [None])[0],
            iss=q.get("iss", [None])[0],
        )


async def main():
    user = User()
    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=RESOURCE_URL,
        # No `scope`: the SDK chooses it (the 401's scope, else the resource's
        # scopes_supported, else the authorization server's) and sets it here.
        client_metadata=OAuthClientMetadata(
            client_name="MCP Python SDK end-to-end test",
            redirect_uris=[REDIRECT_URL],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=user.redirect_handler,
        callback_handler=user.callback_handler,
        # Used instead of registering when the authorization server's metadata
        # says client_id_metadata_document_supported.
        client_metadata_url=CLIENT_METADATA_URL,
    )

    # Every request the SDK makes, in order: what it did, not what it says;
    # and the resource_metadata of the first 401, read by the SDK's parser.
    requests = []
    challenge = {}

    async def record(response):
        if not requests and response.status_code == 401:
            challenge["resource_metadata"] = extract_resource_metadata_from_www_auth(response)
        entry = {"method": response.request.method, "url": str(response.request.url), "status": response.status_code}
        requests.append(entry)
        log(f"SDK: {entry['method']} {entry['url']} -> {entry['status']}")

    async with httpx2.AsyncClient(auth=provider, trust_env=False, event_hooks={"response": [record]}) as http:
        res = await http.get(RESOURCE_URL)
        body = await res.aread()

    first = requests[0] if requests else {}
    if first.get("status") != 401 or first.get("url") != RESOURCE_URL:
        raise RuntimeError(f"the SDK's first request was not an unauthenticated one to the resource: {requests}")
    if not challenge.get("resource_metadata"):
        raise RuntimeError("no resource_metadata in the 401's WWW-Authenticate")
    if res.status_code != 200:
        raise RuntimeError(f"the resource answered {res.status_code} with the token: {body[:2000]!r}")

    client_id = storage.client_info.client_id if storage.client_info else None
    if not client_id or user.authorization_request is None:
        raise RuntimeError("the SDK finished without sending the user to the authorization server")
    context = provider.context
    if MODE == "cimd" and client_id != CLIENT_METADATA_URL:
        supported = context.oauth_metadata.client_id_metadata_document_supported if context.oauth_metadata else None
        raise RuntimeError(
            f"the SDK did not use the metadata document URL as client_id (it used {client_id}); "
            f"the authorization server's client_id_metadata_document_supported is {supported}"
        )
    tokens = storage.tokens
    resource_metadata = context.protected_resource_metadata
    print(
        json.dumps(
            {
                "registration": MODE,
                "client_id": client_id,
                "authorization_server": context.auth_server_url,
                "issuer": str(context.oauth_metadata.issuer) if context.oauth_metadata else None,
                "resource_metadata_url": challenge["resource_metadata"],
                "resource_metadata": (
                    resource_metadata.model_dump(mode="json", exclude_none=True) if resource_metadata else None
                ),
                "authorization_request": user.authorization_request,
                "pages": user.browser.pages,
                "callback_parameters": user.callback_parameters(),
                "token_type": tokens.token_type,
                "scope": tokens.scope,
                "has_refresh_token": bool(tokens.refresh_token),
                "requests": requests,
                "resource_status": res.status_code,
                "whoami": json.loads(body),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    # The SDK logs its flow's errors (with tracebacks) here, on stderr.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        asyncio.run(main())
    except Exception as e:  # noqa: BLE001
        log(f"failed: {e!r}")
        raise
