//! Timeouts (issue 5): a slow but moving part upload succeeds, a stalled one fails within the stall
//! limit, and a server that never accepts fails within the connect timeout. The response timeout of a
//! part PUT starts when the body has left the machine (the socket's send queue is acknowledged), not
//! when its last byte was handed to the kernel; a server that never answers still fails after it, and a
//! peer that stops acknowledging the queued body fails within the stall limit. Everything stays on
//! loopback: the slow link is a throttling CONNECT proxy in this test, the server that never accepts is
//! a listening socket whose accept queue is full, the server that never answers a thread.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{sha256_hex, test_bytes, Emulator};
use frameio_c2c::{AssetParams, Client, ErrorKind, PartBody, PartSpec, RetryPolicy, Timeouts};
use serde_json::json;

fn rt_params() -> AssetParams {
    AssetParams {
        name: Some("slow.mp4".into()),
        filetype: "video/mp4".into(),
        realtime: true,
        offset: Some(0),
        ..Default::default()
    }
}

/// One registered final part of `len` bytes: (asset id, presigned URL).
fn one_part(client: &Client, len: u64) -> (String, String) {
    let a = client.create_asset(&rt_params()).unwrap();
    let urls =
        client.register_parts(&a.id, &[PartSpec { number: 1, size: len, is_final: true }], None, Some(len)).unwrap();
    (a.id, urls[0].clone())
}

fn set_rcvbuf(fd: std::os::fd::RawFd, bytes: i32) {
    // SAFETY: a valid socket fd and a pointer to an int of the right size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &bytes as *const i32 as *const libc::c_void,
            std::mem::size_of::<i32>() as libc::socklen_t,
        );
    }
}

// ----- a slow link: a CONNECT proxy that forwards the client's bytes at `rate` bytes/s -----------------

struct SlowProxy {
    addr: String,
    stop: Arc<AtomicBool>,
    /// Bytes forwarded client -> server.
    forwarded: Arc<AtomicU64>,
    /// When the proxy stopped reading from the client (`slow_proxy_stopping`).
    stopped_at: Arc<Mutex<Option<Instant>>>,
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

fn slow_proxy(rate: u64) -> SlowProxy {
    slow_proxy_stopping(rate, None)
}

/// The proxy keeps at most one 4 KiB read in user space and its receive buffer is small (32 KiB asked,
/// the kernel doubles it), so what the link has not carried yet waits in the client's own socket send
/// buffer: the real problem on a slow uplink. With `stop_after`, it stops reading from the client (and
/// holds the connection) once it has forwarded that many bytes: a peer that stops acknowledging.
fn slow_proxy_stopping(rate: u64, stop_after: Option<u64>) -> SlowProxy {
    use std::os::fd::AsRawFd;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    // A small receive buffer, so the client's writes block on the slow link instead of vanishing into
    // the kernel (accepted sockets inherit it).
    set_rcvbuf(l.as_raw_fd(), 32 * 1024);
    let addr = l.local_addr().unwrap().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let forwarded = Arc::new(AtomicU64::new(0));
    let stopped_at = Arc::new(Mutex::new(None));
    let (s2, f2, st2) = (stop.clone(), forwarded.clone(), stopped_at.clone());
    std::thread::spawn(move || {
        for c in l.incoming() {
            if s2.load(Ordering::SeqCst) {
                return;
            }
            let Ok(mut c) = c else { continue };
            let (f3, s3, st3) = (f2.clone(), s2.clone(), st2.clone());
            std::thread::spawn(move || {
                // CONNECT host:port HTTP/1.1 ... \r\n\r\n
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if c.read(&mut b).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                let line = String::from_utf8_lossy(&head).lines().next().unwrap_or("").to_string();
                let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                // loopback only: this proxy never reaches off the machine
                if !target.starts_with("127.0.0.1:") {
                    let _ = c.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n");
                    return;
                }
                let Ok(up) = TcpStream::connect(&target) else {
                    let _ = c.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                    return;
                };
                c.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").unwrap();
                let (mut c2, mut up2) = (c.try_clone().unwrap(), up.try_clone().unwrap());
                // server -> client at full speed
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut up2, &mut c2);
                    let _ = c2.shutdown(Shutdown::Write);
                });
                // client -> server at `rate`
                let (mut c, mut up) = (c, up);
                let t0 = Instant::now();
                let mut sent = 0u64;
                let mut buf = [0u8; 4096];
                loop {
                    if stop_after.is_some_and(|k| sent >= k) {
                        // Stop reading, keep the connection: the client's queue stops draining.
                        *st3.lock().unwrap() = Some(Instant::now());
                        while !s3.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        return;
                    }
                    let n = match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if up.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    sent += n as u64;
                    f3.fetch_add(n as u64, Ordering::Relaxed);
                    let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                    if let Some(d) = due.checked_sub(t0.elapsed()) {
                        std::thread::sleep(d);
                    }
                }
                let _ = up.shutdown(Shutdown::Write);
            });
        }
    });
    SlowProxy { addr, stop, forwarded, stopped_at }
}

/// A part of 5 MiB (the smallest non-final part) over a link of 256 KiB/s takes about 20 s: twenty times
/// the stall limit (1 s), but bytes keep moving, so it succeeds, byte-identical. The socket buffers on
/// loopback take a few MB at once, so the writes block only for the rest (several seconds of blocked,
/// partly progressing writes: the stall timer is exercised and does not fire).
///
/// After the last write, the bytes queued in the socket buffers drain over the slow link for about 16 s;
/// the response timeout (30 s here, default 60 s) starts only once they have been acknowledged (see
/// `response_timeout_does_not_count_queued_bytes`, which uses a 2 s one).
#[test]
fn slow_but_moving_part_succeeds() {
    const RATE: u64 = 256 * 1024;
    let emu = Emulator::start();
    let proxy = slow_proxy(RATE);
    let mut cfg = emu.config();
    cfg.proxy = Some(format!("http://{}", proxy.addr));
    cfg.retry = RetryPolicy { max_attempts: 1, ..cfg.retry };
    cfg.timeouts = Timeouts { stall: Duration::from_secs(1), response: Duration::from_secs(30), ..Timeouts::default() };
    cfg.expect_continue = false;
    let client = Client::new(cfg).unwrap();
    emu.pair(&client);
    let len = 5 * 1024 * 1024u64;
    let data = test_bytes(len as usize, 21);
    let (id, url) = one_part(&client, len);
    emu.clear_requests();
    let before = proxy.forwarded.load(Ordering::Relaxed);
    let hooks = Mutex::new(Vec::<Instant>::new());
    let hook = |_: u64| {
        hooks.lock().unwrap().push(Instant::now());
        true
    };
    let t0 = Instant::now();
    client
        .put_part(&url, PartBody::Bytes(&data), "video/mp4", Some(&hook))
        .unwrap_or_else(|e| panic!("slow part failed: {e}"));
    let took = t0.elapsed();
    let through = proxy.forwarded.load(Ordering::Relaxed) - before;
    let rate = through as f64 / took.as_secs_f64();
    // the longest time the library went without handing a byte to the socket
    let h = hooks.lock().unwrap();
    let longest_gap = h.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default();
    eprintln!(
        "slow link: {len} bytes in {:.2} s ({:.0} kB/s through the proxy), writes spread over {:?}, longest pause between writes {:?}, stall limit 1 s",
        took.as_secs_f64(),
        rate / 1000.0,
        h.last().unwrap().duration_since(h[0]),
        longest_gap
    );
    assert!(took >= Duration::from_secs(15), "the link was not slow: {took:?}");
    let writing = h.last().unwrap().duration_since(h[0]);
    assert!(
        writing >= Duration::from_secs(2),
        "the writes never blocked ({writing:?}): the test did not exercise the stall timer"
    );
    assert!(rate < 1.2 * RATE as f64, "the proxy throttles to 256 KiB/s, measured {rate:.0} B/s");
    let puts = emu.requests().into_iter().filter(|r| r["port"] == "s3").count();
    assert_eq!(puts, 1, "one attempt, no retry");
    let a = emu.asset(&id);
    assert_eq!(a["state"], "uploaded");
    assert_eq!(a["sha256"], sha256_hex(&data));
}

/// The server accepts the PUT and reads nothing: the attempt fails once no byte has moved for the stall
/// limit (FIO_ERR_TIMEOUT), not after the body deadline (30 s + size / 16 KiB/s) or the emulator's hold.
#[test]
fn stalled_part_fails_within_the_stall_limit() {
    const STALL: Duration = Duration::from_millis(1000);
    let emu = Emulator::start();
    let mut cfg = emu.config();
    cfg.retry = RetryPolicy { max_attempts: 1, ..cfg.retry };
    cfg.timeouts = Timeouts { stall: STALL, response: STALL, ..Timeouts::default() };
    cfg.expect_continue = false;
    let client = Client::new(cfg).unwrap();
    emu.pair(&client);
    let len = 8 * 1024 * 1024u64;
    let data = test_bytes(len as usize, 22);
    let (_, url) = one_part(&client, len);
    emu.fault(json!({"target": "s3", "method": "PUT", "count": 1, "stall": true, "stall_ms": 30000}));
    let last = Mutex::new(Instant::now());
    let moved = AtomicU64::new(0);
    let hook = |n: u64| {
        *last.lock().unwrap() = Instant::now();
        moved.fetch_add(n, Ordering::Relaxed);
        true
    };
    let t0 = Instant::now();
    let e = client.put_part(&url, PartBody::Bytes(&data), "video/mp4", Some(&hook)).unwrap_err();
    let took = t0.elapsed();
    let quiet = last.lock().unwrap().elapsed();
    eprintln!(
        "stall: {:?} after {:.2} s ({} of {len} bytes handed to the socket; {:.2} s without progress at the end): {e}",
        e.kind,
        took.as_secs_f64(),
        moved.load(Ordering::Relaxed),
        quiet.as_secs_f64()
    );
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert_eq!(e.status(), 5, "FIO_ERR_TIMEOUT");
    assert!(moved.load(Ordering::Relaxed) < len, "the whole body went out");
    // Given up once nothing moved for the stall limit (a little slack for scheduling).
    assert!(quiet >= STALL - Duration::from_millis(50), "gave up after only {quiet:?} without progress");
    // (the last write may still trickle for a moment after the last read of the body: a few kB)
    assert!(quiet <= STALL + Duration::from_millis(3000), "{quiet:?} without progress before giving up");
    // and far sooner than the body deadline or the emulator's 30 s hold
    assert!(took < Duration::from_secs(10), "{took:?}");
}

/// A listening socket with backlog 0 whose accept queue is full: the kernel drops further SYNs, so a
/// connect never completes. The call fails with FIO_ERR_TIMEOUT after the connect timeout (per
/// attempt), not after the request or retry deadlines.
#[test]
fn server_that_never_accepts_fails_within_the_connect_timeout() {
    use std::os::fd::FromRawFd;
    const CONNECT: Duration = Duration::from_millis(800);
    // SAFETY: plain socket calls on a new fd; the fd is owned by `listener` afterwards.
    let (listener, port) = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        addr.sin_port = 0;
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(libc::bind(fd, &addr as *const _ as *const libc::sockaddr, len), 0);
        assert_eq!(libc::listen(fd, 0), 0);
        let mut got: libc::sockaddr_in = std::mem::zeroed();
        let mut glen = len;
        assert_eq!(libc::getsockname(fd, &mut got as *mut _ as *mut libc::sockaddr, &mut glen), 0);
        (TcpListener::from_raw_fd(fd), u16::from_be(got.sin_port))
    };
    // Fill the accept queue (never accepted) until a connect hangs.
    let target: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut held = Vec::new();
    let mut full = false;
    for _ in 0..16 {
        match TcpStream::connect_timeout(&target, Duration::from_millis(300)) {
            Ok(s) => held.push(s),
            Err(_) => {
                full = true;
                break;
            }
        }
    }
    assert!(full, "the accept queue never filled ({} connections)", held.len());

    let base = format!("http://127.0.0.1:{port}");
    for attempts in [1u32, 2] {
        let mut cfg = frameio_c2c::Config::new(common::unique("unit"), common::SECRET)
            .with_base_url(base.clone())
            .with_allow_http(true)
            .with_client_version("1.2.3");
        cfg.timeouts = Timeouts { connect: CONNECT, ..Timeouts::default() };
        cfg.retry = RetryPolicy {
            max_attempts: attempts,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(100),
            deadline: Some(Duration::from_secs(30)),
        };
        let client = Client::new(cfg).unwrap();
        let t0 = Instant::now();
        let e = client.pairing_start().unwrap_err();
        let took = t0.elapsed();
        eprintln!("never accepts ({attempts} attempt(s)): {:?} after {:.2} s: {e}", e.kind, took.as_secs_f64());
        assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
        assert!(e.is_retryable());
        let per = CONNECT * attempts;
        assert!(took >= per - Duration::from_millis(50), "gave up after {took:?}, before the connect timeout");
        assert!(
            took <= per + Duration::from_millis(200) * attempts + Duration::from_millis(700),
            "{took:?} for {attempts} x {CONNECT:?}"
        );
    }
    drop(held);
    drop(listener);
}

// ----- the response timeout starts when the body has left the machine --------------------------------

/// What the hook saw while a part was handed to the socket.
#[derive(Default)]
struct Writes {
    /// Bytes handed to the socket.
    bytes: AtomicU64,
    /// When the last chunk was handed over, and what the proxy had forwarded by then.
    last: Mutex<Option<(Instant, u64)>>,
}

impl Writes {
    fn hook<'a>(&'a self, proxy: Option<&'a SlowProxy>) -> impl Fn(u64) -> bool + 'a {
        move |n| {
            self.bytes.fetch_add(n, Ordering::Relaxed);
            let fwd = proxy.map(|p| p.forwarded.load(Ordering::Relaxed)).unwrap_or(0);
            *self.last.lock().unwrap() = Some((Instant::now(), fwd));
            true
        }
    }

    fn last(&self) -> (Instant, u64) {
        let last = *self.last.lock().unwrap();
        last.expect("no byte was handed to the socket")
    }
}

/// Issue 5's known issue, fixed: ureq starts the response timeout when the last byte is handed to the
/// kernel, not when it leaves, and on a slow link the socket's send buffer can hold more than (response
/// timeout x link rate). Here a 1 MiB part goes into the client's socket buffer at once (the proxy
/// holds at most ~68 KB: a 64 KiB receive buffer and one 4 KiB read) and drains at 256 KiB/s: about 4 s,
/// twice the 2 s response timeout. Before the fix this failed with "timed out (receive response)" about
/// 2 s after the last write, with half the part still queued; now the response wait starts once the
/// peer has acknowledged the queue. With the defaults (60 s) the old failure needed about 1 MB queued at
/// 16 KiB/s, the library's own minimum throughput.
#[test]
fn response_timeout_does_not_count_queued_bytes() {
    const RATE: u64 = 256 * 1024;
    const RESPONSE: Duration = Duration::from_secs(2);
    let emu = Emulator::start();
    let proxy = slow_proxy(RATE);
    let mut cfg = emu.config();
    cfg.proxy = Some(format!("http://{}", proxy.addr));
    cfg.retry = RetryPolicy { max_attempts: 1, ..cfg.retry };
    cfg.timeouts = Timeouts { stall: Duration::from_secs(1), response: RESPONSE, ..Timeouts::default() };
    cfg.expect_continue = false;
    let client = Client::new(cfg).unwrap();
    emu.pair(&client);
    let len = 1024 * 1024u64;
    let data = test_bytes(len as usize, 23);
    let (id, url) = one_part(&client, len);
    let before = proxy.forwarded.load(Ordering::Relaxed);
    let writes = Writes::default();
    let hook = writes.hook(Some(&proxy));
    let t0 = Instant::now();
    client
        .put_part(&url, PartBody::Bytes(&data), "video/mp4", Some(&hook))
        .unwrap_or_else(|e| panic!("a moving part failed: {e}"));
    let took = t0.elapsed();
    let (last_write, fwd) = writes.last();
    let after_last_write = last_write.elapsed();
    // Not yet carried when the last chunk (at most ureq's 128 KiB output buffer) was handed over, less
    // what the proxy's buffers hold: the rest waited in the client's own socket send buffer.
    let unsent = len - (fwd - before);
    let in_client = unsent.saturating_sub(128 * 1024 + 68 * 1024);
    eprintln!(
        "queued bytes: {len} bytes in {:.2} s; the last chunk handed over after {:.2} s with {unsent} bytes not yet through the link (>= {in_client} in the client's socket buffer, {:.1} s at {RATE} B/s); answer {:.2} s after that, response timeout {RESPONSE:?}",
        took.as_secs_f64(),
        (last_write - t0).as_secs_f64(),
        in_client as f64 / RATE as f64,
        after_last_write.as_secs_f64(),
    );
    // The test models the problem: more than (response timeout x link rate) was queued in the client's
    // socket after its last write, so a response timer started at that write would have fired.
    assert!(
        in_client > RESPONSE.as_secs() * RATE,
        "only {in_client} bytes queued in the client's socket: the test does not exercise the issue"
    );
    assert!(after_last_write > RESPONSE + Duration::from_millis(500), "{after_last_write:?}");
    assert_eq!(emu.asset(&id)["sha256"], sha256_hex(&data));
}

/// A plain-HTTP "S3" that reads the whole body of each request, notes when it had it, then never
/// answers (it holds the connection until the client closes it).
struct SilentServer {
    port: u16,
    got_body: Arc<Mutex<Option<Instant>>>,
}

fn silent_server() -> SilentServer {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got_body = Arc::new(Mutex::new(None));
    let g2 = got_body.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let g3 = g2.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if c.read(&mut b).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                let len: u64 = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let mut body = (&mut c).take(len);
                if std::io::copy(&mut body, &mut std::io::sink()).unwrap_or(0) == len {
                    *g3.lock().unwrap() = Some(Instant::now());
                }
                // never answer; wait for the client to give up and close
                let mut sink = [0u8; 4096];
                while c.read(&mut sink).map(|n| n > 0).unwrap_or(false) {}
            });
        }
    });
    SilentServer { port, got_body }
}

/// No regression in giving up on a server that takes the whole body and never answers: the attempt
/// fails once the response timeout has run from the moment the body left the machine, directly (at
/// once) and over the slow link (where the body still drains for seconds after the last write, so
/// before the fix the attempt failed before the server had the body).
#[test]
fn server_that_never_answers_fails_after_the_response_timeout() {
    const RATE: u64 = 256 * 1024;
    const STALL: Duration = Duration::from_secs(1);
    const RESPONSE: Duration = Duration::from_secs(2);
    let server = silent_server();
    for via_proxy in [false, true] {
        *server.got_body.lock().unwrap() = None;
        let proxy = via_proxy.then(|| slow_proxy(RATE));
        let mut cfg = frameio_c2c::Config::new(common::unique("unit"), common::SECRET)
            .with_allow_http(true)
            .with_client_version("1.2.3");
        cfg.proxy = proxy.as_ref().map(|p| format!("http://{}", p.addr));
        cfg.retry = RetryPolicy { max_attempts: 1, ..cfg.retry };
        cfg.timeouts = Timeouts { stall: STALL, response: RESPONSE, ..Timeouts::default() };
        cfg.expect_continue = false;
        let client = Client::new(cfg).unwrap();
        let len = 1024 * 1024u64;
        let data = test_bytes(len as usize, 24);
        let url = format!("http://127.0.0.1:{}/bucket/part1?X-Amz-SignedHeaders=host", server.port);
        let writes = Writes::default();
        let hook = writes.hook(proxy.as_ref());
        let t0 = Instant::now();
        let e = client.put_part(&url, PartBody::Bytes(&data), "video/mp4", Some(&hook)).unwrap_err();
        let took = t0.elapsed();
        let failed = Instant::now();
        let (last_write, _) = writes.last();
        // (copied out first: a panic while holding the lock would poison it for the server's threads)
        let got_body = *server.got_body.lock().unwrap();
        let got_body = got_body.expect("the server never got the whole body before the client gave up");
        let waited = failed - got_body;
        eprintln!(
            "never answers ({}): {:?} after {:.2} s; last write at {:.2} s, body complete at the server at {:.2} s, gave up {:.2} s later (response timeout {RESPONSE:?}, stall {STALL:?}): {e}",
            if via_proxy { "256 KiB/s link" } else { "direct" },
            e.kind,
            took.as_secs_f64(),
            (last_write - t0).as_secs_f64(),
            (got_body - t0).as_secs_f64(),
            waited.as_secs_f64(),
        );
        assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
        assert_eq!(writes.bytes.load(Ordering::Relaxed), len);
        // The proxy's buffers (~68 KB, 0.27 s at 256 KiB/s) are acknowledged before the server has them.
        assert!(waited >= RESPONSE - Duration::from_millis(500), "gave up {waited:?} after the server had the body");
        assert!(waited <= RESPONSE + STALL, "gave up {waited:?} after the server had the body");
        if via_proxy {
            assert!(last_write.elapsed() > RESPONSE + Duration::from_secs(1), "the body did not drain slowly");
        }
    }
}

/// A peer that stops acknowledging while the queued body drains (it stops reading: a dead link, a
/// wedged proxy) fails the attempt once the send queue has not shrunk for the stall limit, long before
/// the response timeout (30 s here).
#[test]
fn peer_that_stops_reading_mid_drain_fails_within_the_stall_limit() {
    const RATE: u64 = 256 * 1024;
    const STALL: Duration = Duration::from_secs(1);
    let emu = Emulator::start();
    let proxy = slow_proxy_stopping(RATE, Some(256 * 1024));
    let mut cfg = emu.config();
    cfg.proxy = Some(format!("http://{}", proxy.addr));
    cfg.retry = RetryPolicy { max_attempts: 1, ..cfg.retry };
    cfg.timeouts = Timeouts { stall: STALL, response: Duration::from_secs(30), ..Timeouts::default() };
    cfg.expect_continue = false;
    let client = Client::new(cfg).unwrap();
    emu.pair(&client);
    let len = 1024 * 1024u64;
    let data = test_bytes(len as usize, 25);
    let (_, url) = one_part(&client, len);
    let writes = Writes::default();
    let hook = writes.hook(Some(&proxy));
    let t0 = Instant::now();
    let e = client.put_part(&url, PartBody::Bytes(&data), "video/mp4", Some(&hook)).unwrap_err();
    let took = t0.elapsed();
    let failed = Instant::now();
    let (last_write, _) = writes.last();
    let stopped = *proxy.stopped_at.lock().unwrap();
    let stopped = stopped.expect("the proxy never stopped reading");
    eprintln!(
        "stops reading mid-drain: {:?} after {:.2} s; last write at {:.2} s, peer stopped reading at {:.2} s, gave up {:.2} s later (stall {STALL:?}): {e}",
        e.kind,
        took.as_secs_f64(),
        (last_write - t0).as_secs_f64(),
        (stopped - t0).as_secs_f64(),
        (failed - stopped).as_secs_f64(),
    );
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert_eq!(e.status(), 5, "FIO_ERR_TIMEOUT");
    // The whole body was in the socket when the peer stopped: the drain's stall check fired, not a write's.
    assert_eq!(writes.bytes.load(Ordering::Relaxed), len);
    assert!(last_write < stopped, "the writes were still going when the peer stopped");
    assert!(e.to_string().contains("send stalled"), "{e}");
    let quiet = failed - stopped;
    assert!(quiet >= STALL - Duration::from_millis(50), "gave up {quiet:?} after the peer stopped");
    assert!(quiet <= STALL + Duration::from_millis(700), "gave up {quiet:?} after the peer stopped");
}
