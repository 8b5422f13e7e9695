//! Test harness: runs the real `fio-emulator` binary and talks to it over real sockets with a
//! plain HTTP client (ureq) or raw TCP. Not the frameio library.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const SECRET: &str = "fio-emulator-secret";
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub const MIB: usize = 1024 * 1024;

pub struct Emu {
    child: Child,
    pub api: String,
    pub s3: String,
    pub ca: Option<String>,
    pub dir: PathBuf,
    pub agent: ureq::Agent,
    pub ready_after: Duration,
}

pub struct R {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl R {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    /// The simple error shape: `{"error": code}`.
    pub fn simple_error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_else(|| panic!("no simple error in {}", self.text())).to_string()
    }
    /// Asserts the detailed error shape and returns its title.
    pub fn detailed(&self, status: u16) -> String {
        assert_eq!(self.status, status, "body: {}", self.text());
        let j = self.json();
        assert_eq!(j["code"], json!(status), "{j}");
        assert_eq!(j["errors"][0]["status"], json!(status), "{j}");
        assert_eq!(j["errors"][0]["code"], json!(status), "{j}");
        assert!(j["errors"][0]["detail"].is_string(), "{j}");
        assert_eq!(j["errors"][0]["title"], j["message"], "{j}");
        j["message"].as_str().unwrap().to_string()
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub fn agent(ca_pem: Option<&str>, timeout: Option<Duration>) -> ureq::Agent {
    let mut b = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).timeout_global(timeout);
    if let Some(pem) = ca_pem {
        let cert = ureq::tls::Certificate::from_pem(pem.as_bytes()).expect("CA pem").to_owned();
        b = b.tls_config(
            ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![cert]))).build(),
        );
    }
    b.build().into()
}

impl Emu {
    pub fn start(args: &[&str]) -> Emu {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let dir = std::env::temp_dir().join(format!("fio-emu-test-{}-{n}-{nanos}", std::process::id()));
        let t0 = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_fio-emulator"))
            .args(["--port", "0", "--s3-port", "0", "--quiet", "--data-dir"])
            .arg(&dir)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn fio-emulator");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let mut r = BufReader::new(stdout);
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so the child never blocks on a full pipe.
            let mut sink = Vec::new();
            let _ = r.read_to_end(&mut sink);
        });
        let line = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("no ready line within 10 s");
            }
        };
        let ready_after = t0.elapsed();
        let v: Value = serde_json::from_str(line.trim()).unwrap_or_else(|_| panic!("bad ready line {line:?}"));
        let ca = v["ca_cert"].as_str().map(str::to_string);
        let pem = ca.as_ref().map(|p| std::fs::read_to_string(p).expect("read CA"));
        Emu {
            child,
            api: v["api"].as_str().unwrap().to_string(),
            s3: v["s3"].as_str().unwrap().to_string(),
            ca,
            dir,
            agent: agent(pem.as_deref(), Some(Duration::from_secs(30))),
            ready_after,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.api, path)
    }

    pub fn req(&self, method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> R {
        try_req(&self.agent, method, url, headers, body).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> R {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut h = vec![("x-client-version", "1.2.3")];
        if let Some(a) = &auth {
            h.push(("authorization", a));
        }
        self.req("GET", &self.url(path), &h, None)
    }

    pub fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> R {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut h = vec![("x-client-version", "1.2.3"), ("content-type", "application/json")];
        if let Some(a) = &auth {
            h.push(("authorization", a));
        }
        self.req("POST", &self.url(path), &h, Some(&serde_json::to_vec(body).unwrap()))
    }

    /// POST a form; `multipart` picks multipart/form-data (documented) over urlencoded.
    pub fn post_form(&self, path: &str, fields: &[(&str, &str)], multipart: bool) -> R {
        let (ct, body) = if multipart {
            let b = "----fioemuboundary7MA4YWxk";
            let mut body = Vec::new();
            for (k, v) in fields {
                write!(body, "--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").unwrap();
            }
            write!(body, "--{b}--\r\n").unwrap();
            (format!("multipart/form-data; boundary={b}"), body)
        } else {
            let mut s = form_urlencoded::Serializer::new(String::new());
            for (k, v) in fields {
                s.append_pair(k, v);
            }
            ("application/x-www-form-urlencoded".to_string(), s.finish().into_bytes())
        };
        self.req("POST", &self.url(path), &[("content-type", &ct), ("x-client-version", "1.2.3")], Some(&body))
    }

    pub fn control(&self, method: &str, path: &str, body: Option<Value>) -> R {
        let b = body.map(|b| serde_json::to_vec(&b).unwrap());
        self.req(method, &self.url(path), &[("content-type", "application/json")], b.as_deref())
    }

    pub fn device_code(&self, client_id: &str) -> Value {
        let r = self.post_form(
            "/v2/auth/device/code",
            &[("client_id", client_id), ("client_secret", SECRET), ("scope", "asset_create offline")],
            true,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    pub fn poll(&self, client_id: &str, device_code: &str) -> R {
        self.post_form(
            "/v2/auth/token",
            &[
                ("client_id", client_id),
                ("client_secret", SECRET),
                ("grant_type", DEVICE_GRANT),
                ("device_code", device_code),
            ],
            true,
        )
    }

    pub fn refresh(&self, client_id: &str, refresh_token: &str) -> R {
        self.post_form(
            "/v2/auth/token",
            &[
                ("client_id", client_id),
                ("client_secret", SECRET),
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
            true,
        )
    }

    /// Pairs a device (needs --auto-approve). Returns (access, refresh).
    pub fn pair(&self, client_id: &str) -> (String, String) {
        let dc = self.device_code(client_id);
        let r = self.poll(client_id, dc["device_code"].as_str().unwrap());
        assert_eq!(r.status, 200, "{}", r.text());
        let j = r.json();
        assert_eq!(j["token_type"], "bearer");
        (j["access_token"].as_str().unwrap().to_string(), j["refresh_token"].as_str().unwrap().to_string())
    }

    pub fn create_realtime(&self, token: &str, name: &str) -> String {
        let r = self.post_json(
            "/v2/devices/assets",
            Some(token),
            &json!({"name": name, "filetype": "video/mp4", "is_realtime_upload": true, "offset": 0}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let j = r.json();
        assert!(j.get("upload_urls").is_none());
        j["id"].as_str().unwrap().to_string()
    }

    pub fn register(&self, token: &str, asset: &str, parts: Value, asset_filesize: Option<u64>) -> R {
        let mut body = json!({ "parts": parts });
        if let Some(s) = asset_filesize {
            body["asset_filesize"] = json!(s);
        }
        self.post_json(&format!("/v2/devices/assets/{asset}/realtime_upload/parts"), Some(token), &body)
    }

    pub fn register_urls(&self, token: &str, asset: &str, parts: Value, asset_filesize: Option<u64>) -> Vec<String> {
        let r = self.register(token, asset, parts, asset_filesize);
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["upload_urls"].as_array().unwrap().iter().map(|u| u.as_str().unwrap().to_string()).collect()
    }

    pub fn put(&self, url: &str, data: &[u8], headers: &[(&str, &str)]) -> R {
        self.req("PUT", url, headers, Some(data))
    }

    pub fn asset(&self, id: &str) -> Value {
        let r = self.control("GET", &format!("/_emulator/assets/{id}"), None);
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    pub fn requests(&self) -> Vec<Value> {
        self.control("GET", "/_emulator/requests", None).json().as_array().unwrap().clone()
    }

    pub fn fault(&self, spec: Value) -> u64 {
        let r = self.control("POST", "/_emulator/faults", Some(spec));
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["id"].as_u64().unwrap()
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn try_req(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<R, ureq::Error> {
    let m: ureq::http::Method = method.parse().unwrap();
    let mut b = ureq::http::Request::builder().method(m).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(body.map(|b| b.to_vec()).unwrap_or_default()).unwrap();
    let mut resp = agent.run(req)?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = resp.body_mut().with_config().limit(u64::MAX).read_to_vec()?;
    Ok(R { status, headers, body })
}

pub fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic pseudo-random bytes (xorshift), so failures are reproducible.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// host:port and path?query of an http URL.
pub fn split_url(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let i = rest.find('/').unwrap_or(rest.len());
    (rest[..i].to_string(), rest[i..].to_string())
}

/// Sends raw bytes over TCP and returns everything the server sends until it closes or goes quiet.
pub fn raw(hostport: &str, request: &[u8]) -> String {
    raw_timeout(hostport, request, Duration::from_secs(5))
}

pub fn raw_timeout(hostport: &str, request: &[u8], timeout: Duration) -> String {
    let mut s = TcpStream::connect(hostport).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn status_of(raw_response: &str) -> u16 {
    raw_response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}
