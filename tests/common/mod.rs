//! Test helpers shared by the integration tests: start a fresh `fio-emulator` process, talk to its
//! control API, and build clients for it.
//!
//! Usage: `mod common; let emu = common::Emulator::start();` (or `Emulator::builder().arg("--tls").start()`).
//! The emulator is killed and its data dir removed when the value is dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use frameio_c2c::{Client, Config, RetryPolicy};
use serde_json::Value;

/// The client secret the emulator accepts by default.
pub const SECRET: &str = "fio-emulator-secret";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique name for this test process (client ids, temp dirs).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A fresh temporary directory (removed by the caller or left in /tmp).
pub fn temp_dir(prefix: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// The target dir's profile directory (`target/debug`), found from this test binary's path.
pub fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/debug/deps/<test>-hash
    exe.parent().and_then(Path::parent).expect("target dir").to_path_buf()
}

/// Path of the emulator binary: $FIO_EMULATOR_BIN, else `<target>/debug/fio-emulator` (built on demand).
pub fn emulator_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("FIO_EMULATOR_BIN") {
        let p = PathBuf::from(p);
        if p.exists() {
            return p;
        }
    }
    let p = target_profile_dir().join("fio-emulator");
    if !p.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-p", "fio-emulator"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build -p fio-emulator");
        assert!(st.success(), "building fio-emulator failed");
    }
    assert!(p.exists(), "fio-emulator not found at {} (set FIO_EMULATOR_BIN)", p.display());
    p
}

pub struct Builder {
    args: Vec<String>,
}

impl Builder {
    pub fn arg(mut self, a: &str) -> Builder {
        self.args.push(a.to_string());
        self
    }
    pub fn args(mut self, a: &[&str]) -> Builder {
        self.args.extend(a.iter().map(|s| s.to_string()));
        self
    }
    pub fn auto_approve(self) -> Builder {
        self.arg("--auto-approve")
    }
    pub fn start(self) -> Emulator {
        let data_dir = temp_dir("fio-emu");
        let mut child = Command::new(emulator_bin())
            .args(["--port", "0", "--s3-port", "0", "--quiet", "--data-dir"])
            .arg(&data_dir)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("FIO_EMULATOR_LOG").is_some() { Stdio::inherit() } else { Stdio::null() })
            .spawn()
            .expect("spawn fio-emulator");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        reader.read_line(&mut line).expect("read ready line");
        let v: Value = match serde_json::from_str(line.trim()) {
            Ok(v) => v,
            Err(e) => {
                let _ = child.kill();
                panic!("emulator ready line is not JSON ({e}): {line:?}");
            }
        };
        // Keep draining stdout so the emulator never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        Emulator {
            child,
            api: v["api"].as_str().expect("api").to_string(),
            s3: v["s3"].as_str().expect("s3").to_string(),
            ca_cert: v["ca_cert"].as_str().map(PathBuf::from),
            data_dir,
            agent,
        }
    }
}

pub struct Emulator {
    child: Child,
    /// API base URL (`http://127.0.0.1:N`).
    pub api: String,
    /// S3 base URL.
    pub s3: String,
    /// The generated CA (with `--tls`).
    pub ca_cert: Option<PathBuf>,
    pub data_dir: PathBuf,
    agent: ureq::Agent,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

impl Emulator {
    /// Defaults for tests: fast polling (0.2 s) so pairing takes a fraction of a second.
    pub fn builder() -> Builder {
        Builder { args: vec!["--poll-interval".into(), "0.2".into()] }
    }

    pub fn start() -> Emulator {
        Emulator::builder().start()
    }

    fn control_agent(&self) -> ureq::Agent {
        if let Some(ca) = &self.ca_cert {
            // Control API over TLS: trust the emulator's CA.
            let pem = std::fs::read(ca).unwrap();
            let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                .filter_map(|i| match i.ok()? {
                    ureq::tls::PemItem::Certificate(c) => Some(c),
                    _ => None,
                })
                .collect();
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .proxy(None)
                .tls_config(
                    ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::new_with_certs(&certs)).build(),
                )
                .build()
                .new_agent()
        } else {
            self.agent.clone()
        }
    }

    /// GET a control path; returns (status, JSON or Null).
    pub fn get(&self, path: &str) -> (u16, Value) {
        let mut r = self.control_agent().get(format!("{}{path}", self.api)).call().expect("control GET");
        let status = r.status().as_u16();
        let body = r.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    pub fn get_bytes(&self, path: &str) -> (u16, Vec<u8>) {
        let mut r = self.control_agent().get(format!("{}{path}", self.api)).call().expect("control GET");
        let status = r.status().as_u16();
        let body = r.body_mut().with_config().limit(1 << 34).read_to_vec().unwrap_or_default();
        (status, body)
    }

    /// POST JSON to a control path; returns (status, JSON or Null).
    pub fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let mut r = self
            .control_agent()
            .post(format!("{}{path}", self.api))
            .header("content-type", "application/json")
            .send(body.to_string())
            .expect("control POST");
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub fn delete(&self, path: &str) -> u16 {
        self.control_agent().delete(format!("{}{path}", self.api)).call().expect("control DELETE").status().as_u16()
    }

    /// Approve a pairing code.
    pub fn approve(&self, user_code: &str) {
        let (s, v) = self.post("/_emulator/pairing/approve", serde_json::json!({ "user_code": user_code }));
        assert_eq!(s, 200, "approve {user_code}: {v}");
    }

    /// Script a fault; returns its id.
    pub fn fault(&self, spec: Value) -> u64 {
        let (s, v) = self.post("/_emulator/faults", spec.clone());
        assert!((200..300).contains(&s), "fault {spec}: {s} {v}");
        v["id"].as_u64().unwrap_or(0)
    }

    pub fn clear_faults(&self) {
        self.delete("/_emulator/faults");
    }

    /// The request log (API and S3).
    pub fn requests(&self) -> Vec<Value> {
        let (s, v) = self.get("/_emulator/requests");
        assert_eq!(s, 200);
        match v {
            Value::Array(a) => a,
            Value::Object(o) => o.get("requests").and_then(|r| r.as_array()).cloned().unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    pub fn clear_requests(&self) {
        self.delete("/_emulator/requests");
    }

    /// Requests whose path starts with `prefix` (and method matches, if given).
    pub fn requests_to(&self, method: Option<&str>, prefix: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["path"].as_str().unwrap_or("").starts_with(prefix))
            .filter(|r| method.is_none_or(|m| r["method"].as_str() == Some(m)))
            .collect()
    }

    /// The emulator's view of an asset.
    pub fn asset(&self, id: &str) -> Value {
        let (s, v) = self.get(&format!("/_emulator/assets/{id}"));
        assert_eq!(s, 200, "asset {id}: {v}");
        v
    }

    pub fn asset_content(&self, id: &str) -> Vec<u8> {
        let (s, b) = self.get_bytes(&format!("/_emulator/assets/{id}/content"));
        assert_eq!(s, 200, "content of {id}");
        b
    }

    /// A config for this emulator with a fresh client id and a fast retry policy.
    pub fn config(&self) -> Config {
        let mut c = Config::new(unique("unit"), SECRET)
            .with_base_url(self.api.clone())
            .with_allow_http(true)
            .with_client_version("1.2.3")
            .with_retry(RetryPolicy {
                max_attempts: 4,
                base_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_millis(200),
                deadline: Some(Duration::from_secs(30)),
            });
        if let Some(ca) = &self.ca_cert {
            c.extra_ca_pem = Some(std::fs::read(ca).expect("read CA"));
        }
        c
    }

    /// A client with no tokens.
    pub fn client(&self) -> Client {
        Client::new(self.config()).expect("client")
    }

    /// Pair `client` through the control API (start, approve, wait).
    pub fn pair(&self, client: &Client) {
        let p = client.pairing_start().expect("pairing_start");
        self.approve(&p.user_code);
        client.pairing_wait(&p).expect("pairing_wait");
    }

    /// A paired client.
    pub fn paired_client(&self) -> Client {
        let c = self.client();
        self.pair(&c);
        c
    }
}

/// SHA-256 in hex, via `sha256sum` (no extra crate needed).
pub fn sha256_hex(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("sha256sum");
    {
        let mut stdin = child.stdin.take().unwrap();
        let data = data.to_vec();
        std::thread::spawn(move || stdin.write_all(&data)).join().unwrap().unwrap();
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or("").to_string()
}

/// Deterministic pseudo-random bytes.
pub fn test_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Chunk arithmetic for basic uploads: (offset, len) of part i of n for a file of `size` bytes.
pub fn basic_chunks(size: u64, n: usize) -> Vec<(u64, u64)> {
    let chunk = size.div_ceil(n as u64).max(1);
    (0..n as u64)
        .map(|i| {
            let off = (i * chunk).min(size);
            (off, (size - off).min(chunk))
        })
        .collect()
}
