//! Review findings (hostile review): token expiry arithmetic. Each test failed before its fix.
//!
//! A token reply with an absurd `expires_in` (1e300, u64::MAX) overflowed `unix_now() + expires_in`: a
//! panic in debug builds (through the C API: FIO_ERR_PANIC and a poisoned client) and, with release's
//! wrapping arithmetic, an expiry in the past, so every call refreshed first. A huge refresh margin
//! (Rust API) overflowed the same way on every authenticated call.

mod common;

use std::time::Duration;

use common::Emulator;
use frameio_c2c::unix_now;
use serde_json::json;

/// A token reply whose `expires_in` is absurdly large is accepted without a panic, and the token is
/// not treated as already expired (which would refresh before every call).
#[test]
fn absurd_expires_in_neither_panics_nor_expires_the_token() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    for expires_in in ["1e300", "18446744073709551615", "1.7976931348623157e308"] {
        let body = format!(
            r#"{{"access_token":"at-x","refresh_token":"rt-x","expires_in":{expires_in},"token_type":"Bearer"}}"#
        );
        emu.fault(json!({"target": "api", "path_prefix": "/v2/auth/token", "count": 1, "status": 200,
            "headers": {"content-type": "application/json"}, "body": body}));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| client.refresh()));
        let r = r.unwrap_or_else(|_| panic!("refresh panicked on expires_in {expires_in}"));
        r.unwrap_or_else(|e| panic!("refresh with expires_in {expires_in}: {e}"));
        let t = client.tokens().expect("tokens");
        assert_eq!(t.access_token.expose(), "at-x");
        assert!(
            t.expires_at > unix_now() + 3600,
            "expires_in {expires_in} gave expires_at {} (now {}): the token counts as expired",
            t.expires_at,
            unix_now()
        );
    }
}

/// A refresh margin of "forever" (Rust API: any Duration) means "always refresh first", not an
/// arithmetic overflow on every authenticated call.
#[test]
fn huge_refresh_margin_does_not_overflow() {
    let emu = Emulator::start();
    let client = frameio_c2c::Client::new(emu.config().with_refresh_margin(Duration::MAX)).unwrap();
    emu.pair(&client);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| client.device_info()));
    r.expect("device_info panicked with refresh_margin = Duration::MAX").expect("device_info");
}

/// Stopping the background heartbeat (also what fio_client_free does) returns promptly even while the
/// heartbeat waits out a long `Retry-After` in its retry loop.
#[test]
fn stop_heartbeat_does_not_wait_out_a_retry_after() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    emu.fault(json!({"target": "api", "path_prefix": "/v2/devices/heartbeat", "count": 100, "status": 503,
        "headers": {"retry-after": "25"}}));
    client.start_heartbeat_unclamped(Duration::from_millis(50)).unwrap();
    let started = std::time::Instant::now();
    while !emu.requests_to(None, "/v2/devices/heartbeat").iter().any(|r| r["status"] == 503) {
        assert!(started.elapsed() < Duration::from_secs(20), "no heartbeat reached the emulator");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200)); // the heartbeat now waits out Retry-After: 25
    let t = std::time::Instant::now();
    client.stop_heartbeat();
    assert!(t.elapsed() < Duration::from_secs(3), "stop_heartbeat took {:?}", t.elapsed());
}

/// Without a refresh token (scope without `offline`), an access token inside the refresh margin is
/// still valid: calls use it until it expires instead of failing with PAIRING_REQUIRED early.
#[test]
fn token_without_refresh_token_is_used_until_it_expires() {
    let emu = Emulator::start();
    let mut cfg = emu.config().with_refresh_margin(Duration::from_secs(10 * 3600));
    cfg.scope = "asset_create".into();
    let client = frameio_c2c::Client::new(cfg).unwrap();
    emu.pair(&client);
    let t = client.tokens().unwrap();
    assert!(t.refresh_token.is_empty(), "no refresh token without the offline scope");
    assert!(t.expires_at > unix_now(), "a valid access token");
    client.device_info().expect("device_info with a valid access token inside the refresh margin");
}

/// RFC 6749 section 6: a refresh reply may omit `refresh_token` (the server did not rotate it); the client
/// then keeps the one it has. Dropping it un-paired the device once the new access token expired.
#[test]
fn refresh_reply_without_refresh_token_keeps_the_old_one() {
    let emu = Emulator::start();
    let client = emu.paired_client();
    let old = client.tokens().unwrap();
    assert!(!old.refresh_token.is_empty());
    emu.fault(json!({"target": "api", "path_prefix": "/v2/auth/token", "count": 1, "status": 200,
        "headers": {"content-type": "application/json"},
        "body": r#"{"access_token":"at-new","expires_in":28800,"token_type":"Bearer"}"#}));
    client.refresh().unwrap();
    let t = client.tokens().unwrap();
    assert_eq!(t.access_token.expose(), "at-new");
    assert_eq!(t.refresh_token.expose(), old.refresh_token.expose(), "the refresh token was dropped");
}
