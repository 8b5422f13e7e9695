//! Connection handling shared by the API and S3 ports: TLS, request log, scripted faults.

use std::convert::Infallible;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::state::{App, FaultAction, LogEntry};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type RespBody = UnsyncBoxBody<Bytes, BoxError>;
pub type Resp = Response<RespBody>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    Api,
    S3,
}

impl Port {
    pub fn name(self) -> &'static str {
        match self {
            Port::Api => "api",
            Port::S3 => "s3",
        }
    }
}

pub fn body_from(b: impl Into<Bytes>) -> RespBody {
    Full::new(b.into()).map_err(|never: Infallible| match never {}).boxed_unsync()
}

pub fn response(status: u16, content_type: &str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(body_from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if !content_type.is_empty() {
        r.headers_mut().insert(
            "content-type",
            HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/octet-stream")),
        );
    }
    r
}

pub fn json_response(status: u16, v: &serde_json::Value) -> Resp {
    response(status, "application/json; charset=utf-8", serde_json::to_vec(v).unwrap_or_default())
}

/// Marker error: the connection is dropped on purpose (fault injection).
#[derive(Debug)]
struct Dropped;
impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault")
    }
}
impl std::error::Error for Dropped {}

pub async fn serve(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>, app: Arc<App>, port: Port) {
    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                elog!("fio-emulator: accept on {} port failed: {e}", port.name());
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let fd = stream.as_raw_fd();
        let app = app.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(app.clone(), port, fd, req));
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(120)).keep_alive(true);
            match tls {
                Some(acceptor) => {
                    let s = match tokio::time::timeout(Duration::from_secs(30), acceptor.accept(stream)).await {
                        Ok(Ok(s)) => s,
                        _ => return,
                    };
                    let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                }
                None => {
                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                }
            }
        });
    }
}

/// Make the coming close() send a TCP RST instead of a FIN.
fn set_linger_zero(fd: RawFd) {
    // SAFETY: the fd belongs to the connection being served right now, so it is open.
    let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
    let _ = socket2::SockRef::from(&bfd).set_linger(Some(Duration::ZERO));
}

/// Has the peer closed or reset the connection? Works with unread data still queued.
fn peer_closed(fd: RawFd) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLRDHUP, revents: 0 };
    // SAFETY: one valid pollfd and a zero timeout; the fd is open (see set_linger_zero).
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

fn header_str(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers().get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// Query values that would let someone replay a URL are not logged.
pub fn redact_uri(uri: &http::Uri) -> String {
    let path = uri.path().to_string();
    let Some(q) = uri.query() else { return path };
    let parts: Vec<String> = q
        .split('&')
        .map(|kv| {
            let key = kv.split('=').next().unwrap_or("");
            let lk = key.to_ascii_lowercase();
            if lk == "x-amz-signature" || lk == "x-amz-credential" || lk == "x-amz-security-token" {
                format!("{key}=REDACTED")
            } else {
                kv.to_string()
            }
        })
        .collect();
    format!("{path}?{}", parts.join("&"))
}

async fn handle(app: Arc<App>, port: Port, fd: RawFd, req: Request<Incoming>) -> Result<Resp, BoxError> {
    let t0 = app.elapsed_ms();
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    if port == Port::Api && (path == "/_emulator" || path.starts_with("/_emulator/")) {
        // Control API: never faulted, never logged (tests poll it).
        return Ok(crate::control::handle(app, req).await);
    }
    // Logged when the guard drops: also when hyper cancels the request because the client left.
    let mut log = LogGuard {
        app: app.clone(),
        t0,
        entry: LogEntry {
            id: 0,
            port: port.name(),
            method: method.clone(),
            path: redact_uri(req.uri()),
            status: 0,
            content_length: header_str(&req, "content-length").and_then(|v| v.trim().parse().ok()),
            transfer_encoding: header_str(&req, "transfer-encoding"),
            expect: header_str(&req, "expect"),
            signed_headers_ok: if port == Port::S3 { crate::s3::signed_headers_ok(&req) } else { None },
            time_ms: t0,
            duration_ms: 0,
            fault: None,
            client_version: header_str(&req, "x-client-version"),
        },
    };

    if let Some((id, action)) = app.take_fault(port.name(), &method, &path, req.uri().query().unwrap_or("")) {
        log.entry.fault = Some(format!("{}#{id}", action.kind()));
        match action {
            FaultAction::Delay { ms } => tokio::time::sleep(Duration::from_millis(ms)).await,
            FaultAction::Respond { status, headers, body } => {
                // Drain the body so the client sees the status rather than a broken pipe.
                let _ = drain(req.into_body(), u64::MAX).await;
                let mut r = response(status, "", body.clone());
                let mut has_ct = false;
                for (k, v) in &headers {
                    if let (Ok(k), Ok(v)) = (http::HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
                        has_ct |= k == http::header::CONTENT_TYPE;
                        r.headers_mut().append(k, v);
                    }
                }
                if !has_ct && !body.is_empty() {
                    let ct = if body.trim_start().starts_with('<') {
                        if port == Port::S3 {
                            "application/xml"
                        } else {
                            "text/html; charset=utf-8"
                        }
                    } else {
                        "application/json; charset=utf-8"
                    };
                    r.headers_mut().insert("content-type", HeaderValue::from_static(ct));
                }
                log.entry.status = status;
                return Ok(r);
            }
            FaultAction::Reset { after_bytes } => {
                let _ = drain(req.into_body(), after_bytes).await;
                set_linger_zero(fd);
                return Err(Box::new(Dropped));
            }
            FaultAction::Stall { ms } => {
                let hold = ms.map(Duration::from_millis).unwrap_or(Duration::from_secs_f64(app.cfg.stall_max_secs));
                // Hold the request (and its unread body) without reading or answering,
                // until the client gives up or the hold time ends.
                let until = tokio::time::Instant::now() + hold;
                while tokio::time::Instant::now() < until && !peer_closed(fd) {
                    let left = until.saturating_duration_since(tokio::time::Instant::now());
                    tokio::time::sleep(left.min(Duration::from_millis(100))).await;
                }
                drop(req);
                set_linger_zero(fd);
                return Err(Box::new(Dropped));
            }
        }
    }

    let resp = match port {
        Port::Api => crate::api::handle(&app, req).await,
        Port::S3 => crate::s3::handle(&app, req).await,
    };
    log.entry.status = resp.status().as_u16();
    Ok(resp)
}

struct LogGuard {
    app: Arc<App>,
    t0: u64,
    entry: LogEntry,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        let mut e = self.entry.clone();
        e.duration_ms = self.app.elapsed_ms().saturating_sub(self.t0);
        self.app.log(e);
    }
}

/// Read and discard up to `limit` body bytes; gives up when the client goes quiet for 20 s.
pub async fn drain(mut body: Incoming, limit: u64) -> u64 {
    let mut n = 0u64;
    while n < limit {
        match tokio::time::timeout(Duration::from_secs(20), body.frame()).await {
            Ok(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    n += d.len() as u64;
                }
            }
            _ => break,
        }
    }
    n
}

/// Collect a body up to `limit` bytes; None when it is larger or broken.
pub async fn collect_limited(body: Incoming, limit: usize) -> Option<Bytes> {
    let limited = http_body_util::Limited::new(body, limit);
    limited.collect().await.ok().map(|c| c.to_bytes())
}
