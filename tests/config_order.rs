//! Config setters work in any order, and a connection failure names the server it tried.

use std::ffi::{CStr, CString};
use std::ptr;

use frameio_c2c::ffi::client::{fio_client_free, fio_client_new};
use frameio_c2c::ffi::config::*;
use frameio_c2c::ffi::*;

fn last_message() -> String {
    let mut buf = vec![0u8; 512];
    unsafe { fio_last_error_message(buf.as_mut_ptr().cast(), buf.len()) };
    unsafe { CStr::from_ptr(buf.as_ptr().cast()) }.to_string_lossy().into_owned()
}

fn config(url: &str, allow_http_first: Option<bool>) -> *mut fio_config {
    let cfg = fio_config_new();
    let id = CString::new("order-test").unwrap();
    let secret = CString::new("s").unwrap();
    let url = CString::new(url).unwrap();
    unsafe {
        assert_eq!(fio_config_set_client_id(cfg, id.as_ptr()), FIO_OK);
        assert_eq!(fio_config_set_client_secret(cfg, secret.as_ptr()), FIO_OK);
        if allow_http_first == Some(true) {
            assert_eq!(fio_config_set_allow_http(cfg, true), FIO_OK);
        }
        assert_eq!(fio_config_set_base_url(cfg, url.as_ptr()), FIO_OK, "{}", last_message());
        if allow_http_first == Some(false) {
            assert_eq!(fio_config_set_allow_http(cfg, true), FIO_OK);
        }
    }
    cfg
}

#[test]
fn allow_http_before_or_after_base_url() {
    for order in [Some(true), Some(false)] {
        let cfg = config("http://127.0.0.1:9", order);
        let mut client = ptr::null_mut();
        assert_eq!(unsafe { fio_client_new(cfg, &mut client) }, FIO_OK, "{order:?}: {}", last_message());
        unsafe {
            fio_client_free(client);
            fio_config_free(cfg);
        }
    }
}

#[test]
fn plain_http_without_allow_http_is_refused_at_client_new() {
    let cfg = config("http://127.0.0.1:9", None);
    let mut client = ptr::null_mut();
    assert_eq!(unsafe { fio_client_new(cfg, &mut client) }, FIO_ERR_INVALID_ARGUMENT);
    assert!(client.is_null());
    assert!(last_message().contains("allow_http"), "{}", last_message());
    unsafe { fio_config_free(cfg) };
}

#[test]
fn malformed_base_url_is_refused_by_the_setter() {
    let cfg = fio_config_new();
    let bad = CString::new("ftp://example").unwrap();
    assert_eq!(unsafe { fio_config_set_base_url(cfg, bad.as_ptr()) }, FIO_ERR_INVALID_ARGUMENT);
    unsafe { fio_config_free(cfg) };
}

#[test]
fn connection_failure_names_the_server() {
    // A port nobody listens on (bound, then closed): connection refused, on loopback.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let cfg = config(&url, Some(true));
    unsafe { fio_config_set_retry(cfg, 1, 1, 1, 1000) };
    let mut client = ptr::null_mut();
    assert_eq!(unsafe { fio_client_new(cfg, &mut client) }, FIO_OK);
    let mut pairing = ptr::null_mut();
    let st = unsafe { frameio_c2c::ffi::client::fio_pairing_start(client, &mut pairing) };
    assert_eq!(st, FIO_ERR_NETWORK, "{}", last_message());
    let msg = last_message();
    assert!(msg.contains(&format!("http://127.0.0.1:{port}/v2/auth/device/code")), "{msg}");
    assert_eq!(msg.matches("/v2/auth/device/code").count(), 1, "{msg}");
    unsafe {
        fio_client_free(client);
        fio_config_free(cfg);
    }
}
