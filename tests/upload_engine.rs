//! Upload engine against the emulator (real sockets, real S3 data plane): a growing file of 200 MB,
//! kill -9 and resume, expired URLs, a 401 mid-upload, connection resets, a storm of 429s, cancel and
//! a paused channel. Every successful case asserts the SHA-256 the emulator computed over the
//! assembled object; every failing case asserts its status.

mod common;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Emulator;
use frameio_c2c::upload::{upload_file, AssetSpec, Source, Upload, UploadOptions};
use frameio_c2c::{Client, Config, ErrorKind, Tokens};
use serde_json::{json, Value};

const MIB: u64 = 1024 * 1024;

fn tmp(name: &str) -> PathBuf {
    common::temp_dir(&format!("fio-upload-{name}"))
}

fn start_emulator(extra: &[&str]) -> Emulator {
    Emulator::builder().args(extra).start()
}

fn assets(emu: &Emulator) -> Vec<Value> {
    emu.get("/_emulator/assets").1.as_array().cloned().unwrap_or_default()
}

fn asset_named(emu: &Emulator, name: &str) -> String {
    assets(emu).iter().find(|a| a["name"] == name).unwrap_or_else(|| panic!("no asset {name}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn paired(emu: &Emulator) -> Arc<Client> {
    Arc::new(emu.paired_client())
}

/// Deterministic pseudo-random bytes (incompressible, so nothing can cheat on content).
fn fill(buf: &mut [u8], seed: &mut u64) {
    for chunk in buf.chunks_mut(8) {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let b = seed.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

fn write_file(path: &Path, len: u64, seed: u64) {
    let mut f = File::create(path).unwrap();
    let mut s = seed | 1;
    let mut buf = vec![0u8; MIB as usize];
    let mut left = len;
    while left > 0 {
        let n = left.min(MIB) as usize;
        fill(&mut buf[..n], &mut s);
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
}

fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().expect("sha256sum");
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

fn spec(name: &str) -> AssetSpec {
    AssetSpec { name: Some(name.into()), filetype: "video/mp4".into(), offset: Some(0), ..Default::default() }
}

fn assert_uploaded(emu: &Emulator, id: &str, path: &Path) {
    let a = emu.asset(id);
    assert_eq!(a["state"], "uploaded", "asset {a}");
    assert_eq!(a["sha256"].as_str().unwrap(), sha256_file(path), "SHA-256 of the assembled object");
}

fn s3_put_bytes_since(emu: &Emulator, after_id: u64) -> u64 {
    emu.requests()
        .iter()
        .filter(|r| {
            r["port"] == "s3" && r["method"] == "PUT" && r["status"] == 200 && r["id"].as_u64().unwrap() > after_id
        })
        .map(|r| r["content_length"].as_u64().unwrap_or(0))
        .sum()
}

fn last_request_id(emu: &Emulator) -> u64 {
    emu.requests().iter().filter_map(|r| r["id"].as_u64()).max().unwrap_or(0)
}

/// The recording grows while it uploads: 210 MB in 1 MiB writes, reported with `file_grew`.
#[test]
fn growing_file_200mb() {
    let emu = start_emulator(&[]);
    let client = paired(&emu);
    let dir = tmp("grow");
    let path = dir.join("rec.mp4");
    let mut f = File::create(&path).unwrap();
    let t0 = Instant::now();
    let up = Upload::start(client, spec("grow.mp4"), Source::File(path.clone()), UploadOptions::default()).unwrap();
    let total = 210 * 1000 * 1000u64;
    let mut seed = 7u64;
    let mut buf = vec![0u8; MIB as usize];
    let mut written = 0u64;
    let mut sent_before_end = 0;
    let mut parts_before_end = 0;
    while written < total {
        let n = (total - written).min(MIB) as usize;
        fill(&mut buf[..n], &mut seed);
        f.write_all(&buf[..n]).unwrap();
        written += n as u64;
        up.file_grew(written).unwrap();
        let st = up.stats();
        sent_before_end = st.bytes_sent;
        parts_before_end = st.parts_done;
    }
    let rec_end = Instant::now();
    let p = up.finish().unwrap();
    let tail = rec_end.elapsed();
    eprintln!(
        "growing_file_200mb: {} bytes, {} parts ({} done before the recording ended), total {:.1} s, tail {:.2} s",
        p.bytes_done,
        p.parts_total,
        parts_before_end,
        t0.elapsed().as_secs_f64(),
        tail.as_secs_f64()
    );
    assert!(p.parts_total >= 20, "{} parts", p.parts_total);
    assert!(sent_before_end > 0, "parts must go out while recording");
    assert_eq!(p.bytes_done, total);
    assert_uploaded(&emu, up.asset_id(), &path);
}

/// Pushed bytes with a small buffer budget: `write` blocks instead of growing.
#[test]
fn pushed_bytes_with_backpressure() {
    let emu = start_emulator(&[]);
    let client = paired(&emu);
    let dir = tmp("push");
    let path = dir.join("copy.bin");
    let total = 40 * MIB + 333;
    write_file(&path, total, 11);
    let data = std::fs::read(&path).unwrap();
    let opts = UploadOptions { buffer_budget: 12 * MIB, concurrency: 2, ..Default::default() };
    let up = Upload::start(client, spec("push.mp4"), Source::Bytes, opts).unwrap();
    for c in data.chunks(64 * 1024 + 3) {
        up.write(c).unwrap();
    }
    let p = up.finish().unwrap();
    assert!(p.peak_bytes_buffered <= 12 * MIB, "peak {}", p.peak_bytes_buffered);
    assert_uploaded(&emu, up.asset_id(), &path);
}

/// A complete file, real-time (parallel registered parts) and basic (server's URLs).
#[test]
fn complete_file_realtime_and_basic() {
    let emu = start_emulator(&[]);
    let client = paired(&emu);
    let dir = tmp("complete");
    let path = dir.join("clip.mov");
    write_file(&path, 33 * MIB + 1, 12);
    let before = last_request_id(&emu);
    upload_file(client.clone(), &path, spec("rt.mov"), true, UploadOptions::default()).unwrap();
    assert_uploaded(&emu, &asset_named(&emu, "rt.mov"), &path);
    assert_eq!(s3_put_bytes_since(&emu, before), 33 * MIB + 1);
    upload_file(client, &path, spec("basic.mov"), false, UploadOptions::default()).unwrap();
    assert_uploaded(&emu, &asset_named(&emu, "basic.mov"), &path);
}

/// Child half of `kill9_then_resume`: runs only when the parent sets FIO_RESUME_CHILD.
#[test]
fn resume_child_process() {
    let Ok(cfg) = std::env::var("FIO_RESUME_CHILD") else {
        return;
    };
    let v: Value = serde_json::from_str(&cfg).unwrap();
    let config = Config::new(v["client_id"].as_str().unwrap(), common::SECRET)
        .with_base_url(v["api"].as_str().unwrap())
        .with_allow_http(true)
        .with_client_version("1.0.0");
    let client = Client::new(config).unwrap();
    client.set_tokens(Tokens::new(
        v["access"].as_str().unwrap(),
        v["refresh"].as_str().unwrap(),
        v["expires_at"].as_u64().unwrap(),
    ));
    let opts = UploadOptions {
        state_file: Some(v["state"].as_str().unwrap().into()),
        bandwidth_limit: 10 * MIB,
        concurrency: 2,
        ..Default::default()
    };
    let path = PathBuf::from(v["file"].as_str().unwrap());
    if v["bytes"] == true {
        // the recording is pushed as it is made (from the file, in 64 KiB writes)
        let up = Upload::start(Arc::new(client), spec("resume.mp4"), Source::Bytes, opts).unwrap();
        let data = std::fs::read(&path).unwrap();
        for c in data.chunks(64 * 1024) {
            up.write(c).unwrap();
        }
        up.finish().unwrap();
    } else {
        let up = Upload::start(Arc::new(client), spec("resume.mp4"), Source::File(path), opts).unwrap();
        up.finish().unwrap();
    }
    panic!("the parent should have killed this process");
}

#[test]
fn kill9_then_resume() {
    kill9_then_resume_with(false);
}

/// The same with pushed bytes: after the restart the caller pushes again from `resume_offset`.
#[test]
fn kill9_then_resume_pushed_bytes() {
    kill9_then_resume_with(true);
}

fn kill9_then_resume_with(bytes: bool) {
    let emu = start_emulator(&[]);
    let client = emu.paired_client();
    let t = client.tokens().unwrap();
    let dir = tmp("resume");
    let path = dir.join("rec.mp4");
    let state = dir.join("rec.state");
    let total = 80 * MIB + 17;
    write_file(&path, total, 13);
    let cfg = json!({
        "api": emu.api, "file": path, "state": state, "client_id": client.config().client_id, "bytes": bytes,
        "access": t.access_token.expose(), "refresh": t.refresh_token.expose(), "expires_at": t.expires_at,
    });
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "resume_child_process", "--nocapture", "--test-threads=1"])
        .env("FIO_RESUME_CHILD", cfg.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // wait until some parts are done, then kill -9 in the middle of the upload
    let start = Instant::now();
    let done_parts = loop {
        assert!(start.elapsed() < Duration::from_secs(60), "child made no progress");
        assert!(child.try_wait().unwrap().is_none(), "child exited early");
        if let Ok(text) = std::fs::read(&state) {
            if let Ok(s) = serde_json::from_slice::<Value>(&text) {
                let done: Vec<u64> = s["parts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| p["done"] == true)
                    .map(|p| p["size"].as_u64().unwrap())
                    .collect();
                if done.len() >= 4 {
                    child.kill().unwrap(); // SIGKILL
                    child.wait().unwrap();
                    break done.len();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let done_bytes: u64 = saved["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["done"] == true)
        .map(|p| p["size"].as_u64().unwrap())
        .sum();
    assert!(done_bytes < total, "killed too late");
    let id = saved["asset_id"].as_str().unwrap().to_string();
    assert_ne!(emu.asset(&id)["state"], "uploaded");
    let before = last_request_id(&emu);
    let up = Upload::resume(Arc::new(client), &state, UploadOptions::default()).unwrap();
    assert_eq!(up.asset_id(), id);
    if bytes {
        let from = up.resume_offset() as usize;
        let first_undone = saved["parts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["done"] == false)
            .map(|p| p["offset"].as_u64().unwrap());
        assert_eq!(Some(from as u64), first_undone);
        let data = std::fs::read(&path).unwrap();
        for c in data[from..].chunks(100_000) {
            up.write(c).unwrap();
        }
    }
    up.finish().unwrap();
    let resent = s3_put_bytes_since(&emu, before);
    eprintln!("kill9_then_resume (bytes: {bytes}): {done_parts} parts done before kill -9, {resent} of {total} bytes sent after resume");
    assert_eq!(resent, total - done_bytes, "finished parts must not be sent again");
    assert_uploaded(&emu, &id, &path);
}

/// URLs live one second; one part's PUT is held 2.5 s before S3 sees it, so S3 answers 403 and the
/// engine registers the part again. (Two 403s in a row for one part are reported: see the next test.)
#[test]
fn expired_urls_are_registered_again() {
    let emu = start_emulator(&["--url-expiry", "1"]);
    let client = paired(&emu);
    let dir = tmp("expiry");
    let path = dir.join("rec.mp4");
    write_file(&path, 16 * MIB, 14);
    // the first part PUT is held 2.5 s before S3 sees it: its URL has expired by then
    emu.fault(json!({"target": "s3", "method": "PUT", "delay_ms": 2500, "count": 1}));
    let p = upload_file(client, &path, spec("expiry.mp4"), true, UploadOptions::default()).unwrap();
    assert_eq!(p.reregistrations, 1, "{p:?}");
    assert_uploaded(&emu, &asset_named(&emu, "expiry.mp4"), &path);
}

/// S3 rejects the same part twice in a row: reported as UrlExpired with the part's detail.
#[test]
fn second_403_is_reported() {
    let emu = start_emulator(&[]);
    let client = paired(&emu);
    let dir = tmp("403");
    let path = dir.join("rec.mp4");
    write_file(&path, 3 * MIB, 15);
    emu.fault(json!({"target": "s3", "method": "PUT", "status": 403, "count": 100,
        "body": "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"}));
    let up = Upload::start(client, spec("403.mp4"), Source::File(path.clone()), UploadOptions::default()).unwrap();
    let e = up.finish().unwrap_err();
    assert_eq!(e.kind, ErrorKind::UrlExpired, "{e}");
    let parts = up.parts();
    assert_eq!(parts[0].attempts, 2);
    assert_eq!(parts[0].last_error.as_ref().unwrap().kind, ErrorKind::UrlExpired);
}

/// The access token expires mid-upload: the next registration gets 401, refreshes once, goes on.
#[test]
fn unauthorized_mid_upload_refreshes() {
    let emu = start_emulator(&[]);
    let client = paired(&emu);
    let dir = tmp("401");
    let path = dir.join("rec.mp4");
    let mut f = File::create(&path).unwrap();
    let up = Upload::start(client, spec("401.mp4"), Source::File(path.clone()), UploadOptions::default()).unwrap();
    let mut seed = 3u64;
    let mut buf = vec![0u8; MIB as usize];
    for i in 0..30 {
        fill(&mut buf, &mut seed);
        f.write_all(&buf).unwrap();
        up.file_grew((i + 1) * MIB).unwrap();
        if i == 12 {
            std::thread::sleep(Duration::from_millis(300));
            let (_, r) = emu.post("/_emulator/tokens/expire", json!({}));
            assert!(r["expired"].as_u64().unwrap() >= 1, "{r}");
        }
    }
    up.finish().unwrap();
    let log = emu.requests();
    assert!(log.iter().any(|r| r["status"] == 401), "no 401 was seen");
    assert!(log.iter().any(|r| r["path"] == "/v2/auth/token" && r["status"] == 200));
    assert_uploaded(&emu, up.asset_id(), &path);
}

/// S3 resets the connection in the middle of parts: the part is sent again.
#[test]
fn connection_reset_mid_part() {
    let emu = start_emulator(&[]);
    let client = paired(&emu);
    let dir = tmp("reset");
    let path = dir.join("rec.mp4");
    write_file(&path, 21 * MIB + 5, 16);
    emu.fault(json!({"target": "s3", "method": "PUT", "reset_after_bytes": 1_000_000, "count": 3}));
    let opts = UploadOptions { retry_backoff: Duration::from_millis(100), ..Default::default() };
    let up = Upload::start(client, spec("reset.mp4"), Source::File(path.clone()), opts).unwrap();
    up.file_grew(21 * MIB + 5).unwrap();
    up.finish().unwrap();
    let resets = emu.requests().iter().filter(|r| r["fault"].as_str().is_some_and(|f| f.contains("reset"))).count();
    assert!(resets >= 1, "no reset happened");
    assert_uploaded(&emu, up.asset_id(), &path);
}

/// Twenty 429s in a row on part registration: backed off and retried, no loss.
#[test]
fn storm_of_429s() {
    let emu = start_emulator(&[]);
    let client = paired(&emu);
    let dir = tmp("429");
    let path = dir.join("rec.mp4");
    write_file(&path, 12 * MIB, 17);
    emu.fault(json!({"target": "api", "path_prefix": "/v2/devices/assets/", "status": 429, "count": 20,
        "headers": {"retry-after": "0"}}));
    let opts = UploadOptions { retry_backoff: Duration::from_millis(50), ..Default::default() };
    let up = Upload::start(client, spec("429.mp4"), Source::File(path.clone()), opts).unwrap();
    up.file_grew(12 * MIB).unwrap();
    up.finish().unwrap();
    let n429 = emu.requests().iter().filter(|r| r["status"] == 429).count();
    assert_eq!(n429, 20);
    assert_uploaded(&emu, up.asset_id(), &path);
}

/// Cancel from another thread in the middle: `finish` returns Cancelled and the asset is not
/// complete (nothing is silently half-done).
#[test]
fn cancel_mid_upload() {
    let emu = start_emulator(&[]);
    let client = paired(&emu);
    let dir = tmp("cancel");
    let path = dir.join("rec.mp4");
    write_file(&path, 40 * MIB, 18);
    let opts = UploadOptions { bandwidth_limit: 8 * MIB, ..Default::default() };
    let up = Arc::new(Upload::start(client, spec("cancel.mp4"), Source::File(path.clone()), opts).unwrap());
    up.file_grew(40 * MIB).unwrap();
    let u2 = up.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1200));
        u2.cancel();
    });
    let started = Instant::now();
    let e = up.finish().unwrap_err();
    t.join().unwrap();
    assert_eq!(e.kind, ErrorKind::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_ne!(emu.asset(up.asset_id())["state"], "uploaded");
}

/// A paused channel refuses the asset with 409: its own status, no retries.
#[test]
fn paused_channel() {
    let emu = start_emulator(&[]);
    let client = paired(&emu);
    emu.post("/_emulator/channels/0/pause", json!({}));
    let spec = AssetSpec { channel: Some(0), ..spec("paused.mp4") };
    let e = Upload::start(client, spec, Source::Bytes, UploadOptions::default()).err().unwrap();
    assert_eq!(e.kind, ErrorKind::ChannelPaused, "{e}");
}

/// The process died after the last part went out but before the state file said so: on resume the
/// server refuses to register that part again (the asset is complete). The status says so plainly.
#[test]
fn resume_after_the_asset_completed() {
    let emu = start_emulator(&[]);
    let client = paired(&emu);
    let dir = tmp("resume-done");
    let path = dir.join("rec.mp4");
    let state = dir.join("rec.state");
    write_file(&path, 7 * MIB, 21);
    let opts = UploadOptions { state_file: Some(state.clone()), ..Default::default() };
    let up = Upload::start(client.clone(), spec("done.mp4"), Source::File(path.clone()), opts).unwrap();
    up.finish().unwrap();
    let id = up.asset_id().to_string();
    drop(up);
    assert_uploaded(&emu, &id, &path);
    // as if the process had been killed just before saving the last part as done
    let mut saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let last = saved["parts"].as_array().unwrap().len() - 1;
    saved["parts"][last]["done"] = json!(false);
    std::fs::write(&state, serde_json::to_vec(&saved).unwrap()).unwrap();
    let up = Upload::resume(client, &state, UploadOptions::default()).unwrap();
    let e = up.finish().unwrap_err();
    eprintln!("resume_after_the_asset_completed: {:?}: {}", e.kind, e.message);
    assert_eq!(e.kind, ErrorKind::BadRequest);
    assert!(e.message.contains("may already be complete"), "{}", e.message);
    assert_uploaded(&emu, &id, &path);
}

/// ffmpeg writing a plain (non-fragmented) MP4 seeks back at the end to patch the `mdat` header that
/// part 1 already carried: the upload fails with a clear status instead of completing an asset that
/// differs from the file. (The demo's fragmented MP4 to a pipe is append-only.) Skipped without ffmpeg.
#[test]
fn plain_mp4_rewrite_is_detected() {
    if Command::new("ffmpeg").arg("-version").stdout(Stdio::null()).status().is_err() {
        eprintln!("skipped: no ffmpeg");
        return;
    }
    let emu = start_emulator(&[]);
    let client = paired(&emu);
    let dir = tmp("plain-mp4");
    let path = dir.join("plain.mp4");
    File::create(&path).unwrap();
    let opts = UploadOptions { watch_interval: Some(Duration::from_millis(50)), ..Default::default() };
    let up = Upload::start(client, spec("plain.mp4"), Source::File(path.clone()), opts).unwrap();
    let st = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-re", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=640x360:rate=30")
        .args([
            "-t",
            "4",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-b:v",
            "20M",
            "-minrate",
            "20M",
            "-maxrate",
            "20M",
        ])
        .args(["-bufsize", "10M", "-x264-params", "nal-hrd=cbr", "-f", "mp4"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(st.success());
    let t = Instant::now();
    while up.stats().parts_done < 1 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let e = up.finish().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Io, "{e}");
    assert!(e.message.contains("append-only"), "{}", e.message);
    assert_ne!(emu.asset(up.asset_id())["state"], "uploaded");
}

/// A rewrite of a part's header while that part is on the wire: the sample taken after the PUT would be
/// of the new bytes, so finish found nothing changed and the asset completed with bytes the file no
/// longer has. Now the upload fails (FIO_ERR_IO) as soon as that PUT ends. The asset may still complete
/// on the server (the final part ran in parallel): the error says so. (Found by a break-it review.)
#[test]
fn rewrite_while_the_part_is_sent_is_detected() {
    use std::os::unix::fs::FileExt;
    let emu = start_emulator(&[]);
    let client = paired(&emu);
    let dir = tmp("rewrite-in-flight");
    let path = dir.join("rw.mp4");
    write_file(&path, 6 * MIB, 31);
    // 2 MB/s: the 5 MiB first part is on the wire for about 2.5 s
    let opts = UploadOptions { bandwidth_limit: 2_000_000, ..Default::default() };
    let up = Upload::start(client, spec("rw.mp4"), Source::File(path.clone()), opts).unwrap();
    up.file_grew(6 * MIB).unwrap();
    let t = Instant::now();
    while up.stats().bytes_sent < MIB && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(up.stats().bytes_sent >= MIB && up.stats().parts_done == 0, "part 1 should be on the wire");
    File::options().write(true).open(&path).unwrap().write_all_at(&[0xAB; 16], 40).unwrap();
    let e = up.finish().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Io, "{e}");
    assert!(e.message.contains("append-only") && e.message.contains("differs from the file"), "{}", e.message);
    let _ = emu;
}
