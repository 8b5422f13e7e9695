//! Review findings (hostile review): the upload engine. Each test failed before its fix.
//!
//! - a pushed-bytes upload resumed with a smaller buffer budget than the saved plan's parts need
//!   blocked in `write` forever (no part could ever be cut, nothing was in flight to free memory);
//! - a cancelled upload whose worker was waiting out a `Retry-After` inside the part PUT's retry loop
//!   kept the `Upload` drop (`fio_upload_free`) blocked for the whole wait.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Emulator;
use frameio_c2c::upload::{AssetSpec, PlanConfig, Source, Upload, UploadOptions};
use frameio_c2c::ErrorKind;
use serde_json::json;

const MIB: u64 = 1024 * 1024;

fn spec(name: &str) -> AssetSpec {
    AssetSpec {
        name: Some(name.into()),
        filetype: "video/mp4".into(),
        offset: Some(0),
        ..Default::default()
    }
}

/// Resuming a pushed-bytes upload with a smaller buffer budget than its saved parts need must not
/// leave `write` blocked forever: either resume refuses, or the bytes go through.
#[test]
fn resume_with_a_smaller_budget_does_not_hang_write() {
    let emu = Emulator::start();
    let client = Arc::new(emu.paired_client());
    let dir = common::temp_dir("fio-review-budget");
    let state = dir.join("state.json");
    let plan = PlanConfig {
        first_part_size: 40 * MIB,
        ..Default::default()
    };
    let opts = UploadOptions {
        plan,
        buffer_budget: 100 * MIB,
        state_file: Some(state.clone()),
        ..Default::default()
    };
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
    assert!(
        !hung,
        "write/finish still blocked after 30 s (buffer budget smaller than a part)"
    );
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
    let up = Upload::start(
        client,
        spec("cancel.mp4"),
        Source::File(path),
        UploadOptions::default(),
    )
    .unwrap();
    up.file_grew(6 * MIB).unwrap(); // part 1 (5 MiB) goes out now
    let started = Instant::now();
    while !emu
        .requests()
        .iter()
        .any(|r| r["port"] == "s3" && r["status"] == 503)
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no PUT reached S3"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200)); // the worker is now waiting out Retry-After: 25
    up.cancel();
    let t = Instant::now();
    drop(up);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "dropping a cancelled upload took {:?}",
        t.elapsed()
    );
}
