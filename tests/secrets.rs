//! Secrets (issue 5): with the log at its most verbose level for a whole pairing and upload (with
//! faults, a refresh, a re-registration, failures), neither the log nor any error message (Display or
//! Debug, Rust or C) nor the Debug form of the public types contains the access token, the refresh token,
//! the client secret, or an X-Amz-Signature / X-Amz-Credential value. The token callback is the only
//! way tokens leave the library (besides the explicit getter).
//!
//! Wiping: this test binary's global allocator scans every freed block (and every block a realloc moves
//! away from) for planted secrets, so "wiped when freed" is checked for the library's own containers
//! (config secret, token store, returned C strings). Copies the library cannot reach (ureq's request
//! buffers, the kernel's socket buffers) are measured and reported, not asserted.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::{c_char, CStr, CString};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Emulator;
use frameio_c2c::upload::{upload_file, AssetSpec, Source, Upload, UploadOptions};
use frameio_c2c::{AssetParams, Client, Config, Error, ErrorKind, LogLevel, PartBody, PartSpec, RetryPolicy, Tokens};
use serde_json::json;

// ----- a global allocator that looks for secrets in freed memory ----------------------------------------

const MAX_NEEDLES: usize = 4;
const NEEDLE_LEN: usize = 160;
/// Blocks larger than this are not scanned (part bodies; secrets live in small strings).
const SCAN_LIMIT: usize = 1 << 20;

struct Needles {
    bytes: [[AtomicU8; NEEDLE_LEN]; MAX_NEEDLES],
    len: [AtomicUsize; MAX_NEEDLES],
    hits: [AtomicUsize; MAX_NEEDLES],
}

#[allow(clippy::declare_interior_mutable_const)]
const Z8: AtomicU8 = AtomicU8::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const ZU: AtomicUsize = AtomicUsize::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const ROW: [AtomicU8; NEEDLE_LEN] = [Z8; NEEDLE_LEN];
static NEEDLES: Needles = Needles { bytes: [ROW; MAX_NEEDLES], len: [ZU; MAX_NEEDLES], hits: [ZU; MAX_NEEDLES] };
static SCAN: AtomicBool = AtomicBool::new(false);
/// One wipe test at a time (the needles are global).
static WIPE_LOCK: Mutex<()> = Mutex::new(());

struct Scanner;

unsafe fn scan(ptr: *const u8, size: usize) {
    if !SCAN.load(Ordering::Relaxed) || size > SCAN_LIMIT {
        return;
    }
    let block = std::slice::from_raw_parts(ptr, size);
    for i in 0..MAX_NEEDLES {
        let n = NEEDLES.len[i].load(Ordering::Relaxed);
        if n == 0 || n > size {
            continue;
        }
        let first = NEEDLES.bytes[i][0].load(Ordering::Relaxed);
        'outer: for start in 0..=size - n {
            if block[start] != first {
                continue;
            }
            for k in 1..n {
                if block[start + k] != NEEDLES.bytes[i][k].load(Ordering::Relaxed) {
                    continue 'outer;
                }
            }
            NEEDLES.hits[i].fetch_add(1, Ordering::Relaxed);
            break;
        }
    }
}

unsafe impl GlobalAlloc for Scanner {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        scan(ptr, layout.size());
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Always move, so a buffer that grows leaves its old contents in a freed block we can see.
        let new = System.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
        if !new.is_null() {
            std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            scan(ptr, layout.size());
            System.dealloc(ptr, layout);
        }
        new
    }
}

#[global_allocator]
static GLOBAL: Scanner = Scanner;

fn plant(needles: &[&str]) {
    SCAN.store(false, Ordering::SeqCst);
    for i in 0..MAX_NEEDLES {
        NEEDLES.len[i].store(0, Ordering::SeqCst);
        NEEDLES.hits[i].store(0, Ordering::SeqCst);
    }
    for (i, n) in needles.iter().enumerate() {
        assert!(n.len() <= NEEDLE_LEN);
        for (k, b) in n.bytes().enumerate() {
            NEEDLES.bytes[i][k].store(b, Ordering::SeqCst);
        }
        NEEDLES.len[i].store(n.len(), Ordering::SeqCst);
    }
    SCAN.store(true, Ordering::SeqCst);
}

fn hits() -> Vec<usize> {
    SCAN.store(false, Ordering::SeqCst);
    (0..MAX_NEEDLES).map(|i| NEEDLES.hits[i].load(Ordering::SeqCst)).collect()
}

// ----- secrets in logs and errors ---------------------------------------------------------------------

const CLIENT_SECRET: &str = "cs-7Hq2ZpX9vLw4KmT8aRb1";
const WRONG_SECRET: &str = "cs-WRONG-4f9c1e7a2b8d";
const S3_KEY: &str = "AKIAFIOSECRETTEST0001";
const S3_SECRET: &str = "s3-secret-Yh3Lk9Pq2Zx8";

/// Everything the library said: log lines, error messages, Debug output.
#[derive(Default)]
struct Said {
    text: Vec<String>,
}

impl Said {
    fn err(&mut self, e: &Error) {
        self.text.push(e.to_string());
        self.text.push(format!("{e:?}"));
    }
    fn result<T>(&mut self, r: &Result<T, Error>) {
        if let Err(e) = r {
            self.err(e);
        }
    }
}

/// Query values of `key` in a URL.
fn query_value(url: &str, key: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    q.split('&').find_map(|kv| kv.strip_prefix(&format!("{key}="))).map(str::to_string)
}

fn c_last_error() -> String {
    let mut buf = vec![0 as c_char; 4096];
    unsafe { frameio_c2c::ffi::fio_last_error_message(buf.as_mut_ptr(), buf.len()) };
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
}

#[test]
fn no_secret_in_logs_or_error_messages() {
    let emu = Emulator::builder()
        .args(&["--client-secret", CLIENT_SECRET, "--s3-access-key", S3_KEY, "--s3-secret-key", S3_SECRET])
        .start();
    let lines = Arc::new(Mutex::new(Vec::<(LogLevel, String)>::new()));
    let tokens_seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let (l2, t2) = (lines.clone(), tokens_seen.clone());
    let mut said = Said::default();
    let retry = RetryPolicy {
        max_attempts: 3,
        base_backoff: Duration::from_millis(30),
        max_backoff: Duration::from_millis(100),
        deadline: Some(Duration::from_secs(20)),
    };
    let base = |secret: &str| {
        Config::new(common::unique("unit"), secret)
            .with_base_url(emu.api.clone())
            .with_allow_http(true)
            .with_client_version("1.2.3")
            .with_retry(retry)
    };

    // A wrong client secret: its error must not echo the secret either.
    let wrong = Client::new(base(WRONG_SECRET).with_log(LogLevel::Trace, {
        let l = lines.clone();
        move |lv, m| l.lock().unwrap().push((lv, m.to_string()))
    }))
    .unwrap();
    let e = wrong.pairing_start().unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidClient);
    said.err(&e);

    let cfg = base(CLIENT_SECRET)
        .with_log(LogLevel::Trace, move |lv, m| l2.lock().unwrap().push((lv, m.to_string())))
        .with_token_callback(move |t: &Tokens| {
            let mut v = t2.lock().unwrap();
            v.push(t.access_token.expose().to_string());
            v.push(t.refresh_token.expose().to_string());
        });
    said.text.push(format!("{cfg:?}"));
    let client = Arc::new(Client::new(cfg).unwrap());
    said.text.push(format!("{client:?}"));

    // Pairing: a pending poll, then approval.
    let p = client.pairing_start().unwrap();
    said.text.push(format!("{p:?}"));
    std::thread::sleep(Duration::from_millis(250));
    let r = client.pairing_poll(&p);
    assert_eq!(r.as_ref().unwrap_err().kind, ErrorKind::AuthorizationPending);
    said.result(&r);
    emu.approve(&p.user_code);
    let t = client.pairing_wait(&p).unwrap();
    said.text.push(format!("{t:?}"));
    said.text.push(client.device_info().map(|d| format!("{d:?}")).unwrap());
    client.heartbeat().unwrap();

    // Low level: presigned URLs the test can see, a tampered one, an expired one.
    let mut signatures = Vec::new();
    let mut credentials = Vec::new();
    let mut note = |u: &str| {
        signatures.push(query_value(u, "X-Amz-Signature").expect("signature"));
        credentials.push(query_value(u, "X-Amz-Credential").expect("credential"));
    };
    let a = client
        .create_asset(&AssetParams {
            name: Some("low.mp4".into()),
            filetype: "video/mp4".into(),
            realtime: true,
            offset: Some(0),
            ..Default::default()
        })
        .unwrap();
    let urls =
        client.register_parts(&a.id, &[PartSpec { number: 1, size: 1000, is_final: true }], None, Some(1000)).unwrap();
    note(&urls[0]);
    let sig = query_value(&urls[0], "X-Amz-Signature").unwrap();
    let tampered = urls[0].replace(&sig, &"0".repeat(sig.len()));
    let r = client.put_part(&tampered, PartBody::Bytes(&[7u8; 1000]), "video/mp4", None);
    assert_eq!(r.as_ref().unwrap_err().kind, ErrorKind::UrlExpired);
    said.result(&r);
    // Through the C API too: the thread's last error message.
    let curl = CString::new(tampered.clone()).unwrap();
    let ct = CString::new("video/mp4").unwrap();
    unsafe {
        use frameio_c2c::ffi::client::*;
        use frameio_c2c::ffi::config::*;
        let c = fio_config_new();
        let (id, sec, base) = (
            CString::new("unit-c").unwrap(),
            CString::new(CLIENT_SECRET).unwrap(),
            CString::new(emu.api.clone()).unwrap(),
        );
        assert_eq!(fio_config_set_client_id(c, id.as_ptr()), 0);
        assert_eq!(fio_config_set_client_secret(c, sec.as_ptr()), 0);
        assert_eq!(fio_config_set_allow_http(c, true), 0);
        assert_eq!(fio_config_set_base_url(c, base.as_ptr()), 0);
        assert_eq!(fio_config_set_retry(c, 1, 10, 10, 0), 0);
        let mut ch = std::ptr::null_mut();
        assert_eq!(fio_client_new(c, &mut ch), 0);
        let body = [7u8; 1000];
        let st = frameio_c2c::ffi::assets::fio_put_part(
            ch,
            curl.as_ptr(),
            body.as_ptr(),
            1000,
            ct.as_ptr(),
            None,
            std::ptr::null_mut(),
        );
        assert_eq!(st, 14, "FIO_ERR_URL_EXPIRED");
        said.text.push(c_last_error());
        // pairing with the C client: fails (no approval wanted here), its message too
        let mut pairing = std::ptr::null_mut();
        assert_eq!(fio_pairing_start(ch, &mut pairing), 0);
        assert_eq!(fio_pairing_poll(ch, pairing), 22, "FIO_ERR_AUTHORIZATION_PENDING");
        said.text.push(c_last_error());
        fio_pairing_free(pairing);
        fio_client_free(ch);
        fio_config_free(c);
    }
    client.put_part(&urls[0], PartBody::Bytes(&[7u8; 1000]), "video/mp4", None).unwrap();

    // A basic asset: its Debug form must not print the URLs' signatures.
    let b = client
        .create_asset(&AssetParams {
            name: Some("basic.mov".into()),
            filetype: "video/quicktime".into(),
            filesize: Some(12 << 20),
            ..Default::default()
        })
        .unwrap();
    for u in &b.upload_urls {
        note(u);
    }
    said.text.push(format!("{b:?}"));

    // The engine: a growing recording with faults on both ports, a token expiry mid-way (401 +
    // refresh), an S3 403 (re-registration).
    emu.fault(json!({"target": "s3", "method": "PUT", "count": 1, "skip": 1, "status": 403,
        "body": "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"}));
    emu.fault(json!({"target": "s3", "method": "PUT", "count": 1, "skip": 2, "status": 500, "body": "<Error><Code>InternalError</Code></Error>"}));
    emu.fault(json!({"target": "api", "path_prefix": "/v2/devices/assets/", "count": 1, "skip": 1, "status": 503}));
    let dir = common::temp_dir("fio-secrets");
    let path = dir.join("rec.mov");
    let mut f = std::fs::File::create(&path).unwrap();
    let data = common::test_bytes(16 << 20, 41);
    let spec = AssetSpec {
        name: Some("rec.mov".into()),
        filetype: "video/quicktime".into(),
        offset: Some(0),
        ..Default::default()
    };
    let state = dir.join("rec.state");
    let opts = UploadOptions {
        concurrency: 2,
        retry_backoff: Duration::from_millis(50),
        state_file: Some(state.clone()),
        ..Default::default()
    };
    let up = Upload::start(client.clone(), spec.clone(), Source::File(path.clone()), opts).unwrap();
    for (i, c) in data.chunks(1 << 20).enumerate() {
        f.write_all(c).unwrap();
        up.file_grew(((i + 1) << 20) as u64).unwrap();
        if i == 7 {
            let (s, _) = emu.post("/_emulator/tokens/expire", json!({}));
            assert_eq!(s, 200);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let p = up.finish().unwrap();
    assert!(p.reregistrations >= 1, "{p:?}");
    // the resume state on disk holds no token and no URL
    said.text.push(std::fs::read_to_string(&state).expect("state file"));
    said.text.push(format!("{p:?}"));
    said.text.push(format!("{:?}", up.parts()));
    assert_eq!(emu.asset(up.asset_id())["sha256"], common::sha256_hex(&data));
    // A basic upload through the engine, and one that fails on a rejected URL.
    upload_file(
        client.clone(),
        &path,
        AssetSpec { name: Some("b2.mov".into()), ..spec.clone() },
        false,
        UploadOptions::default(),
    )
    .unwrap();
    emu.fault(json!({"target": "s3", "method": "PUT", "count": 100, "status": 403, "body": "<Error><Code>SignatureDoesNotMatch</Code></Error>"}));
    let r = upload_file(
        client.clone(),
        &path,
        AssetSpec { name: Some("b3.mov".into()), ..spec.clone() },
        false,
        UploadOptions::default(),
    );
    said.result(&r);
    emu.clear_faults();

    // An explicit refresh, then the old refresh token used again elsewhere: PairingRequired.
    let old = client.tokens().unwrap();
    client.refresh().unwrap();
    let other = Client::new(client.config().clone()).unwrap();
    other.set_tokens(old);
    let r = other.refresh();
    assert_eq!(r.as_ref().unwrap_err().kind, ErrorKind::PairingRequired);
    said.result(&r);
    // Revoke, then calls without tokens.
    client.revoke().unwrap();
    said.result(&client.device_info());
    said.result(&client.create_asset(&AssetParams {
        name: Some("x.mp4".into()),
        filetype: "video/mp4".into(),
        realtime: true,
        ..Default::default()
    }));
    std::fs::remove_dir_all(&dir).ok();

    // ----- the search
    let mut needles: Vec<(String, String)> = vec![
        ("client secret".into(), CLIENT_SECRET.into()),
        ("wrong client secret".into(), WRONG_SECRET.into()),
        ("S3 access key".into(), S3_KEY.into()),
        ("S3 secret key".into(), S3_SECRET.into()),
    ];
    let toks = tokens_seen.lock().unwrap().clone();
    assert!(toks.len() >= 6, "pairing, the 401 refresh and the explicit refresh each gave a pair: {}", toks.len());
    for tk in toks.iter().filter(|t| !t.is_empty()) {
        needles.push(("token".into(), tk.clone()));
    }
    for s in &signatures {
        needles.push(("X-Amz-Signature".into(), s.clone()));
    }
    for c in &credentials {
        needles.push(("X-Amz-Credential".into(), c.clone()));
        // and its percent-decoded form
        needles.push(("X-Amz-Credential".into(), c.replace("%2F", "/")));
    }
    let log = lines.lock().unwrap().clone();
    assert!(log.iter().any(|(l, _)| *l == LogLevel::Debug), "the log ran at its most verbose level");
    let mut haystack: Vec<String> = log.iter().map(|(_, m)| m.clone()).collect();
    haystack.extend(said.text.iter().cloned());
    let mut leaks = Vec::new();
    for h in &haystack {
        for (what, n) in &needles {
            if h.contains(n.as_str()) {
                leaks.push(format!("{what} in {h:?}"));
            }
        }
        for marker in ["X-Amz-Signature=", "X-Amz-Credential=", "Bearer ", "refresh_token=", "client_secret="] {
            if h.contains(marker) {
                leaks.push(format!("{marker} in {h:?}"));
            }
        }
    }
    eprintln!(
        "secrets: {} log lines and {} messages/Debug strings searched for {} secret values: {} leaks",
        log.len(),
        said.text.len(),
        needles.len(),
        leaks.len()
    );
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
}

// ----- wiping -------------------------------------------------------------------------------------------

const WIPE_SECRET: &str = "wipe-client-secret-Q8s2Lk4Z";
const WIPE_ACCESS: &str = "wipe-access-token-M3n9Tq7R";
const WIPE_REFRESH: &str = "wipe-refresh-token-V5c1Hx0P";

fn assert_no_hits(what: &str) {
    let h = hits();
    assert_eq!(&h[..3], &[0, 0, 0], "{what}: freed blocks still holding (client secret, access, refresh): {h:?}");
}

/// The library's own containers wipe secrets before their memory is freed: Secret, Tokens, Config,
/// the client's token store, and (C API) the config and the strings fio_client_get_tokens returns.
#[test]
fn secrets_are_wiped_when_freed() {
    let _g = WIPE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    plant(&[WIPE_SECRET, WIPE_ACCESS, WIPE_REFRESH]);
    {
        let cfg = Config::new("unit-wipe", WIPE_SECRET)
            .with_allow_http(true)
            .with_base_url("http://127.0.0.1:9")
            .with_client_version("1.2.3");
        let cfg2 = cfg.clone();
        let client = Client::new(cfg2).unwrap();
        client.set_tokens(Tokens::new(WIPE_ACCESS, WIPE_REFRESH, 0));
        let snap = client.tokens().unwrap();
        assert_eq!(snap.access_token.expose(), WIPE_ACCESS);
        let _ = format!("{snap:?} {cfg:?}");
        drop(snap);
        client.clear_tokens();
        client.set_tokens(Tokens::new(WIPE_ACCESS, WIPE_REFRESH, 0));
        drop(client);
        drop(cfg);
    }
    assert_no_hits("Rust API");

    plant(&[WIPE_SECRET, WIPE_ACCESS, WIPE_REFRESH]);
    unsafe {
        use frameio_c2c::ffi::client::*;
        use frameio_c2c::ffi::config::*;
        let c = fio_config_new();
        let s = CString::new(WIPE_SECRET).unwrap();
        let id = CString::new("unit-wipe").unwrap();
        assert_eq!(fio_config_set_client_secret(c, s.as_ptr()), 0);
        assert_eq!(fio_config_set_client_id(c, id.as_ptr()), 0);
        let mut client = std::ptr::null_mut();
        assert_eq!(fio_client_new(c, &mut client), 0);
        let (a, r) = (CString::new(WIPE_ACCESS).unwrap(), CString::new(WIPE_REFRESH).unwrap());
        assert_eq!(fio_client_set_tokens(client, a.as_ptr(), r.as_ptr(), 0), 0);
        let (mut ao, mut ro, mut exp) = (std::ptr::null_mut(), std::ptr::null_mut(), 0u64);
        assert_eq!(fio_client_get_tokens(client, &mut ao, &mut ro, &mut exp), 0);
        assert_eq!(CStr::from_ptr(ao).to_str().unwrap(), WIPE_ACCESS);
        frameio_c2c::ffi::fio_string_free(ao);
        frameio_c2c::ffi::fio_string_free(ro);
        fio_client_free(client);
        fio_config_free(c);
        // the test's own CStrings hold the values too: wipe them before they are freed
        for cs in [s, a, r] {
            let mut v = cs.into_bytes();
            v.iter_mut().for_each(|b| *b = 0);
        }
    }
    assert_no_hits("C API");
}

/// Informational: during a real pairing and refresh, how many freed blocks still held the client secret
/// or a token. Those are transient copies outside the library's containers (ureq's request and response
/// buffers, serde_json values, the formatted Authorization header); the kernel's socket buffers are out of
/// reach entirely. Reported, not asserted: see the issue 5 report.
#[test]
fn transient_copies_during_a_real_exchange() {
    let _g = WIPE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let emu = Emulator::builder().args(&["--client-secret", WIPE_SECRET]).start();
    let cfg = Config::new(common::unique("unit"), WIPE_SECRET)
        .with_base_url(emu.api.clone())
        .with_allow_http(true)
        .with_client_version("1.2.3");
    plant(&[WIPE_SECRET]);
    let client = Client::new(cfg).unwrap();
    emu.pair(&client);
    client.refresh().unwrap();
    client.device_info().unwrap();
    let secret_hits = hits()[0];
    // Now the current tokens: API calls (bearer header) and a refresh (refresh token in the form).
    let t = client.tokens().unwrap();
    let (access, refresh) = (t.access_token.expose().to_string(), t.refresh_token.expose().to_string());
    drop(t);
    plant(&[&access, &refresh]);
    client.device_info().unwrap();
    client.heartbeat().unwrap();
    client.refresh().unwrap();
    drop(client);
    let h = hits();
    eprintln!(
        "transient copies in freed memory: client secret in {secret_hits} block(s) during pairing + refresh; \
         the access token in {} block(s) after two API calls and a refresh; the refresh token in {} block(s)",
        h[0], h[1]
    );
    assert_eq!(secret_hits, 0, "the client secret was left in freed memory");
}
