//! The one ureq Agent per client, API request helpers, error-body parsing, redaction and the retry loop.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, TlsProvider};
use ureq::Agent;

use crate::config::{Config, LogCallback, LogLevel, RetryPolicy};
use crate::error::{Error, ErrorKind, Result};
use crate::secret::{redact_url, sanitize_server_text, wipe_string};

/// Largest API response body we read (device info, assets with many URLs).
const MAX_API_BODY: u64 = 16 * 1024 * 1024;
/// Largest S3 response body we read.
const MAX_S3_BODY: u64 = 64 * 1024;

// ---------------------------------------------------------------------------------------------------------
// Logging

/// Log sink: filters by level, never formats a line nobody wants.
#[derive(Clone)]
pub(crate) struct Logger {
    cb: Option<LogCallback>,
    level: LogLevel,
}

impl Logger {
    pub(crate) fn new(cfg: &Config) -> Logger {
        Logger { cb: cfg.log_callback.clone(), level: cfg.log_level }
    }

    #[allow(dead_code)]
    pub(crate) fn enabled(&self, level: LogLevel) -> bool {
        self.cb.is_some() && level <= self.level
    }

    pub(crate) fn log(&self, level: LogLevel, msg: impl FnOnce() -> String) {
        if let Some(cb) = &self.cb {
            if level <= self.level {
                let line = scrub_urls(&msg());
                cb(level, &line);
            }
        }
    }
}

/// Replace the query string of every URL inside a text (belt and braces for log lines and messages).
pub(crate) fn scrub_urls(s: &str) -> String {
    if !s.contains("://") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("http") {
        let cand = &rest[i..];
        if cand.starts_with("http://") || cand.starts_with("https://") {
            out.push_str(&rest[..i]);
            let end = cand
                .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '>' || c == ')')
                .unwrap_or(cand.len());
            let url = &cand[..end];
            if url.ends_with("?<redacted") {
                out.push_str(url);
            } else {
                out.push_str(&redact_url(url));
            }
            rest = &cand[end..];
        } else {
            out.push_str(&rest[..i + 4]);
            rest = &rest[i + 4..];
        }
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------------------------
// Randomness for jitter and multipart boundaries (no extra dependency).

pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.finish()
}

// ---------------------------------------------------------------------------------------------------------
// Bodies

/// A request body for an API call.
pub(crate) enum ApiBody {
    None,
    Json(Vec<u8>),
    /// multipart/form-data fields (auth endpoints). Values may be secrets: wiped on drop.
    Form(Vec<(&'static str, String)>),
}

impl Drop for ApiBody {
    fn drop(&mut self) {
        if let ApiBody::Form(fields) = self {
            for (_, v) in fields.iter_mut() {
                wipe_string(v);
            }
        }
    }
}

/// Encode multipart/form-data. Returns (content type, body).
fn encode_form(fields: &[(&'static str, String)]) -> (String, Vec<u8>) {
    let boundary = loop {
        let b = format!("----fioc2c{:016x}{:016x}", random_u64(), random_u64());
        if !fields.iter().any(|(_, v)| v.contains(&b)) {
            break b;
        }
    };
    // Sized up front: the values may be secrets, and a growing Vec would free unwiped copies of them.
    let cap = fields.iter().map(|(n, v)| boundary.len() + n.len() + v.len() + 64).sum::<usize>() + boundary.len() + 8;
    let mut body = Vec::with_capacity(cap);
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(value.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

// ---------------------------------------------------------------------------------------------------------
// Responses and error bodies

/// A complete API response (any status).
pub(crate) struct ApiResponse {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    pub retry_after: Option<Duration>,
}

impl ApiResponse {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Parse a 2xx body as a JSON object; malformed JSON or HTML is a Protocol error.
    pub(crate) fn json(&self, what: &str) -> Result<serde_json::Value> {
        if looks_like_html(&self.body, self.content_type.as_deref()) {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("{what}: got an HTML page instead of JSON (a proxy or captive portal?)"),
            )
            .with_status(self.status));
        }
        match serde_json::from_slice::<serde_json::Value>(&self.body) {
            Ok(v @ serde_json::Value::Object(_)) => Ok(v),
            Ok(_) => Err(Error::new(ErrorKind::Protocol, format!("{what}: reply is JSON but not an object"))
                .with_status(self.status)),
            Err(e) => Err(Error::new(ErrorKind::Protocol, format!("{what}: malformed JSON in reply ({e})"))
                .with_status(self.status)),
        }
    }
}

fn looks_like_html(body: &[u8], content_type: Option<&str>) -> bool {
    if content_type.map(|c| c.to_ascii_lowercase().contains("html")).unwrap_or(false) {
        return true;
    }
    let start = body.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(body.len());
    let head = &body[start..body.len().min(start + 15)];
    let lower: Vec<u8> = head.iter().map(|b| b.to_ascii_lowercase()).collect();
    lower.starts_with(b"<!doctype html") || lower.starts_with(b"<html")
}

/// Parse `Retry-After` (delta seconds only; HTTP dates are ignored).
fn parse_retry_after(v: Option<&str>) -> Option<Duration> {
    let v = v?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(3600)));
    }
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs.min(3600.0)));
        }
    }
    None
}

/// The server's (code, message) from either Frame.io error shape, if the body has one.
/// Simple: `{"error": "invalid_client"}` (maybe with `error_description`).
/// Detailed: `{"code": 409, "errors": [{"title": "Channel Paused", "detail": "..."}], "message": "..."}`.
pub(crate) fn parse_error_body(body: &[u8]) -> Option<(Option<String>, Option<String>)> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let obj = v.as_object()?;
    if let Some(code) = obj.get("error").and_then(|e| e.as_str()) {
        let desc = obj.get("error_description").and_then(|d| d.as_str()).map(str::to_string);
        return Some((Some(code.to_string()), desc));
    }
    if obj.contains_key("errors") || obj.contains_key("message") || obj.contains_key("code") {
        let first = obj.get("errors").and_then(|e| e.as_array()).and_then(|a| a.first());
        let title = first.and_then(|f| f.get("title")).and_then(|t| t.as_str());
        let detail = first.and_then(|f| f.get("detail")).and_then(|t| t.as_str());
        let message = obj.get("message").and_then(|m| m.as_str());
        let code = title.or(message).map(str::to_string);
        let msg = match (detail, message) {
            (Some(d), _) => Some(d.to_string()),
            (None, Some(m)) => Some(m.to_string()),
            _ => None,
        };
        return Some((code, msg));
    }
    None
}

/// Turn a non-2xx API response into an Error with a clear kind and message.
pub(crate) fn api_error(resp: &ApiResponse, what: &str) -> Error {
    let status = resp.status;
    let parsed = parse_error_body(&resp.body);
    let html = looks_like_html(&resp.body, resp.content_type.as_deref());
    let (code, server_msg) = parsed.clone().unwrap_or((None, None));
    let code = code.map(|c| sanitize_server_text(&c, 80));
    let server_msg = server_msg.map(|m| sanitize_server_text(&m, 300));
    let lc = |s: &Option<String>| s.as_deref().unwrap_or("").to_ascii_lowercase();

    let kind = match status {
        400 => match code.as_deref() {
            Some("authorization_pending") => ErrorKind::AuthorizationPending,
            Some("slow_down") => ErrorKind::SlowDown,
            Some("expired_token") => ErrorKind::CodeExpired,
            Some("invalid_client") => ErrorKind::InvalidClient,
            _ => ErrorKind::BadRequest,
        },
        401 => ErrorKind::Unauthorized,
        404 => ErrorKind::NotFound,
        409 if lc(&code).contains("paused") || lc(&server_msg).contains("paused") => ErrorKind::ChannelPaused,
        429 => ErrorKind::RateLimited,
        500..=599 => ErrorKind::ServerError,
        _ => ErrorKind::HttpStatus,
    };
    let mut msg = format!("{what}: ");
    if let Some(m) = &server_msg {
        msg.push_str(m);
    } else if let Some(c) = &code {
        msg.push_str(c);
    } else if html {
        msg.push_str(&format!("HTTP {status} with an HTML page (from a proxy or gateway, not Frame.io)"));
    } else if resp.body.is_empty() {
        msg.push_str(&format!("HTTP {status} with an empty body"));
    } else if parsed.is_none() && serde_json::from_slice::<serde_json::Value>(&resp.body).is_err() {
        msg.push_str(&format!("HTTP {status} with a body that is not JSON"));
    } else {
        msg.push_str(&format!("HTTP {status}"));
    }
    // Server text may echo a URL with its query (a proxy's error page): never into a message.
    let mut e = Error::new(kind, scrub_urls(&msg)).with_status(status).with_retry_after(resp.retry_after);
    e.server_code = code.map(|c| scrub_urls(&c));
    e
}

/// Turn a non-2xx S3 response into an Error (XML body `<Error><Code>..</Code><Message>..</Message>`).
pub(crate) fn s3_error(status: u16, body: &[u8], retry_after: Option<Duration>, what: &str) -> Error {
    let text = String::from_utf8_lossy(body);
    let tag = |name: &str| -> Option<String> {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let i = text.find(&open)? + open.len();
        let j = text[i..].find(&close)? + i;
        Some(sanitize_server_text(&text[i..j], 200))
    };
    let code = tag("Code");
    let message = tag("Message");
    let kind = match (status, code.as_deref()) {
        (403, _) => ErrorKind::UrlExpired,
        (_, Some("RequestTimeout")) => ErrorKind::Timeout,
        (_, Some("SlowDown")) | (429, _) => ErrorKind::RateLimited,
        (500..=599, _) => ErrorKind::ServerError,
        _ => ErrorKind::S3Error,
    };
    let detail = match (&code, &message) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.clone(),
        (None, Some(m)) => m.clone(),
        (None, None) if looks_like_html(body, None) => {
            format!("HTTP {status} with an HTML page (proxy?)")
        }
        (None, None) => format!("HTTP {status}"),
    };
    // Server text may echo the presigned URL (a proxy's error page): never into a message.
    let mut e =
        Error::new(kind, scrub_urls(&format!("{what}: {detail}"))).with_status(status).with_retry_after(retry_after);
    e.server_code = code.map(|c| scrub_urls(&c));
    e
}

/// Map a transport error. Messages are built here so that no URL (and no query string) leaks.
pub(crate) fn transport_error(e: ureq::Error, what: &str) -> Error {
    use ureq::Error as U;
    let (kind, msg) = match e {
        U::Timeout(t) => (ErrorKind::Timeout, format!("timed out ({t})")),
        U::Io(io) if io.get_ref().is_some_and(|e| e.is::<rustls::Error>()) => (ErrorKind::Tls, format!("TLS: {io}")),
        U::Io(io) => match io.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                (ErrorKind::Timeout, format!("timed out ({io})"))
            }
            _ => (ErrorKind::Network, format!("connection error: {io}")),
        },
        U::HostNotFound => (ErrorKind::Network, "host not found".to_string()),
        U::ConnectionFailed => (ErrorKind::Network, "connection failed".to_string()),
        U::BodyStalled => (ErrorKind::Timeout, "body stalled".to_string()),
        U::Tls(s) => (ErrorKind::Tls, format!("TLS: {s}")),
        U::Rustls(r) => (ErrorKind::Tls, format!("TLS: {r}")),
        U::Pem(p) => (ErrorKind::InvalidArgument, format!("bad PEM: {p}")),
        U::BadUri(_) => (ErrorKind::InvalidArgument, "malformed URL".to_string()),
        U::RequireHttpsOnly(_) => (ErrorKind::InvalidArgument, "plain http:// URL refused (HTTPS only)".to_string()),
        U::TlsRequired => (ErrorKind::Tls, "TLS required".to_string()),
        U::BodyExceedsLimit(n) => (ErrorKind::Protocol, format!("reply body larger than {n} bytes")),
        U::LargeResponseHeader(a, b) => (ErrorKind::Protocol, format!("reply headers too large ({a} > {b})")),
        U::Protocol(p) => (ErrorKind::Network, format!("HTTP protocol error: {p}")),
        U::ConnectProxyFailed(_) => (ErrorKind::Network, "proxy CONNECT failed".to_string()),
        U::InvalidProxyUrl => (ErrorKind::InvalidArgument, "invalid proxy URL".to_string()),
        U::Decompress(_, io) => (ErrorKind::Protocol, format!("decompressing reply: {io}")),
        U::StatusCode(s) => (ErrorKind::HttpStatus, format!("HTTP {s}")),
        other => (ErrorKind::Network, scrub_urls(&other.to_string())),
    };
    Error::new(kind, format!("{what}: {}", scrub_urls(&msg)))
}

// ---------------------------------------------------------------------------------------------------------
// The agent

pub(crate) struct Http {
    pub(crate) agent: Agent,
    pub(crate) log: Logger,
    base_url: String,
    client_version: String,
    allow_http: bool,
    retry: RetryPolicy,
    request_timeout: Duration,
}

impl Http {
    pub(crate) fn new(cfg: &Config) -> Result<Http> {
        let mut roots: Vec<Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        if let Some(pem) = &cfg.extra_ca_pem {
            let mut added = 0;
            for item in ureq::tls::parse_pem(pem) {
                match item {
                    Ok(PemItem::Certificate(c)) => {
                        roots.push(c);
                        added += 1;
                    }
                    Ok(_) => {}
                    Err(e) => return Err(Error::invalid(format!("config: extra CA PEM is malformed: {e}"))),
                }
            }
            if added == 0 {
                return Err(Error::invalid("config: extra CA PEM holds no CERTIFICATE block"));
            }
        }
        let tls =
            TlsConfig::builder().provider(TlsProvider::Rustls).root_certs(RootCerts::new_with_certs(&roots)).build();
        let proxy = match &cfg.proxy {
            Some(p) => Some(ureq::Proxy::new(p).map_err(|_| Error::invalid("config: invalid proxy URL"))?),
            None => None,
        };
        if proxy.as_ref().is_some_and(crate::net::is_socks) {
            // ureq is built without its socks-proxy feature: its default connector panics on the first
            // request through a SOCKS proxy, and ours refuses it. Say so now.
            return Err(Error::invalid("config: SOCKS proxies are not supported (use an http:// or https:// proxy)"));
        }
        let per_host = cfg.max_idle_connections_per_host.max(1);
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .https_only(!cfg.allow_http)
            .tls_config(tls)
            .proxy(proxy)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .user_agent(cfg.user_agent.as_str())
            .max_idle_connections_per_host(per_host)
            .max_idle_connections(per_host * 2)
            .timeout_connect(Some(cfg.timeouts.connect))
            .timeout_per_write(Some(cfg.timeouts.stall))
            .timeout_per_read(Some(cfg.timeouts.stall.max(cfg.timeouts.response)))
            .build();
        // A part PUT's response timeout starts once the body has left the machine (src/net.rs).
        let agent = crate::net::agent(config, cfg.timeouts.stall);
        Ok(Http {
            agent,
            log: Logger::new(cfg),
            base_url: cfg.base_url.trim_end_matches('/').to_string(),
            client_version: cfg.client_version.clone(),
            allow_http: cfg.allow_http,
            retry: cfg.retry,
            request_timeout: cfg.timeouts.request,
        })
    }

    pub(crate) fn allow_http(&self) -> bool {
        self.allow_http
    }

    #[allow(dead_code)]
    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// One API request, one attempt. Non-2xx statuses come back as responses, not errors.
    pub(crate) fn api_once(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        extra_headers: &[(&str, &str)],
        body: &ApiBody,
    ) -> Result<ApiResponse> {
        let url = self.url(path);
        let what = format!("{method} {path}");
        let started = Instant::now();
        let result = match method {
            "GET" => {
                let mut req = self.agent.get(&url).config().timeout_global(Some(self.request_timeout)).build();
                req = req.header("x-client-version", self.client_version.as_str()).header("accept", "application/json");
                if let Some(t) = bearer {
                    req = req.header("authorization", format!("Bearer {t}"));
                }
                for (k, v) in extra_headers {
                    req = req.header(*k, *v);
                }
                req.call()
            }
            "POST" => {
                let mut req = self.agent.post(&url).config().timeout_global(Some(self.request_timeout)).build();
                req = req.header("x-client-version", self.client_version.as_str()).header("accept", "application/json");
                if let Some(t) = bearer {
                    req = req.header("authorization", format!("Bearer {t}"));
                }
                for (k, v) in extra_headers {
                    req = req.header(*k, *v);
                }
                match body {
                    ApiBody::None => req.header("content-length", "0").send_empty(),
                    ApiBody::Json(b) => req.header("content-type", "application/json").send(&b[..]),
                    ApiBody::Form(fields) => {
                        let (ct, mut b) = encode_form(fields);
                        let r = req.header("content-type", ct).send(&b[..]);
                        crate::secret::wipe_bytes(&mut b);
                        r
                    }
                }
            }
            _ => return Err(Error::new(ErrorKind::InvalidArgument, format!("unsupported method {method}"))),
        };
        // Name the server on connection failures: a wrong base URL is the usual cause.
        let mut resp = result.map_err(|e| transport_error(e, &format!("{method} {url}")))?;
        let status = resp.status().as_u16();
        let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
        let retry_after = parse_retry_after(resp.headers().get("retry-after").and_then(|v| v.to_str().ok()));
        let body =
            resp.body_mut().with_config().limit(MAX_API_BODY).read_to_vec().map_err(|e| transport_error(e, &what))?;
        self.log.log(LogLevel::Debug, || {
            format!("{what} -> {status} ({} bytes, {} ms)", body.len(), started.elapsed().as_millis())
        });
        Ok(ApiResponse { status, body, content_type, retry_after })
    }

    /// Run `attempt` until it succeeds, fails with a non-retryable error, or the policy is used up.
    /// `cancelled` is checked between attempts and while sleeping.
    pub(crate) fn retry<T>(
        &self,
        what: &str,
        cancelled: &dyn Fn() -> bool,
        mut attempt: impl FnMut(u32) -> Result<T>,
    ) -> Result<T> {
        retry_loop(&self.retry, &self.log, what, cancelled, &mut attempt)
    }
}

/// The retry loop (c2c-api.md 14.8): capped exponential backoff with jitter, honouring Retry-After,
/// 429 waits at least 1 s, bounded by max attempts and the overall deadline.
pub(crate) fn retry_loop<T>(
    policy: &RetryPolicy,
    log: &Logger,
    what: &str,
    cancelled: &dyn Fn() -> bool,
    attempt: &mut dyn FnMut(u32) -> Result<T>,
) -> Result<T> {
    let start = Instant::now();
    let mut n: u32 = 0;
    loop {
        n += 1;
        if cancelled() {
            return Err(Error::new(ErrorKind::Cancelled, format!("{what}: cancelled")));
        }
        let err = match attempt(n) {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if !err.is_retryable() {
            return Err(err);
        }
        if n >= policy.max_attempts {
            log.log(LogLevel::Warn, || format!("{what}: giving up after {n} attempts: {err}"));
            return Err(err);
        }
        let wait = backoff_delay(policy, n, &err);
        if let Some(deadline) = policy.deadline {
            if start.elapsed() + wait > deadline {
                log.log(LogLevel::Warn, || format!("{what}: giving up, retry deadline reached: {err}"));
                return Err(err);
            }
        }
        log.log(LogLevel::Warn, || {
            format!("{what}: {err}; retrying in {} ms (attempt {}/{})", wait.as_millis(), n + 1, policy.max_attempts)
        });
        if !sleep_cancellable(wait, cancelled) {
            return Err(Error::new(ErrorKind::Cancelled, format!("{what}: cancelled")));
        }
    }
}

/// Delay before attempt `n + 1`. Jitter: uniformly in [exp/2, exp].
pub(crate) fn backoff_delay(policy: &RetryPolicy, n: u32, err: &Error) -> Duration {
    let base = policy.base_backoff.as_millis() as u64;
    let cap = policy.max_backoff.as_millis().max(1) as u64;
    let exp = base.saturating_mul(1u64 << (n - 1).min(20)).min(cap).max(1);
    let jittered = exp / 2 + random_u64() % (exp / 2 + 1);
    let mut d = Duration::from_millis(jittered);
    if err.kind == ErrorKind::RateLimited || err.http_status == Some(429) {
        d = d.max(Duration::from_secs(1));
    }
    if let Some(ra) = err.retry_after {
        d = d.max(ra);
    }
    d
}

/// Sleep in small slices; false if cancelled.
pub(crate) fn sleep_cancellable(d: Duration, cancelled: &dyn Fn() -> bool) -> bool {
    let end = Instant::now() + d;
    loop {
        if cancelled() {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}

/// Drain and discard a response body so the connection can go back to the pool.
pub(crate) fn drain(reader: &mut dyn Read, limit: u64) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = reader.take(limit).read_to_end(&mut v);
    v
}

pub(crate) const S3_BODY_LIMIT: u64 = MAX_S3_BODY;

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: &str, ct: Option<&str>) -> ApiResponse {
        ApiResponse { status, body: body.as_bytes().to_vec(), content_type: ct.map(str::to_string), retry_after: None }
    }

    #[test]
    fn simple_error_shape() {
        let e = api_error(&resp(400, r#"{"error":"invalid_client"}"#, None), "POST /v2/auth/device/code");
        assert_eq!(e.kind, ErrorKind::InvalidClient);
        assert_eq!(e.server_code.as_deref(), Some("invalid_client"));
        assert_eq!(e.http_status, Some(400));
        let e = api_error(&resp(400, r#"{"error":"authorization_pending"}"#, None), "x");
        assert_eq!(e.kind, ErrorKind::AuthorizationPending);
        let e = api_error(&resp(400, r#"{"error":"slow_down"}"#, None), "x");
        assert_eq!(e.kind, ErrorKind::SlowDown);
        let e = api_error(&resp(400, r#"{"error":"expired_token"}"#, None), "x");
        assert_eq!(e.kind, ErrorKind::CodeExpired);
    }

    #[test]
    fn detailed_error_shape() {
        let body = r#"{"code":409,"errors":[{"code":409,"detail":"The channel you're uploading from is currently paused.","status":409,"title":"Channel Paused"}],"message":"Channel Paused"}"#;
        let e = api_error(&resp(409, body, Some("application/json")), "POST /v2/devices/assets");
        assert_eq!(e.kind, ErrorKind::ChannelPaused);
        assert_eq!(e.server_code.as_deref(), Some("Channel Paused"));
        assert!(e.message.contains("currently paused"), "{}", e.message);
        let body = r#"{"code":401,"errors":[{"code":401,"detail":"You are not allowed to access that resource","status":401,"title":"Not Authorized"}],"message":"Not Authorized"}"#;
        let e = api_error(&resp(401, body, None), "GET /v2/devices/me");
        assert_eq!(e.kind, ErrorKind::Unauthorized);
    }

    #[test]
    fn html_and_garbage() {
        let e =
            api_error(&resp(502, "<!DOCTYPE html><html><body>Bad gateway</body></html>", Some("text/html")), "GET /x");
        assert_eq!(e.kind, ErrorKind::ServerError);
        assert!(e.message.contains("HTML"), "{}", e.message);
        let e = api_error(&resp(404, "<html>nope</html>", None), "GET /x");
        assert_eq!(e.kind, ErrorKind::NotFound);
        let e = api_error(&resp(400, "{not json", None), "GET /x");
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert!(e.message.contains("not JSON"), "{}", e.message);
        let r = resp(200, "{oops", None);
        assert_eq!(r.json("x").unwrap_err().kind, ErrorKind::Protocol);
        let r = resp(200, "<html></html>", Some("text/html"));
        assert_eq!(r.json("x").unwrap_err().kind, ErrorKind::Protocol);
        let r = resp(200, "[1,2]", None);
        assert_eq!(r.json("x").unwrap_err().kind, ErrorKind::Protocol);
    }

    #[test]
    fn s3_errors() {
        let xml = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>nope</Message></Error>";
        assert_eq!(s3_error(403, xml.as_bytes(), None, "PUT").kind, ErrorKind::UrlExpired);
        let xml = "<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>";
        let e = s3_error(503, xml.as_bytes(), None, "PUT");
        assert_eq!(e.kind, ErrorKind::RateLimited);
        assert!(e.is_retryable());
        let xml = "<Error><Code>RequestTimeout</Code></Error>";
        let e = s3_error(400, xml.as_bytes(), None, "PUT");
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert!(e.is_retryable());
        let xml = "<Error><Code>EntityTooSmall</Code></Error>";
        let e = s3_error(400, xml.as_bytes(), None, "PUT");
        assert_eq!(e.kind, ErrorKind::S3Error);
        assert!(!e.is_retryable());
    }

    #[test]
    fn retry_after_parsing() {
        assert_eq!(parse_retry_after(Some("3")), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(Some("0.5")), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(parse_retry_after(None), None);
    }

    #[test]
    fn backoff_bounds() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
            deadline: None,
        };
        let e = Error::new(ErrorKind::Network, "x");
        for n in 1..10 {
            let d = backoff_delay(&p, n, &e);
            assert!(d <= Duration::from_millis(400));
            assert!(d >= Duration::from_millis(50));
        }
        let e = Error::new(ErrorKind::RateLimited, "x").with_status(429);
        assert!(backoff_delay(&p, 1, &e) >= Duration::from_secs(1));
        let e = e.with_retry_after(Some(Duration::from_secs(3)));
        assert!(backoff_delay(&p, 1, &e) >= Duration::from_secs(3));
    }

    #[test]
    fn retry_loop_behaviour() {
        let p = RetryPolicy {
            max_attempts: 3,
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            deadline: None,
        };
        let log = Logger { cb: None, level: LogLevel::Info };
        let mut calls = 0;
        let r: Result<()> = retry_loop(&p, &log, "t", &|| false, &mut |_| {
            calls += 1;
            Err(Error::new(ErrorKind::Network, "x"))
        });
        assert!(r.is_err());
        assert_eq!(calls, 3);
        let mut calls = 0;
        let r: Result<()> = retry_loop(&p, &log, "t", &|| false, &mut |_| {
            calls += 1;
            Err(Error::new(ErrorKind::BadRequest, "x"))
        });
        assert_eq!(r.unwrap_err().kind, ErrorKind::BadRequest);
        assert_eq!(calls, 1);
        let mut calls = 0;
        let r = retry_loop(&p, &log, "t", &|| false, &mut |n| {
            calls += 1;
            if n < 2 {
                Err(Error::new(ErrorKind::ServerError, "x").with_status(503))
            } else {
                Ok(7)
            }
        });
        assert_eq!(r.unwrap(), 7);
        assert_eq!(calls, 2);
    }

    #[test]
    fn form_encoding() {
        let (ct, body) = encode_form(&[("client_id", "a".into()), ("scope", "asset_create offline".into())]);
        let b = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
        let s = String::from_utf8(body).unwrap();
        assert!(s.starts_with(&format!("--{b}\r\n")));
        assert!(s.contains("name=\"scope\"\r\n\r\nasset_create offline\r\n"));
        assert!(s.ends_with(&format!("--{b}--\r\n")));
    }

    #[test]
    fn scrub() {
        let s = scrub_urls("PUT https://s3/x?X-Amz-Signature=abc failed: \"http://h/y?token=z\"");
        assert!(!s.contains("abc") && !s.contains("token=z"), "{s}");
        assert!(s.contains("https://s3/x?<redacted> failed"));
        assert_eq!(scrub_urls("PUT http://h/x?<redacted>: 5 bytes"), "PUT http://h/x?<redacted>: 5 bytes");
    }
}
