//! An early refresh (inside the refresh margin) that fails for a reason other than the credentials
//! leaves the still-valid access token in use.

mod common;
use common::Emulator;
use frameio_c2c::ErrorKind;
use serde_json::json;
use std::time::Duration;

#[test]
fn early_refresh_answered_by_a_proxy_page_keeps_the_valid_token() {
    let emu = Emulator::builder().auto_approve().args(&["--access-token-ttl", "600"]).start();
    // A margin longer than the token's life: every call tries an early refresh first.
    let client = frameio_c2c::Client::new(emu.config().with_refresh_margin(Duration::from_secs(3600))).unwrap();
    emu.pair(&client);
    let before = client.tokens().unwrap();
    emu.fault(json!({"target": "api", "method": "POST", "path_prefix": "/v2/auth/token", "count": 100,
        "status": 200, "headers": {"content-type": "text/html"}, "body": "<html><body>Sign in to the hotel Wi-Fi</body></html>"}));
    client.heartbeat().expect("the current token still works");
    let info = client.device_info().expect("the current token still works");
    assert!(!info.json.is_empty());
    assert_eq!(client.tokens().unwrap().refresh_token.expose(), before.refresh_token.expose(), "tokens kept");
    assert!(!emu.requests_to(Some("POST"), "/v2/auth/token").is_empty(), "an early refresh was attempted");
}

#[test]
fn early_refresh_refused_for_the_credentials_still_fails() {
    let emu = Emulator::builder().auto_approve().args(&["--access-token-ttl", "600"]).start();
    let client = frameio_c2c::Client::new(emu.config().with_refresh_margin(Duration::from_secs(3600))).unwrap();
    emu.pair(&client);
    emu.fault(json!({"target": "api", "method": "POST", "path_prefix": "/v2/auth/token", "count": 100,
        "status": 400, "headers": {"content-type": "application/json"}, "body": "{\"error\":\"invalid_request\"}"}));
    let e = client.heartbeat().expect_err("a refused refresh token means pairing again");
    assert_eq!(e.kind, ErrorKind::PairingRequired, "{e}");
}
