//! Pairing, tokens, device info, heartbeat, validation of the auth endpoints, rate limits.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

#[test]
fn ready_line_and_health() {
    let emu = Emu::start(&[]);
    assert!(emu.api.starts_with("http://127.0.0.1:"), "{}", emu.api);
    assert!(emu.s3.starts_with("http://127.0.0.1:"), "{}", emu.s3);
    assert!(emu.ca.is_none());
    assert!(emu.ready_after < Duration::from_secs(3), "ready after {:?}", emu.ready_after);
    let r = emu.control("GET", "/_emulator/health", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["ok"], true);
}

#[test]
fn device_code_validation_and_both_encodings() {
    let emu = Emu::start(&[]);
    for multipart in [true, false] {
        for path in ["/v2/auth/device/code", "/v2/device/code"] {
            let r = emu.post_form(
                path,
                &[("client_id", "cam-1"), ("client_secret", SECRET), ("scope", "asset_create offline")],
                multipart,
            );
            assert_eq!(r.status, 200, "{}", r.text());
            let j = r.json();
            let code = j["user_code"].as_str().unwrap();
            assert_eq!(code.len(), 6);
            assert!(code.chars().all(|c| c.is_ascii_digit()));
            assert!(!j["device_code"].as_str().unwrap().is_empty());
            assert_eq!(j["expires_in"], json!(120));
            assert_eq!(j["interval"], json!(5));
            assert!(j["verification_uri"].as_str().unwrap().starts_with("http"));
            assert!(j["verification_uri_complete"].is_null());
            assert!(j["name"].as_str().is_some_and(|n| !n.is_empty()));
            assert!(r.header("x-ratelimit-limit").is_some());
        }
    }
    // Wrong secret: the documented simple error.
    let r = emu.post_form(
        "/v2/auth/device/code",
        &[("client_id", "cam-1"), ("client_secret", "nope"), ("scope", "asset_create offline")],
        true,
    );
    assert_eq!((r.status, r.simple_error().as_str()), (400, "invalid_client"));
    // Missing fields.
    for fields in [
        vec![("client_secret", SECRET), ("scope", "asset_create")],
        vec![("client_id", "cam-1"), ("scope", "asset_create")],
        vec![("client_id", "cam-1"), ("client_secret", SECRET)],
        vec![("client_id", ""), ("client_secret", SECRET), ("scope", "offline")],
    ] {
        let r = emu.post_form("/v2/auth/device/code", &fields, true);
        assert_eq!((r.status, r.simple_error().as_str()), (400, "invalid_request"), "{fields:?}");
    }
    let r = emu.post_form(
        "/v2/auth/device/code",
        &[("client_id", "c"), ("client_secret", SECRET), ("scope", "asset_create admin")],
        true,
    );
    assert_eq!((r.status, r.simple_error().as_str()), (400, "invalid_scope"));
    // Not a form at all.
    let r = emu.req("POST", &emu.url("/v2/auth/device/code"), &[("content-type", "application/json")], Some(b"{}"));
    assert_eq!((r.status, r.simple_error().as_str()), (400, "invalid_request"));
    // A non-semver x-client-version.
    let r = emu.req(
        "POST",
        &emu.url("/v2/auth/device/code"),
        &[("content-type", "application/x-www-form-urlencoded"), ("x-client-version", "v2")],
        Some(format!("client_id=c&client_secret={SECRET}&scope=offline").as_bytes()),
    );
    assert_eq!((r.status, r.simple_error().as_str()), (400, "invalid_request"));
    // URL pairing mode fills verification_uri_complete, which approves in a browser.
    let r = emu.req(
        "POST",
        &emu.url("/v2/auth/device/code"),
        &[("content-type", "application/x-www-form-urlencoded"), ("x-client-platypus-enabled", "true")],
        Some(format!("client_id=c&client_secret={SECRET}&scope=offline+asset_create").as_bytes()),
    );
    assert_eq!(r.status, 200);
    let j = r.json();
    let complete = j["verification_uri_complete"].as_str().unwrap();
    assert!(complete.contains(j["user_code"].as_str().unwrap()));
    assert_eq!(emu.req("GET", complete, &[], None).status, 200);
    let t = emu.poll("c", j["device_code"].as_str().unwrap());
    assert_eq!(t.status, 200, "{}", t.text());
}

#[test]
fn pairing_pending_slow_down_approve_and_reuse() {
    let emu = Emu::start(&["--poll-interval", "0.4"]);
    let dc = emu.device_code("cam-2");
    let code = dc["device_code"].as_str().unwrap();
    assert_eq!(dc["interval"], json!(0.4));
    let r = emu.poll("cam-2", code);
    assert_eq!(r.simple_error(), "authorization_pending");
    // Faster than the interval.
    let r = emu.poll("cam-2", code);
    assert_eq!((r.status, r.simple_error().as_str()), (400, "slow_down"));
    std::thread::sleep(Duration::from_millis(450));
    assert_eq!(emu.poll("cam-2", code).simple_error(), "authorization_pending");
    // Another client cannot use this code; a made-up code is invalid.
    std::thread::sleep(Duration::from_millis(450));
    assert_eq!(emu.poll("cam-other", code).simple_error(), "invalid_grant");
    assert_eq!(emu.poll("cam-2", "not-a-code").simple_error(), "invalid_grant");
    // Approve through the control API.
    let listed = emu.control("GET", "/_emulator/pairing", None).json();
    assert!(listed.as_array().unwrap().iter().any(|c| c["user_code"] == dc["user_code"]));
    let r = emu.control("POST", "/_emulator/pairing/approve", Some(json!({"user_code": dc["user_code"]})));
    assert_eq!(r.status, 200);
    assert_eq!(emu.control("POST", "/_emulator/pairing/approve", Some(json!({"user_code": "000000x"}))).status, 404);
    std::thread::sleep(Duration::from_millis(450));
    let r = emu.poll("cam-2", code);
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["expires_in"], json!(28800));
    assert_eq!(j["token_type"], "bearer");
    assert!(uuid_like(j["refresh_token"].as_str().unwrap()));
    // A device code is single use.
    std::thread::sleep(Duration::from_millis(450));
    assert_eq!(emu.poll("cam-2", code).simple_error(), "invalid_grant");
    // Wrong secret and missing grant fields.
    let r = emu.post_form(
        "/v2/auth/token",
        &[("client_id", "cam-2"), ("client_secret", "x"), ("grant_type", DEVICE_GRANT), ("device_code", code)],
        true,
    );
    assert_eq!(r.simple_error(), "invalid_client");
    let r = emu.post_form(
        "/v2/auth/token",
        &[("client_id", "cam-2"), ("client_secret", SECRET), ("grant_type", DEVICE_GRANT)],
        true,
    );
    assert_eq!(r.simple_error(), "invalid_request");
    let r = emu.post_form(
        "/v2/auth/token",
        &[("client_id", "cam-2"), ("client_secret", SECRET), ("grant_type", "password")],
        true,
    );
    assert_eq!(r.simple_error(), "invalid_request");
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

#[test]
fn pairing_code_expires() {
    let emu = Emu::start(&["--code-ttl", "1", "--poll-interval", "0.1"]);
    let dc = emu.device_code("cam-3");
    assert_eq!(dc["expires_in"], json!(1));
    std::thread::sleep(Duration::from_millis(1200));
    let r = emu.poll("cam-3", dc["device_code"].as_str().unwrap());
    assert_eq!((r.status, r.simple_error().as_str()), (400, "expired_token"));
    // Expired codes cannot be approved either.
    let r = emu.control("POST", "/_emulator/pairing/approve", Some(json!({"user_code": dc["user_code"]})));
    assert_eq!(r.status, 404);
}

#[test]
fn refresh_tokens_are_single_use_and_revoke_works() {
    let emu = Emu::start(&["--auto-approve", "--poll-interval", "0.1"]);
    let (access, refresh) = emu.pair("cam-4");
    assert_eq!(emu.get("/v2/devices/me", Some(&access)).status, 200);

    let r = emu.refresh("cam-4", &refresh);
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    let (access2, refresh2) =
        (j["access_token"].as_str().unwrap().to_string(), j["refresh_token"].as_str().unwrap().to_string());
    assert_ne!(refresh2, refresh);
    // Reuse of a refresh token: 400 invalid_request; the old access token is dead.
    let r = emu.refresh("cam-4", &refresh);
    assert_eq!((r.status, r.simple_error().as_str()), (400, "invalid_request"));
    emu.get("/v2/devices/me", Some(&access)).detailed(401);
    assert_eq!(emu.get("/v2/devices/me", Some(&access2)).status, 200);
    // Unknown refresh token, another client's token, the legacy field spelling.
    assert_eq!(emu.refresh("cam-4", "11111111-2222-3333-4444-555555555555").simple_error(), "invalid_grant");
    assert_eq!(emu.refresh("cam-other", &refresh2).simple_error(), "invalid_grant");
    let r = emu.post_form(
        "/v2/auth/token",
        &[
            ("client_id", "cam-4"),
            ("client_secret", SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_tokem", &refresh2),
        ],
        false,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    let (access3, refresh3) =
        (j["access_token"].as_str().unwrap().to_string(), j["refresh_token"].as_str().unwrap().to_string());

    // Revoke: wrong secret, missing token, then the real thing.
    let r = emu.post_form(
        "/v2/auth/revoke",
        &[("client_id", "cam-4"), ("client_secret", "bad"), ("token", &refresh3)],
        true,
    );
    assert_eq!(r.simple_error(), "invalid_client");
    let r = emu.post_form("/v2/auth/revoke", &[("client_id", "cam-4"), ("client_secret", SECRET)], true);
    assert_eq!(r.simple_error(), "invalid_request");
    let r = emu.post_form(
        "/v2/auth/revoke",
        &[("client_id", "cam-4"), ("client_secret", SECRET), ("token", &refresh3)],
        true,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"success": true}));
    emu.get("/v2/devices/me", Some(&access3)).detailed(401);
    // A revoked pair cannot refresh: 401.
    emu.refresh("cam-4", &refresh3).detailed(401);
}

#[test]
fn token_lifetimes_and_expire_control() {
    let emu = Emu::start(&["--auto-approve", "--access-token-ttl", "1", "--refresh-token-ttl", "2"]);
    let (access, refresh) = emu.pair("cam-5");
    assert_eq!(emu.get("/v2/devices/me", Some(&access)).status, 200);
    std::thread::sleep(Duration::from_millis(1100));
    emu.get("/v2/devices/me", Some(&access)).detailed(401);
    let r = emu.refresh("cam-5", &refresh);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["expires_in"], json!(1));
    let refresh2 = r.json()["refresh_token"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(2100));
    // Expired refresh token: 401, must pair again.
    emu.refresh("cam-5", &refresh2).detailed(401);

    let emu = Emu::start(&["--auto-approve"]);
    let (a1, _) = emu.pair("cam-a");
    let (a2, r2) = emu.pair("cam-b");
    let r = emu.control("POST", "/_emulator/tokens/expire", None);
    assert_eq!(r.json()["expired"], json!(2));
    emu.get("/v2/devices/me", Some(&a1)).detailed(401);
    emu.post_json("/v2/devices/heartbeat", Some(&a2), &json!({})).detailed(401);
    // Refresh tokens survive an access-token expiry.
    assert_eq!(emu.refresh("cam-b", &r2).status, 200);
}

#[test]
fn devices_me_heartbeat_and_bearer_rules() {
    let emu = Emu::start(&["--auto-approve"]);
    let (access, _) = emu.pair("cam-6");
    let r = emu.req(
        "GET",
        &emu.url("/v2/devices/me"),
        &[("authorization", &format!("Bearer {access}")), ("x-client-version", "2.16.4")],
        None,
    );
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["_type"], "project_device");
    assert_eq!(j["status"], "online");
    assert_eq!(j["last_known_firmware_version"], "2.16.4");
    assert!(j["project"]["name"].is_string());
    assert!(j["project_id"].is_string());
    assert!(j["authorization"]["scopes"]["asset_create"].as_bool().unwrap());
    assert_eq!(r.header("x-ratelimit-window"), Some("1000"));

    let hb =
        emu.req("POST", &emu.url("/v2/devices/heartbeat"), &[("authorization", &format!("Bearer {access}"))], None);
    assert_eq!(hb.status, 204);
    assert!(hb.body.is_empty());

    // Missing, malformed, unknown bearer: 401 with the documented body.
    for auth in [None, Some("Bearer"), Some("Basic abc"), Some("Bearer not-a-token")] {
        let mut h = vec![];
        if let Some(a) = auth {
            h.push(("authorization", a));
        }
        let r = emu.req("GET", &emu.url("/v2/devices/me"), &h, None);
        assert_eq!(r.detailed(401), "Not Authorized");
        assert_eq!(r.json()["errors"][0]["detail"], "You are not allowed to access that resource");
        let r = emu.req("POST", &emu.url("/v2/devices/heartbeat"), &h, None);
        r.detailed(401);
    }
    // Bad x-client-version on a device endpoint: detailed 400.
    let r = emu.req(
        "GET",
        &emu.url("/v2/devices/me"),
        &[("authorization", &format!("Bearer {access}")), ("x-client-version", "1.2")],
        None,
    );
    r.detailed(400);
    // Unknown path and wrong method.
    emu.get("/v2/nothing", Some(&access)).detailed(404);
    emu.req("DELETE", &emu.url("/v2/devices/me"), &[], None).detailed(405);
    // A paused channel shows on devices/me.
    emu.control("POST", "/_emulator/channels/0/pause", None);
    assert_eq!(emu.get("/v2/devices/me", Some(&access)).json()["status"], "paused");
}

#[test]
fn rate_limit_headers_and_429_modes() {
    let emu = Emu::start(&["--auto-approve", "--rate-limit", "3", "--rate-window", "3000"]);
    let (access, _) = emu.pair("cam-7"); // auth endpoints use their own bucket
    let mut statuses = vec![];
    for _ in 0..4 {
        let r = emu.get("/v2/devices/me", Some(&access));
        assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(r.header("x-ratelimit-window"), Some("3000"));
        assert!(r.header("x-ratelimit-remaining").is_some());
        statuses.push(r.status);
        if r.status == 429 {
            assert_eq!(r.detailed(429), "Too Many Requests");
            let ra: u64 = r.header("retry-after").expect("Retry-After").parse().unwrap();
            assert!((1..=3).contains(&ra), "{ra}");
            assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
        }
    }
    assert_eq!(statuses, vec![200, 200, 200, 429]);
    // The bucket leaks: after one window-share it admits again.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(emu.get("/v2/devices/me", Some(&access)).status, 200);
    // Switch off Retry-After at runtime.
    let r = emu.control("POST", "/_emulator/rate-limit", Some(json!({"retry_after": false, "limit": 1})));
    assert_eq!(r.json()["retry_after"], false);
    assert_eq!(emu.get("/v2/devices/me", Some(&access)).status, 200);
    let r = emu.get("/v2/devices/me", Some(&access));
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_none());

    // The flag form.
    let emu = Emu::start(&["--auto-approve", "--rate-limit", "2", "--rate-window", "60000", "--no-retry-after"]);
    let (access, _) = emu.pair("cam-8");
    assert_eq!(emu.get("/v2/devices/me", Some(&access)).status, 200);
    assert_eq!(emu.get("/v2/devices/me", Some(&access)).status, 200);
    let t = Instant::now();
    let r = emu.get("/v2/devices/me", Some(&access));
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_none());
    assert!(t.elapsed() < Duration::from_secs(1));
}

#[test]
fn custom_secret_scopes_and_access_token_revoke() {
    let emu = Emu::start(&["--auto-approve", "--client-secret", "vendor-model-secret"]);
    // The default secret is no longer accepted.
    let r = emu.post_form(
        "/v2/auth/device/code",
        &[("client_id", "s1"), ("client_secret", SECRET), ("scope", "offline")],
        true,
    );
    assert_eq!(r.simple_error(), "invalid_client");
    let pair = |client: &str, scope: &str| {
        let r = emu.post_form(
            "/v2/auth/device/code",
            &[("client_id", client), ("client_secret", "vendor-model-secret"), ("scope", scope)],
            false,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let dc = r.json()["device_code"].as_str().unwrap().to_string();
        let r = emu.post_form(
            "/v2/auth/token",
            &[
                ("client_id", client),
                ("client_secret", "vendor-model-secret"),
                ("grant_type", DEVICE_GRANT),
                ("device_code", &dc),
            ],
            false,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    };
    // Without `offline` there is no refresh token; without `asset_create` no assets.
    let t = pair("s1", "asset_create");
    assert!(t.get("refresh_token").is_none(), "{t}");
    let t = pair("s2", "offline");
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(emu.get("/v2/devices/me", Some(access)).status, 200);
    let r = emu.post_json(
        "/v2/devices/assets",
        Some(access),
        &json!({"name": "a.mp4", "filetype": "video/mp4", "filesize": 1}),
    );
    assert_eq!(r.detailed(403), "Forbidden");
    // Revoking with the access token kills the pair, refresh token included.
    let t = pair("s3", "asset_create offline");
    let (access, refresh) = (t["access_token"].as_str().unwrap(), t["refresh_token"].as_str().unwrap());
    // Another client cannot revoke it.
    let r = emu.post_form(
        "/v2/auth/revoke",
        &[("client_id", "s2"), ("client_secret", "vendor-model-secret"), ("token", access)],
        true,
    );
    assert_eq!(r.json(), json!({"success": true}));
    assert_eq!(emu.get("/v2/devices/me", Some(access)).status, 200);
    let r = emu.post_form(
        "/v2/auth/revoke",
        &[("client_id", "s3"), ("client_secret", "vendor-model-secret"), ("token", access)],
        true,
    );
    assert_eq!(r.json(), json!({"success": true}));
    emu.get("/v2/devices/me", Some(access)).detailed(401);
    let r = emu.post_form(
        "/v2/auth/token",
        &[
            ("client_id", "s3"),
            ("client_secret", "vendor-model-secret"),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
        ],
        true,
    );
    r.detailed(401);
}
