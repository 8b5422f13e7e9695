//! Review findings (hostile review): the upload engine. Each test failed before its fix.
//!
//! - a pushed-bytes upload resumed with a smaller buffer budget than the saved plan's parts need
//!   blocked in `write` forever (no part could ever be cut, nothing was in flight to free memory);
//! - a cancelled upload whose worker was waiting out a `Retry-After` inside the part PUT's retry loop
//!   kept the `Upload` drop (`fio_upload_free`) blocked for the whole wait;
//! - at finish the tail parts were queued before the state file was saved: the server could hear of
//!   the split tail and the final part while the state still said "recording".

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Emulator;
use frameio_c2c::upload::state::SavedUpload;
use frameio_c2c::upload::{AssetSpec, Body, PartReq, PlanConfig, Source, Transport, Upload, UploadOptions};
use frameio_c2c::ErrorKind;
use serde_json::json;

const MIB: u64 = 1024 * 1024;

fn spec(name: &str) -> AssetSpec {
    AssetSpec { name: Some(name.into()), filetype: "video/mp4".into(), offset: Some(0), ..Default::default() }
}

/// Resuming a pushed-bytes upload with a smaller buffer budget than its saved parts need must not
/// leave `write` blocked forever: either resume refuses, or the bytes go through.
#[test]
fn resume_with_a_smaller_budget_does_not_hang_write() {
    let emu = Emulator::start();
    let client = Arc::new(emu.paired_client());
    let dir = common::temp_dir("fio-review-budget");
    let state = dir.join("state.json");
    let plan = PlanConfig { first_part_size: 40 * MIB, ..Default::default() };
    let opts = UploadOptions { plan, buffer_budget: 100 * MIB, state_file: Some(state.clone()), ..Default::default() };
    let up = Upload::start(client.clone(), spec("budget.mp4"), Source::Bytes, opts).unwrap();
    up.write(&common::test_bytes(MIB as usize, 1)).unwrap();
    drop(up); // the process "died": the state file is kept

    // after the restart the firmware resumes with the default options (32 MiB budget)
    let up = match Upload::resume(client.clone(), &state, UploadOptions::default()) {
        Err(e) => {
            assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e}");
            assert!(e.message.contains("budget"), "{e}");
            return;
        }
        Ok(up) => Arc::new(up),
    };
    assert_eq!(up.resume_offset(), 0);
    let data = common::test_bytes((41 * MIB) as usize, 2);
    let done = Arc::new(AtomicBool::new(false));
    let (u2, d2) = (up.clone(), done.clone());
    let t = std::thread::spawn(move || {
        let r = u2.write(&data).and_then(|_| u2.finish().map(|_| ()));
        d2.store(true, Ordering::SeqCst);
        r
    });
    let started = Instant::now();
    while !done.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let hung = !done.load(Ordering::SeqCst);
    up.cancel();
    let r = t.join().unwrap();
    assert!(!hung, "write/finish still blocked after 30 s (buffer budget smaller than a part)");
    r.unwrap();
    assert_eq!(emu.asset(up.asset_id())["state"], "uploaded");
}
/// Cancel, then drop (fio_upload_free): returns promptly even while a worker waits out a long
/// `Retry-After` inside the part PUT's retry loop.
#[test]
fn drop_after_cancel_does_not_wait_out_a_retry_after() {
    let emu = Emulator::start();
    let client = Arc::new(emu.paired_client());
    let dir = common::temp_dir("fio-review-cancel");
    let path = dir.join("rec.mp4");
    std::fs::write(&path, common::test_bytes((6 * MIB) as usize, 3)).unwrap();
    emu.fault(json!({"target": "s3", "method": "PUT", "count": 100, "status": 503, "headers": {"retry-after": "25"},
        "body": "<Error><Code>ServiceUnavailable</Code><Message>busy</Message></Error>"}));
    let up = Upload::start(client, spec("cancel.mp4"), Source::File(path), UploadOptions::default()).unwrap();
    up.file_grew(6 * MIB).unwrap(); // part 1 (5 MiB) goes out now
    let started = Instant::now();
    while !emu.requests().iter().any(|r| r["port"] == "s3" && r["status"] == 503) {
        assert!(started.elapsed() < Duration::from_secs(20), "no PUT reached S3");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200)); // the worker is now waiting out Retry-After: 25
    up.cancel();
    let t = Instant::now();
    drop(up);
    assert!(t.elapsed() < Duration::from_secs(3), "dropping a cancelled upload took {:?}", t.elapsed());
}

/// Delegates to the client and checks, at each registration, that the state file already lists the
/// part (same number, size and is_final) and, for the final part, the recording's size.
struct StateChecking {
    client: Arc<frameio_c2c::Client>,
    state: std::path::PathBuf,
    violations: std::sync::Mutex<Vec<String>>,
    /// Only registrations after this is set are checked (parts cut while recording are planned the same
    /// way again on resume, so registering them early is harmless).
    finishing: AtomicBool,
}

impl Transport for StateChecking {
    fn create_realtime_asset(&self, spec: &AssetSpec) -> frameio_c2c::Result<String> {
        Transport::create_realtime_asset(&*self.client, spec)
    }
    fn create_basic_asset(&self, spec: &AssetSpec, filesize: u64) -> frameio_c2c::Result<(String, Vec<String>)> {
        Transport::create_basic_asset(&*self.client, spec, filesize)
    }
    fn register_parts(
        &self,
        asset_id: &str,
        parts: &[PartReq],
        asset_name: Option<&str>,
        asset_filesize: Option<u64>,
    ) -> frameio_c2c::Result<Vec<String>> {
        let saved = SavedUpload::load(&self.state).ok();
        for p in parts.iter().filter(|_| self.finishing.load(Ordering::SeqCst)) {
            let listed = saved.as_ref().is_some_and(|s| {
                s.parts.iter().any(|q| (q.number, q.size, q.is_final) == (p.number, p.size, p.is_final))
                    && (!p.is_final || s.final_size == asset_filesize)
            });
            if !listed {
                self.violations
                    .lock()
                    .unwrap()
                    .push(format!("part {} ({} bytes, final {})", p.number, p.size, p.is_final));
            }
        }
        Transport::register_parts(&*self.client, asset_id, parts, asset_name, asset_filesize)
    }
    fn put_part(
        &self,
        url: &str,
        body: Body<'_>,
        content_type: &str,
        hook: &dyn Fn(u64) -> bool,
    ) -> frameio_c2c::Result<()> {
        Transport::put_part(&*self.client, url, body, content_type, hook)
    }
}

/// The state file must list a part before the server hears of it. At finish the tail was queued
/// before the state was saved, so a worker could register the (split) tail and the final part while
/// the state file still said "recording": after a power cut right then, a resume with another
/// concurrency splits the tail differently and the server refuses the re-registration (400), so the
/// upload can never complete.
#[test]
fn finish_saves_the_tail_before_registering_it() {
    let emu = Emulator::start();
    let client = Arc::new(emu.paired_client());
    let dir = common::temp_dir("fio-review-tail");
    let path = dir.join("rec.mp4");
    let state = dir.join("state.json");
    std::fs::write(&path, common::test_bytes((60 * MIB) as usize, 4)).unwrap();
    // parts grow fast (divisor 1), so the 20 MiB tail is split into 4 parts
    let plan = PlanConfig { growth_divisor: 1, ..Default::default() };
    let t = Arc::new(StateChecking {
        client,
        state: state.clone(),
        violations: Default::default(),
        finishing: AtomicBool::new(false),
    });
    let opts = UploadOptions { plan, concurrency: 4, state_file: Some(state.clone()), ..Default::default() };
    let up = Upload::start(t.clone(), spec("tail.mp4"), Source::File(path), opts).unwrap();
    // while recording: parts 1-4 (5, 5, 10, 20 MiB) are cut and uploaded
    up.file_grew(60 * MIB).unwrap();
    let started = Instant::now();
    while up.stats().parts_done < 4 {
        assert!(started.elapsed() < Duration::from_secs(60), "parts 1-4 not uploaded");
        std::thread::sleep(Duration::from_millis(20));
    }
    // the recording ends: the 20 MiB tail becomes parts 5-8
    t.finishing.store(true, Ordering::SeqCst);
    let p = up.finish().unwrap();
    assert_eq!(p.parts_total, 8);
    assert_eq!(emu.asset(up.asset_id())["state"], "uploaded");
    let v = t.violations.lock().unwrap().clone();
    assert!(v.is_empty(), "registered before the state file listed them: {v:?}");
}

/// Cancel, then drop: returns promptly even while a worker waits out a long `Retry-After` inside the
/// part registration's retry loop.
#[test]
fn drop_after_cancel_does_not_wait_out_a_registration_retry_after() {
    let emu = Emulator::start();
    let client = Arc::new(emu.paired_client());
    let dir = common::temp_dir("fio-review-cancel-reg");
    let path = dir.join("rec.mp4");
    std::fs::write(&path, common::test_bytes((6 * MIB) as usize, 5)).unwrap();
    emu.fault(json!({"target": "api", "path_prefix": "/v2/devices/assets/", "method": "POST", "count": 100,
        "status": 503, "headers": {"retry-after": "25"}}));
    let up = Upload::start(client, spec("cancel-reg.mp4"), Source::File(path), UploadOptions::default()).unwrap();
    up.file_grew(6 * MIB).unwrap(); // part 1 (5 MiB) is registered now
    let started = Instant::now();
    while !emu.requests().iter().any(|r| r["port"] == "api" && r["status"] == 503) {
        assert!(started.elapsed() < Duration::from_secs(20), "no registration reached the API");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200)); // the worker now waits out Retry-After: 25
    up.cancel();
    let t = Instant::now();
    drop(up);
    assert!(t.elapsed() < Duration::from_secs(3), "dropping a cancelled upload took {:?}", t.elapsed());
}

/// A file source is resumed against the file named in the state. If that file is no longer the
/// recording the uploaded parts came from (the camera recorded a new clip under the same name after
/// the restart), resuming must not complete an asset that mixes the old parts with the new file.
#[test]
fn resume_against_a_replaced_file_does_not_mix_recordings() {
    let emu = Emulator::start();
    let client = Arc::new(emu.paired_client());
    let dir = common::temp_dir("fio-review-replaced");
    let path = dir.join("CLIP0001.MP4");
    let state = dir.join("state.json");
    std::fs::write(&path, common::test_bytes((12 * MIB) as usize, 6)).unwrap();
    let opts = UploadOptions { state_file: Some(state.clone()), ..Default::default() };
    let up = Upload::start(client.clone(), spec("clip.mp4"), Source::File(path.clone()), opts).unwrap();
    up.file_grew(12 * MIB).unwrap(); // parts 1 and 2 (5 MiB each) go out
    let started = Instant::now();
    while up.stats().parts_done < 2 {
        assert!(started.elapsed() < Duration::from_secs(60), "parts 1-2 not uploaded");
        std::thread::sleep(Duration::from_millis(20));
    }
    let id = up.asset_id().to_string();
    drop(up); // power cut

    // after the restart, a new recording under the same name
    let new = common::test_bytes((14 * MIB) as usize, 7);
    std::fs::write(&path, &new).unwrap();
    let r = Upload::resume(client, &state, UploadOptions::default()).and_then(|up| up.finish());
    match r {
        Err(e) => assert_eq!(e.kind, ErrorKind::Io, "{e}"),
        Ok(_) => {
            let a = emu.asset(&id);
            assert_eq!(
                a["sha256"].as_str().unwrap(),
                common::sha256_hex(&new),
                "the asset completed with parts of two different recordings"
            );
        }
    }
    assert_ne!(emu.asset(&id)["state"], "uploaded");
}
