//! A loopback redirect listener for native apps (RFC 8252 §7.3):
//! listen on `127.0.0.1` on a port the OS picks, use
//! `http://127.0.0.1:PORT/callback` as `redirect_uri`, and take the
//! request the browser makes to it (or each one, for a client that sends
//! the user more than once).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::error::{Error, Result};

/// The path the listener answers on.
const CALLBACK_PATH: &str = "/callback";

/// A request head larger than this is not a redirect from our server.
const MAX_HEAD: usize = 16 * 1024;

/// How long one connection may take to send its request head, so a
/// connection that sends nothing cannot hold up the real redirect.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

const DONE_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\">\
<title>Authorization complete</title></head><body>\
<p>Authorization complete. You can close this window.</p></body></html>";

/// A listener bound to `127.0.0.1` on an ephemeral port.
#[derive(Debug)]
pub struct LoopbackRedirect {
    listener: TcpListener,
    address: SocketAddr,
}

impl LoopbackRedirect {
    /// Binds `127.0.0.1:0`. The IP literal, not `localhost`, is what
    /// RFC 8252 §8.3 recommends: it cannot be resolved elsewhere.
    pub async fn bind() -> Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        Ok(Self { listener, address })
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// `http://127.0.0.1:PORT/callback`, the `redirect_uri` to register and send.
    pub fn redirect_uri(&self) -> String {
        format!("http://{}{CALLBACK_PATH}", self.address)
    }

    /// Waits for the browser's `GET /callback?…`, answers it with a short
    /// "you can close this window" page and returns the full callback URL,
    /// ready for
    /// [`PendingAuthorization::code_from_callback`](crate::PendingAuthorization::code_from_callback).
    /// Other requests (a browser's `/favicon.ico`, say) get a 404 and the
    /// wait goes on. Wrap the call in a timeout if the user may never come back.
    pub async fn wait_for_callback(self) -> Result<String> {
        self.next_callback().await
    }

    /// [`wait_for_callback`](Self::wait_for_callback) that keeps the
    /// listener, for a client that sends the user again to the same
    /// `redirect_uri` (a step-up authorization, say).
    pub async fn next_callback(&self) -> Result<String> {
        loop {
            let (mut stream, _) = self.listener.accept().await?;
            let target = match tokio::time::timeout(READ_TIMEOUT, read_target(&mut stream)).await {
                Ok(Ok(target)) => target,
                // A slow, broken or odd connection is not the redirect: drop it.
                Ok(Err(_)) | Err(_) => continue,
            };
            let is_callback = target
                .as_deref()
                .map(|t| t.split('?').next() == Some(CALLBACK_PATH))
                .unwrap_or(false);
            match target {
                Some(target) if is_callback => {
                    // The browser may already have gone; the URL is what counts.
                    let _ = respond(&mut stream, "200 OK", DONE_PAGE).await;
                    return Ok(format!("http://{}{target}", self.address));
                }
                _ => {
                    let _ = respond(&mut stream, "404 Not Found", "not found").await;
                }
            }
        }
    }
}

/// Reads the request head and returns the request-target of a `GET`.
async fn read_target(stream: &mut TcpStream) -> Result<Option<String>> {
    let mut head = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..read]);
        if head.len() > MAX_HEAD {
            return Err(Error::protocol("request head too large"));
        }
    }
    Ok(parse_request_line(&head))
}

/// `GET /callback?code=… HTTP/1.1` -> `/callback?code=…`.
fn parse_request_line(head: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(head).ok()?;
    let line = text.lines().next()?;
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if method != "GET" || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
        return None;
    }
    Some(target.to_owned())
}

async fn respond(stream: &mut TcpStream, status: &str, body: &str) -> Result<()> {
    // no-store: the page sits at a URL holding the code; no-referrer: nothing
    // the page might load learns that URL.
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    async fn get(port: u16, target: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let request = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[test]
    fn request_lines_are_parsed_strictly() {
        assert_eq!(
            parse_request_line(b"GET /callback?a=b HTTP/1.1\r\nHost: x\r\n\r\n").as_deref(),
            Some("/callback?a=b")
        );
        assert_eq!(parse_request_line(b"POST /callback HTTP/1.1\r\n\r\n"), None);
        assert_eq!(
            parse_request_line(b"GET http://x/callback HTTP/1.1\r\n\r\n"),
            None
        );
        assert_eq!(parse_request_line(b"garbage"), None);
    }

    #[tokio::test]
    async fn the_listener_returns_the_callback_url_and_thanks_the_browser() {
        let loopback = LoopbackRedirect::bind().await.unwrap();
        let port = loopback.port();
        assert_eq!(
            loopback.redirect_uri(),
            format!("http://127.0.0.1:{port}/callback")
        );
        let waiting = tokio::spawn(loopback.wait_for_callback());

        let response = get(port, "/callback?code=abc&state=xyz").await;

        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(response.contains("close this window"));
        let url = waiting.await.unwrap().unwrap();
        assert_eq!(
            url,
            format!("http://127.0.0.1:{port}/callback?code=abc&state=xyz")
        );
    }

    #[tokio::test]
    async fn other_paths_get_a_404_and_the_wait_goes_on() {
        let loopback = LoopbackRedirect::bind().await.unwrap();
        let port = loopback.port();
        let waiting = tokio::spawn(loopback.wait_for_callback());

        let favicon = get(port, "/favicon.ico").await;
        let lookalike = get(port, "/callbackx?code=1").await;
        let callback = get(port, "/callback?code=2").await;

        assert!(favicon.starts_with("HTTP/1.1 404"));
        assert!(lookalike.starts_with("HTTP/1.1 404"));
        assert!(callback.starts_with("HTTP/1.1 200"));
        let url = waiting.await.unwrap().unwrap();
        assert!(url.ends_with("/callback?code=2"));
    }

    #[tokio::test]
    async fn a_kept_listener_takes_one_callback_after_another() {
        let loopback = LoopbackRedirect::bind().await.unwrap();
        let port = loopback.port();

        for code in ["1", "2"] {
            let target = format!("/callback?code={code}");
            let (url, response) = tokio::join!(loopback.next_callback(), get(port, &target));
            assert!(response.starts_with("HTTP/1.1 200"));
            assert!(url.unwrap().ends_with(&target));
        }
    }

    #[tokio::test]
    async fn a_connection_that_closes_early_is_skipped() {
        let loopback = LoopbackRedirect::bind().await.unwrap();
        let port = loopback.port();
        let waiting = tokio::spawn(loopback.wait_for_callback());

        drop(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
        let callback = get(port, "/callback?code=3").await;

        assert!(callback.starts_with("HTTP/1.1 200"));
        assert!(waiting.await.unwrap().unwrap().ends_with("code=3"));
    }
}
