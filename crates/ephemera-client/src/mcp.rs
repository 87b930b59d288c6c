//! [`McpSession`]: just enough of an MCP client to call a server once
//! authorized, over the Streamable HTTP transport (MCP 2025-11-25,
//! "Transports"): each JSON-RPC message POSTed to the server's URL with
//! `Accept: application/json, text/event-stream`, the answer read as JSON
//! or as a Server-Sent Events stream, `Mcp-Session-Id` carried once the
//! server assigns one, the `initialize` handshake and `MCP-Protocol-Version`
//! on every later request. For the stateless draft (2026-07-28) there is no
//! handshake: every request names the version in the header and, with the
//! client's capabilities and info, in its `params._meta`.
//!
//! A `401` or `403` is not an error here: it is handed back
//! ([`McpAnswer::Refused`]) with its headers, for the caller to read the
//! challenge ([`ProtectedResource::from_challenge`](crate::ProtectedResource::from_challenge),
//! [`insufficient_scope`](crate::challenge::insufficient_scope)), authorize
//! and send again.

use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE};
use serde_json::{json, Value};

use crate::access::AccessToken;
use crate::error::{Error, Result};

/// The protocol version of the `initialize` handshake (MCP 2025-11-25).
pub const PROTOCOL_VERSION: &str = "2025-11-25";

/// The draft version whose requests are stateless: no handshake, the
/// version and capabilities in each request's `_meta`.
pub const STATELESS_PROTOCOL_VERSION: &str = "2026-07-28";

/// The header naming the session a server assigned (MCP 2025-11-25,
/// "Session Management").
pub const SESSION_HEADER: &str = "Mcp-Session-Id";

/// The header naming the protocol version on every request after
/// initialization (MCP 2025-11-25, "Protocol Version Header").
pub const PROTOCOL_VERSION_HEADER: &str = "MCP-Protocol-Version";

/// The `_meta` keys of a stateless request.
const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";

/// A request's answer, as far as authorization is concerned.
#[derive(Debug)]
pub enum McpAnswer {
    /// The JSON-RPC `result` (`null` for a notification the server accepted).
    Result(Value),
    /// `401` (no token, or one the server no longer takes) or `403` (a token
    /// without the scope, RFC 6750 §3.1): the headers hold the challenge.
    Refused { status: u16, headers: HeaderMap },
}

/// A client's conversation with one MCP server.
#[derive(Debug)]
pub struct McpSession {
    http: reqwest::Client,
    url: String,
    protocol_version: String,
    client_info: Value,
    session_id: Option<String>,
    initialized: bool,
    next_id: u64,
}

impl McpSession {
    /// A session with the server at `url`, speaking `protocol_version`
    /// ([`PROTOCOL_VERSION`], or [`STATELESS_PROTOCOL_VERSION`] for the
    /// stateless draft); `client_info` is the `Implementation` sent
    /// (`{"name": …, "version": …}`).
    pub fn new(
        http: reqwest::Client,
        url: impl Into<String>,
        protocol_version: impl Into<String>,
        client_info: Value,
    ) -> Self {
        Self {
            http,
            url: url.into(),
            protocol_version: protocol_version.into(),
            client_info,
            session_id: None,
            initialized: false,
            next_id: 1,
        }
    }

    /// The protocol version in use: the one asked for, or the one the
    /// server chose in its `initialize` answer.
    pub fn protocol_version(&self) -> &str {
        &self.protocol_version
    }

    /// Whether this version has no handshake (the stateless draft).
    pub fn is_stateless(&self) -> bool {
        self.protocol_version == STATELESS_PROTOCOL_VERSION
    }

    /// The `Mcp-Session-Id` the server assigned, if any.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// The `initialize` request's params (MCP 2025-11-25, "Lifecycle").
    pub fn initialize_params(&self) -> Value {
        json!({
            "protocolVersion": self.protocol_version,
            "capabilities": {},
            "clientInfo": self.client_info,
        })
    }

    /// Sends `initialize` and, when it succeeds, `notifications/initialized`;
    /// keeps the version the server chose. Nothing is sent for the stateless
    /// draft. A refusal of either message is handed back.
    pub async fn initialize(&mut self, token: Option<&AccessToken>) -> Result<McpAnswer> {
        if self.is_stateless() {
            return Ok(McpAnswer::Result(Value::Null));
        }
        let params = self.initialize_params();
        let answer = self.request(token, "initialize", params).await?;
        let McpAnswer::Result(result) = &answer else {
            return Ok(answer);
        };
        if let Some(version) = result["protocolVersion"].as_str() {
            self.protocol_version = version.to_owned();
        }
        self.initialized = true;
        let result = result.clone();
        match self.notify(token, "notifications/initialized").await? {
            McpAnswer::Result(_) => Ok(McpAnswer::Result(result)),
            refused => Ok(refused),
        }
    }

    /// Sends the request `method` with `params` (an object) and returns its
    /// `result`, or the refusal. A JSON-RPC error is [`Error::Mcp`].
    pub async fn request(
        &mut self,
        token: Option<&AccessToken>,
        method: &str,
        params: Value,
    ) -> Result<McpAnswer> {
        let id = self.next_id;
        self.next_id += 1;
        let message = json!({
            "jsonrpc": "2.0",
            "id": id,
            "method": method,
            "params": self.with_meta(params),
        });
        self.send(token, &message, Some(id)).await
    }

    /// Sends the notification `method` (no answer but `202 Accepted`).
    pub async fn notify(&mut self, token: Option<&AccessToken>, method: &str) -> Result<McpAnswer> {
        let message = json!({"jsonrpc": "2.0", "method": method});
        self.send(token, &message, None).await
    }

    /// `params` with the stateless draft's `_meta`, as it requires of every
    /// request; unchanged otherwise.
    fn with_meta(&self, mut params: Value) -> Value {
        if !self.is_stateless() {
            return params;
        }
        if !params.is_object() {
            params = json!({});
        }
        let meta = &mut params["_meta"];
        if !meta.is_object() {
            *meta = json!({});
        }
        meta[META_PROTOCOL_VERSION] = json!(self.protocol_version);
        meta[META_CLIENT_CAPABILITIES] = json!({});
        meta[META_CLIENT_INFO] = self.client_info.clone();
        params
    }

    async fn send(
        &mut self,
        token: Option<&AccessToken>,
        message: &Value,
        id: Option<u64>,
    ) -> Result<McpAnswer> {
        let mut request = self
            .http
            .post(&self.url)
            .header(ACCEPT, "application/json, text/event-stream")
            .json(message);
        if self.initialized || self.is_stateless() {
            request = request.header(PROTOCOL_VERSION_HEADER, &self.protocol_version);
        }
        if let Some(session) = &self.session_id {
            request = request.header(SESSION_HEADER, session);
        }
        let response = match token {
            Some(token) => token.send_with_nonce_retry(request).await?,
            None => request.send().await?,
        };
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Ok(McpAnswer::Refused {
                status,
                headers: response.headers().clone(),
            });
        }
        if let Some(session) = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            self.session_id = Some(session.to_owned());
        }
        let is_event_stream = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        let body = response.text().await?;
        let Some(id) = id else {
            return match status {
                200..=299 => Ok(McpAnswer::Result(Value::Null)),
                _ => Err(unexpected(status, &body)),
            };
        };
        if status != 200 {
            // A JSON-RPC error may come with a 4xx (the stateless draft).
            if let Ok(message) = serde_json::from_str::<Value>(&body) {
                if message.get("error").is_some() {
                    return result_of(&message);
                }
            }
            return Err(unexpected(status, &body));
        }
        let message = if is_event_stream {
            sse_data(&body)
                .into_iter()
                .filter_map(|data| serde_json::from_str::<Value>(&data).ok())
                .find(|message| message["id"] == json!(id))
                .ok_or_else(|| {
                    Error::protocol(format!("the event stream has no answer to request {id}"))
                })?
        } else {
            serde_json::from_str(&body).map_err(|e| {
                Error::protocol(format!("the answer to request {id} is not JSON: {e}"))
            })?
        };
        result_of(&message)
    }
}

/// The `result` of a JSON-RPC response, or its `error` as [`Error::Mcp`].
fn result_of(message: &Value) -> Result<McpAnswer> {
    if let Some(error) = message.get("error") {
        return Err(Error::Mcp {
            code: error["code"].as_i64().unwrap_or_default(),
            message: error["message"].as_str().unwrap_or_default().to_owned(),
        });
    }
    match message.get("result") {
        Some(result) => Ok(McpAnswer::Result(result.clone())),
        None => Err(Error::protocol(
            "a JSON-RPC response with neither result nor error",
        )),
    }
}

fn unexpected(status: u16, body: &str) -> Error {
    Error::protocol(format!(
        "the MCP server answered HTTP {status}: {}",
        body.chars().take(500).collect::<String>()
    ))
}

/// The `data` of each event of a Server-Sent Events stream (HTML Living
/// Standard, "Server-sent events", §9.2.6): the `data:` lines of an event
/// joined by `\n`, events ending at a blank line; comments and other
/// fields are skipped.
pub fn sse_data(stream: &str) -> Vec<String> {
    let mut events = Vec::new();
    let mut data: Option<String> = None;
    for line in stream.lines() {
        if line.is_empty() {
            events.extend(data.take());
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        if field == "data" {
            match &mut data {
                Some(joined) => {
                    joined.push('\n');
                    joined.push_str(value);
                }
                None => data = Some(value.to_owned()),
            }
        }
    }
    events.extend(data);
    events
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn sse_data_joins_lines_per_event_and_skips_comments_and_other_fields() {
        let stream = ": keep-alive\n\
                      event: message\n\
                      id: 7\n\
                      data: {\"a\":\n\
                      data: 1}\n\
                      \n\
                      data:{\"b\":2}\n\
                      \n\
                      retry: 10\n\
                      \n\
                      data: last";
        assert_eq!(sse_data(stream), ["{\"a\":\n1}", "{\"b\":2}", "last"]);
        assert!(sse_data("").is_empty());
    }

    #[test]
    fn a_json_rpc_error_is_an_mcp_error_and_a_result_is_handed_back() {
        let error = result_of(&json!({"jsonrpc": "2.0", "id": 1,
            "error": {"code": -32601, "message": "Method not found"}}))
        .unwrap_err();
        assert!(
            matches!(&error, Error::Mcp { code: -32601, message } if message == "Method not found"),
            "{error}"
        );
        let answer =
            result_of(&json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": []}})).unwrap();
        assert!(matches!(answer, McpAnswer::Result(r) if r == json!({"tools": []})));
        assert!(result_of(&json!({"jsonrpc": "2.0", "id": 1})).is_err());
    }

    #[test]
    fn only_stateless_requests_carry_the_meta_of_the_draft() {
        let http = crate::server::default_http_client();
        let info = json!({"name": "agent", "version": "1"});
        let classic = McpSession::new(http.clone(), "http://x/mcp", PROTOCOL_VERSION, info.clone());
        assert_eq!(classic.with_meta(json!({"a": 1})), json!({"a": 1}));
        assert!(!classic.is_stateless());

        let stateless = McpSession::new(
            http,
            "http://x/mcp",
            STATELESS_PROTOCOL_VERSION,
            info.clone(),
        );
        let params = stateless.with_meta(json!({"name": "t", "_meta": {"progressToken": 1}}));
        assert_eq!(params["name"], "t");
        assert_eq!(params["_meta"]["progressToken"], 1);
        assert_eq!(
            params["_meta"][META_PROTOCOL_VERSION],
            STATELESS_PROTOCOL_VERSION
        );
        assert_eq!(params["_meta"][META_CLIENT_CAPABILITIES], json!({}));
        assert_eq!(params["_meta"][META_CLIENT_INFO], info);
        assert_eq!(
            stateless.with_meta(Value::Null)["_meta"][META_PROTOCOL_VERSION],
            STATELESS_PROTOCOL_VERSION
        );
    }
}
