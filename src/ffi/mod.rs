//! The C ABI: the ONLY place with `extern "C"`. Handles, argument checks, the panic boundary, status
//! mapping, strings and callbacks. Nothing here knows HTTP.
//!
//! Conventions (design.md section 4):
//! - every export runs inside `guard` (or `guard_value`): a panic becomes `FIO_ERR_PANIC` and, for a
//!   client, poisons the handle;
//! - every pointer is checked; out-params are written only on success;
//! - strings the library returns are freed with `fio_string_free`; objects with their `_free`, which
//!   accepts NULL;
//! - the calling thread's last error (status, message, HTTP status, server code) is kept for
//!   `fio_last_error_*`.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{Error, ErrorKind, Result};

pub mod assets;
pub mod client;
pub mod config;
pub mod upload;

/// A status code. `FIO_OK` (0) is success; every other value is one of the `FIO_ERR_*` codes below.
/// Codes are stable and never reused. `fio_status_str` gives static text for each.
pub type fio_status = i32;

/// Success.
pub const FIO_OK: fio_status = 0;
/// A required pointer argument was NULL.
pub const FIO_ERR_NULL_ARGUMENT: fio_status = 1;
/// An argument is out of range or malformed (checked before any request is sent).
pub const FIO_ERR_INVALID_ARGUMENT: fio_status = 2;
/// A string argument is not valid UTF-8.
pub const FIO_ERR_BAD_UTF8: fio_status = 3;
/// Network error: connection refused, reset or closed, DNS failure (retried before it is returned).
pub const FIO_ERR_NETWORK: fio_status = 4;
/// A deadline passed (connect, send, receive, overall), or S3 RequestTimeout.
pub const FIO_ERR_TIMEOUT: fio_status = 5;
/// TLS handshake or certificate verification failed.
pub const FIO_ERR_TLS: fio_status = 6;
/// HTTP 400 from the API: the request was rejected (not retried).
pub const FIO_ERR_BAD_REQUEST: fio_status = 7;
/// HTTP 401 that a token refresh did not cure.
pub const FIO_ERR_UNAUTHORIZED: fio_status = 8;
/// No usable tokens: the refresh token was rejected, reused or revoked, or none were set. Pair again.
pub const FIO_ERR_PAIRING_REQUIRED: fio_status = 9;
/// HTTP 404 (the asset is gone; may come from a proxy).
pub const FIO_ERR_NOT_FOUND: fio_status = 10;
/// HTTP 409 Channel Paused: media recorded while paused; do not retry this file.
pub const FIO_ERR_CHANNEL_PAUSED: fio_status = 11;
/// HTTP 429 (or S3 SlowDown) still failing after the retries.
pub const FIO_ERR_RATE_LIMITED: fio_status = 12;
/// HTTP 5xx still failing after the retries.
pub const FIO_ERR_SERVER_ERROR: fio_status = 13;
/// S3 answered 403 to a part PUT (URL expired or signature rejected): register the part again.
pub const FIO_ERR_URL_EXPIRED: fio_status = 14;
/// Another S3 error (see the message for its code).
pub const FIO_ERR_S3: fio_status = 15;
/// The reply could not be understood (malformed JSON, an HTML page from a proxy, missing fields).
pub const FIO_ERR_PROTOCOL: fio_status = 16;
/// Local I/O error (reading the part's file failed or it is shorter than the length given).
pub const FIO_ERR_IO: fio_status = 17;
/// Cancelled (a cancel call, or a callback returned non-zero).
pub const FIO_ERR_CANCELLED: fio_status = 18;
/// A limit was exceeded.
pub const FIO_ERR_LIMIT_EXCEEDED: fio_status = 19;
/// The object is in the wrong state for this call.
pub const FIO_ERR_WRONG_STATE: fio_status = 20;
/// A panic was caught inside the library; the handle is poisoned and must be freed.
pub const FIO_ERR_PANIC: fio_status = 21;
/// Pairing: the user has not entered the code yet; poll again after the interval.
pub const FIO_ERR_AUTHORIZATION_PENDING: fio_status = 22;
/// Pairing: polling too fast; the pairing's interval was increased by 5 s.
pub const FIO_ERR_SLOW_DOWN: fio_status = 23;
/// Pairing: the code expired; call fio_pairing_start again and show the new code.
pub const FIO_ERR_CODE_EXPIRED: fio_status = 24;
/// The caller's buffer was too small; the output was truncated (still NUL-terminated).
pub const FIO_ERR_BUFFER_TOO_SMALL: fio_status = 25;
/// The server rejected the client id/secret (invalid_client): a configuration error.
pub const FIO_ERR_INVALID_CLIENT: fio_status = 26;
/// An HTTP status the API does not document for this call (3xx, 403, 405, ...).
pub const FIO_ERR_HTTP_STATUS: fio_status = 27;

/// Major version of the library (equal to Cargo.toml; a test checks).
pub const FIO_VERSION_MAJOR: u32 = 0;
/// Minor version of the library.
pub const FIO_VERSION_MINOR: u32 = 1;
/// Patch version of the library.
pub const FIO_VERSION_PATCH: u32 = 0;

/// "No size given" for optional `uint64_t` sizes (e.g. `asset_filesize` of fio_register_parts).
pub const FIO_SIZE_NONE: u64 = u64::MAX;

pub(crate) fn kind_from_status(s: fio_status) -> Option<ErrorKind> {
    ErrorKind::from_status(s)
}

// ---------------------------------------------------------------------------------------------------------
// Last error (thread-local)

#[derive(Default)]
struct LastError {
    status: fio_status,
    message: String,
    http_status: u16,
    server_code: String,
    retryable: bool,
}

thread_local! {
    static LAST_ERROR: RefCell<LastError> = RefCell::new(LastError::default());
}

pub(crate) fn clear_last_error() {
    LAST_ERROR.with(|l| *l.borrow_mut() = LastError::default());
}

pub(crate) fn set_last_error(e: &Error) {
    let message = crate::http::scrub_urls(&e.to_string()).replace('\0', " ");
    LAST_ERROR.with(|l| {
        *l.borrow_mut() = LastError {
            status: e.status(),
            message,
            http_status: e.http_status.unwrap_or(0),
            server_code: e.server_code.clone().unwrap_or_default().replace('\0', " "),
            retryable: e.is_retryable(),
        }
    });
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("internal panic: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("internal panic: {s}")
    } else {
        "internal panic".to_string()
    }
}

/// The panic boundary for status-returning exports: clears the thread's last error, runs `f`, records
/// its error, turns a panic into `FIO_ERR_PANIC`.
pub(crate) fn guard(f: impl FnOnce() -> Result<()>) -> fio_status {
    clear_last_error();
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => FIO_OK,
        Ok(Err(e)) => {
            set_last_error(&e);
            e.status()
        }
        Err(p) => {
            set_last_error(&Error::new(ErrorKind::Panic, panic_message(&*p)));
            FIO_ERR_PANIC
        }
    }
}

/// The panic boundary for exports that return a value (accessors, constructors, free): a panic gives
/// `default`. Does not touch the last error unless it panics.
pub(crate) fn guard_value<T>(default: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(p) => {
            set_last_error(&Error::new(ErrorKind::Panic, panic_message(&*p)));
            default
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Argument helpers

/// A required C string argument.
pub(crate) unsafe fn req_str<'a>(p: *const c_char, what: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::null(what));
    }
    CStr::from_ptr(p).to_str().map_err(|_| Error::new(ErrorKind::BadUtf8, format!("{what} is not valid UTF-8")))
}

/// An optional C string argument (NULL = None).
pub(crate) unsafe fn opt_str<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        req_str(p, what).map(Some)
    }
}

/// A required out-pointer.
pub(crate) fn req_out<T>(p: *mut T, what: &str) -> Result<()> {
    if p.is_null() {
        Err(Error::null(what))
    } else {
        Ok(())
    }
}

/// A heap C string for the caller (free with fio_string_free). Interior NULs become spaces.
/// One allocation of the exact size: tokens pass through here, and a growing intermediate copy would be
/// freed without being wiped (tests/secrets.rs checks freed memory).
pub(crate) fn to_c_string(s: &str) -> CString {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend(s.bytes().map(|b| if b == 0 { b' ' } else { b }));
    // SAFETY: interior NULs were replaced above; the capacity already has room for the terminator.
    unsafe { CString::from_vec_unchecked(v) }
}

pub(crate) fn into_raw_string(s: &str) -> *mut c_char {
    to_c_string(s).into_raw()
}

/// Copy a string into a caller buffer of `len` bytes (NUL-terminated, truncated if needed).
unsafe fn copy_out(s: &str, buf: *mut c_char, len: usize) -> fio_status {
    if buf.is_null() {
        return if len == 0 { FIO_ERR_BUFFER_TOO_SMALL } else { FIO_ERR_NULL_ARGUMENT };
    }
    if len == 0 {
        return FIO_ERR_BUFFER_TOO_SMALL;
    }
    let bytes = s.as_bytes();
    let mut n = bytes.len().min(len - 1);
    // Do not cut a UTF-8 sequence in half.
    while n > 0 && n < bytes.len() && (bytes[n] & 0xC0) == 0x80 {
        n -= 1;
    }
    std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf as *mut u8, n);
    *buf.add(n) = 0;
    if n < bytes.len() {
        FIO_ERR_BUFFER_TOO_SMALL
    } else {
        FIO_OK
    }
}

/// Userdata pointer handed back to C callbacks; the caller promises it may be used from any thread.
#[derive(Clone, Copy)]
pub(crate) struct UserData(pub *mut std::ffi::c_void);
// SAFETY: the C API documents that callbacks run on library threads and userdata must allow that.
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

// ---------------------------------------------------------------------------------------------------------
// Exports: version, status, last error, strings

/// The library version as static text ("MAJOR.MINOR.PATCH"), equal to the FIO_VERSION_* macros.
/// Never NULL; do not free. Thread-safe.
#[no_mangle]
pub extern "C" fn fio_version() -> *const c_char {
    guard_value(std::ptr::null(), || concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char)
}

/// Static text for a status code ("ok" for FIO_OK, "unknown status" for a value that is not a code).
/// Never NULL; do not free. Thread-safe.
#[no_mangle]
pub extern "C" fn fio_status_str(status: fio_status) -> *const c_char {
    guard_value(std::ptr::null(), || {
        let s: &'static CStr = if status == FIO_OK {
            c"ok"
        } else {
            match kind_from_status(status) {
                Some(k) => status_cstr(k),
                None => c"unknown status",
            }
        };
        s.as_ptr()
    })
}

fn status_cstr(k: ErrorKind) -> &'static CStr {
    match k {
        ErrorKind::NullArgument => c"a required argument was NULL",
        ErrorKind::InvalidArgument => c"invalid argument",
        ErrorKind::BadUtf8 => c"string argument is not valid UTF-8",
        ErrorKind::Network => c"network error (connection failed, reset or closed)",
        ErrorKind::Timeout => c"timed out",
        ErrorKind::Tls => c"TLS error (handshake or certificate verification)",
        ErrorKind::BadRequest => c"request rejected by the server (HTTP 400)",
        ErrorKind::Unauthorized => c"not authorized (HTTP 401)",
        ErrorKind::PairingRequired => c"pairing required: the device has no valid tokens",
        ErrorKind::NotFound => c"not found (HTTP 404)",
        ErrorKind::ChannelPaused => c"channel paused (HTTP 409): do not retry this file",
        ErrorKind::RateLimited => c"rate limited (HTTP 429 or S3 SlowDown)",
        ErrorKind::ServerError => c"server error (HTTP 5xx)",
        ErrorKind::UrlExpired => c"upload URL expired or rejected (S3 403): register the part again",
        ErrorKind::S3Error => c"S3 error",
        ErrorKind::Protocol => c"malformed or unexpected reply from the server",
        ErrorKind::Io => c"local I/O error",
        ErrorKind::Cancelled => c"cancelled",
        ErrorKind::LimitExceeded => c"limit exceeded",
        ErrorKind::WrongState => c"object is in the wrong state for this call",
        ErrorKind::Panic => c"internal panic (handle is no longer usable)",
        ErrorKind::AuthorizationPending => c"pairing: waiting for the user to enter the code",
        ErrorKind::SlowDown => c"pairing: polling too fast, interval increased",
        ErrorKind::CodeExpired => c"pairing: the code expired, start again",
        ErrorKind::BufferTooSmall => c"buffer too small (output truncated)",
        ErrorKind::InvalidClient => c"client credentials rejected (invalid_client)",
        ErrorKind::HttpStatus => c"unexpected HTTP status",
    }
}

/// The status of the calling thread's last failed call (FIO_OK if the last call succeeded).
/// Each status-returning call resets the thread's last error when it starts.
#[no_mangle]
pub extern "C" fn fio_last_error_status() -> fio_status {
    guard_value(FIO_ERR_PANIC, || LAST_ERROR.with(|l| l.borrow().status))
}

/// Copy the calling thread's last error message (what failed, HTTP status, server error code and
/// message; never a secret) into `buf` of `len` bytes, NUL-terminated. Empty string if the last call
/// succeeded. Returns FIO_OK, FIO_ERR_BUFFER_TOO_SMALL (truncated; see fio_last_error_length), or
/// FIO_ERR_NULL_ARGUMENT (buf NULL with len > 0). Does not change the last error.
#[no_mangle]
pub unsafe extern "C" fn fio_last_error_message(buf: *mut c_char, len: usize) -> fio_status {
    guard_value(FIO_ERR_PANIC, || LAST_ERROR.with(|l| copy_out(&l.borrow().message, buf, len)))
}

/// Length in bytes of the calling thread's last error message, without the terminating NUL.
#[no_mangle]
pub extern "C" fn fio_last_error_length() -> usize {
    guard_value(0, || LAST_ERROR.with(|l| l.borrow().message.len()))
}

/// HTTP status of the reply behind the calling thread's last error, or 0 if there was none.
#[no_mangle]
pub extern "C" fn fio_last_http_status() -> u16 {
    guard_value(0, || LAST_ERROR.with(|l| l.borrow().http_status))
}

/// Copy the server's error code behind the calling thread's last error ("invalid_client",
/// "Channel Paused", "SlowDown", ...; empty if none) into `buf` of `len` bytes, like
/// fio_last_error_message.
#[no_mangle]
pub unsafe extern "C" fn fio_last_server_code(buf: *mut c_char, len: usize) -> fio_status {
    guard_value(FIO_ERR_PANIC, || LAST_ERROR.with(|l| copy_out(&l.borrow().server_code, buf, len)))
}

/// Whether the calling thread's last error is of a transient class (network, timeout, 429, 5xx) that
/// may succeed if the caller tries again later. The library has already retried it per its policy.
#[no_mangle]
pub extern "C" fn fio_last_error_retryable() -> bool {
    guard_value(false, || LAST_ERROR.with(|l| l.borrow().retryable))
}

/// Free a string returned by the library (its contents are wiped first). NULL is a no-op.
/// Only for strings the library returned through a `char **` out-parameter.
#[no_mangle]
pub unsafe extern "C" fn fio_string_free(s: *mut c_char) {
    guard_value((), || {
        if s.is_null() {
            return;
        }
        let c = CString::from_raw(s);
        let mut bytes = c.into_bytes_with_nul();
        crate::secret::wipe_bytes(&mut bytes);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_constants_match_kinds() {
        let table = [
            (FIO_ERR_NULL_ARGUMENT, ErrorKind::NullArgument),
            (FIO_ERR_INVALID_ARGUMENT, ErrorKind::InvalidArgument),
            (FIO_ERR_BAD_UTF8, ErrorKind::BadUtf8),
            (FIO_ERR_NETWORK, ErrorKind::Network),
            (FIO_ERR_TIMEOUT, ErrorKind::Timeout),
            (FIO_ERR_TLS, ErrorKind::Tls),
            (FIO_ERR_BAD_REQUEST, ErrorKind::BadRequest),
            (FIO_ERR_UNAUTHORIZED, ErrorKind::Unauthorized),
            (FIO_ERR_PAIRING_REQUIRED, ErrorKind::PairingRequired),
            (FIO_ERR_NOT_FOUND, ErrorKind::NotFound),
            (FIO_ERR_CHANNEL_PAUSED, ErrorKind::ChannelPaused),
            (FIO_ERR_RATE_LIMITED, ErrorKind::RateLimited),
            (FIO_ERR_SERVER_ERROR, ErrorKind::ServerError),
            (FIO_ERR_URL_EXPIRED, ErrorKind::UrlExpired),
            (FIO_ERR_S3, ErrorKind::S3Error),
            (FIO_ERR_PROTOCOL, ErrorKind::Protocol),
            (FIO_ERR_IO, ErrorKind::Io),
            (FIO_ERR_CANCELLED, ErrorKind::Cancelled),
            (FIO_ERR_LIMIT_EXCEEDED, ErrorKind::LimitExceeded),
            (FIO_ERR_WRONG_STATE, ErrorKind::WrongState),
            (FIO_ERR_PANIC, ErrorKind::Panic),
            (FIO_ERR_AUTHORIZATION_PENDING, ErrorKind::AuthorizationPending),
            (FIO_ERR_SLOW_DOWN, ErrorKind::SlowDown),
            (FIO_ERR_CODE_EXPIRED, ErrorKind::CodeExpired),
            (FIO_ERR_BUFFER_TOO_SMALL, ErrorKind::BufferTooSmall),
            (FIO_ERR_INVALID_CLIENT, ErrorKind::InvalidClient),
            (FIO_ERR_HTTP_STATUS, ErrorKind::HttpStatus),
        ];
        assert_eq!(table.len(), ErrorKind::ALL.len());
        for (code, kind) in table {
            assert_eq!(code, kind.status(), "{kind:?}");
            assert_eq!(status_cstr(kind).to_str().unwrap(), kind.as_str());
        }
    }

    #[test]
    fn version_matches_cargo() {
        assert_eq!(FIO_VERSION_MAJOR.to_string(), env!("CARGO_PKG_VERSION_MAJOR"));
        assert_eq!(FIO_VERSION_MINOR.to_string(), env!("CARGO_PKG_VERSION_MINOR"));
        assert_eq!(FIO_VERSION_PATCH.to_string(), env!("CARGO_PKG_VERSION_PATCH"));
        let v = unsafe { CStr::from_ptr(fio_version()) }.to_str().unwrap();
        assert_eq!(v, env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn guard_catches_panics_and_sets_last_error() {
        let s = guard(|| panic!("boom"));
        assert_eq!(s, FIO_ERR_PANIC);
        assert_eq!(fio_last_error_status(), FIO_ERR_PANIC);
        let s = guard(|| Err(Error::invalid("nope").with_status(400)));
        assert_eq!(s, FIO_ERR_INVALID_ARGUMENT);
        assert_eq!(fio_last_http_status(), 400);
        let mut buf = [0 as c_char; 4];
        assert_eq!(unsafe { fio_last_error_message(buf.as_mut_ptr(), buf.len()) }, FIO_ERR_BUFFER_TOO_SMALL);
        let got = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
        assert_eq!(got, "nop");
        assert_eq!(guard(|| Ok(())), FIO_OK);
        assert_eq!(fio_last_error_status(), FIO_OK);
        assert_eq!(fio_last_error_length(), 0);
    }
}
