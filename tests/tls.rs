//! TLS is verified by default (issue 5): against `fio-emulator --tls`, a client without the emulator's
//! CA is refused with FIO_ERR_TLS and sends nothing; one that trusts a different CA is refused too; with
//! the CA (added to the built-in roots) pairing and a part upload work. Plain http:// is refused unless
//! the config allows it, for the base URL and for presigned upload URLs.

mod common;

use std::time::{Duration, Instant};

use common::{sha256_hex, test_bytes, Emulator, SECRET};
use frameio_c2c::{AssetParams, Client, Config, ErrorKind, PartBody, PartSpec, RetryPolicy};

fn tls_emulator() -> Emulator {
    let emu = Emulator::builder().arg("--tls").start();
    assert!(emu.api.starts_with("https://"), "{}", emu.api);
    assert!(emu.ca_cert.is_some());
    emu
}

/// A config for `emu` with HTTPS only and no extra CA.
fn strict_config(emu: &Emulator) -> Config {
    Config::new(common::unique("unit"), SECRET).with_base_url(emu.api.clone()).with_client_version("1.2.3").with_retry(
        RetryPolicy {
            max_attempts: 3,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(100),
            deadline: Some(Duration::from_secs(10)),
        },
    )
}

fn rt_params() -> AssetParams {
    AssetParams {
        name: Some("tls.mp4".into()),
        filetype: "video/mp4".into(),
        realtime: true,
        offset: Some(0),
        ..Default::default()
    }
}

#[test]
fn without_the_ca_the_client_is_refused_with_the_tls_status() {
    let emu = tls_emulator();
    let client = Client::new(strict_config(&emu)).unwrap();
    emu.clear_requests();
    let t0 = Instant::now();
    let e = client.pairing_start().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tls, "{e}");
    assert_eq!(e.status(), 6, "FIO_ERR_TLS");
    assert!(!e.is_retryable(), "a certificate error is not retried");
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(!e.message.contains(SECRET));
    // The handshake failed before any HTTP request reached the emulator.
    assert!(emu.requests().is_empty(), "{:?}", emu.requests());
    eprintln!("no CA: {e}");
}

#[test]
fn a_different_ca_is_refused_too() {
    let emu = tls_emulator();
    let other = tls_emulator();
    let pem = std::fs::read(other.ca_cert.as_ref().unwrap()).unwrap();
    let client = Client::new(strict_config(&emu).with_extra_ca_pem(pem)).unwrap();
    let e = client.pairing_start().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tls, "{e}");
    assert!(emu.requests().is_empty());
}

#[test]
fn with_the_ca_pairing_and_upload_work() {
    let emu = tls_emulator();
    let pem = std::fs::read(emu.ca_cert.as_ref().unwrap()).unwrap();
    let client = Client::new(strict_config(&emu).with_extra_ca_pem(pem)).unwrap();
    emu.pair(&client);
    client.device_info().unwrap();
    let data = test_bytes(3 * 1024 * 1024 + 7, 31);
    let a = client.create_asset(&rt_params()).unwrap();
    let urls = client
        .register_parts(
            &a.id,
            &[PartSpec { number: 1, size: data.len() as u64, is_final: true }],
            None,
            Some(data.len() as u64),
        )
        .unwrap();
    assert!(urls[0].starts_with("https://"), "presigned URLs are HTTPS too");
    client.put_part(&urls[0], PartBody::Bytes(&data), "video/mp4", None).unwrap();
    let st = emu.asset(&a.id);
    assert_eq!(st["state"], "uploaded");
    assert_eq!(st["sha256"], sha256_hex(&data));
}

#[test]
fn plain_http_is_refused_unless_allowed() {
    // Base URL: refused when the client is built, before any network access.
    let e = Client::new(Config::new("unit", SECRET).with_base_url("http://127.0.0.1:9").with_client_version("1.2.3"))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e}");
    assert!(e.message.contains("http://"), "{e}");
    assert!(Client::new(
        Config::new("unit", SECRET)
            .with_base_url("http://127.0.0.1:9")
            .with_client_version("1.2.3")
            .with_allow_http(true)
    )
    .is_ok());

    // Upload URLs: an HTTPS-only client refuses a plain http:// presigned URL and sends nothing.
    let plain = Emulator::start();
    let allowed = plain.paired_client();
    let a = allowed.create_asset(&rt_params()).unwrap();
    let urls =
        allowed.register_parts(&a.id, &[PartSpec { number: 1, size: 10, is_final: true }], None, Some(10)).unwrap();
    assert!(urls[0].starts_with("http://"));
    let tls = tls_emulator();
    let pem = std::fs::read(tls.ca_cert.as_ref().unwrap()).unwrap();
    let strict = Client::new(strict_config(&tls).with_extra_ca_pem(pem)).unwrap();
    plain.clear_requests();
    let e = strict.put_part(&urls[0], PartBody::Bytes(b"0123456789"), "video/mp4", None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e}");
    assert!(!e.message.contains("X-Amz-Signature="), "{e}");
    assert!(plain.requests().is_empty(), "a refused URL must not be contacted");

    // HTTPS to a port that speaks plain HTTP fails fast with a TLS or network status, no hang.
    let mut cfg = strict_config(&plain);
    cfg.base_url = plain.api.replace("http://", "https://");
    let client = Client::new(cfg).unwrap();
    let t0 = Instant::now();
    let e = client.pairing_start().unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Tls | ErrorKind::Network), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(5));
}
