//! Retry classes of c2c-api.md 14.8 and error-body handling, with faults scripted in the emulator.

mod common;

use std::time::{Duration, Instant};

use common::{sha256_hex, test_bytes, Emulator};
use frameio_c2c::{AssetParams, Client, ErrorKind, PartBody, PartSpec, RetryPolicy, Timeouts};
use serde_json::{json, Value};

fn rt_params(name: &str) -> AssetParams {
    AssetParams {
        name: Some(name.into()),
        filetype: "video/mp4".into(),
        realtime: true,
        offset: Some(0),
        ..Default::default()
    }
}

fn statuses(reqs: &[Value]) -> Vec<u64> {
    reqs.iter().map(|r| r["status"].as_u64().unwrap_or(0)).collect()
}

fn times(reqs: &[Value]) -> Vec<u64> {
    reqs.iter().map(|r| r["time_ms"].as_u64().unwrap_or(0)).collect()
}

/// A realtime asset with one registered final part of `len` bytes; returns (asset id, url).
fn one_part(client: &Client, len: u64) -> (String, String) {
    let asset = client.create_asset(&rt_params("f.mp4")).unwrap();
    let urls = client
        .register_parts(&asset.id, &[PartSpec { number: 1, size: len, is_final: true }], None, Some(len))
        .unwrap();
    (asset.id, urls[0].clone())
}

// ----- API calls ------------------------------------------------------------------------------------------

#[test]
fn api_5xx_then_success_is_retried() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    for status in [500, 502, 503, 504] {
        emu.clear_requests();
        emu.fault(json!({"target": "api", "path_prefix": "/v2/devices/heartbeat", "count": 1, "status": status}));
        client.heartbeat().unwrap();
        assert_eq!(statuses(&emu.requests_to(None, "/v2/devices/heartbeat")), vec![status, 204]);
    }
}

#[test]
fn api_429_with_and_without_retry_after() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    emu.clear_requests();
    emu.fault(json!({"target": "api", "path_prefix": "/v2/devices/me", "count": 1, "status": 429, "headers": {"retry-after": "2"},
        "body": "{\"code\":429,\"errors\":[{\"code\":429,\"detail\":\"Too Many Requests\",\"status\":429,\"title\":\"Too Many Requests\"}],\"message\":\"Too Many Requests\"}"}));
    client.device_info().unwrap();
    let r = emu.requests_to(None, "/v2/devices/me");
    assert_eq!(statuses(&r), vec![429, 200]);
    let t = times(&r);
    assert!(t[1] - t[0] >= 1900, "waited {} ms for Retry-After: 2", t[1] - t[0]);

    emu.clear_requests();
    emu.fault(json!({"target": "api", "path_prefix": "/v2/devices/me", "count": 1, "status": 429}));
    client.device_info().unwrap();
    let r = emu.requests_to(None, "/v2/devices/me");
    assert_eq!(statuses(&r), vec![429, 200]);
    let t = times(&r);
    assert!(t[1] - t[0] >= 950, "a 429 without Retry-After waits at least 1 s, waited {}", t[1] - t[0]);
}

#[test]
fn emulator_rate_limit_is_absorbed() {
    let emu = Emulator::builder().args(&["--rate-limit", "3", "--rate-window", "1000"]).start();
    let client = Client::new(emu.config().with_retry(RetryPolicy { max_attempts: 8, ..emu.config().retry })).unwrap();
    emu.pair(&client);
    for _ in 0..8 {
        client.heartbeat().unwrap();
    }
    let hb = emu.requests_to(None, "/v2/devices/heartbeat");
    assert!(statuses(&hb).contains(&429), "the limit was hit: {:?}", statuses(&hb));
    assert_eq!(statuses(&hb).iter().filter(|s| **s == 204).count(), 8);
}

#[test]
fn persistent_html_5xx_gives_up_with_clear_message() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    emu.clear_requests();
    emu.fault(json!({"target": "api", "path_prefix": "/v2/devices/me", "count": 100, "status": 502,
        "body": "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"}));
    let e = client.device_info().unwrap_err();
    assert_eq!(e.kind, ErrorKind::ServerError);
    assert_eq!(e.http_status, Some(502));
    assert!(e.message.contains("HTML"), "{}", e.message);
    assert_eq!(emu.requests_to(None, "/v2/devices/me").len(), 4, "max_attempts = 4");
}

#[test]
fn retry_deadline_stops_early() {
    let emu = Emulator::start();
    let mut cfg = emu.config();
    cfg.retry = RetryPolicy {
        max_attempts: 100,
        base_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_millis(400),
        deadline: Some(Duration::from_millis(900)),
    };
    let client = Client::new(cfg).unwrap();
    emu.pair(&client);
    emu.fault(json!({"target": "api", "path_prefix": "/v2/devices/heartbeat", "count": 1000, "status": 503}));
    let t0 = Instant::now();
    let e = client.heartbeat().unwrap_err();
    assert_eq!(e.kind, ErrorKind::ServerError);
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert!(emu.requests_to(None, "/v2/devices/heartbeat").len() < 10);
}

#[test]
fn definite_4xx_are_not_retried() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    for (status, kind) in [(400, ErrorKind::BadRequest), (404, ErrorKind::NotFound), (403, ErrorKind::HttpStatus)] {
        emu.clear_requests();
        emu.fault(json!({"target": "api", "path_prefix": "/v2/devices/me", "count": 5, "status": status,
            "body": "{\"code\":400,\"errors\":[{\"code\":400,\"detail\":\"nope\",\"status\":400,\"title\":\"Bad\"}],\"message\":\"Bad\"}"}));
        let e = client.device_info().unwrap_err();
        assert_eq!(e.kind, kind, "{status}: {e}");
        assert_eq!(e.http_status, Some(status));
        assert_eq!(emu.requests_to(None, "/v2/devices/me").len(), 1, "{status} not retried");
        emu.clear_faults();
    }
}

#[test]
fn error_body_shapes_and_garbage() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    // Simple shape on a device endpoint.
    emu.fault(json!({"target": "api", "path_prefix": "/v2/devices/assets", "count": 1, "status": 400, "body": "{\"error\":\"invalid_request\"}"}));
    let e = client.create_asset(&rt_params("a.mp4")).unwrap_err();
    assert_eq!((e.kind, e.server_code.as_deref()), (ErrorKind::BadRequest, Some("invalid_request")));
    // Detailed shape.
    emu.fault(json!({"target": "api", "path_prefix": "/v2/devices/assets", "count": 1, "status": 400,
        "body": "{\"code\":400,\"errors\":[{\"code\":400,\"detail\":\"filetype is required\",\"status\":400,\"title\":\"Bad Request\"}],\"message\":\"Bad Request\"}"}));
    let e = client.create_asset(&rt_params("a.mp4")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadRequest);
    assert!(e.message.contains("filetype is required"), "{}", e.message);
    // An HTML 404 from a proxy.
    emu.fault(json!({"target": "api", "path_prefix": "/v2/devices/assets", "count": 1, "status": 404, "body": "<html><body>Not Found</body></html>"}));
    let e = client.create_asset(&rt_params("a.mp4")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("HTML"), "{}", e.message);
    // Malformed JSON with 200.
    emu.fault(json!({"target": "api", "path_prefix": "/v2/devices/assets", "count": 1, "status": 200,
        "headers": {"content-type": "application/json"}, "body": "{\"id\": \"abc\", "}));
    let e = client.create_asset(&rt_params("a.mp4")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol);
    assert!(e.message.contains("malformed JSON"), "{}", e.message);
    // An HTML page with 200 (captive portal).
    emu.fault(json!({"target": "api", "path_prefix": "/v2/devices/me", "count": 1, "status": 200, "body": "<html><body>Login to Wi-Fi</body></html>"}));
    let e = client.device_info().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol);
    assert!(e.message.contains("HTML"), "{}", e.message);
    // JSON without the fields we need.
    emu.fault(json!({"target": "api", "path_prefix": "/v2/devices/assets", "count": 1, "status": 200, "body": "{\"name\": \"x\"}"}));
    let e = client.create_asset(&rt_params("a.mp4")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol);
    // A 400 whose body is not JSON.
    emu.fault(json!({"target": "api", "path_prefix": "/v2/devices/assets", "count": 1, "status": 400,
        "headers": {"content-type": "text/plain"}, "body": "bad things"}));
    let e = client.create_asset(&rt_params("a.mp4")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadRequest);
    assert!(e.message.contains("not JSON"), "{}", e.message);
}

#[test]
fn connection_reset_and_stale_connection_are_retried() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    client.device_info().unwrap(); // a pooled connection exists now
    emu.clear_requests();
    // The next request dies right after its headers (what a stale pooled connection looks like).
    emu.fault(json!({"target": "api", "path_prefix": "/v2/devices/me", "count": 1, "reset_after_bytes": 0}));
    client.device_info().unwrap();
    assert_eq!(statuses(&emu.requests_to(None, "/v2/devices/me")), vec![0, 200]);
}

#[test]
fn slow_reply_times_out_then_retries() {
    let emu = Emulator::start();
    let mut cfg = emu.config();
    cfg.timeouts = Timeouts { request: Duration::from_millis(700), ..Timeouts::default() };
    let client = Client::new(cfg).unwrap();
    emu.pair(&client);
    emu.fault(json!({"target": "api", "path_prefix": "/v2/devices/heartbeat", "count": 1, "delay_ms": 2000}));
    client.heartbeat().unwrap();
    emu.fault(json!({"target": "api", "path_prefix": "/v2/devices/heartbeat", "count": 10, "delay_ms": 2000}));
    let e = client.heartbeat().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
}

#[test]
fn asset_create_is_retried_after_5xx() {
    let emu = Emulator::start();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let l2 = lines.clone();
    let client =
        Client::new(emu.config().with_log(frameio_c2c::LogLevel::Warn, move |_, m| l2.lock().unwrap().push(m.into())))
            .unwrap();
    emu.pair(&client);
    emu.fault(json!({"target": "api", "path_prefix": "/v2/devices/assets", "count": 1, "status": 503}));
    client.create_asset(&rt_params("dup.mp4")).unwrap();
    assert!(lines.lock().unwrap().iter().any(|l| l.contains("duplicate")), "{:?}", lines.lock().unwrap());
}

// ----- S3 part PUTs ---------------------------------------------------------------------------------------

#[test]
fn s3_transient_errors_are_retried_and_bytes_arrive_intact() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    let faults = [
        json!({"target": "s3", "method": "PUT", "count": 1, "status": 503, "headers": {"retry-after": "1"},
            "body": "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"}),
        json!({"target": "s3", "method": "PUT", "count": 1, "status": 500, "body": "<Error><Code>InternalError</Code></Error>"}),
        json!({"target": "s3", "method": "PUT", "count": 1, "status": 400, "body": "<Error><Code>RequestTimeout</Code><Message>Your socket connection to the server was not read from or written to within the timeout period.</Message></Error>"}),
        json!({"target": "s3", "method": "PUT", "count": 1, "reset_after_bytes": 200000}),
        json!({"target": "s3", "method": "PUT", "count": 1, "reset_after_bytes": 0}),
    ];
    for (i, f) in faults.into_iter().enumerate() {
        let data = test_bytes(1_000_000, i as u64);
        let (id, url) = one_part(&client, data.len() as u64);
        emu.clear_requests();
        emu.fault(f.clone());
        client.put_part(&url, PartBody::Bytes(&data), "video/mp4", None).unwrap_or_else(|e| panic!("{f}: {e}"));
        let puts: Vec<Value> = emu.requests().into_iter().filter(|r| r["port"] == "s3").collect();
        assert_eq!(puts.len(), 2, "{f}: {puts:?}");
        let st = emu.asset(&id);
        assert_eq!(st["state"], "uploaded", "{f}: {st}");
        assert_eq!(st["sha256"], sha256_hex(&data));
    }
}

#[test]
fn s3_stall_times_out_and_retries_from_a_file() {
    let emu = Emulator::start();
    let mut cfg = emu.config();
    cfg.timeouts =
        Timeouts { stall: Duration::from_millis(800), response: Duration::from_millis(800), ..Timeouts::default() };
    cfg.expect_continue = false;
    let client = Client::new(cfg).unwrap();
    emu.pair(&client);
    let data = test_bytes(2_000_000, 9);
    let dir = common::temp_dir("fio-stall");
    std::fs::write(dir.join("f"), &data).unwrap();
    let f = std::fs::File::open(dir.join("f")).unwrap();
    let (id, url) = one_part(&client, data.len() as u64);
    emu.fault(json!({"target": "s3", "method": "PUT", "count": 1, "stall": true, "stall_ms": 5000}));
    let t0 = Instant::now();
    client.put_part(&url, PartBody::File { file: &f, offset: 0, len: data.len() as u64 }, "video/mp4", None).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "stall detected in {:?}", t0.elapsed());
    assert_eq!(emu.asset(&id)["sha256"], sha256_hex(&data));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn s3_definite_errors_are_not_retried() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    let data = test_bytes(1000, 1);
    let (_, url) = one_part(&client, 1000);
    emu.clear_requests();
    emu.fault(json!({"target": "s3", "method": "PUT", "count": 5, "status": 400, "body": "<Error><Code>BadDigest</Code><Message>The Content-MD5 you specified did not match.</Message></Error>"}));
    let e = client.put_part(&url, PartBody::Bytes(&data), "video/mp4", None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::S3Error);
    assert_eq!(e.server_code.as_deref(), Some("BadDigest"));
    assert_eq!(emu.requests().len(), 1);
    emu.clear_faults();
    emu.clear_requests();
    emu.fault(json!({"target": "s3", "method": "PUT", "count": 5, "status": 403, "body": "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"}));
    let e = client.put_part(&url, PartBody::Bytes(&data), "video/mp4", None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::UrlExpired);
    assert!(e.message.contains("Request has expired"), "{}", e.message);
    assert_eq!(emu.requests().len(), 1);
}

#[test]
fn s3_persistent_failure_reports_after_max_attempts() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    let data = test_bytes(1000, 2);
    let (_, url) = one_part(&client, 1000);
    emu.clear_requests();
    emu.fault(json!({"target": "s3", "method": "PUT", "count": 100, "status": 503, "body": "<Error><Code>ServiceUnavailable</Code></Error>"}));
    let e = client.put_part(&url, PartBody::Bytes(&data), "video/mp4", None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ServerError);
    assert!(e.is_retryable());
    assert_eq!(emu.requests().len(), 4);
}
