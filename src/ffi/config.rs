//! `fio_config`: built by the caller, copied into each client made from it.

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

use super::{fio_status, guard, guard_value, opt_str, req_str, to_c_string, UserData};
use crate::auth::Tokens;
use crate::config::{Config, LogLevel};
use crate::error::{Error, Result};
use crate::secret::Secret;

/// A log level: FIO_LOG_ERROR (1, most severe) ... FIO_LOG_TRACE (5).
pub type fio_log_level = i32;
/// Errors: a call failed.
pub const FIO_LOG_ERROR: fio_log_level = 1;
/// Warnings: a retry, a fallback.
pub const FIO_LOG_WARN: fio_log_level = 2;
/// Milestones: pairing, token refresh, heartbeat thread.
pub const FIO_LOG_INFO: fio_log_level = 3;
/// Each request and its outcome (URLs without their query strings).
pub const FIO_LOG_DEBUG: fio_log_level = 4;
/// Everything.
pub const FIO_LOG_TRACE: fio_log_level = 5;

/// Log callback: `message` is a NUL-terminated line valid only during the call; it never contains a
/// secret (tokens, client secret, presigned query strings are never logged). Called on whichever thread
/// logs (caller threads, the heartbeat thread, upload workers), possibly concurrently: it must be
/// thread-safe, must not block for long, must not call back into the library, and must not throw or
/// longjmp.
pub type fio_log_cb = Option<unsafe extern "C" fn(userdata: *mut c_void, level: fio_log_level, message: *const c_char)>;

/// Token callback: receives every new token pair (after pairing and after each refresh) before the
/// library uses it, so firmware can persist it atomically (refresh tokens are single-use: a lost pair
/// means pairing again). `expires_at` is the access token's expiry in seconds since the Unix epoch (0 =
/// unknown). The strings are valid only during the call. Called on the thread that obtained the tokens,
/// while the client's refresh lock is held: it must not call back into the library for this client
/// (that can deadlock), and must not throw or longjmp. Persist the pair and return.
pub type fio_token_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        access_token: *const c_char,
        refresh_token: *const c_char,
        expires_at: u64,
    ),
>;

/// Opaque configuration. Create with fio_config_new, free with fio_config_free. Not thread-safe: build it
/// on one thread. A client copies what it needs, so the config can be freed right after fio_client_new.
pub struct fio_config {
    pub(crate) cfg: Config,
}

unsafe fn cfg_mut<'a>(p: *mut fio_config) -> Result<&'a mut Config> {
    p.as_mut().map(|c| &mut c.cfg).ok_or_else(|| Error::null("config"))
}

/// A new configuration with the defaults: base URL `https://api.frame.io`, client version "0.0.0", scope
/// "asset_create offline", connect timeout 10 s, request timeout 30 s, 5 attempts with backoff 0.5-30 s
/// and a 5 minute retry deadline, HTTPS only, no proxy, no callbacks. client_id and client_secret must
/// be set before fio_client_new. Returns NULL only if the library panicked. Free with fio_config_free.
#[no_mangle]
pub extern "C" fn fio_config_new() -> *mut fio_config {
    guard_value(std::ptr::null_mut(), || Box::into_raw(Box::new(fio_config { cfg: Config::default() })))
}

/// Free a configuration (the client secret and CA data are wiped). NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fio_config_free(config: *mut fio_config) {
    guard_value((), || {
        if !config.is_null() {
            drop(Box::from_raw(config));
        }
    })
}

/// Set the API base URL (default `https://api.frame.io`). A plain http:// URL is accepted here but
/// refused by fio_client_new unless fio_config_set_allow_http(config, true) was called (in either
/// order). Errors: NULL_ARGUMENT, BAD_UTF8, INVALID_ARGUMENT (malformed URL).
#[no_mangle]
pub unsafe extern "C" fn fio_config_set_base_url(config: *mut fio_config, url: *const c_char) -> fio_status {
    guard(|| {
        let c = cfg_mut(config)?;
        let u = req_str(url, "url")?;
        // The http/https policy is checked by fio_client_new, so the setters work in any order.
        crate::config::validate_base_url(u, true)?;
        c.base_url = u.to_string();
        Ok(())
    })
}

/// Set the client id: unique and stable per physical unit (serial number or a persisted UUID; never a
/// MAC or e-mail address). Errors: NULL_ARGUMENT, BAD_UTF8, INVALID_ARGUMENT (empty).
#[no_mangle]
pub unsafe extern "C" fn fio_config_set_client_id(config: *mut fio_config, client_id: *const c_char) -> fio_status {
    guard(|| {
        let c = cfg_mut(config)?;
        let v = req_str(client_id, "client_id")?;
        if v.is_empty() {
            return Err(Error::invalid("client_id must not be empty"));
        }
        c.client_id = v.to_string();
        Ok(())
    })
}

/// Set the client secret (per device model, issued by Frame.io). Copied; never logged.
/// Errors: NULL_ARGUMENT, BAD_UTF8, INVALID_ARGUMENT (empty).
#[no_mangle]
pub unsafe extern "C" fn fio_config_set_client_secret(
    config: *mut fio_config,
    client_secret: *const c_char,
) -> fio_status {
    guard(|| {
        let c = cfg_mut(config)?;
        let v = req_str(client_secret, "client_secret")?;
        if v.is_empty() {
            return Err(Error::invalid("client_secret must not be empty"));
        }
        c.client_secret = Secret::new(v);
        Ok(())
    })
}

/// Set the firmware version, a semantic version ("1.2.3"), sent as x-client-version on every API call.
/// Errors: NULL_ARGUMENT, BAD_UTF8, INVALID_ARGUMENT (not semver).
#[no_mangle]
pub unsafe extern "C" fn fio_config_set_client_version(config: *mut fio_config, version: *const c_char) -> fio_status {
    guard(|| {
        let c = cfg_mut(config)?;
        let v = req_str(version, "version")?;
        if !crate::config::is_semver(v) {
            return Err(Error::invalid(format!("client version {v:?} is not a semantic version (MAJOR.MINOR.PATCH)")));
        }
        c.client_version = v.to_string();
        Ok(())
    })
}

/// Set the OAuth scope requested when pairing (default "asset_create offline").
/// Errors: NULL_ARGUMENT, BAD_UTF8, INVALID_ARGUMENT (empty).
#[no_mangle]
pub unsafe extern "C" fn fio_config_set_scope(config: *mut fio_config, scope: *const c_char) -> fio_status {
    guard(|| {
        let c = cfg_mut(config)?;
        let v = req_str(scope, "scope")?;
        if v.trim().is_empty() {
            return Err(Error::invalid("scope must not be empty"));
        }
        c.scope = v.to_string();
        Ok(())
    })
}

/// Ask for URL/QR pairing (header x-client-platypus-enabled: true) so that
/// fio_pairing_verification_uri_complete is available. Default off. Errors: NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn fio_config_set_url_pairing(config: *mut fio_config, enabled: bool) -> fio_status {
    guard(|| {
        cfg_mut(config)?.url_pairing = enabled;
        Ok(())
    })
}

/// Set timeouts in milliseconds; 0 keeps the current value. `connect_ms`: TCP+TLS setup (default
/// 10000). `request_ms`: one API call attempt (default 30000). `response_ms`: waiting for a part PUT's
/// reply after its body (default 60000). `stall_ms`: one socket read/write blocking this long fails the
/// attempt (default 30000). `min_throughput`: bytes/s used to derive a part body's deadline as 30 s +
/// size / min_throughput (default 16384). Errors: NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn fio_config_set_timeouts(
    config: *mut fio_config,
    connect_ms: u32,
    request_ms: u32,
    response_ms: u32,
    stall_ms: u32,
    min_throughput: u64,
) -> fio_status {
    guard(|| {
        let c = cfg_mut(config)?;
        let ms = |v: u32| Duration::from_millis(v as u64);
        if connect_ms > 0 {
            c.timeouts.connect = ms(connect_ms);
        }
        if request_ms > 0 {
            c.timeouts.request = ms(request_ms);
        }
        if response_ms > 0 {
            c.timeouts.response = ms(response_ms);
        }
        if stall_ms > 0 {
            c.timeouts.stall = ms(stall_ms);
        }
        if min_throughput > 0 {
            c.timeouts.min_throughput = min_throughput;
        }
        Ok(())
    })
}

/// Set the retry policy applied to each call: `max_attempts` in total including the first (>= 1; 1
/// disables retries), capped exponential backoff from `base_backoff_ms` to `max_backoff_ms` with jitter
/// (a 429 waits at least 1 s, and Retry-After is honoured), and an overall `deadline_ms` per call (0 = no
/// deadline). Errors: NULL_ARGUMENT, INVALID_ARGUMENT (max_attempts 0).
#[no_mangle]
pub unsafe extern "C" fn fio_config_set_retry(
    config: *mut fio_config,
    max_attempts: u32,
    base_backoff_ms: u32,
    max_backoff_ms: u32,
    deadline_ms: u32,
) -> fio_status {
    guard(|| {
        let c = cfg_mut(config)?;
        if max_attempts == 0 {
            return Err(Error::invalid("max_attempts must be at least 1"));
        }
        c.retry.max_attempts = max_attempts;
        c.retry.base_backoff = Duration::from_millis(base_backoff_ms as u64);
        c.retry.max_backoff = Duration::from_millis(max_backoff_ms.max(base_backoff_ms) as u64);
        c.retry.deadline = if deadline_ms == 0 { None } else { Some(Duration::from_millis(deadline_ms as u64)) };
        Ok(())
    })
}

/// Add CA certificates (PEM text, `len` bytes, one or more CERTIFICATE blocks) to the built-in Mozilla
/// roots; they do not replace them. The data is copied. Checked by fio_client_new.
/// Errors: NULL_ARGUMENT, INVALID_ARGUMENT (len 0).
#[no_mangle]
pub unsafe extern "C" fn fio_config_set_extra_ca_pem(
    config: *mut fio_config,
    pem: *const u8,
    len: usize,
) -> fio_status {
    guard(|| {
        let c = cfg_mut(config)?;
        if pem.is_null() {
            return Err(Error::null("pem"));
        }
        if len == 0 {
            return Err(Error::invalid("pem is empty"));
        }
        if len > isize::MAX as usize {
            // no buffer is that large; making a slice of it is undefined behaviour (tests/c/abuse)
            return Err(Error::invalid("pem length is impossibly large"));
        }
        c.extra_ca_pem = Some(std::slice::from_raw_parts(pem, len).to_vec());
        Ok(())
    })
}

/// Use a proxy ("http://host:port" or "https://host:port"; a SOCKS URL makes fio_client_new fail with
/// INVALID_ARGUMENT); NULL removes it. Environment variables are
/// never consulted. Errors: NULL_ARGUMENT (config), BAD_UTF8, INVALID_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn fio_config_set_proxy(config: *mut fio_config, proxy_url: *const c_char) -> fio_status {
    guard(|| {
        let c = cfg_mut(config)?;
        match opt_str(proxy_url, "proxy_url")? {
            None => c.proxy = None,
            Some(p) => {
                ureq::Proxy::new(p).map_err(|_| Error::invalid("invalid proxy URL"))?;
                c.proxy = Some(p.to_string());
            }
        }
        Ok(())
    })
}

/// Allow plain http:// for the base URL and upload URLs (for the emulator and tests only; Frame.io
/// requires HTTPS). Default false. Errors: NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn fio_config_set_allow_http(config: *mut fio_config, allow: bool) -> fio_status {
    guard(|| {
        cfg_mut(config)?.allow_http = allow;
        Ok(())
    })
}

/// Refresh the access token this many seconds before it expires (default 300). Errors: NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn fio_config_set_refresh_margin(config: *mut fio_config, seconds: u32) -> fio_status {
    guard(|| {
        cfg_mut(config)?.refresh_margin = Duration::from_secs(seconds as u64);
        Ok(())
    })
}

/// Idle connections kept per host (default 8; set it to at least the number of parallel part uploads).
/// Errors: NULL_ARGUMENT, INVALID_ARGUMENT (0).
#[no_mangle]
pub unsafe extern "C" fn fio_config_set_max_idle_connections(config: *mut fio_config, per_host: u32) -> fio_status {
    guard(|| {
        if per_host == 0 {
            cfg_mut(config)?;
            return Err(Error::invalid("per_host must be at least 1"));
        }
        cfg_mut(config)?.max_idle_connections_per_host = per_host as usize;
        Ok(())
    })
}

/// Send `Expect: 100-continue` on part PUTs so a rejected URL fails before the body is sent (default
/// on). A URL that this client got from fio_register_parts or fio_asset_create less than half its
/// lifetime (X-Amz-Expires) ago is sent without it either way: it cannot have expired, and the header
/// costs a round trip per part. Errors: NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn fio_config_set_expect_continue(config: *mut fio_config, enabled: bool) -> fio_status {
    guard(|| {
        cfg_mut(config)?.expect_continue = enabled;
        Ok(())
    })
}

/// Install a log callback receiving lines at `max_level` and more severe (FIO_LOG_ERROR..FIO_LOG_TRACE);
/// `callback` NULL removes it. See fio_log_cb for the threading rules. `userdata` is passed back as is
/// and must stay valid until every client made from this config is freed.
/// Errors: NULL_ARGUMENT (config), INVALID_ARGUMENT (level).
#[no_mangle]
pub unsafe extern "C" fn fio_config_set_log_callback(
    config: *mut fio_config,
    max_level: fio_log_level,
    callback: fio_log_cb,
    userdata: *mut c_void,
) -> fio_status {
    guard(|| {
        let c = cfg_mut(config)?;
        let level = LogLevel::from_i32(max_level)
            .ok_or_else(|| Error::invalid("log level must be FIO_LOG_ERROR..FIO_LOG_TRACE"))?;
        c.log_level = level;
        c.log_callback = callback.map(|cb| {
            let ud = UserData(userdata);
            Arc::new(move |lvl: LogLevel, msg: &str| {
                let ud = ud;
                let line = to_c_string(msg);
                // SAFETY: the caller registered cb/userdata and promised they stay valid.
                unsafe { cb(ud.0, lvl as i32, line.as_ptr()) }
            }) as crate::config::LogCallback
        });
        Ok(())
    })
}

/// Install the token callback (see fio_token_cb); NULL removes it. `userdata` must stay valid until
/// every client made from this config is freed. Errors: NULL_ARGUMENT (config).
#[no_mangle]
pub unsafe extern "C" fn fio_config_set_token_callback(
    config: *mut fio_config,
    callback: fio_token_cb,
    userdata: *mut c_void,
) -> fio_status {
    guard(|| {
        let c = cfg_mut(config)?;
        c.token_callback = callback.map(|cb| {
            let ud = UserData(userdata);
            Arc::new(move |t: &Tokens| {
                let ud = ud;
                let a = to_c_string(t.access_token.expose());
                let r = to_c_string(t.refresh_token.expose());
                // SAFETY: as above.
                unsafe { cb(ud.0, a.as_ptr(), r.as_ptr(), t.expires_at) };
                let (mut a, mut r) = (a.into_bytes(), r.into_bytes());
                crate::secret::wipe_bytes(&mut a);
                crate::secret::wipe_bytes(&mut r);
            }) as crate::config::TokenCallback
        });
        Ok(())
    })
}
