//! Assets, real-time parts, basic uploads, completion (with gaps), comments, channels, S3 strictness.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const PART: usize = 5 * MIB;

#[test]
fn realtime_upload_is_byte_identical() {
    let emu = Emu::start(&["--auto-approve"]);
    let (tok, _) = emu.pair("rt-1");
    let src = data(2 * PART + 123_457, 1);
    let id = emu.create_realtime(&tok, "CLIP_0001.mp4");
    assert_eq!(emu.asset(&id)["state"], "created");

    // Part 1 then parts 2+3 (final) in one call; upload out of order.
    let u1 = emu.register_urls(&tok, &id, json!([{"number": 1, "size": PART, "is_final": false}]), None);
    let u23 = emu.register_urls(
        &tok,
        &id,
        json!([{"number": 2, "size": PART, "is_final": false}, {"number": 3, "size": 123_457, "is_final": true}]),
        Some(src.len() as u64),
    );
    assert_eq!(u23.len(), 2);
    assert!(u23[1].contains("partNumber=3"));
    assert!(u1[0].contains("X-Amz-SignedHeaders=host&"));
    assert!(u1[0].contains("X-Amz-Expires=86400"));
    assert_eq!(emu.put(&u23[1], &src[2 * PART..], &[]).status, 200);
    assert_eq!(emu.asset(&id)["state"], "uploading");
    assert_eq!(emu.put(&u1[0], &src[..PART], &[("content-type", "video/mp4")]).status, 200);
    assert_eq!(emu.asset(&id)["state"], "uploading");
    let r = emu.put(&u23[0], &src[PART..2 * PART], &[]);
    assert_eq!(r.status, 200, "{}", r.text());

    // The 200 of the last part means the object is assembled.
    let a = emu.asset(&id);
    assert_eq!(a["state"], "uploaded", "{a}");
    assert_eq!(a["sha256"], json!(sha256_hex(&src)));
    assert_eq!(a["filesize"], json!(src.len()));
    assert_eq!(a["name"], "CLIP_0001.mp4");
    assert_eq!(a["filetype"], "video/mp4");
    assert!(a["failure"].is_null());
    let parts = a["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 3);
    assert_eq!(
        parts[2],
        json!({"number": 3, "size": 123_457, "is_final": true, "uploaded": true, "uploaded_size": 123_457})
    );
    let content = emu.control("GET", &format!("/_emulator/assets/{id}/content"), None);
    assert_eq!(content.status, 200);
    assert!(content.body == src, "assembled object differs");

    // After completion: no more registrations, old URLs are dead.
    emu.register(&tok, &id, json!([{"number": 3, "size": 123_457, "is_final": true}]), Some(src.len() as u64))
        .detailed(400);
    assert_eq!(emu.put(&u1[0], &src[..PART], &[]).status, 403);
}

#[test]
fn completion_with_gaps_in_part_numbers() {
    let emu = Emu::start(&["--auto-approve"]);
    let (tok, _) = emu.pair("rt-gap");
    let src = data(2 * PART + 10, 2);
    let id = emu.create_realtime(&tok, "gap.mov");
    let u = emu.register_urls(
        &tok,
        &id,
        json!([{"number": 2, "size": PART, "is_final": false}, {"number": 5, "size": PART, "is_final": false}]),
        None,
    );
    let fin =
        emu.register_urls(&tok, &id, json!([{"number": 9, "size": 10, "is_final": true}]), Some(src.len() as u64));
    assert_eq!(emu.put(&u[0], &src[..PART], &[]).status, 200);
    assert_eq!(emu.put(&fin[0], &src[2 * PART..], &[]).status, 200);
    assert_eq!(emu.asset(&id)["state"], "uploading");
    assert_eq!(emu.put(&u[1], &src[PART..2 * PART], &[]).status, 200);
    // the list shows the hash too, before anyone asked for this asset alone
    let list = emu.control("GET", "/_emulator/assets", None).json();
    let listed = list.as_array().unwrap().iter().find(|a| a["id"] == json!(id)).unwrap().clone();
    assert_eq!(listed["sha256"], json!(sha256_hex(&src)), "{listed}");
    let a = emu.asset(&id);
    assert_eq!(a["state"], "uploaded", "{a}");
    assert_eq!(a["sha256"], json!(sha256_hex(&src)));
    assert!(emu.control("GET", &format!("/_emulator/assets/{id}/content"), None).body == src);
}

/// Parts are assembled while they arrive (so completion copies only what is left); whatever arrives
/// out of that order still ends as the parts in number order, with the newest bytes of each part.
#[test]
fn assembly_while_parts_arrive_keeps_number_order_and_newest_bytes() {
    let emu = Emu::start(&["--auto-approve"]);
    let (tok, _) = emu.pair("rt-asm");
    let src = data(3 * PART + 99, 4);
    let wrong = data(PART, 5);
    let settle = || std::thread::sleep(Duration::from_millis(300)); // let the background append run
    let id = emu.create_realtime(&tok, "asm.mov");
    let u1 = emu.register_urls(&tok, &id, json!([{"number": 1, "size": PART, "is_final": false}]), None);
    let u3 = emu.register_urls(&tok, &id, json!([{"number": 3, "size": PART, "is_final": false}]), None);
    // part 1 stored with the wrong bytes, appended, then stored again with the right ones
    assert_eq!(emu.put(&u1[0], &wrong, &[]).status, 200);
    settle();
    assert_eq!(emu.put(&u1[0], &src[..PART], &[]).status, 200);
    // part 3 follows part 1 while part 2 is not registered: appended
    assert_eq!(emu.put(&u3[0], &src[2 * PART..3 * PART], &[]).status, 200);
    settle();
    // part 2 registered late, below an assembled part; then the final part
    let u2 = emu.register_urls(&tok, &id, json!([{"number": 2, "size": PART, "is_final": false}]), None);
    let u4 = emu.register_urls(&tok, &id, json!([{"number": 4, "size": 99, "is_final": true}]), Some(src.len() as u64));
    assert_eq!(emu.put(&u4[0], &src[3 * PART..], &[]).status, 200);
    assert_eq!(emu.asset(&id)["state"], "uploading");
    assert_eq!(emu.put(&u2[0], &src[PART..2 * PART], &[]).status, 200);
    let a = emu.asset(&id);
    assert_eq!(a["state"], "uploaded", "{a}");
    assert_eq!(a["sha256"], json!(sha256_hex(&src)));
    assert!(emu.control("GET", &format!("/_emulator/assets/{id}/content"), None).body == src);

    // In order, with pauses: the common case, where completion only appends the final part.
    let dir = std::env::temp_dir().join(format!("fio-emu-asm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let emu = Emu::start(&["--auto-approve", "--data-dir", dir.to_str().unwrap()]);
    let (tok, _) = emu.pair("rt-asm2");
    let stored = |suffix: &str| {
        std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().ends_with(suffix))
    };
    let id = emu.create_realtime(&tok, "inorder.mov");
    let src = data(2 * PART + 5, 6);
    let u = emu.register_urls(
        &tok,
        &id,
        json!([{"number": 1, "size": PART, "is_final": false}, {"number": 2, "size": PART, "is_final": false}]),
        None,
    );
    assert_eq!(emu.put(&u[0], &src[..PART], &[]).status, 200);
    settle();
    assert_eq!(emu.put(&u[1], &src[PART..2 * PART], &[]).status, 200);
    settle();
    // both parts already moved into the object being assembled
    assert!(!stored(".part-1") && !stored(".part-2") && stored(".fio-assembly"));
    let f = emu.register_urls(&tok, &id, json!([{"number": 3, "size": 5, "is_final": true}]), Some(src.len() as u64));
    assert_eq!(emu.put(&f[0], &src[2 * PART..], &[]).status, 200);
    let a = emu.asset(&id);
    assert_eq!(a["state"], "uploaded", "{a}");
    assert_eq!(a["sha256"], json!(sha256_hex(&src)));
    assert!(!stored(".fio-assembly") && !stored(".part-3"));
    drop(emu);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A client that hangs up while its last PUT is completing the asset (here a long rebuild: the parts came
/// in reverse) must not leave the asset half-completed: completion runs to its end anyway.
#[test]
fn client_gone_during_completion_still_completes() {
    use std::io::Write;
    let emu = Emu::start(&["--auto-approve"]);
    let (tok, _) = emu.pair("rt-gone");
    const N: usize = 20;
    let src = data((N - 1) * PART + 1000, 7);
    let id = emu.create_realtime(&tok, "gone.mov");
    let parts: Vec<Value> =
        (1..=N).map(|n| json!({"number": n, "size": if n < N { PART } else { 1000 }, "is_final": n == N})).collect();
    let urls = emu.register_urls(&tok, &id, Value::Array(parts), Some(src.len() as u64));
    for n in (2..=N).rev() {
        let body = &src[(n - 1) * PART..((n - 1) * PART + if n < N { PART } else { 1000 })];
        assert_eq!(emu.put(&urls[n - 1], body, &[]).status, 200);
    }
    let (hostport, path) = split_url(&urls[0]);
    let mut s = std::net::TcpStream::connect(&hostport).unwrap();
    let head = format!("PUT {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: {PART}\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&src[..PART]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    drop(s); // gone before the 200: the emulator is still assembling ~100 MB
    let t = std::time::Instant::now();
    let a = loop {
        let a = emu.asset(&id);
        if a["state"] != "uploading" || t.elapsed() > Duration::from_secs(20) {
            break a;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(a["state"], "uploaded", "{a}");
    assert_eq!(a["sha256"], json!(sha256_hex(&src)));
}

#[test]
fn final_part_registered_last_completes_on_registration_and_empty_file() {
    let emu = Emu::start(&["--auto-approve"]);
    let (tok, _) = emu.pair("rt-late");
    let src = data(PART + 7, 3);
    let id = emu.create_realtime(&tok, "late.mp4");
    let u = emu.register_urls(
        &tok,
        &id,
        json!([{"number": 1, "size": PART, "is_final": false}, {"number": 2, "size": 7, "is_final": true}]),
        Some(src.len() as u64),
    );
    assert_eq!(emu.put(&u[0], &src[..PART], &[]).status, 200);
    assert_eq!(emu.put(&u[1], &src[PART..], &[]).status, 200);
    assert_eq!(emu.asset(&id)["sha256"], json!(sha256_hex(&src)));

    // Re-registering a part before completion gives a fresh, working URL.
    let id = emu.create_realtime(&tok, "again.mp4");
    let a = emu.register_urls(&tok, &id, json!([{"number": 1, "size": 3, "is_final": true}]), Some(3));
    std::thread::sleep(Duration::from_millis(1100)); // X-Amz-Date has second resolution
    let b = emu.register_urls(&tok, &id, json!([{"number": 1, "size": 3, "is_final": true}]), Some(3));
    assert_ne!(a[0], b[0]);
    assert_eq!(emu.put(&b[0], b"abc", &[]).status, 200);
    assert_eq!(emu.asset(&id)["sha256"], json!(sha256_hex(b"abc")));

    // An empty file: one empty final part, asset_filesize 0.
    let id = emu.create_realtime(&tok, "empty.wav");
    let u = emu.register_urls(&tok, &id, json!([{"number": 1, "size": 0, "is_final": true}]), Some(0));
    assert_eq!(emu.put(&u[0], b"", &[]).status, 200);
    let a = emu.asset(&id);
    assert_eq!(a["state"], "uploaded", "{a}");
    assert_eq!(a["sha256"], json!(sha256_hex(b"")));
}

#[test]
fn size_mismatch_marks_the_asset_failed() {
    let emu = Emu::start(&["--auto-approve"]);
    let (tok, _) = emu.pair("rt-bad");
    let id = emu.create_realtime(&tok, "bad.mp4");
    let u = emu.register_urls(&tok, &id, json!([{"number": 1, "size": 10, "is_final": true}]), Some(10));
    assert_eq!(emu.put(&u[0], b"only9byte", &[]).status, 200);
    let a = emu.asset(&id);
    assert_eq!(a["state"], "failed");
    assert!(a["failure"].as_str().unwrap().contains("part 1"), "{a}");
    assert!(a["sha256"].is_null());
    assert_eq!(emu.control("GET", &format!("/_emulator/assets/{id}/content"), None).status, 409);

    // Sum differs from asset_filesize.
    let id = emu.create_realtime(&tok, "sum.mp4");
    let u = emu.register_urls(&tok, &id, json!([{"number": 1, "size": 4, "is_final": true}]), Some(5));
    assert_eq!(emu.put(&u[0], b"abcd", &[]).status, 200);
    let a = emu.asset(&id);
    assert_eq!(a["state"], "failed");
    assert!(a["failure"].as_str().unwrap().contains("5"), "{a}");
}

#[test]
fn part_registration_rules() {
    let emu = Emu::start(&["--auto-approve"]);
    let (tok, _) = emu.pair("rt-rules");
    let id = emu.create_realtime(&tok, "rules.mp4");
    let bad = |parts: Value, fs: Option<u64>| emu.register(&tok, &id, parts, fs).detailed(400);
    bad(json!([{"number": 0, "size": PART, "is_final": false}]), None);
    bad(json!([{"number": 10001, "size": PART, "is_final": false}]), None);
    bad(json!([{"number": 1, "size": PART - 1, "is_final": false}]), None);
    bad(json!([{"number": 1, "size": 10, "is_final": true}]), None); // no asset_filesize
    bad(json!([{"number": 1, "size": 10, "is_final": true}]), Some(5 * 1024 * 1024 * 1024 * 1024 + 1));
    bad(json!([{"number": 1, "size": 10, "is_final": true}]), Some(0));
    bad(json!([{"number": 1, "size": PART}]), None); // is_final missing
    bad(json!([{"size": PART, "is_final": false}]), None);
    bad(json!([{"number": "1", "size": PART, "is_final": false}]), None);
    bad(json!([{"number": 1, "size": PART, "is_final": "no"}]), None);
    bad(json!([{"number": 1, "size": -1, "is_final": true}]), Some(1));
    bad(json!([]), None);
    bad(json!({"number": 1}), None);
    bad(json!([{"number": 1, "size": PART, "is_final": false}, {"number": 1, "size": PART, "is_final": false}]), None);
    bad(json!([{"number": 1, "size": 1, "is_final": true}, {"number": 2, "size": 1, "is_final": true}]), Some(2));
    let r = emu.post_json(&format!("/v2/devices/assets/{id}/realtime_upload/parts"), Some(&tok), &json!({}));
    r.detailed(400);
    let r = emu.req(
        "POST",
        &emu.url(&format!("/v2/devices/assets/{id}/realtime_upload/parts")),
        &[("authorization", &format!("Bearer {tok}")), ("content-type", "application/json")],
        Some(b"{\"parts\": [1,"),
    );
    r.detailed(400);

    // Legacy path works; then the re-registration rules of 14.2.
    let r = emu.post_json(
        &format!("/v2/assets/{id}/realtime_upload/parts"),
        Some(&tok),
        &json!({"parts": [{"number": 3, "size": PART, "is_final": false}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    bad(json!([{"number": 3, "size": PART + 1, "is_final": false}]), None);
    bad(json!([{"number": 3, "size": PART, "is_final": true}]), Some(PART as u64));
    assert_eq!(
        emu.register(&tok, &id, json!([{"number": 5, "size": 10, "is_final": true}]), Some(PART as u64 + 10)).status,
        200
    );
    bad(json!([{"number": 6, "size": PART, "is_final": false}]), None); // above the final part
    bad(json!([{"number": 4, "size": 1, "is_final": true}]), Some(1)); // a second final part
    assert_eq!(emu.register(&tok, &id, json!([{"number": 4, "size": PART, "is_final": false}]), None).status, 200);

    // Unknown asset, basic asset, another device's asset, no token.
    emu.register(
        &tok,
        "6f1c6a52-0000-4000-8000-000000000000",
        json!([{"number": 1, "size": PART, "is_final": false}]),
        None,
    )
    .detailed(404);
    emu.register(&tok, "not-a-uuid", json!([{"number": 1, "size": PART, "is_final": false}]), None).detailed(404);
    let basic = emu
        .post_json("/v2/devices/assets", Some(&tok), &json!({"name": "b.mp4", "filetype": "video/mp4", "filesize": 10}))
        .json();
    emu.register(&tok, basic["id"].as_str().unwrap(), json!([{"number": 1, "size": 10, "is_final": true}]), Some(10))
        .detailed(400);
    let (other, _) = emu.pair("rt-other");
    emu.register(&other, &id, json!([{"number": 1, "size": PART, "is_final": false}]), None).detailed(404);
    emu.post_json(&format!("/v2/devices/assets/{id}/realtime_upload/parts"), None, &json!({"parts": []})).detailed(401);
    // Form-encoded parts calls are refused.
    let r = emu.req(
        "POST",
        &emu.url(&format!("/v2/devices/assets/{id}/realtime_upload/parts")),
        &[("authorization", &format!("Bearer {tok}")), ("content-type", "application/x-www-form-urlencoded")],
        Some(b"parts=1"),
    );
    r.detailed(400);
}

#[test]
fn asset_create_validation_and_channels() {
    let emu = Emu::start(&["--auto-approve"]);
    let (tok, _) = emu.pair("create");
    let bad = |b: Value| emu.post_json("/v2/devices/assets", Some(&tok), &b).detailed(400);
    bad(json!({"filetype": "video/mp4", "filesize": 10})); // basic without name
    bad(json!({"name": "a.mp4", "filetype": "video/mp4"})); // basic without filesize
    bad(json!({"name": "a.mp4", "filesize": 10})); // no filetype
    bad(json!({"name": "a.mp4", "filetype": "video/mp4", "filesize": -1}));
    bad(json!({"name": "a.mp4", "filetype": "video/mp4", "filesize": "10"}));
    bad(json!({"name": "a.mp4", "filetype": "mp4", "filesize": 10}));
    bad(json!({"name": "a", "filetype": "video/mp4", "is_realtime_upload": true})); // no extension
    bad(json!({"filetype": "video/mp4", "is_realtime_upload": true}));
    bad(json!({"name": "a.mp4", "extension": ".mov", "filetype": "video/mp4", "is_realtime_upload": true}));
    bad(json!({"extension": "mov", "filetype": "video/mp4", "is_realtime_upload": true}));
    bad(json!({"name": "a.mp4", "filetype": "video/mp4", "is_realtime_upload": true, "filesize": 10}));
    bad(json!({"name": "a.mp4", "filetype": "video/mp4", "is_realtime_upload": "yes"}));
    bad(json!({"name": "a.mp4", "filetype": "video/mp4", "filesize": 10, "channel": -1}));
    bad(json!({"name": "a.mp4", "filetype": "video/mp4", "filesize": 10, "auto_version_id": "x"}));
    bad(json!([1, 2]));
    emu.post_json("/v2/devices/assets", Some(&tok), &json!({"name": "a.mp4", "filetype": "video/mp4", "filesize": 10, "auto_version_id": "6f1c6a52-0000-4000-8000-000000000000"}))
        .detailed(404);
    emu.post_json("/v2/devices/assets", None, &json!({"name": "a.mp4", "filetype": "video/mp4", "filesize": 10}))
        .detailed(401);
    let auth = format!("Bearer {tok}");
    // Multipart is not accepted for assets; malformed JSON is a 400.
    emu.req(
        "POST",
        &emu.url("/v2/devices/assets"),
        &[("authorization", &auth), ("content-type", "multipart/form-data; boundary=x")],
        Some(b"--x--"),
    )
    .detailed(400);
    emu.req(
        "POST",
        &emu.url("/v2/devices/assets"),
        &[("authorization", &auth), ("content-type", "application/json")],
        Some(b"{\"name\":"),
    )
    .detailed(400);
    // Real-time creation must be JSON; basic may be a urlencoded form (also on the legacy path).
    emu.req(
        "POST",
        &emu.url("/v2/devices/assets"),
        &[("authorization", &auth), ("content-type", "application/x-www-form-urlencoded")],
        Some(b"name=a.mp4&filetype=video%2Fmp4&is_realtime_upload=true"),
    )
    .detailed(400);
    let r = emu.req(
        "POST",
        &emu.url("/v2/assets"),
        &[("authorization", &auth), ("content-type", "application/x-www-form-urlencoded")],
        Some(b"name=C2C_TEST_CLIP.mp4&filetype=video%2Fmp4&filesize=21136250&offset=10"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["name"], "C2C_TEST_CLIP.mp4");
    assert_eq!(j["filesize"], json!(21_136_250));
    assert_eq!(j["upload_urls"].as_array().unwrap().len(), 1);

    // Extension-only real-time asset gets a default name, renamed by asset_name on a parts call.
    let r = emu.post_json(
        "/v2/devices/assets",
        Some(&tok),
        &json!({"extension": ".wav", "filetype": "audio/wav", "is_realtime_upload": true}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(r.json()["name"], "[new file].wav");
    let r = emu.post_json(
        &format!("/v2/devices/assets/{id}/realtime_upload/parts"),
        Some(&tok),
        &json!({"parts": [{"number": 1, "size": PART, "is_final": false}], "asset_name": "Take 3.wav"}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(emu.asset(&id)["name"], "Take 3.wav");

    // Channel pause: 409 for media created during the pause, also after resume (via offset).
    let create = |channel: i64, offset: i64| {
        emu.post_json("/v2/devices/assets", Some(&tok), &json!({"name": "p.mp4", "filetype": "video/mp4", "is_realtime_upload": true, "channel": channel, "offset": offset}))
    };
    assert_eq!(emu.control("POST", "/_emulator/channels/1/pause", None).status, 200);
    let r = create(1, 0);
    assert_eq!(r.detailed(409), "Channel Paused");
    assert_eq!(r.json()["errors"][0]["detail"], "The channel you're uploading from is currently paused.");
    assert_eq!(create(0, 0).status, 200); // other channels are unaffected
    assert_eq!(create(1, 3600).status, 200); // created an hour ago, before the pause
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(emu.control("POST", "/_emulator/channels/1/resume", None).status, 200);
    assert_eq!(create(1, 0).status, 200);
    assert_eq!(create(1, 1).detailed(409), "Channel Paused"); // created 1 s ago, inside the pause window
}

#[test]
fn basic_upload_and_comments() {
    let emu = Emu::start(&["--auto-approve", "--part-size", "5242880"]);
    let (tok, _) = emu.pair("basic");
    let src = data(3 * PART + 999, 4);
    let r = emu.post_json(
        "/v2/devices/assets",
        Some(&tok),
        &json!({"name": "basic.mp4", "filetype": "video/mp4", "filesize": src.len(), "offset": 10}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["_type"], "file");
    let id = j["id"].as_str().unwrap().to_string();
    let urls: Vec<String> =
        j["upload_urls"].as_array().unwrap().iter().map(|u| u.as_str().unwrap().to_string()).collect();
    assert_eq!(urls.len(), 3);
    // The SDK's chunking: ceil(filesize / n), last part to the end.
    let chunk = src.len().div_ceil(urls.len());
    for (i, u) in urls.iter().enumerate().rev() {
        let end = ((i + 1) * chunk).min(src.len());
        let r = emu.put(u, &src[i * chunk..end], &[("content-type", "video/mp4"), ("x-amz-acl", "private")]);
        // Host-only mode: an unsigned x-amz-acl is refused, as real S3 does.
        assert_eq!(r.status, 403, "{}", r.text());
        assert!(r.text().contains("HeadersNotSigned"));
        assert_eq!(emu.put(u, &src[i * chunk..end], &[("content-type", "video/mp4")]).status, 200);
    }
    let a = emu.asset(&id);
    assert_eq!(a["state"], "uploaded", "{a}");
    assert_eq!(a["sha256"], json!(sha256_hex(&src)));

    // Requesting a URL count with `parts`.
    let r = emu.post_json(
        "/v2/devices/assets",
        Some(&tok),
        &json!({"name": "p.mp4", "filetype": "video/mp4", "filesize": 3 * PART, "parts": 2}),
    );
    assert_eq!(r.json()["upload_urls"].as_array().unwrap().len(), 2);
    emu.post_json(
        "/v2/devices/assets",
        Some(&tok),
        &json!({"name": "p.mp4", "filetype": "video/mp4", "filesize": 3 * PART, "parts": 4}),
    )
    .detailed(400);

    // Comments.
    let r = emu.post_json(
        &format!("/v2/devices/assets/{id}/comments"),
        Some(&tok),
        &json!({"text": "Great take", "timestamp": 48}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let c = r.json();
    assert_eq!(c["text"], "Great take");
    assert_eq!(c["timestamp"], json!(48));
    assert_eq!(c["asset_id"], json!(id));
    assert!(c["id"].is_string());
    let r = emu.post_json(&format!("/v2/devices/assets/{id}/comments"), Some(&tok), &json!({"text": "global"}));
    assert!(r.json()["timestamp"].is_null());
    emu.post_json(&format!("/v2/devices/assets/{id}/comments"), Some(&tok), &json!({})).detailed(400);
    emu.post_json(&format!("/v2/devices/assets/{id}/comments"), Some(&tok), &json!({"text": "x", "timestamp": -1}))
        .detailed(400);
    emu.post_json(&format!("/v2/devices/assets/{id}/comments"), Some(&tok), &json!({"text": 5})).detailed(400);
    emu.post_json(
        "/v2/devices/assets/6f1c6a52-0000-4000-8000-000000000000/comments",
        Some(&tok),
        &json!({"text": "x"}),
    )
    .detailed(404);
    emu.post_json(&format!("/v2/devices/assets/{id}/comments"), None, &json!({"text": "x"})).detailed(401);
    assert_eq!(emu.asset(&id)["comments"], json!(2));
}

#[test]
fn s3_refuses_tampered_expired_chunked_and_unsigned() {
    let emu = Emu::start(&["--auto-approve", "--url-expiry", "2"]);
    let (tok, _) = emu.pair("s3");
    let id = emu.create_realtime(&tok, "s3.mp4");
    let u = emu.register_urls(&tok, &id, json!([{"number": 1, "size": 5, "is_final": true}]), Some(5));
    let url = &u[0];

    // Tampered signature, edited part number, anonymous PUT.
    let sig_at = url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let mut tampered = url.clone();
    let c = if &url[sig_at..sig_at + 1] == "0" { "1" } else { "0" };
    tampered.replace_range(sig_at..sig_at + 1, c);
    let r = emu.put(&tampered, b"hello", &[]);
    assert_eq!(r.status, 403);
    assert!(r.text().contains("SignatureDoesNotMatch"), "{}", r.text());
    assert_eq!(emu.put(&url.replace("partNumber=1", "partNumber=2"), b"hello", &[]).status, 403);
    assert_eq!(emu.put(url.split('?').next().unwrap(), b"hello", &[]).status, 403);

    // Chunked transfer encoding: refused before s3s sees it.
    let (hp, path) = split_url(url);
    let resp = raw(&hp, format!("PUT {path} HTTP/1.1\r\nHost: {hp}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n").as_bytes());
    assert_eq!(status_of(&resp), 501, "{resp}");
    assert!(resp.contains("NotImplemented") && resp.contains("Transfer-Encoding"), "{resp}");
    // No Content-Length at all.
    let resp = raw(&hp, format!("PUT {path} HTTP/1.1\r\nHost: {hp}\r\nConnection: close\r\n\r\n").as_bytes());
    assert_eq!(status_of(&resp), 411, "{resp}");
    assert!(resp.contains("MissingContentLength"), "{resp}");
    // Unsigned x-amz-* header in host-only mode.
    let r = emu.put(url, b"hello", &[("x-amz-acl", "private")]);
    assert_eq!(r.status, 403);
    assert!(r.text().contains("AccessDenied"));

    // The log shows what was refused, with secrets redacted.
    let log = emu.requests();
    let s3: Vec<&Value> = log.iter().filter(|e| e["port"] == "s3").collect();
    assert!(s3.iter().any(|e| e["status"] == 501 && e["transfer_encoding"] == "chunked"));
    assert!(s3.iter().any(|e| e["status"] == 411 && e["content_length"].is_null()));
    assert!(s3.iter().any(|e| e["status"] == 403 && e["signed_headers_ok"] == false));
    let text = serde_json::to_string(&log).unwrap();
    let sig = &url[sig_at..sig_at + 64];
    assert!(!text.contains(sig), "signature leaked into the log");
    assert!(!text.contains("FIOEMULATORACCESSKEY"), "credential leaked into the log");
    assert!(!text.contains(&tok), "token leaked into the log");
    assert!(!text.contains(SECRET), "client secret leaked into the log");

    // Still fine after all that; then let the URL expire.
    std::thread::sleep(Duration::from_millis(2100));
    let r = emu.put(url, b"hello", &[]);
    assert_eq!(r.status, 403, "{}", r.text());
    // Re-registering gives a fresh URL that works (14.2 recovery path).
    let u2 = emu.register_urls(&tok, &id, json!([{"number": 1, "size": 5, "is_final": true}]), Some(5));
    assert_eq!(emu.put(&u2[0], b"hello", &[]).status, 200);
    assert_eq!(emu.asset(&id)["state"], "uploaded");
    let ok = emu.requests().into_iter().filter(|e| e["port"] == "s3" && e["status"] == 200).count();
    assert_eq!(ok, 1);
}

#[test]
fn signed_header_mode_host_content_type_acl() {
    let emu = Emu::start(&["--auto-approve", "--signed-headers", "host;content-type;x-amz-acl"]);
    let (tok, _) = emu.pair("sh");
    let id = emu.create_realtime(&tok, "sh.mp4");
    let u = emu.register_urls(&tok, &id, json!([{"number": 1, "size": 5, "is_final": true}]), Some(5));
    assert!(u[0].contains("X-Amz-SignedHeaders=content-type%3Bhost%3Bx-amz-acl"), "{}", u[0]);
    // Missing headers, wrong values: 403.
    assert_eq!(emu.put(&u[0], b"hello", &[]).status, 403);
    assert_eq!(emu.put(&u[0], b"hello", &[("content-type", "video/mp4")]).status, 403);
    assert_eq!(emu.put(&u[0], b"hello", &[("content-type", "video/quicktime"), ("x-amz-acl", "private")]).status, 403);
    assert_eq!(emu.put(&u[0], b"hello", &[("content-type", "video/mp4"), ("x-amz-acl", "public-read")]).status, 403);
    // An extra unsigned x-amz-* header is still refused.
    assert_eq!(
        emu.put(&u[0], b"hello", &[("content-type", "video/mp4"), ("x-amz-acl", "private"), ("x-amz-meta-a", "b")])
            .status,
        403
    );
    let r = emu.put(&u[0], b"hello", &[("content-type", "video/mp4"), ("x-amz-acl", "private")]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(emu.asset(&id)["state"], "uploaded");
    let log = emu.requests();
    let puts: Vec<&Value> = log.iter().filter(|e| e["port"] == "s3").collect();
    assert_eq!(puts.last().unwrap()["signed_headers_ok"], true);
    assert_eq!(puts[0]["signed_headers_ok"], false);
}

#[test]
fn many_concurrent_clients() {
    let emu = Emu::start(&["--auto-approve", "--rate-limit", "0"]);
    std::thread::scope(|s| {
        for t in 0..12u64 {
            let emu = &emu;
            s.spawn(move || {
                let (tok, _) = emu.pair(&format!("conc-{t}"));
                let src = data(PART + 1000 + t as usize, 100 + t);
                let id = emu.create_realtime(&tok, "c.mp4");
                let u = emu.register_urls(
                    &tok,
                    &id,
                    json!([{"number": 1, "size": PART, "is_final": false}, {"number": 2, "size": 1000 + t, "is_final": true}]),
                    Some(src.len() as u64),
                );
                std::thread::scope(|s2| {
                    s2.spawn(|| assert_eq!(emu.put(&u[0], &src[..PART], &[]).status, 200));
                    s2.spawn(|| assert_eq!(emu.put(&u[1], &src[PART..], &[]).status, 200));
                });
                let a = emu.asset(&id);
                assert_eq!(a["state"], "uploaded", "{a}");
                assert_eq!(a["sha256"], json!(sha256_hex(&src)));
            });
        }
    });
    assert_eq!(emu.control("GET", "/_emulator/assets", None).json().as_array().unwrap().len(), 12);
}
