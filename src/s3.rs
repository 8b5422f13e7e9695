//! PUT one part to a presigned S3 URL: exactly the signed headers, an explicit Content-Length, an
//! exact-length streamed body, no bearer token, and the retry classes of c2c-api.md 14.8.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::config::LogLevel;
use crate::error::{Error, ErrorKind, Result};
use crate::http::{drain, s3_error, transport_error, S3_BODY_LIMIT};
use crate::secret::redact_url;

/// Presigned URLs this client was handed, kept as keyed hashes (a URL carries its signature, a
/// secret), each with the instant until which S3 cannot have expired it. A PUT to such a URL skips
/// `Expect: 100-continue`: the round trip it costs guards against sending a body to an expired URL,
/// which a URL in the first half of its life is not. URLs from elsewhere (firmware that stored them)
/// keep the header.
pub(crate) struct FreshUrls {
    keys: std::collections::hash_map::RandomState,
    list: std::sync::Mutex<std::collections::VecDeque<(u64, Instant)>>,
}

impl FreshUrls {
    /// Enough for every URL of a basic upload's batch and the parts in flight.
    const CAP: usize = 2048;

    pub(crate) fn new() -> Self {
        FreshUrls { keys: Default::default(), list: Default::default() }
    }

    fn key(&self, url: &str) -> u64 {
        use std::hash::BuildHasher;
        self.keys.hash_one(url)
    }

    /// Notes `url`, received now: fresh for half its lifetime (`X-Amz-Expires`), never for a lifetime
    /// under 2 minutes, and for at most a day.
    pub(crate) fn received(&self, url: &str) {
        let Some(secs) = query_param(url, "x-amz-expires").and_then(|v| v.parse::<u64>().ok()) else { return };
        if secs < 120 {
            return;
        }
        let until = Instant::now() + Duration::from_secs((secs / 2).min(86_400));
        let mut l = self.list.lock().unwrap_or_else(|e| e.into_inner());
        if l.len() >= Self::CAP {
            l.pop_front();
        }
        l.push_back((self.key(url), until));
    }

    pub(crate) fn is_fresh(&self, url: &str) -> bool {
        let k = self.key(url);
        let now = Instant::now();
        let l = self.list.lock().unwrap_or_else(|e| e.into_inner());
        l.iter().rev().any(|(h, until)| *h == k && now < *until)
    }
}

/// The percent-decoded value of query parameter `name` (ASCII case-insensitive).
fn query_param(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1.split('#').next()?;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        percent_decode(k).eq_ignore_ascii_case(name).then(|| percent_decode(v))
    })
}

/// Where a part's bytes come from.
#[derive(Clone, Copy)]
pub enum PartBody<'a> {
    /// A buffer in memory.
    Bytes(&'a [u8]),
    /// `len` bytes of `file` from `offset`, read with pread while sending (never read whole).
    File { file: &'a File, offset: u64, len: u64 },
}

impl PartBody<'_> {
    pub fn len(&self) -> u64 {
        match self {
            PartBody::Bytes(b) => b.len() as u64,
            PartBody::File { len, .. } => *len,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for PartBody<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PartBody::Bytes(b) => write!(f, "PartBody::Bytes({} bytes)", b.len()),
            PartBody::File { offset, len, .. } => {
                write!(f, "PartBody::File {{ offset: {offset}, len: {len} }}")
            }
        }
    }
}

/// Which headers the presigned URL signs, read from `X-Amz-SignedHeaders`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SignedHeaders {
    pub content_type: bool,
    pub acl: bool,
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        // Both digits must be ASCII hex: slicing `s` at a '%' followed by a multi-byte character
        // panicked (found by tests/parsers_fuzz.rs).
        if b[i] == b'%' && i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse the URL's signed headers. Without `X-Amz-SignedHeaders` (not SigV4) we send what Frame.io's own
/// SDK sends: Content-Type and `x-amz-acl: private`.
pub(crate) fn signed_headers(url: &str) -> Result<SignedHeaders> {
    let Some(value) = query_param(url, "X-Amz-SignedHeaders") else {
        return Ok(SignedHeaders { content_type: true, acl: true });
    };
    let mut sh = SignedHeaders { content_type: false, acl: false };
    for h in value.split(';').map(|h| h.trim().to_ascii_lowercase()) {
        match h.as_str() {
            "host" | "content-length" | "" => {}
            "content-type" => sh.content_type = true,
            "x-amz-acl" => sh.acl = true,
            other => {
                return Err(Error::invalid(format!(
                    "upload URL signs header {other:?}, which the library cannot supply"
                )))
            }
        }
    }
    Ok(sh)
}

/// Reads exactly `len` bytes of the body; fails on early EOF (a short file) instead of letting the server
/// wait for the missing bytes; reports each chunk to the hook, which may abort.
struct ExactReader<'a, 'h> {
    body: PartBody<'a>,
    pos: u64,
    hook: Option<&'h dyn Fn(u64) -> bool>,
    cancelled: &'h Cell<bool>,
    short: &'h Cell<bool>,
    io_error: &'h Cell<Option<io::ErrorKind>>,
}

impl Read for ExactReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = self.body.len();
        if self.pos >= len || buf.is_empty() {
            return Ok(0);
        }
        // min in u64 first: on 32-bit targets a remainder of 4 GiB would truncate to 0 (a false "short file")
        let want = (len - self.pos).min(buf.len() as u64) as usize;
        let n = match self.body {
            PartBody::Bytes(b) => {
                let start = self.pos as usize;
                buf[..want].copy_from_slice(&b[start..start + want]);
                want
            }
            PartBody::File { file, offset, .. } => loop {
                match file.read_at(&mut buf[..want], offset + self.pos) {
                    Ok(0) => {
                        self.short.set(true);
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "file ended before the part's length",
                        ));
                    }
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.io_error.set(Some(e.kind()));
                        return Err(e);
                    }
                }
            },
        };
        if let Some(h) = self.hook {
            if !h(n as u64) {
                self.cancelled.set(true);
                return Err(io::Error::other("cancelled by callback"));
            }
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Client {
    /// PUT one part to a presigned URL. `content_type` is the asset's filetype (sent only when the URL
    /// signs it). `hook(n)` is called as each chunk of `n` bytes is handed to the socket; returning false
    /// aborts with `Cancelled`. Transient failures (reset, timeout, 5xx, 429, SlowDown, RequestTimeout,
    /// stale pooled connection) are retried per the policy, replaying the body from its start; S3 403
    /// returns `UrlExpired` at once (register the part again for a fresh URL).
    pub fn put_part(
        &self,
        url: &str,
        body: PartBody<'_>,
        content_type: &str,
        hook: Option<&dyn Fn(u64) -> bool>,
    ) -> Result<()> {
        self.put_part_cancellable(url, body, content_type, hook, &|| false)
    }

    /// [`put_part`](Self::put_part), also stopped (with `Cancelled`) by `cancelled`, which is checked
    /// before each attempt and while waiting between attempts (a `Retry-After` wait may be long).
    pub fn put_part_cancellable(
        &self,
        url: &str,
        body: PartBody<'_>,
        content_type: &str,
        hook: Option<&dyn Fn(u64) -> bool>,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<()> {
        let safe = redact_url(url);
        let what = format!("PUT {safe}");
        if url.starts_with("http://") {
            if !self.http().allow_http() {
                return Err(Error::invalid("upload URL is plain http:// (HTTPS only unless allow_http is set)"));
            }
        } else if !url.starts_with("https://") {
            return Err(Error::invalid("upload URL must be an https:// URL"));
        }
        if url.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(Error::invalid("upload URL contains whitespace"));
        }
        let signed = signed_headers(url)?;
        if signed.content_type && content_type.is_empty() {
            return Err(Error::invalid("the upload URL signs Content-Type: content_type must be the asset's filetype"));
        }
        if content_type.contains(['\r', '\n']) {
            return Err(Error::invalid("content_type contains a line break"));
        }
        if body.len() > crate::realtime::MAX_PART_SIZE {
            return Err(Error::invalid("part is larger than 5 GiB"));
        }
        if let PartBody::File { offset, len, .. } = body {
            if offset.checked_add(len).is_none() {
                return Err(Error::invalid("offset + length overflows"));
            }
        }
        let started = Instant::now();
        let r = self.http().retry(&what, cancelled, |n| {
            if n > 1 {
                self.log(LogLevel::Info, || format!("{what}: attempt {n}"));
            }
            self.put_once(url, body, content_type, signed, hook, &what)
        });
        if r.is_ok() {
            self.log(LogLevel::Debug, || {
                format!("{what}: {} bytes in {} ms", body.len(), started.elapsed().as_millis())
            });
        }
        r
    }

    fn put_once(
        &self,
        url: &str,
        body: PartBody<'_>,
        content_type: &str,
        signed: SignedHeaders,
        hook: Option<&dyn Fn(u64) -> bool>,
        what: &str,
    ) -> Result<()> {
        let cfg = &self.inner.cfg;
        let len = body.len();
        let t = &cfg.timeouts;
        let body_deadline = t.part_base + Duration::from_secs(len / t.min_throughput.max(1));
        let cancelled = Cell::new(false);
        let short = Cell::new(false);
        let io_error = Cell::new(None);
        let mut reader = ExactReader { body, pos: 0, hook, cancelled: &cancelled, short: &short, io_error: &io_error };
        let mut req = self
            .http()
            .agent
            .put(url)
            .config()
            .timeout_send_body(Some(body_deadline))
            // On Linux this runs from when the peer has acknowledged the body, not from the last write
            // into the socket: the agent's transport waits for the send queue to drain first, failing if
            // it stops shrinking for the stall limit (src/net.rs).
            .timeout_recv_response(Some(t.response))
            .timeout_recv_body(Some(t.response))
            .build()
            .header("content-length", len.to_string());
        if signed.content_type {
            req = req.header("content-type", content_type);
        }
        if signed.acl {
            req = req.header("x-amz-acl", "private");
        }
        if cfg.expect_continue && len > 0 && !self.inner.fresh_urls.is_fresh(url) {
            req = req.header("expect", "100-continue");
        }
        let result = req.send(ureq::SendBody::from_reader(&mut reader));
        if cancelled.get() {
            return Err(Error::new(ErrorKind::Cancelled, format!("{what}: cancelled by the progress callback")));
        }
        if short.get() {
            return Err(Error::new(ErrorKind::Io, format!("{what}: the file ended before the part's {len} bytes")));
        }
        if let Some(k) = io_error.get() {
            return Err(Error::new(ErrorKind::Io, format!("{what}: reading the part failed: {}", io::Error::from(k))));
        }
        let mut resp = result.map_err(|e| transport_error(e, what))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(3600)));
        let mut rdr = resp.body_mut().as_reader();
        let resp_body = drain(&mut rdr, S3_BODY_LIMIT);
        if (200..300).contains(&status) {
            if reader.pos != len {
                // The server answered before taking the whole body (should not happen with 2xx).
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("{what}: server accepted after {} of {len} bytes", reader.pos),
                )
                .with_status(status));
            }
            Ok(())
        } else {
            Err(s3_error(status, &resp_body, retry_after, what))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_urls_half_their_life_and_only_those_received() {
        let f = FreshUrls::new();
        let day = "https://s3/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=86400&X-Amz-Signature=a";
        let short = "https://s3/b/k?x-amz-expires=60&X-Amz-Signature=b";
        let none = "https://s3/b/k?X-Amz-Signature=c";
        for u in [day, short, none] {
            f.received(u);
        }
        assert!(f.is_fresh(day));
        assert!(!f.is_fresh(short), "a URL that may expire within minutes keeps 100-continue");
        assert!(!f.is_fresh(none));
        assert!(!f.is_fresh("https://s3/b/k?X-Amz-Expires=86400&X-Amz-Signature=other"));
        for i in 0..FreshUrls::CAP {
            f.received(&format!("https://s3/b/k?X-Amz-Expires=86400&n={i}"));
        }
        assert!(!f.is_fresh(day), "the oldest URL leaves a full list");
        assert_eq!(query_param("https://h/p?a=1&B=2%3B3#x", "b").as_deref(), Some("2;3"));
        assert_eq!(query_param("https://h/p", "a"), None);
    }

    #[test]
    fn signed_header_modes() {
        let u = "https://s3/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-SignedHeaders=host&X-Amz-Signature=x";
        assert_eq!(signed_headers(u).unwrap(), SignedHeaders { content_type: false, acl: false });
        let u = "https://s3/b/k?X-Amz-SignedHeaders=content-type%3Bhost%3Bx-amz-acl&X-Amz-Signature=x";
        assert_eq!(signed_headers(u).unwrap(), SignedHeaders { content_type: true, acl: true });
        let u = "https://s3/b/k?x-amz-signedheaders=host;content-type";
        assert_eq!(signed_headers(u).unwrap(), SignedHeaders { content_type: true, acl: false });
        let u = "https://s3/b/k?AWSAccessKeyId=a&Signature=b&Expires=1";
        assert_eq!(signed_headers(u).unwrap(), SignedHeaders { content_type: true, acl: true });
        let u = "https://s3/b/k?X-Amz-SignedHeaders=host%3Bx-amz-meta-foo";
        assert_eq!(signed_headers(u).unwrap_err().kind, ErrorKind::InvalidArgument);
    }

    #[test]
    fn exact_reader_short_file() {
        let dir = std::env::temp_dir().join(format!("fio-s3-test-{}", std::process::id()));
        std::fs::write(&dir, b"hello").unwrap();
        let f = File::open(&dir).unwrap();
        let (c, s, e) = (Cell::new(false), Cell::new(false), Cell::new(None));
        let mut r = ExactReader {
            body: PartBody::File { file: &f, offset: 1, len: 10 },
            pos: 0,
            hook: None,
            cancelled: &c,
            short: &s,
            io_error: &e,
        };
        let mut buf = Vec::new();
        assert!(r.read_to_end(&mut buf).is_err());
        assert!(s.get());
        assert_eq!(buf, b"ello");
        let mut r = ExactReader {
            body: PartBody::File { file: &f, offset: 1, len: 3 },
            pos: 0,
            hook: None,
            cancelled: &c,
            short: &s,
            io_error: &e,
        };
        let mut buf = Vec::new();
        r.read_to_end(&mut buf).unwrap();
        assert_eq!(buf, b"ell");
        std::fs::remove_file(&dir).unwrap();
    }

    #[test]
    fn exact_reader_hook_cancels() {
        let (c, s, e) = (Cell::new(false), Cell::new(false), Cell::new(None));
        let hook = |n: u64| n < 3;
        let data = b"abcdef";
        let mut r = ExactReader {
            body: PartBody::Bytes(data),
            pos: 0,
            hook: Some(&hook),
            cancelled: &c,
            short: &s,
            io_error: &e,
        };
        let mut buf = [0u8; 2];
        assert_eq!(r.read(&mut buf).unwrap(), 2);
        let mut big = [0u8; 8];
        assert!(r.read(&mut big).is_err());
        assert!(c.get());
    }

    #[test]
    fn percent() {
        assert_eq!(percent_decode("a%3Bb"), "a;b");
        assert_eq!(percent_decode("a%3"), "a%3");
        assert_eq!(percent_decode("9+%\u{e9}x"), "9 %\u{e9}x");
    }
}
