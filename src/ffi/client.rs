//! `fio_client`, tokens, pairing, device info and heartbeat.

use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::config::fio_config;
use super::{fio_status, guard, guard_value, into_raw_string, req_out, req_str, to_c_string};
use crate::auth::{Pairing, Tokens};
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};

/// Opaque client. Create with fio_client_new, free with fio_client_free.
///
/// Thread safety: a client is safe to share between threads; every function taking a `fio_client *`
/// may be called concurrently from any number of threads (they share one connection pool and one token
/// store; token refresh is single-flight). Only fio_client_free must not race with other calls on the
/// same client.
pub struct fio_client {
    pub(crate) client: Client,
    pub(crate) poisoned: AtomicBool,
}

/// Run `f` on the client behind `ptr` inside the panic boundary; a panic poisons the handle.
pub(crate) fn with_client(ptr: *const fio_client, f: impl FnOnce(&Client) -> Result<()>) -> fio_status {
    guard(|| {
        // SAFETY: the caller passes a pointer from fio_client_new (or NULL, rejected here).
        let h = unsafe { ptr.as_ref() }.ok_or_else(|| Error::null("client"))?;
        if h.poisoned.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorKind::Panic, "client is unusable after an internal panic; free it"));
        }
        match catch_unwind(AssertUnwindSafe(|| f(&h.client))) {
            Ok(r) => r,
            Err(p) => {
                h.poisoned.store(true, Ordering::SeqCst);
                resume_unwind(p)
            }
        }
    })
}

/// Create a client from `config` (copied; the config may be freed afterwards) and write it to `*out`.
/// Checks the config: client_id and client_secret set, client version semver, base URL https (unless
/// allowed), CA PEM parses. No network access. Errors: NULL_ARGUMENT, INVALID_ARGUMENT.
/// Free the client with fio_client_free.
#[no_mangle]
pub unsafe extern "C" fn fio_client_new(config: *const fio_config, out: *mut *mut fio_client) -> fio_status {
    guard(|| {
        let cfg = config.as_ref().ok_or_else(|| Error::null("config"))?;
        req_out(out, "out")?;
        let client = Client::new(cfg.cfg.clone())?;
        *out = Box::into_raw(Box::new(fio_client { client, poisoned: AtomicBool::new(false) }));
        Ok(())
    })
}

/// Free a client: stops its background heartbeat (waiting for the thread to end, so no callback of this
/// client runs after it returns, unless an upload made from it is still alive), wipes its tokens and
/// closes its connections. NULL is a no-op. No other call may use the client during or after this.
#[no_mangle]
pub unsafe extern "C" fn fio_client_free(client: *mut fio_client) {
    guard_value((), || {
        if client.is_null() {
            return;
        }
        let b = Box::from_raw(client);
        b.client.stop_heartbeat();
        drop(b);
    })
}

/// Install tokens saved earlier (at boot). `expires_at` is the access token's expiry in seconds since
/// the Unix epoch (0 = unknown). The strings are copied. The token callback is not called.
/// Errors: NULL_ARGUMENT, BAD_UTF8, INVALID_ARGUMENT (empty access token).
#[no_mangle]
pub unsafe extern "C" fn fio_client_set_tokens(
    client: *const fio_client,
    access_token: *const c_char,
    refresh_token: *const c_char,
    expires_at: u64,
) -> fio_status {
    with_client(client, |c| {
        let a = req_str(access_token, "access_token")?;
        let r = req_str(refresh_token, "refresh_token")?;
        if a.is_empty() {
            return Err(Error::invalid("access_token must not be empty"));
        }
        c.set_tokens(Tokens::new(a, r, expires_at));
        Ok(())
    })
}

/// Copy the current tokens out so firmware can persist them: `*access_token` and `*refresh_token` are
/// new strings to free with fio_string_free; `*expires_at` (may be NULL) gets the expiry. Errors:
/// NULL_ARGUMENT, PAIRING_REQUIRED (no tokens). Nothing is written on error.
#[no_mangle]
pub unsafe extern "C" fn fio_client_get_tokens(
    client: *const fio_client,
    access_token: *mut *mut c_char,
    refresh_token: *mut *mut c_char,
    expires_at: *mut u64,
) -> fio_status {
    with_client(client, |c| {
        req_out(access_token, "access_token")?;
        req_out(refresh_token, "refresh_token")?;
        let t =
            c.tokens().ok_or_else(|| Error::new(ErrorKind::PairingRequired, "no tokens: the device is not paired"))?;
        *access_token = into_raw_string(t.access_token.expose());
        *refresh_token = into_raw_string(t.refresh_token.expose());
        if !expires_at.is_null() {
            *expires_at = t.expires_at;
        }
        Ok(())
    })
}

/// Forget the tokens locally (without revoking them). Errors: NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn fio_client_clear_tokens(client: *const fio_client) -> fio_status {
    with_client(client, |c| {
        c.clear_tokens();
        Ok(())
    })
}

/// Refresh the access token now. Single-flight: concurrent callers (and automatic refreshes on 401 or
/// near expiry) share one exchange. The new pair reaches the token callback before anything uses it.
/// Errors: PAIRING_REQUIRED (refresh token rejected, reused or revoked; the tokens are cleared),
/// NETWORK/TIMEOUT/SERVER_ERROR (tokens kept), INVALID_CLIENT, NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn fio_client_refresh(client: *const fio_client) -> fio_status {
    with_client(client, |c| c.refresh())
}

/// Revoke the refresh token at Frame.io (un-pair the device) and forget the tokens.
/// Errors: PAIRING_REQUIRED (no tokens), network and HTTP errors.
#[no_mangle]
pub unsafe extern "C" fn fio_client_revoke(client: *const fio_client) -> fio_status {
    with_client(client, |c| c.revoke())
}

// ---------------------------------------------------------------------------------------------------------
// Pairing

/// Opaque pairing in progress. Free with fio_pairing_free. Its accessors and fio_pairing_cancel may be
/// called from any thread while another thread runs fio_pairing_wait on it.
pub struct fio_pairing {
    pairing: Pairing,
    user_code: CString,
    verification_uri: CString,
    verification_uri_complete: Option<CString>,
    name: CString,
}

/// Start pairing: request a device code and write the pairing to `*out`. Show the six-digit
/// fio_pairing_user_code and fio_pairing_verification_uri (or a QR code of
/// fio_pairing_verification_uri_complete). Then call fio_pairing_wait (or fio_pairing_poll every
/// fio_pairing_interval_ms). Errors: INVALID_CLIENT (wrong client secret), NETWORK, TIMEOUT, PROTOCOL...
#[no_mangle]
pub unsafe extern "C" fn fio_pairing_start(client: *const fio_client, out: *mut *mut fio_pairing) -> fio_status {
    with_client(client, |c| {
        req_out(out, "out")?;
        let p = c.pairing_start()?;
        let h = fio_pairing {
            user_code: to_c_string(&p.user_code),
            verification_uri: to_c_string(&p.verification_uri),
            verification_uri_complete: p.verification_uri_complete.as_deref().map(to_c_string),
            name: to_c_string(&p.name),
            pairing: p,
        };
        *out = Box::into_raw(Box::new(h));
        Ok(())
    })
}

/// The code the user types into Frame.io. Valid until fio_pairing_free; NULL if `pairing` is NULL.
#[no_mangle]
pub unsafe extern "C" fn fio_pairing_user_code(pairing: *const fio_pairing) -> *const c_char {
    guard_value(std::ptr::null(), || pairing.as_ref().map_or(std::ptr::null(), |p| p.user_code.as_ptr()))
}

/// Where the user enters the code. Valid until fio_pairing_free; NULL if `pairing` is NULL.
#[no_mangle]
pub unsafe extern "C" fn fio_pairing_verification_uri(pairing: *const fio_pairing) -> *const c_char {
    guard_value(std::ptr::null(), || pairing.as_ref().map_or(std::ptr::null(), |p| p.verification_uri.as_ptr()))
}

/// The URL with the code prefilled, for a link or QR code; NULL when the server gave none (see
/// fio_config_set_url_pairing). Valid until fio_pairing_free.
#[no_mangle]
pub unsafe extern "C" fn fio_pairing_verification_uri_complete(pairing: *const fio_pairing) -> *const c_char {
    guard_value(std::ptr::null(), || {
        pairing.as_ref().and_then(|p| p.verification_uri_complete.as_ref()).map_or(std::ptr::null(), |s| s.as_ptr())
    })
}

/// The device name the server reported (may be empty). Valid until fio_pairing_free.
#[no_mangle]
pub unsafe extern "C" fn fio_pairing_name(pairing: *const fio_pairing) -> *const c_char {
    guard_value(std::ptr::null(), || pairing.as_ref().map_or(std::ptr::null(), |p| p.name.as_ptr()))
}

/// Seconds the code stays valid, counted from fio_pairing_start (0 if `pairing` is NULL).
#[no_mangle]
pub unsafe extern "C" fn fio_pairing_expires_in(pairing: *const fio_pairing) -> u32 {
    guard_value(0, || pairing.as_ref().map_or(0, |p| p.pairing.expires_in.as_secs() as u32))
}

/// Seconds left before the code expires (0 once expired or if `pairing` is NULL).
#[no_mangle]
pub unsafe extern "C" fn fio_pairing_remaining(pairing: *const fio_pairing) -> u32 {
    guard_value(0, || pairing.as_ref().map_or(0, |p| p.pairing.remaining().as_secs() as u32))
}

/// Current polling interval in milliseconds (grows by 5000 after each FIO_ERR_SLOW_DOWN).
#[no_mangle]
pub unsafe extern "C" fn fio_pairing_interval_ms(pairing: *const fio_pairing) -> u32 {
    guard_value(0, || pairing.as_ref().map_or(0, |p| p.pairing.interval().as_millis().min(u32::MAX as u128) as u32))
}

/// Poll once. FIO_OK: paired; the tokens are installed in the client (and were given to the token
/// callback). FIO_ERR_AUTHORIZATION_PENDING: not yet, poll again after fio_pairing_interval_ms.
/// FIO_ERR_SLOW_DOWN: polled too fast (the interval grew). FIO_ERR_CODE_EXPIRED: start again (no request
/// is sent once the code has expired). FIO_ERR_CANCELLED after fio_pairing_cancel.
#[no_mangle]
pub unsafe extern "C" fn fio_pairing_poll(client: *const fio_client, pairing: *const fio_pairing) -> fio_status {
    with_client(client, |c| {
        let p = pairing.as_ref().ok_or_else(|| Error::null("pairing"))?;
        c.pairing_poll(&p.pairing).map(|_| ())
    })
}

/// Poll until paired (FIO_OK; tokens installed), the code expires (FIO_ERR_CODE_EXPIRED), or
/// fio_pairing_cancel is called from another thread (FIO_ERR_CANCELLED: within about 20 ms between polls;
/// a poll already on the wire is not interrupted, so while the server is slow to answer it, up to the
/// request timeout of fio_config_set_timeouts, 30 s by default). Honours the interval and slow_down;
/// transient network errors are logged and polling goes on. Blocks the calling thread.
#[no_mangle]
pub unsafe extern "C" fn fio_pairing_wait(client: *const fio_client, pairing: *const fio_pairing) -> fio_status {
    with_client(client, |c| {
        let p = pairing.as_ref().ok_or_else(|| Error::null("pairing"))?;
        c.pairing_wait(&p.pairing).map(|_| ())
    })
}

/// Cancel a fio_pairing_wait running on any thread (it returns FIO_ERR_CANCELLED); later polls on this
/// pairing also return FIO_ERR_CANCELLED. Async-signal-safe (sets an atomic flag). NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fio_pairing_cancel(pairing: *const fio_pairing) {
    guard_value((), || {
        if let Some(p) = pairing.as_ref() {
            p.pairing.cancel();
        }
    })
}

/// Free a pairing. NULL is a no-op. It must not be in use by fio_pairing_wait on another thread (cancel
/// it and let the wait return first).
#[no_mangle]
pub unsafe extern "C" fn fio_pairing_free(pairing: *mut fio_pairing) {
    guard_value((), || {
        if !pairing.is_null() {
            drop(Box::from_raw(pairing));
        }
    })
}

// ---------------------------------------------------------------------------------------------------------
// Device

/// GET /v2/devices/me: write the device's JSON description (project, status, scopes...) to `*json_out`,
/// a new string to free with fio_string_free. Errors: PAIRING_REQUIRED, UNAUTHORIZED, NETWORK, ...
#[no_mangle]
pub unsafe extern "C" fn fio_device_info(client: *const fio_client, json_out: *mut *mut c_char) -> fio_status {
    with_client(client, |c| {
        req_out(json_out, "json_out")?;
        let info = c.device_info()?;
        *json_out = into_raw_string(&info.json);
        Ok(())
    })
}

/// POST /v2/devices/heartbeat once: marks the device online. Errors: PAIRING_REQUIRED, UNAUTHORIZED, ...
#[no_mangle]
pub unsafe extern "C" fn fio_heartbeat(client: *const fio_client) -> fio_status {
    with_client(client, |c| c.heartbeat())
}

/// Start (or re-time) a background thread sending a heartbeat every `interval_seconds`, clamped to
/// 60..300 as Frame.io asks (0 means 120). Failures are logged, not reported. It stops with
/// fio_heartbeat_stop or fio_client_free. Errors: NULL_ARGUMENT, IO (thread could not start).
#[no_mangle]
pub unsafe extern "C" fn fio_heartbeat_start(client: *const fio_client, interval_seconds: u32) -> fio_status {
    with_client(client, |c| {
        let s = if interval_seconds == 0 { 120 } else { interval_seconds };
        c.start_heartbeat(Duration::from_secs(s as u64))
    })
}

/// Stop the background heartbeat, waiting for its thread to end. No-op when it is not running.
/// Errors: NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn fio_heartbeat_stop(client: *const fio_client) -> fio_status {
    with_client(client, |c| {
        c.stop_heartbeat();
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::ffi::{fio_last_error_status, FIO_ERR_PANIC};

    #[test]
    fn a_panic_poisons_the_client() {
        let client = Client::new(Config::new("unit", "secret")).unwrap();
        let h = Box::into_raw(Box::new(fio_client { client, poisoned: AtomicBool::new(false) }));
        assert_eq!(with_client(h, |_| Ok(())), crate::ffi::FIO_OK);
        assert_eq!(with_client(h, |_| panic!("boom")), FIO_ERR_PANIC);
        assert_eq!(fio_last_error_status(), FIO_ERR_PANIC);
        // Every later call on this handle fails without running.
        let mut ran = false;
        assert_eq!(
            with_client(h, |_| {
                ran = true;
                Ok(())
            }),
            FIO_ERR_PANIC
        );
        assert!(!ran);
        unsafe { fio_client_free(h) };
        assert_eq!(with_client(std::ptr::null(), |_| Ok(())), crate::ffi::FIO_ERR_NULL_ARGUMENT);
    }
}
