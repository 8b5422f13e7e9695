//! Every client call against a freshly started fio-emulator, on its success and error paths.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{basic_chunks, sha256_hex, test_bytes, Emulator};
use frameio_c2c::{AssetParams, Client, ErrorKind, PartBody, PartSpec, Tokens, MIN_PART_SIZE};
use serde_json::json;

fn realtime_params(name: &str) -> AssetParams {
    AssetParams {
        name: Some(name.into()),
        filetype: "video/mp4".into(),
        realtime: true,
        offset: Some(0),
        ..Default::default()
    }
}

// ----- pairing -------------------------------------------------------------------------------------------

#[test]
fn pairing_start_poll_approve_wait() {
    let emu = Emulator::start();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen2 = seen.clone();
    let cfg = emu
        .config()
        .with_token_callback(move |t: &Tokens| seen2.lock().unwrap().push(t.access_token.expose().to_string()));
    let client = Client::new(cfg).unwrap();
    let p = client.pairing_start().unwrap();
    assert_eq!(p.user_code.len(), 6, "six-digit code: {}", p.user_code);
    assert!(p.user_code.bytes().all(|b| b.is_ascii_digit()));
    assert!(p.verification_uri.starts_with("http"));
    assert!(p.expires_in > Duration::from_secs(10));
    assert!(p.verification_uri_complete.is_none(), "URL pairing is off by default");
    std::thread::sleep(p.interval());
    let e = client.pairing_poll(&p).unwrap_err();
    assert_eq!(e.kind, ErrorKind::AuthorizationPending, "{e}");
    assert_eq!(e.http_status, Some(400));
    assert!(client.tokens().is_none());
    emu.approve(&p.user_code);
    let t = client.pairing_wait(&p).unwrap();
    assert!(!t.access_token.is_empty() && !t.refresh_token.is_empty());
    assert!(t.expires_at > frameio_c2c::unix_now());
    assert_eq!(client.tokens().unwrap(), t);
    assert_eq!(seen.lock().unwrap().as_slice(), &[t.access_token.expose().to_string()]);
    client.device_info().unwrap();
    // Every API call carried the client version.
    for r in emu.requests_to(None, "/v2/") {
        assert_eq!(r["client_version"], "1.2.3", "{r}");
    }
}

#[test]
fn pairing_url_mode_gives_complete_uri() {
    let emu = Emulator::start();
    let client = Client::new(emu.config().with_url_pairing(true)).unwrap();
    let p = client.pairing_start().unwrap();
    let u = p.verification_uri_complete.clone().expect("verification_uri_complete");
    assert!(u.contains(&p.user_code), "{u}");
}

#[test]
fn pairing_wrong_secret_is_invalid_client() {
    let emu = Emulator::start();
    let mut cfg = emu.config();
    cfg.client_secret = "wrong".into();
    let client = Client::new(cfg).unwrap();
    let e = client.pairing_start().unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidClient, "{e}");
    assert_eq!(e.http_status, Some(400));
    assert_eq!(e.server_code.as_deref(), Some("invalid_client"));
    assert!(!e.message.contains("wrong"), "secret in message: {}", e.message);
    // Not retried: a definite 4xx.
    assert_eq!(emu.requests_to(Some("POST"), "/v2/auth/device/code").len(), 1);
}

#[test]
fn pairing_slow_down_grows_interval() {
    let emu = Emulator::builder().args(&["--poll-interval", "2"]).start();
    let client = emu.client();
    let p = client.pairing_start().unwrap();
    let before = p.interval();
    let _ = client.pairing_poll(&p); // first poll right away
    let e = client.pairing_poll(&p).unwrap_err();
    assert_eq!(e.kind, ErrorKind::SlowDown, "{e}");
    assert_eq!(p.interval(), before + Duration::from_secs(5));
}

#[test]
fn pairing_wait_cancelled_from_another_thread() {
    let emu = Emulator::start();
    let client = emu.client();
    let p = Arc::new(client.pairing_start().unwrap());
    let p2 = p.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        p2.cancel();
    });
    let t0 = Instant::now();
    let e = client.pairing_wait(&p).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Cancelled);
    assert!(t0.elapsed() < Duration::from_secs(3));
    canceller.join().unwrap();
    assert!(client.tokens().is_none());
}

#[test]
fn pairing_wait_stops_at_expiry() {
    let emu = Emulator::builder().args(&["--code-ttl", "1.5"]).start();
    let client = emu.client();
    let p = client.pairing_start().unwrap();
    let t0 = Instant::now();
    let e = client.pairing_wait(&p).unwrap_err();
    assert_eq!(e.kind, ErrorKind::CodeExpired, "{e}");
    assert!(t0.elapsed() < Duration::from_secs(5));
    // Polling an expired code sends nothing.
    let n = emu.requests().len();
    assert_eq!(client.pairing_poll(&p).unwrap_err().kind, ErrorKind::CodeExpired);
    assert_eq!(emu.requests().len(), n);
}

#[test]
fn auto_approve_pairing() {
    let emu = Emulator::builder().auto_approve().start();
    let client = emu.client();
    let p = client.pairing_start().unwrap();
    client.pairing_wait(&p).unwrap();
    assert!(client.device_info().unwrap().id.is_some());
}

// ----- tokens --------------------------------------------------------------------------------------------

#[test]
fn calls_without_tokens_need_pairing_and_send_nothing() {
    let emu = Emulator::start();
    let client = emu.client();
    emu.clear_requests();
    assert_eq!(client.device_info().unwrap_err().kind, ErrorKind::PairingRequired);
    assert_eq!(client.heartbeat().unwrap_err().kind, ErrorKind::PairingRequired);
    assert_eq!(client.refresh().unwrap_err().kind, ErrorKind::PairingRequired);
    assert_eq!(client.revoke().unwrap_err().kind, ErrorKind::PairingRequired);
    assert_eq!(client.create_asset(&realtime_params("a.mp4")).unwrap_err().kind, ErrorKind::PairingRequired);
    assert!(emu.requests().is_empty());
}

#[test]
fn tokens_persist_across_clients() {
    let emu = Emulator::start();
    let a = emu.paired_client();
    let saved = a.tokens().unwrap();
    // A second client (after a "reboot") with the same id and the saved tokens.
    let b = Client::new(a.config().clone()).unwrap();
    b.set_tokens(saved.clone());
    assert_eq!(b.tokens().unwrap(), saved);
    b.device_info().unwrap();
    b.clear_tokens();
    assert!(b.tokens().is_none());
}

#[test]
fn refresh_rotates_tokens_and_reuse_needs_pairing() {
    let emu = Emulator::start();
    let seen: Arc<Mutex<Vec<Tokens>>> = Arc::default();
    let s2 = seen.clone();
    let client =
        Client::new(emu.config().with_token_callback(move |t: &Tokens| s2.lock().unwrap().push(t.clone()))).unwrap();
    emu.pair(&client);
    let old = client.tokens().unwrap();
    client.refresh().unwrap();
    let new = client.tokens().unwrap();
    assert_ne!(old.refresh_token, new.refresh_token);
    assert_eq!(seen.lock().unwrap().last().unwrap(), &new, "the callback saw the new pair");
    client.device_info().unwrap();
    // Reusing the consumed refresh token: pairing required, tokens cleared, no loop.
    client.set_tokens(old);
    emu.clear_requests();
    let e = client.refresh().unwrap_err();
    assert_eq!(e.kind, ErrorKind::PairingRequired, "{e}");
    assert_eq!(e.http_status, Some(400));
    assert!(client.tokens().is_none());
    assert_eq!(emu.requests().len(), 1);
}

#[test]
fn expired_access_token_is_refreshed_on_401() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    let before = client.tokens().unwrap();
    let (s, _) = emu.post("/_emulator/tokens/expire", json!({"refresh": false}));
    assert_eq!(s, 200);
    emu.clear_requests();
    client.device_info().unwrap();
    let log: Vec<(String, u64)> = emu
        .requests()
        .iter()
        .map(|r| (r["path"].as_str().unwrap().to_string(), r["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        log,
        vec![("/v2/devices/me".into(), 401), ("/v2/auth/token".into(), 200), ("/v2/devices/me".into(), 200)]
    );
    assert_ne!(client.tokens().unwrap(), before);
}

#[test]
fn token_near_expiry_is_refreshed_first() {
    // Access tokens live 2 s; the refresh margin (5 min) makes every call refresh first: no 401 seen.
    let emu = Emulator::builder().args(&["--access-token-ttl", "2"]).start();
    let client = emu.paired_client();
    emu.clear_requests();
    client.heartbeat().unwrap();
    let paths: Vec<String> = emu.requests().iter().map(|r| r["path"].as_str().unwrap().to_string()).collect();
    assert_eq!(paths, vec!["/v2/auth/token", "/v2/devices/heartbeat"]);
    assert!(emu.requests().iter().all(|r| r["status"] != 401));
}

#[test]
fn refresh_is_single_flight_across_threads() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    emu.post("/_emulator/tokens/expire", json!({}));
    emu.clear_requests();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let c = client.clone();
            std::thread::spawn(move || c.device_info().map(|_| ()))
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
    let refreshes = emu.requests_to(Some("POST"), "/v2/auth/token");
    assert_eq!(refreshes.len(), 1, "one refresh for 8 threads: {refreshes:?}");
}

#[test]
fn rejected_refresh_gives_pairing_required_without_loop() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    emu.post("/_emulator/tokens/expire", json!({"refresh": true}));
    emu.clear_requests();
    let e = client.device_info().unwrap_err();
    assert_eq!(e.kind, ErrorKind::PairingRequired, "{e}");
    assert_eq!(e.http_status, Some(401));
    let paths: Vec<String> = emu.requests().iter().map(|r| r["path"].as_str().unwrap().to_string()).collect();
    assert_eq!(paths, vec!["/v2/devices/me", "/v2/auth/token"]);
    // Later calls fail at once without a request.
    assert_eq!(client.heartbeat().unwrap_err().kind, ErrorKind::PairingRequired);
    assert_eq!(emu.requests().len(), 2);
}

#[test]
fn revoke_unpairs() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    let saved = client.tokens().unwrap();
    client.revoke().unwrap();
    assert!(client.tokens().is_none());
    assert_eq!(client.device_info().unwrap_err().kind, ErrorKind::PairingRequired);
    // The revoked pair is dead at the server too.
    client.set_tokens(saved);
    assert_eq!(client.device_info().unwrap_err().kind, ErrorKind::PairingRequired);
    let revokes = emu.requests_to(Some("POST"), "/v2/auth/revoke");
    assert_eq!(revokes.len(), 1);
    assert_eq!(revokes[0]["status"], 200);
}

// ----- device --------------------------------------------------------------------------------------------

#[test]
fn device_info_and_heartbeat() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    let info = client.device_info().unwrap();
    let v: serde_json::Value = serde_json::from_str(&info.json).unwrap();
    assert_eq!(v["_type"], "project_device");
    assert!(info.id.is_some() && info.project_id.is_some() && info.project_name.is_some());
    client.heartbeat().unwrap();
    let hb = emu.requests_to(Some("POST"), "/v2/devices/heartbeat");
    assert_eq!(hb.len(), 1);
    assert_eq!(hb[0]["status"], 204);
}

#[test]
fn device_info_with_bad_token_is_pairing_required() {
    let emu = Emulator::start();
    let client = emu.client();
    client.set_tokens(Tokens::new("bogus-access", "bogus-refresh", 0));
    let e = client.device_info().unwrap_err();
    assert_eq!(e.kind, ErrorKind::PairingRequired, "{e}");
    assert!(!e.message.contains("bogus"), "token leaked into message: {}", e.message);
}

#[test]
fn background_heartbeat_runs_and_stops() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    client.start_heartbeat_unclamped(Duration::from_millis(150)).unwrap();
    assert!(client.heartbeat_running());
    std::thread::sleep(Duration::from_millis(1200));
    client.stop_heartbeat();
    assert!(!client.heartbeat_running());
    let n = emu.requests_to(Some("POST"), "/v2/devices/heartbeat").len();
    assert!(n >= 3, "{n} heartbeats");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(emu.requests_to(Some("POST"), "/v2/devices/heartbeat").len(), n, "stopped");
    // Dropping the last clone stops it too (and does not hang).
    client.start_heartbeat(Duration::from_secs(1)).unwrap(); // clamped to 60 s
    drop(client);
}

// ----- assets and comments ---------------------------------------------------------------------------------

#[test]
fn basic_upload_from_file_matches_sha256() {
    let emu = Emulator::builder().args(&["--part-size", "6291456"]).start();
    let client = emu.paired_client();
    let data = test_bytes(20 * 1024 * 1024 + 12345, 1);
    let dir = common::temp_dir("fio-basic");
    let path = dir.join("clip.mp4");
    std::fs::write(&path, &data).unwrap();
    let asset = client
        .create_asset(&AssetParams {
            name: Some("clip.mp4".into()),
            filetype: "video/mp4".into(),
            filesize: Some(data.len() as u64),
            offset: Some(10),
            ..Default::default()
        })
        .unwrap();
    assert!(!asset.realtime);
    assert!(asset.upload_urls.len() >= 2, "{} urls", asset.upload_urls.len());
    let file = std::fs::File::open(&path).unwrap();
    for (url, (off, len)) in asset.upload_urls.iter().zip(basic_chunks(data.len() as u64, asset.upload_urls.len())) {
        client.put_part(url, PartBody::File { file: &file, offset: off, len }, "video/mp4", None).unwrap();
    }
    let st = emu.asset(&asset.id);
    assert_eq!(st["state"], "uploaded", "{st}");
    assert_eq!(st["sha256"], sha256_hex(&data));
    // Part PUTs: explicit Content-Length, never chunked, only signed headers, no bearer.
    for r in emu.requests().iter().filter(|r| r["port"] == "s3") {
        assert!(r["content_length"].as_u64().is_some(), "{r}");
        assert!(r["transfer_encoding"].is_null(), "{r}");
        assert_eq!(r["signed_headers_ok"], true, "{r}");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn realtime_upload_two_parts_matches_sha256() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    let data = test_bytes(MIN_PART_SIZE as usize + 777_777, 2);
    let asset = client.create_asset(&realtime_params("A001.mp4")).unwrap();
    assert!(asset.realtime && asset.upload_urls.is_empty());
    let first = MIN_PART_SIZE;
    let urls =
        client.register_parts(&asset.id, &[PartSpec { number: 1, size: first, is_final: false }], None, None).unwrap();
    let progressed = std::sync::atomic::AtomicU64::new(0);
    let hook = |n: u64| {
        progressed.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        true
    };
    client.put_part(&urls[0], PartBody::Bytes(&data[..first as usize]), "video/mp4", Some(&hook)).unwrap();
    assert_eq!(progressed.load(std::sync::atomic::Ordering::Relaxed), first);
    assert_eq!(emu.asset(&asset.id)["state"], "uploading");
    let rest = data.len() as u64 - first;
    let urls = client
        .register_parts(&asset.id, &[PartSpec { number: 2, size: rest, is_final: true }], None, Some(data.len() as u64))
        .unwrap();
    client.put_part(&urls[0], PartBody::Bytes(&data[first as usize..]), "video/mp4", None).unwrap();
    let st = emu.asset(&asset.id);
    assert_eq!(st["state"], "uploaded", "{st}");
    assert_eq!(st["sha256"], sha256_hex(&data));
    assert_eq!(emu.asset_content(&asset.id), data);
}

#[test]
fn realtime_extension_only_then_renamed_and_signed_headers_full() {
    let emu = Emulator::builder().args(&["--signed-headers", "full"]).start();
    let client = emu.paired_client();
    let asset = client
        .create_asset(&AssetParams {
            extension: Some(".mov".into()),
            filetype: "video/quicktime".into(),
            realtime: true,
            ..Default::default()
        })
        .unwrap();
    assert!(asset.name.ends_with(".mov"), "{}", asset.name);
    let data = test_bytes(1000, 3);
    let urls = client
        .register_parts(&asset.id, &[PartSpec { number: 1, size: 1000, is_final: true }], Some("B002.mov"), Some(1000))
        .unwrap();
    assert!(urls[0].contains("content-type"), "full signing mode");
    client.put_part(&urls[0], PartBody::Bytes(&data), "video/quicktime", None).unwrap();
    let st = emu.asset(&asset.id);
    assert_eq!(st["state"], "uploaded", "{st}");
    assert_eq!(st["name"], "B002.mov");
    // Wrong content type with a URL that signs it: S3 403 -> UrlExpired, not retried.
    let asset = client.create_asset(&realtime_params("C.mp4")).unwrap();
    let urls =
        client.register_parts(&asset.id, &[PartSpec { number: 1, size: 10, is_final: true }], None, Some(10)).unwrap();
    emu.clear_requests();
    let e = client.put_part(&urls[0], PartBody::Bytes(&data[..10]), "video/quicktime", None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::UrlExpired, "{e}");
    assert_eq!(emu.requests().len(), 1);
}

#[test]
fn empty_realtime_file() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    let asset = client.create_asset(&realtime_params("empty.mp4")).unwrap();
    let urls =
        client.register_parts(&asset.id, &[PartSpec { number: 1, size: 0, is_final: true }], None, Some(0)).unwrap();
    client.put_part(&urls[0], PartBody::Bytes(&[]), "video/mp4", None).unwrap();
    assert_eq!(emu.asset(&asset.id)["state"], "uploaded");
}

#[test]
fn reregistering_after_url_rejected() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    let asset = client.create_asset(&realtime_params("r.mp4")).unwrap();
    let part = [PartSpec { number: 1, size: 100, is_final: true }];
    let urls = client.register_parts(&asset.id, &part, None, Some(100)).unwrap();
    let i = urls[0].find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let flipped = if &urls[0][i..i + 1] == "0" { "1" } else { "0" };
    let tampered = format!("{}{}{}", &urls[0][..i], flipped, &urls[0][i + 1..]);
    let data = test_bytes(100, 4);
    let e = client.put_part(&tampered, PartBody::Bytes(&data), "video/mp4", None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::UrlExpired);
    assert_eq!(e.http_status, Some(403));
    assert!(!e.message.contains("X-Amz-Signature"), "{}", e.message);
    let fresh = client.register_parts(&asset.id, &part, None, Some(100)).unwrap();
    client.put_part(&fresh[0], PartBody::Bytes(&data), "video/mp4", None).unwrap();
    assert_eq!(emu.asset(&asset.id)["state"], "uploaded");
}

/// A PUT to a URL this client registered in the first half of its life goes without
/// `Expect: 100-continue` (a round trip saved per part); one that may be near expiry, or that the
/// client did not register, keeps it.
#[test]
fn expect_continue_only_where_the_url_may_have_expired() {
    let put_expect = |emu: &Emulator, client: &Client, tamper: bool| -> Option<String> {
        let asset = client.create_asset(&realtime_params("e.mp4")).unwrap();
        let urls = client
            .register_parts(&asset.id, &[PartSpec { number: 1, size: 5, is_final: true }], None, Some(5))
            .unwrap();
        // a URL the client never saw: the same with one more (ignored) query parameter
        let url = if tamper { format!("{}&x-id=UploadPart", urls[0]) } else { urls[0].clone() };
        emu.clear_requests();
        let _ = client.put_part(&url, PartBody::Bytes(b"hello"), "video/mp4", None);
        let puts = emu.requests_to(Some("PUT"), "/");
        assert_eq!(puts.len(), 1, "{puts:?}");
        puts[0]["expect"].as_str().map(str::to_string)
    };
    let emu = Emulator::start(); // URLs live 24 h
    let client = emu.paired_client();
    assert_eq!(put_expect(&emu, &client, false), None);
    assert_eq!(put_expect(&emu, &client, true).as_deref(), Some("100-continue"));
    let mut cfg = emu.config();
    cfg.expect_continue = false;
    let plain = Client::new(cfg).unwrap();
    emu.pair(&plain);
    assert_eq!(put_expect(&emu, &plain, true), None, "expect_continue off: never");
    let emu = Emulator::builder().args(&["--url-expiry", "60"]).start();
    let client = emu.paired_client();
    assert_eq!(put_expect(&emu, &client, false).as_deref(), Some("100-continue"));
}

#[test]
fn expired_url_is_url_expired() {
    let emu = Emulator::builder().args(&["--url-expiry", "1"]).start();
    let client = emu.paired_client();
    let asset = client.create_asset(&realtime_params("x.mp4")).unwrap();
    let urls =
        client.register_parts(&asset.id, &[PartSpec { number: 1, size: 5, is_final: true }], None, Some(5)).unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    let e = client.put_part(&urls[0], PartBody::Bytes(b"hello"), "video/mp4", None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::UrlExpired, "{e}");
}

#[test]
fn register_parts_server_errors() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    let e = client
        .register_parts(
            "00000000-0000-0000-0000-000000000000",
            &[PartSpec { number: 1, size: 1, is_final: true }],
            None,
            Some(1),
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    let asset = client.create_asset(&realtime_params("y.mp4")).unwrap();
    client
        .register_parts(&asset.id, &[PartSpec { number: 1, size: MIN_PART_SIZE, is_final: false }], None, None)
        .unwrap();
    // Same number, different size: 400 from the server (detailed body), not retried.
    emu.clear_requests();
    let e = client
        .register_parts(&asset.id, &[PartSpec { number: 1, size: MIN_PART_SIZE + 1, is_final: false }], None, None)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadRequest, "{e}");
    assert_eq!(emu.requests().len(), 1);
}

#[test]
fn channel_paused_is_409_and_not_retried() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    let (s, _) = emu.post("/_emulator/channels/0/pause", json!({}));
    assert_eq!(s, 200);
    emu.clear_requests();
    let e = client.create_asset(&AssetParams { channel: Some(0), ..realtime_params("p.mp4") }).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ChannelPaused, "{e}");
    assert_eq!(e.http_status, Some(409));
    assert!(!e.is_retryable());
    assert_eq!(emu.requests().len(), 1);
    assert_eq!(client.device_info().unwrap().status.as_deref(), Some("paused"));
}

#[test]
fn comments() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    let asset = client.create_asset(&realtime_params("c.mp4")).unwrap();
    let c = client.create_comment(&asset.id, "Good take", Some(48.0)).unwrap();
    assert!(!c.id.is_empty());
    assert_eq!(c.text, "Good take");
    client.create_comment(&asset.id, "whole asset", None).unwrap();
    let e = client.create_comment("11111111-2222-3333-4444-555555555555", "x", None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
}

// ----- bad arguments never reach the network ----------------------------------------------------------------

#[test]
fn bad_arguments_send_no_request() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    let asset = client.create_asset(&realtime_params("bad.mp4")).unwrap();
    emu.clear_requests();
    let id = asset.id.as_str();
    let p = |number, size, is_final| PartSpec { number, size, is_final };
    let cases: Vec<(&str, frameio_c2c::Result<Vec<String>>, &str)> = vec![
        ("part 0", client.register_parts(id, &[p(0, MIN_PART_SIZE, false)], None, None), "out of range"),
        ("part 10001", client.register_parts(id, &[p(10_001, MIN_PART_SIZE, false)], None, None), "out of range"),
        ("small non-final", client.register_parts(id, &[p(1, MIN_PART_SIZE - 1, false)], None, None), "5 MiB"),
        (
            "final without filesize",
            client.register_parts(id, &[p(1, 10, true)], None, None),
            "asset_filesize is required",
        ),
        (
            "over 5 TiB",
            client.register_parts(id, &[p(1, 10, true)], None, Some(frameio_c2c::MAX_FILE_SIZE + 1)),
            "5 TiB",
        ),
        ("no parts", client.register_parts(id, &[], None, None), "no parts"),
        ("bad id", client.register_parts("../etc", &[p(1, 10, true)], None, Some(10)), "asset_id"),
    ];
    for (name, r, needle) in cases {
        let e = r.unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument, "{name}: {e}");
        assert!(e.message.contains(needle), "{name}: {}", e.message);
    }
    assert_eq!(client.create_asset(&realtime_params("noext")).unwrap_err().kind, ErrorKind::InvalidArgument);
    assert_eq!(
        client
            .create_asset(&AssetParams {
                name: Some("b.mp4".into()),
                filetype: "video/mp4".into(),
                ..Default::default()
            })
            .unwrap_err()
            .kind,
        ErrorKind::InvalidArgument,
        "basic without filesize"
    );
    assert_eq!(client.create_comment(id, "", None).unwrap_err().kind, ErrorKind::InvalidArgument);
    assert_eq!(client.create_comment(id, "x", Some(f64::NAN)).unwrap_err().kind, ErrorKind::InvalidArgument);
    assert_eq!(
        client.put_part("ftp://x/y", PartBody::Bytes(b"x"), "video/mp4", None).unwrap_err().kind,
        ErrorKind::InvalidArgument
    );
    assert!(emu.requests().is_empty(), "requests were sent: {:?}", emu.requests());
    // HTTPS-only clients refuse plain-http upload URLs locally.
    let strict = Client::new(emu.config().with_allow_http(false).with_base_url("https://127.0.0.1:1")).unwrap();
    assert_eq!(
        strict.put_part(&format!("{}/c2c/x", emu.s3), PartBody::Bytes(b"x"), "video/mp4", None).unwrap_err().kind,
        ErrorKind::InvalidArgument
    );
    assert!(emu.requests().is_empty());
}

#[test]
fn short_file_is_io_error_not_a_hang() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    let asset = client.create_asset(&realtime_params("s.mp4")).unwrap();
    let urls = client
        .register_parts(&asset.id, &[PartSpec { number: 1, size: 1000, is_final: true }], None, Some(1000))
        .unwrap();
    let dir = common::temp_dir("fio-short");
    std::fs::write(dir.join("f"), test_bytes(500, 5)).unwrap();
    let f = std::fs::File::open(dir.join("f")).unwrap();
    let t0 = Instant::now();
    let e =
        client.put_part(&urls[0], PartBody::File { file: &f, offset: 0, len: 1000 }, "video/mp4", None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Io, "{e}");
    assert!(t0.elapsed() < Duration::from_secs(5));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn progress_callback_cancels() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    let asset = client.create_asset(&realtime_params("k.mp4")).unwrap();
    let size = 3 * 1024 * 1024;
    let urls =
        client.register_parts(&asset.id, &[PartSpec { number: 1, size, is_final: true }], None, Some(size)).unwrap();
    let data = test_bytes(size as usize, 6);
    let sent = std::sync::atomic::AtomicU64::new(0);
    let hook = |n: u64| sent.fetch_add(n, std::sync::atomic::Ordering::Relaxed) < 1024 * 1024;
    let e = client.put_part(&urls[0], PartBody::Bytes(&data), "video/mp4", Some(&hook)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Cancelled);
    assert_ne!(emu.asset(&asset.id)["state"], "uploaded");
}

#[test]
fn client_is_shared_between_threads_for_parallel_parts() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    let asset = client.create_asset(&realtime_params("par.mp4")).unwrap();
    let part = MIN_PART_SIZE as usize;
    let data = Arc::new(test_bytes(part * 3 + 100, 7));
    let specs = vec![
        PartSpec { number: 1, size: part as u64, is_final: false },
        PartSpec { number: 2, size: part as u64, is_final: false },
        PartSpec { number: 3, size: part as u64, is_final: false },
        PartSpec { number: 4, size: 100, is_final: true },
    ];
    let urls = client.register_parts(&asset.id, &specs, None, Some(data.len() as u64)).unwrap();
    let handles: Vec<_> = urls
        .into_iter()
        .enumerate()
        .map(|(i, url)| {
            let (c, d) = (client.clone(), data.clone());
            std::thread::spawn(move || {
                let start = i * part;
                let end = if i == 3 { d.len() } else { start + part };
                c.put_part(&url, PartBody::Bytes(&d[start..end]), "video/mp4", None)
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
    let st = emu.asset(&asset.id);
    assert_eq!(st["state"], "uploaded", "{st}");
    assert_eq!(st["sha256"], sha256_hex(&data));
}

// ----- TLS ------------------------------------------------------------------------------------------------

#[test]
fn tls_with_extra_ca_and_without() {
    let emu = Emulator::builder().arg("--tls").start();
    assert!(emu.api.starts_with("https://"));
    let client = Client::new(emu.config().with_allow_http(false)).unwrap();
    emu.pair(&client);
    let asset = client.create_asset(&realtime_params("t.mp4")).unwrap();
    let urls =
        client.register_parts(&asset.id, &[PartSpec { number: 1, size: 5, is_final: true }], None, Some(5)).unwrap();
    assert!(urls[0].starts_with("https://"));
    client.put_part(&urls[0], PartBody::Bytes(b"hello"), "video/mp4", None).unwrap();
    assert_eq!(emu.asset(&asset.id)["state"], "uploaded");
    // Without the extra CA the Mozilla roots do not trust the emulator.
    let mut cfg = emu.config().with_allow_http(false);
    cfg.extra_ca_pem = None;
    let untrusting = Client::new(cfg).unwrap();
    let e = untrusting.pairing_start().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tls, "{e}");
}

// ----- logging never shows secrets ------------------------------------------------------------------------

#[test]
fn logs_carry_no_secrets() {
    let emu = Emulator::start();
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let l2 = lines.clone();
    let client = Client::new(
        emu.config().with_log(frameio_c2c::LogLevel::Trace, move |_, m| l2.lock().unwrap().push(m.to_string())),
    )
    .unwrap();
    emu.pair(&client);
    client.refresh().unwrap();
    let asset = client.create_asset(&realtime_params("l.mp4")).unwrap();
    let urls =
        client.register_parts(&asset.id, &[PartSpec { number: 1, size: 5, is_final: true }], None, Some(5)).unwrap();
    emu.fault(json!({"target": "s3", "method": "PUT", "count": 1, "status": 500, "body": "<Error><Code>InternalError</Code></Error>"}));
    client.put_part(&urls[0], PartBody::Bytes(b"hello"), "video/mp4", None).unwrap();
    let t = client.tokens().unwrap();
    let lines = lines.lock().unwrap();
    assert!(lines.len() > 3);
    for l in lines.iter() {
        assert!(!l.contains(t.access_token.expose()) && !l.contains(t.refresh_token.expose()), "{l}");
        assert!(!l.contains(common::SECRET), "{l}");
        assert!(!l.contains("X-Amz-Signature") && !l.contains("X-Amz-Credential"), "{l}");
    }
    assert!(lines.iter().any(|l| l.contains("retrying")), "a retry was logged: {lines:?}");
}

// ----- proxy ----------------------------------------------------------------------------------------------

/// A minimal HTTP CONNECT proxy on a loopback port; counts the tunnels it opened.
fn start_connect_proxy() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c2 = count.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let c3 = c2.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut first = String::new();
                reader.read_line(&mut first).unwrap();
                loop {
                    let mut l = String::new();
                    if reader.read_line(&mut l).unwrap() == 0 || l == "\r\n" {
                        break;
                    }
                }
                let target = first.split_whitespace().nth(1).unwrap_or("").to_string();
                assert!(first.starts_with("CONNECT "), "{first}");
                let Ok(upstream) = TcpStream::connect(&target) else {
                    return;
                };
                c3.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").unwrap();
                let mut up_r = upstream.try_clone().unwrap();
                let mut down_w = conn.try_clone().unwrap();
                let t = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut up_r, &mut down_w);
                    let _ = down_w.shutdown(std::net::Shutdown::Both);
                });
                let mut up_w = upstream;
                let _ = std::io::copy(&mut reader, &mut up_w);
                let _ = up_w.shutdown(std::net::Shutdown::Both);
                let _ = t.join();
            });
        }
    });
    (format!("http://{addr}"), count)
}

#[test]
fn calls_go_through_a_configured_proxy() {
    let emu = Emulator::start();
    let (proxy, tunnels) = start_connect_proxy();
    let client = Client::new(emu.config().with_proxy(proxy)).unwrap();
    emu.pair(&client);
    let asset = client.create_asset(&realtime_params("px.mp4")).unwrap();
    let urls =
        client.register_parts(&asset.id, &[PartSpec { number: 1, size: 5, is_final: true }], None, Some(5)).unwrap();
    client.put_part(&urls[0], PartBody::Bytes(b"hello"), "video/mp4", None).unwrap();
    assert_eq!(emu.asset(&asset.id)["state"], "uploaded");
    assert!(tunnels.load(std::sync::atomic::Ordering::SeqCst) >= 2, "API and S3 went through the proxy");
}

#[test]
fn revoke_failure_keeps_tokens() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    emu.fault(json!({"target": "api", "path_prefix": "/v2/auth/revoke", "count": 100, "status": 500}));
    let e = client.revoke().unwrap_err();
    assert_eq!(e.kind, ErrorKind::ServerError);
    assert!(client.tokens().is_some(), "tokens kept so the revoke can be tried again");
    emu.clear_faults();
    client.revoke().unwrap();
    assert!(client.tokens().is_none());
}
