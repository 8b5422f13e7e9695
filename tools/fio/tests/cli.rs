//! The `fio` binary against a fresh emulator per test (real sockets, real S3 presigned URLs):
//! pairing and the config file, info, heartbeat, comment, basic / real-time / followed uploads (bytes
//! checked against what the emulator assembled), Ctrl-C, resume, token refresh written back, 409
//! paused, and the usage and error exits.
//!
//! The emulator binary: `$FIO_EMULATOR_BIN`, else `fio-emulator` next to the `fio` binary
//! (`make test-cli` builds it first).

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const SECRET: &str = "fio-emulator-secret";

struct Emulator {
    child: Child,
    api: String,
    ca_cert: Option<String>,
    dir: PathBuf,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn fio_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fio"))
}

fn emulator_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("FIO_EMULATOR_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    fio_bin().parent().unwrap().join("fio-emulator")
}

fn tempdir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("fio-cli-test-{}-{tag}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn emulator(tag: &str, extra: &[&str]) -> Emulator {
    let bin = emulator_bin();
    assert!(
        bin.exists(),
        "{} not found: build it first (cargo build -p fio-emulator, or make test-cli)",
        bin.display()
    );
    let dir = tempdir(tag);
    let mut child = Command::new(&bin)
        .args(["--port", "0", "--s3-port", "0", "--quiet", "--auto-approve", "--poll-interval", "0.2"])
        .args(extra)
        .arg("--data-dir")
        .arg(dir.join("emu"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the emulator");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("ready line {line:?}: {e}"));
    Emulator {
        child,
        api: v["api"].as_str().unwrap().to_string(),
        ca_cert: v["ca_cert"].as_str().map(str::to_string),
        dir,
    }
}

impl Emulator {
    fn config(&self) -> PathBuf {
        self.dir.join("cfg").join("config.json")
    }

    /// `fio` with this emulator's URL and a config file of its own; no FIO_* from the caller.
    fn fio(&self) -> Command {
        let mut c = Command::new(fio_bin());
        for (k, _) in std::env::vars() {
            if k.starts_with("FIO_") {
                c.env_remove(k);
            }
        }
        c.env("FIO_CONFIG", self.config())
            .env("FIO_CLIENT_SECRET", SECRET)
            .args(["--base-url", &self.api, "--allow-http"])
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.fio().args(args).output().unwrap()
    }

    fn pair(&self) {
        let o = self.run(&["pair"]);
        assert!(o.status.success(), "pair: {}", text(&o));
    }

    fn get(&self, path: &str) -> Value {
        let mut r = ureq::get(&format!("{}{path}", self.api)).call().unwrap();
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
    }

    fn post(&self, path: &str, body: &str) {
        ureq::post(&format!("{}{path}", self.api)).header("content-type", "application/json").send(body).unwrap();
    }

    fn content(&self, asset: &str) -> Vec<u8> {
        let mut r = ureq::get(&format!("{}/_emulator/assets/{asset}/content", self.api)).call().unwrap();
        r.body_mut().with_config().limit(1 << 30).read_to_vec().unwrap()
    }

    fn profile(&self) -> Value {
        let v: Value = serde_json::from_str(&fs::read_to_string(self.config()).unwrap()).unwrap();
        v["profiles"]["default"].clone()
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json_out(o: &Output) -> Value {
    assert!(o.status.success(), "{}", text(o));
    let s = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(s.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: sends a signal to our own child process.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

#[test]
fn pair_saves_tokens_0600_then_info_heartbeat_config() {
    let emu = emulator("pair", &[]);
    let o = emu.run(&["pair", "--qr"]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("enter the code") && err.contains("/_emulator/pair"), "{err}");
    assert!(err.contains('█'), "no QR code drawn: {err}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("Paired"), "{}", text(&o));

    let cfg = emu.config();
    assert_eq!(fs::metadata(&cfg).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(fs::metadata(cfg.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
    let p = emu.profile();
    assert!(p["access_token"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
    assert!(p["refresh_token"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
    assert_eq!(p["base_url"], emu.api.as_str());
    assert!(p["client_id"].as_str().unwrap().starts_with("fio-cli-"), "a client id is generated and kept");

    let info = json_out(&emu.run(&["info", "--json"]));
    assert_eq!(info["name"], "Emulated C2C Device", "{info}");
    assert!(String::from_utf8_lossy(&emu.run(&["heartbeat"]).stdout).contains("heartbeat ok"));

    // the server and the secret come from the config file now
    let o = Command::new(fio_bin())
        .env("FIO_CONFIG", emu.config())
        .env_remove("FIO_CLIENT_SECRET")
        .env_remove("FIO_BASE_URL")
        .args(["info", "--json"])
        .output()
        .unwrap();
    assert_eq!(json_out(&o)["name"], "Emulated C2C Device");

    let o = emu.run(&["config"]);
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(shown.contains("\"paired\": true"), "{shown}");
    assert!(
        !shown.contains(SECRET) && !shown.contains(p["access_token"].as_str().unwrap()),
        "config shows a secret: {shown}"
    );
}

#[test]
fn basic_and_realtime_uploads_arrive_byte_for_byte_and_comment() {
    let emu = emulator("upload", &["--part-size", "5242880"]);
    emu.pair();
    let data = random_bytes(11 * 1024 * 1024 + 777, 7);
    let file = emu.dir.join("A001_C002.mov");
    fs::write(&file, &data).unwrap();
    let f = file.to_str().unwrap();

    let basic = json_out(&emu.run(&["upload", f, "--json", "--progress", "plain"]));
    let id = basic["asset_id"].as_str().unwrap();
    assert_eq!(basic["bytes"], data.len() as u64);
    assert_eq!(basic["realtime"], false);
    assert_eq!(basic["parts"], 2, "the emulator asked for 2 parts of ~5.5 MiB: {basic}");
    let a = emu.get(&format!("/_emulator/assets/{id}"));
    assert_eq!(a["state"], "uploaded", "{a}");
    assert_eq!(a["filetype"], "video/quicktime");
    assert_eq!(a["name"], "A001_C002.mov");
    assert!(emu.content(id) == data, "basic upload: assembled bytes differ");

    let rt = json_out(&emu.run(&["upload", f, "--realtime", "--json", "--concurrency", "2", "--name", "take2.mov"]));
    let id = rt["asset_id"].as_str().unwrap();
    assert_eq!(rt["realtime"], true);
    assert!(rt["parts"].as_u64().unwrap() >= 2, "{rt}");
    assert_eq!(emu.get(&format!("/_emulator/assets/{id}"))["name"], "take2.mov");
    assert!(emu.content(id) == data, "real-time upload: assembled bytes differ");

    let o = emu.run(&["comment", id, "Looks good — ✓"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("comment "), "{}", text(&o));
    let o = emu.run(&["comment", "00000000-0000-4000-8000-000000000000", "nobody here"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("404"), "{}", text(&o));
}

#[test]
fn follow_uploads_a_growing_file_and_finishes_when_idle() {
    let emu = emulator("follow", &[]);
    emu.pair();
    let data = random_bytes(13 * 1024 * 1024 + 5, 11);
    let file = emu.dir.join("rec.mp4");
    // the recording starts after fio does: fio waits for the file to appear
    let child = emu
        .fio()
        .args(["upload", file.to_str().unwrap(), "--follow", "--idle", "1.5", "--json", "--progress", "plain"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut f = fs::File::create(&file).unwrap();
    for chunk in data.chunks(512 * 1024) {
        f.write_all(chunk).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(40));
    }
    drop(f);
    let t = Instant::now();
    let o = child.wait_with_output().unwrap();
    let r = json_out(&o);
    assert!(t.elapsed() < Duration::from_secs(30));
    assert_eq!(r["bytes"], data.len() as u64, "{r}");
    assert!(r["parts"].as_u64().unwrap() >= 2, "several parts while recording: {r}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("waiting for") && err.contains("following:"), "{err}");
    assert!(emu.content(r["asset_id"].as_str().unwrap()) == data);
}

/// A writer that pauses longer than --idle (an encoder holding a whole fragment) must not end a follow
/// with an asset shorter than the file: before the first growth fio waits (the idle limit is then at
/// least a minute), and growth it sees only while finishing makes it fail and say so, not "done".
#[test]
fn follow_waits_for_the_first_growth_and_fails_on_growth_after_an_idle_finish() {
    let emu = emulator("follow-idle", &[]);
    emu.pair();
    // 1. only a header at first, a fragment after twice --idle: it is waited for and uploaded
    let file = emu.dir.join("rec.mp4");
    fs::write(&file, b"ftyp-header-only").unwrap();
    let child = emu
        .fio()
        .args(["upload", file.to_str().unwrap(), "--follow", "--idle", "0.5", "--json", "-q"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let frag = random_bytes(1024 * 1024, 12);
    fs::OpenOptions::new().append(true).open(&file).unwrap().write_all(&frag).unwrap();
    let o = child.wait_with_output().unwrap();
    let r = json_out(&o);
    assert_eq!(r["bytes"], (16 + frag.len()) as u64, "{}", text(&o));
    // 2. growth after idle ended the follow, while the (rate-limited) rest is still going out
    let file = emu.dir.join("rec2.mp4");
    fs::write(&file, random_bytes(6 * 1024 * 1024, 13)).unwrap();
    let child = emu
        .fio()
        .args(["upload", file.to_str().unwrap(), "--follow", "--idle", "0.5", "--limit", "2M", "--json", "-q"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    fs::OpenOptions::new().append(true).open(&file).unwrap().write_all(b"more").unwrap();
    std::thread::sleep(Duration::from_millis(1200)); // idle ended the follow; 6 MiB at 2 MB/s still going
    fs::OpenOptions::new().append(true).open(&file).unwrap().write_all(b"late fragment").unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(err.contains("grew to") && err.contains("--idle"), "{err}");
}

#[test]
fn follow_ctrl_c_ends_the_recording_twice_cancels_and_resume_completes() {
    let emu = emulator("sigint", &[]);
    emu.pair();
    let data = random_bytes(12 * 1024 * 1024, 3);
    let file = emu.dir.join("clip.mov");
    let state = emu.dir.join("clip.state");

    // 1. first Ctrl-C = "recording ended": the file's bytes so far are uploaded and the asset completes
    fs::write(&file, &data[..6 * 1024 * 1024]).unwrap();
    let child = emu
        .fio()
        .args(["upload", file.to_str().unwrap(), "--follow", "--idle", "0", "--json", "-q"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    signal(&child, libc::SIGINT);
    let r = json_out(&child.wait_with_output().unwrap());
    assert!(emu.content(r["asset_id"].as_str().unwrap()) == data[..6 * 1024 * 1024]);

    // 2. a slow upload (--limit) interrupted twice: cancelled, exit 130, the state file stays
    fs::write(&file, &data).unwrap();
    let child = emu
        .fio()
        .args(["upload", file.to_str().unwrap(), "--follow", "--idle", "0", "--limit", "2M", "--state"])
        .arg(&state)
        .args(["-q"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    signal(&child, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGTERM);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    assert!(state.exists(), "the state file is kept for --resume");

    // 3. --resume finishes it; the asset holds the whole file
    let r = json_out(&emu.run(&["upload", "--resume", state.to_str().unwrap(), "--json", "-q"]));
    let id = r["asset_id"].as_str().unwrap();
    assert_eq!(emu.get(&format!("/_emulator/assets/{id}"))["state"], "uploaded");
    assert!(emu.content(id) == data, "resumed upload: assembled bytes differ");
}

#[test]
fn refreshed_tokens_are_written_back() {
    let emu = emulator("refresh", &[]);
    emu.pair();
    let before = emu.profile();
    emu.post("/_emulator/tokens/expire", "{}");
    let o = emu.run(&["heartbeat"]);
    assert!(o.status.success(), "{}", text(&o));
    let after = emu.profile();
    assert_ne!(before["access_token"], after["access_token"]);
    assert_ne!(
        before["refresh_token"], after["refresh_token"],
        "refresh tokens are single use: the new one must be saved"
    );
    assert_eq!(fs::metadata(emu.config()).unwrap().permissions().mode() & 0o777, 0o600);
    // and the saved pair works in the next run
    assert!(emu.run(&["info"]).status.success());

    // logout revokes them: the next call needs pairing (exit 3)
    assert!(emu.run(&["logout"]).status.success());
    assert!(emu.profile()["access_token"].is_null());
    let o = emu.run(&["info"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("fio pair"), "{}", text(&o));
}

#[test]
fn paused_channel_exits_4() {
    let emu = emulator("paused", &[]);
    emu.pair();
    emu.post("/_emulator/channels/0/pause", "{}");
    let file = emu.dir.join("p.mp4");
    fs::write(&file, random_bytes(1000, 5)).unwrap();
    let o = emu.run(&["upload", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("paused"), "{}", text(&o));
}

#[test]
fn usage_and_setup_errors() {
    let emu = emulator("errors", &[]);
    let code = |o: Output| o.status.code();
    // not paired yet
    let o = emu.run(&["info"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    // usage
    assert_eq!(code(emu.run(&["upload"])), Some(2));
    assert_eq!(code(emu.run(&["frobnicate"])), Some(2));
    assert_eq!(code(emu.run(&["info", "--bogus"])), Some(2));
    assert_eq!(code(emu.run(&["upload", "x", "--state", "s"])), Some(2), "--state needs a real-time upload");
    // plain http without --allow-http is refused before any request
    let o = Command::new(fio_bin())
        .env("FIO_CONFIG", emu.config())
        .env("FIO_CLIENT_SECRET", SECRET)
        .env_remove("FIO_ALLOW_HTTP")
        .args(["pair", "--base-url", &emu.api])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("http"), "{}", text(&o));
    // a wrong secret: invalid_client, with a hint
    let o = emu.fio().env("FIO_CLIENT_SECRET", "wrong").args(["pair"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("client-secret"), "{}", text(&o));
    // a missing file
    emu.pair();
    let o = emu.run(&["upload", "/nonexistent/file.mov"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // help and version
    let o = Command::new(fio_bin()).arg("--help").output().unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("upload FILE"));
    let o = Command::new(fio_bin()).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("frameio-c2c"));
}

#[test]
fn https_with_an_extra_ca_file() {
    let emu = emulator("tls", &["--tls"]);
    assert!(emu.api.starts_with("https://"), "{}", emu.api);
    let ca = emu.ca_cert.clone().expect("the emulator's CA");
    let fio = || {
        let mut c = Command::new(fio_bin());
        c.env("FIO_CONFIG", emu.config()).env("FIO_CLIENT_SECRET", SECRET).env_remove("FIO_ALLOW_HTTP");
        c
    };
    // without the CA: a TLS failure
    let o = fio().args(["pair", "--base-url", &emu.api]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // with it: pairing works and the CA file is kept in the profile for the next commands
    let o = fio().args(["pair", "--base-url", &emu.api, "--ca-file", &ca]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(emu.profile()["ca_file"], ca.as_str());
    assert_eq!(json_out(&fio().args(["info", "--json"]).output().unwrap())["name"], "Emulated C2C Device");
}
