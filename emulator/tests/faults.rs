//! Scripted faults on both ports, the request log, reset, TLS, hostile input.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

#[test]
fn status_faults_with_html_and_malformed_json_on_the_api() {
    let emu = Emu::start(&["--auto-approve"]);
    let (tok, _) = emu.pair("f1");
    let html = "<html><body><h1>502 Bad Gateway</h1></body></html>";
    let id = emu.fault(json!({"target": "api", "method": "GET", "path_prefix": "/v2/devices/me", "count": 2, "status": 502, "body": html}));
    let r = emu.get("/v2/devices/me", Some(&tok));
    assert_eq!(r.status, 502);
    assert_eq!(r.text(), html);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert_eq!(emu.get("/v2/devices/me", Some(&tok)).status, 502);
    assert_eq!(emu.get("/v2/devices/me", Some(&tok)).status, 200); // count used up
                                                                   // Method filter: a POST to the same prefix is not affected.
    emu.fault(json!({"method": "GET", "path_prefix": "/v2/devices/heartbeat", "status": 500}));
    assert_eq!(emu.post_json("/v2/devices/heartbeat", Some(&tok), &json!({})).status, 204);
    emu.control("DELETE", "/_emulator/faults", None);

    // Malformed JSON with custom headers, and skip.
    emu.fault(json!({"path_prefix": "/v2/devices/assets", "skip": 1, "status": 200, "headers": {"content-type": "application/json", "x-test": "yes"}, "body": "{\"id\": \"abc\", "}));
    let ok = emu.post_json(
        "/v2/devices/assets",
        Some(&tok),
        &json!({"name": "a.mp4", "filetype": "video/mp4", "is_realtime_upload": true}),
    );
    assert_eq!(ok.status, 200);
    assert!(ok.json()["id"].is_string());
    let r = emu.post_json(
        "/v2/devices/assets",
        Some(&tok),
        &json!({"name": "a.mp4", "filetype": "video/mp4", "is_realtime_upload": true}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-test"), Some("yes"));
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
    // A 429 without Retry-After and a 503 with one, scripted.
    emu.fault(json!({"path_prefix": "/v2/auth/token", "status": 503, "headers": {"retry-after": "1"}, "body": "{\"message\": \"down\"}"}));
    let r = emu.post_form("/v2/auth/token", &[("client_id", "f1")], true);
    assert_eq!((r.status, r.header("retry-after")), (503, Some("1")));

    // Listing and deleting single faults.
    let fid = emu.fault(json!({"path_prefix": "/never", "status": 500, "count": 5}));
    let listed = emu.control("GET", "/_emulator/faults", None).json();
    assert!(listed.as_array().unwrap().iter().any(|f| f["id"] == json!(fid) && f["remaining"] == json!(5)));
    assert_eq!(emu.control("DELETE", &format!("/_emulator/faults/{fid}"), None).status, 200);
    assert_eq!(emu.control("DELETE", &format!("/_emulator/faults/{fid}"), None).status, 404);
    assert!(id < fid);

    // Bad fault specs are refused.
    for bad in [
        json!({"path_prefix": "/x"}),
        json!({"status": 503, "delay_ms": 5}),
        json!({"target": "ftp", "status": 500}),
        json!({"status": 99}),
        json!({"status": 500, "count": 0}),
        json!({"status": 500, "path_prefix": "x"}),
        json!({"stall": "yes"}),
        json!({"status": 500, "headers": {"bad header": "x"}}),
    ] {
        assert_eq!(emu.control("POST", "/_emulator/faults", Some(bad.clone())).status, 400, "{bad}");
    }
    let log = emu.requests();
    assert!(log.iter().any(|e| e["status"] == 502 && e["fault"].as_str().unwrap().starts_with("status#")));
}

#[test]
fn delay_fault_and_request_log_timing() {
    let emu = Emu::start(&["--auto-approve"]);
    let (tok, _) = emu.pair("f2");
    emu.control("DELETE", "/_emulator/requests", None);
    emu.fault(json!({"path_prefix": "/v2/devices/heartbeat", "delay_ms": 600}));
    let t = Instant::now();
    let r = emu.post_json("/v2/devices/heartbeat", Some(&tok), &json!({}));
    assert_eq!(r.status, 204); // served normally after the delay
    assert!(t.elapsed() >= Duration::from_millis(600));
    let r2 = emu.post_json("/v2/devices/heartbeat", Some(&tok), &json!({}));
    assert_eq!(r2.status, 204);
    let log = emu.requests();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0]["method"], "POST");
    assert_eq!(log[0]["path"], "/v2/devices/heartbeat");
    assert_eq!(log[0]["port"], "api");
    assert_eq!(log[0]["status"], 204);
    assert!(log[0]["fault"].as_str().unwrap().starts_with("delay#"));
    assert!(log[0]["duration_ms"].as_u64().unwrap() >= 600);
    assert_eq!(log[0]["client_version"], "1.2.3");
    let gap = log[1]["time_ms"].as_u64().unwrap() - log[0]["time_ms"].as_u64().unwrap();
    assert!(gap >= 600, "gap {gap}");
    // `since` returns only newer entries.
    let first = log[0]["id"].as_u64().unwrap();
    let newer = emu.control("GET", &format!("/_emulator/requests?since={first}"), None).json();
    assert_eq!(newer.as_array().unwrap().len(), 1);
    assert_eq!(newer[0]["id"], log[1]["id"]);
}

#[test]
fn reset_and_stall_faults_on_both_ports() {
    let emu = Emu::start(&["--auto-approve"]);
    let (tok, _) = emu.pair("f3");
    let id = emu.create_realtime(&tok, "r.mp4");
    let src = data(3000, 9);
    let u = emu.register_urls(&tok, &id, json!([{"number": 1, "size": 3000, "is_final": true}]), Some(3000));

    // S3: reset after 1000 body bytes. Raw TCP so we can see exactly what arrives: no response.
    emu.fault(json!({"target": "s3", "method": "PUT", "path_prefix": "/c2c/", "reset_after_bytes": 1000}));
    let (hp, path) = split_url(&u[0]);
    let mut s = TcpStream::connect(&hp).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("PUT {path} HTTP/1.1\r\nHost: {hp}\r\nContent-Length: 3000\r\n\r\n").as_bytes()).unwrap();
    let _ = s.write_all(&src[..1500]);
    let mut buf = Vec::new();
    let res = s.read_to_end(&mut buf);
    assert!(buf.is_empty(), "got a response: {}", String::from_utf8_lossy(&buf));
    assert!(res.is_err() || res.unwrap() == 0);
    // The part was not stored; a retry succeeds.
    assert_eq!(emu.asset(&id)["state"], "created");
    assert_eq!(emu.put(&u[0], &src, &[]).status, 200);
    assert_eq!(emu.asset(&id)["sha256"], json!(sha256_hex(&src)));

    // API: reset at once (a plain client sees a transport error).
    emu.fault(json!({"path_prefix": "/v2/devices/me", "reset_after_bytes": 0}));
    assert!(try_req(
        &emu.agent,
        "GET",
        &emu.url("/v2/devices/me"),
        &[("authorization", &format!("Bearer {tok}"))],
        None
    )
    .is_err());
    assert_eq!(emu.get("/v2/devices/me", Some(&tok)).status, 200);

    // Stall on both ports: the client gives up after its timeout.
    let impatient = agent(None, Some(Duration::from_millis(700)));
    emu.fault(json!({"path_prefix": "/v2/devices/me", "stall": true}));
    let t = Instant::now();
    assert!(try_req(
        &impatient,
        "GET",
        &emu.url("/v2/devices/me"),
        &[("authorization", &format!("Bearer {tok}"))],
        None
    )
    .is_err());
    assert!(t.elapsed() >= Duration::from_millis(650));
    let id2 = emu.create_realtime(&tok, "s.mp4");
    let u2 = emu.register_urls(&tok, &id2, json!([{"number": 1, "size": 3000, "is_final": true}]), Some(3000));
    emu.fault(json!({"target": "s3", "path_prefix": "/c2c/", "stall": true, "stall_ms": 2000}));
    let t = Instant::now();
    assert!(try_req(&impatient, "PUT", &u2[0], &[], Some(&src)).is_err());
    assert!(t.elapsed() >= Duration::from_millis(650));
    // Other requests are unaffected while one is stalled; the next PUT goes through.
    assert_eq!(emu.put(&u2[0], &src, &[]).status, 200);
    // A stall ends when the client gives up (well before stall_ms / --stall-max), and is logged then.
    let stalls = |emu: &Emu| {
        emu.requests()
            .into_iter()
            .filter(|e| e["fault"].as_str().is_some_and(|f| f.starts_with("stall#")))
            .collect::<Vec<_>>()
    };
    let t = Instant::now();
    while stalls(&emu).len() < 2 && t.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for e in stalls(&emu) {
        assert_eq!(e["status"], 0);
        let held = e["duration_ms"].as_u64().unwrap();
        assert!((600..1500).contains(&held), "held {held} ms: {e}");
    }
    let log = emu.requests();
    assert!(log.iter().any(|e| e["port"] == "s3"
        && e["fault"].as_str().is_some_and(|f| f.starts_with("reset#"))
        && e["status"] == 0));
    assert!(log.iter().any(|e| e["port"] == "s3" && e["fault"].as_str().is_some_and(|f| f.starts_with("stall#"))));
    assert!(log.iter().any(|e| e["port"] == "api" && e["fault"].as_str().is_some_and(|f| f.starts_with("stall#"))));
}

#[test]
fn s3_status_fault_returns_scripted_xml() {
    let emu = Emu::start(&["--auto-approve"]);
    let (tok, _) = emu.pair("f4");
    let id = emu.create_realtime(&tok, "x.mp4");
    let u = emu.register_urls(&tok, &id, json!([{"number": 1, "size": 4, "is_final": true}]), Some(4));
    let other = emu.create_realtime(&tok, "y.mp4");
    let part_two = emu.register_urls(&tok, &other, json!([{"number": 2, "size": 2, "is_final": true}]), Some(2));
    let xml = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
    // query_contains picks one part: part 2 is not affected.
    emu.fault(json!({"target": "s3", "method": "PUT", "query_contains": "partNumber=1&", "status": 503, "body": xml}));
    assert_eq!(emu.put(&part_two[0], b"ab", &[]).status, 200);
    let r = emu.put(&u[0], b"abcd", &[]);
    assert_eq!(r.status, 503);
    assert_eq!(r.text(), xml);
    assert!(r.header("content-type").unwrap().contains("xml"));
    assert_eq!(emu.asset(&id)["state"], "created");
    assert_eq!(emu.put(&u[0], b"abcd", &[]).status, 200);
}

#[test]
fn reset_forgets_everything() {
    let emu = Emu::start(&["--auto-approve"]);
    let (tok, _) = emu.pair("f5");
    let id = emu.create_realtime(&tok, "z.mp4");
    emu.fault(json!({"path_prefix": "/v2", "status": 500, "count": 100}));
    assert_eq!(emu.control("POST", "/_emulator/reset", None).status, 200);
    assert!(emu.requests().is_empty());
    assert_eq!(emu.control("GET", &format!("/_emulator/assets/{id}"), None).status, 404);
    emu.get("/v2/devices/me", Some(&tok)).detailed(401); // no fault any more, token forgotten
    let (tok2, _) = emu.pair("f5");
    assert_eq!(emu.get("/v2/devices/me", Some(&tok2)).status, 200);
}

#[test]
fn tls_serves_both_ports() {
    let emu = Emu::start(&["--tls", "--auto-approve"]);
    assert!(emu.api.starts_with("https://127.0.0.1:"));
    assert!(emu.s3.starts_with("https://127.0.0.1:"));
    let ca = emu.ca.clone().expect("ca_cert path");
    assert!(std::fs::read_to_string(&ca).unwrap().contains("BEGIN CERTIFICATE"));
    let (tok, _) = emu.pair("tls");
    let id = emu.create_realtime(&tok, "t.mp4");
    let u = emu.register_urls(&tok, &id, json!([{"number": 1, "size": 5, "is_final": true}]), Some(5));
    assert!(u[0].starts_with("https://127.0.0.1:"));
    assert_eq!(emu.put(&u[0], b"hello", &[]).status, 200);
    assert_eq!(emu.asset(&id)["sha256"], json!(sha256_hex(b"hello")));
    // A client without the CA refuses the certificate.
    let plain = agent(None, Some(Duration::from_secs(5)));
    assert!(try_req(&plain, "GET", &emu.url("/_emulator/health"), &[], None).is_err());
}

#[test]
fn hostile_input_does_not_crash_it() {
    let emu = Emu::start(&["--auto-approve"]);
    let (tok, _) = emu.pair("h");
    let (api_hp, _) = split_url(&emu.api);
    let (s3_hp, _) = split_url(&emu.s3);
    let junk: Vec<Vec<u8>> = vec![
        b"\x00\x01\x02garbage\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n".to_vec(),
        b"POST /v2/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=\r\nContent-Length: 5\r\n\r\n--\r\n-".to_vec(),
        b"POST /v2/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=a\r\nContent-Length: 12\r\n\r\n--a\r\n\r\n\r\n--".to_vec(),
        format!("POST /v2/devices/assets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{{\"a\":1e999").into_bytes(),
        format!("POST /v2/devices/assets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\nContent-Type: application/json\r\nContent-Length: 48\r\n\r\n{{\"name\":\"a.mp4\",\"filetype\":\"v/m\",\"filesize\":1e300}}").into_bytes(),
        b"PUT /c2c/x?partNumber=99999999999&uploadId=zz&X-Amz-SignedHeaders=host HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx".to_vec(),
        b"GET /%ff%fe/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        vec![b'A'; 200_000],
    ];
    for j in &junk {
        let _ = raw_timeout(&api_hp, j, Duration::from_millis(300));
        let _ = raw_timeout(&s3_hp, j, Duration::from_millis(300));
    }
    // Random bodies on every endpoint.
    for (i, path) in [
        "/v2/auth/device/code",
        "/v2/auth/token",
        "/v2/auth/revoke",
        "/v2/devices/assets",
        "/v2/devices/assets/x/realtime_upload/parts",
        "/v2/devices/assets/x/comments",
        "/_emulator/faults",
        "/_emulator/pairing/approve",
        "/_emulator/rate-limit",
    ]
    .iter()
    .enumerate()
    {
        for ct in
            ["application/json", "multipart/form-data; boundary=zz", "application/x-www-form-urlencoded", "text/plain"]
        {
            let body = data(500 + i * 37, i as u64 + 7);
            let r = emu.req(
                "POST",
                &emu.url(path),
                &[("content-type", ct), ("authorization", &format!("Bearer {tok}"))],
                Some(&body),
            );
            assert!((400..500).contains(&r.status), "{path} {ct}: {}", r.status);
        }
    }
    assert_eq!(emu.control("GET", "/_emulator/health", None).status, 200);
    assert_eq!(emu.get("/v2/devices/me", Some(&tok)).status, 200);
}

#[test]
fn idle_part_body_gets_request_timeout() {
    let emu = Emu::start(&["--auto-approve", "--s3-idle-timeout", "1"]);
    let (tok, _) = emu.pair("idle");
    let id = emu.create_realtime(&tok, "i.mp4");
    let u = emu.register_urls(&tok, &id, json!([{"number": 1, "size": 3000, "is_final": true}]), Some(3000));
    let (hp, path) = split_url(&u[0]);
    let mut s = TcpStream::connect(&hp).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("PUT {path} HTTP/1.1\r\nHost: {hp}\r\nContent-Length: 3000\r\n\r\n").as_bytes()).unwrap();
    s.write_all(&[7u8; 1000]).unwrap();
    let t = Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let resp = String::from_utf8_lossy(&buf);
    assert_eq!(status_of(&resp), 400, "{resp}");
    assert!(resp.contains("RequestTimeout"), "{resp}");
    assert!(t.elapsed() >= Duration::from_millis(900) && t.elapsed() < Duration::from_secs(5));
    assert_eq!(emu.asset(&id)["state"], "created");
    assert_eq!(emu.put(&u[0], &[7u8; 3000], &[]).status, 200);
}
