//! Device-code pairing, the token store, single-flight refresh and revoke (c2c-api.md section 2).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::client::{Client, Retry};
use crate::config::LogLevel;
use crate::error::{Error, ErrorKind, Result};
use crate::http::{sleep_cancellable, ApiBody, ApiResponse};
use crate::secret::Secret;

const GRANT_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// An access/refresh token pair. Debug is redacted; the strings are wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    pub access_token: Secret,
    pub refresh_token: Secret,
    /// When the access token expires, seconds since the Unix epoch; 0 = unknown (never refreshed early).
    pub expires_at: u64,
}

impl Tokens {
    pub fn new(access_token: impl Into<String>, refresh_token: impl Into<String>, expires_at: u64) -> Tokens {
        Tokens {
            access_token: Secret::new(access_token.into()),
            refresh_token: Secret::new(refresh_token.into()),
            expires_at,
        }
    }

    fn from_response(r: &ApiResponse, what: &str) -> Result<Tokens> {
        let v = r.json(what)?;
        let access = v.get("access_token").and_then(|a| a.as_str()).filter(|s| !s.is_empty());
        let Some(access) = access else {
            return Err(
                Error::new(ErrorKind::Protocol, format!("{what}: reply has no access_token")).with_status(r.status)
            );
        };
        let refresh = v.get("refresh_token").and_then(|a| a.as_str()).unwrap_or("");
        let expires_in = v.get("expires_in").and_then(|e| e.as_f64()).filter(|e| e.is_finite() && *e > 0.0);
        // Saturating: the server's number may be anything (1e300 overflowed: a panic in debug builds, and
        // with release's wrapping an expiry in the past, so every call refreshed first).
        let expires_at = expires_in.map(|e| unix_now().saturating_add(e as u64)).unwrap_or(0);
        Ok(Tokens::new(access, refresh, expires_at))
    }
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &self.access_token)
            .field("refresh_token", &self.refresh_token)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

struct TokenState {
    tokens: Option<Tokens>,
    /// Bumped on every change, so a 401 seen with generation G refreshes only if nobody else did.
    generation: u64,
}

pub(crate) struct TokenStore {
    state: Mutex<TokenState>,
    /// Held for the whole refresh exchange: single flight.
    refresh_lock: Mutex<()>,
}

impl TokenStore {
    pub(crate) fn new() -> TokenStore {
        TokenStore { state: Mutex::new(TokenState { tokens: None, generation: 0 }), refresh_lock: Mutex::new(()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TokenState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, tokens: Option<Tokens>) {
        let mut s = self.lock();
        s.tokens = tokens;
        s.generation += 1;
    }

    fn snapshot(&self) -> (Option<Tokens>, u64) {
        let s = self.lock();
        (s.tokens.clone(), s.generation)
    }
}

/// A pairing in progress (device-code flow). All methods take `&self`: `cancel` may be called from any
/// thread while another thread waits in [`Client::pairing_wait`].
pub struct Pairing {
    device_code: Secret,
    /// The six-digit code the user types into Frame.io.
    pub user_code: String,
    /// Where the user enters the code.
    pub verification_uri: String,
    /// The URL with the code prefilled (for a link or QR code), when the server gives one.
    pub verification_uri_complete: Option<String>,
    /// Name of the device being connected, as the server calls it.
    pub name: String,
    /// Lifetime of the code.
    pub expires_in: Duration,
    started: Instant,
    interval_ms: AtomicU64,
    cancelled: AtomicBool,
}

impl fmt::Debug for Pairing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pairing")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval())
            .finish_non_exhaustive()
    }
}

impl Pairing {
    /// Current polling interval (grows by 5 s on each `slow_down`).
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms.load(Ordering::Relaxed))
    }
    /// Time left before the code expires.
    pub fn remaining(&self) -> Duration {
        self.expires_in.saturating_sub(self.started.elapsed())
    }
    pub fn is_expired(&self) -> bool {
        self.started.elapsed() >= self.expires_in
    }
    /// Stop a `pairing_wait` running on another thread (it returns `Cancelled`). Async-signal-safe.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
}

impl Client {
    // ----- tokens -------------------------------------------------------------------------------------

    /// Install tokens (e.g. loaded from persistent storage at boot). Does not call the token callback.
    pub fn set_tokens(&self, tokens: Tokens) {
        self.inner.tokens.set(Some(tokens));
    }

    /// Forget the tokens (the device must pair again).
    pub fn clear_tokens(&self) {
        self.inner.tokens.set(None);
    }

    /// A copy of the current tokens, for persisting them.
    pub fn tokens(&self) -> Option<Tokens> {
        self.inner.tokens.snapshot().0
    }

    /// Refresh the access token now (single-flight: concurrent callers share one refresh).
    /// A rejected refresh token (401, reused, revoked) gives `PairingRequired` and clears the tokens.
    pub fn refresh(&self) -> Result<()> {
        let (_, generation) = self.inner.tokens.snapshot();
        self.refresh_if_generation(generation)
    }

    /// Refresh unless the tokens changed since `generation` (someone else refreshed meanwhile).
    pub(crate) fn refresh_if_generation(&self, generation: u64) -> Result<()> {
        let _flight = self.inner.tokens.refresh_lock.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, now_gen) = self.inner.tokens.snapshot();
        if now_gen != generation {
            return match tokens {
                Some(_) => Ok(()),
                None => Err(Error::new(ErrorKind::PairingRequired, "refresh: no tokens (pair the device first)")),
            };
        }
        let Some(tokens) = tokens else {
            return Err(Error::new(ErrorKind::PairingRequired, "refresh: no tokens (pair the device first)"));
        };
        if tokens.refresh_token.is_empty() {
            return Err(Error::new(ErrorKind::PairingRequired, "refresh: no refresh token (scope without offline?)"));
        }
        let cfg = &self.inner.cfg;
        let body = ApiBody::Form(vec![
            ("client_id", cfg.client_id.clone()),
            ("client_secret", cfg.client_secret.expose().to_string()),
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", tokens.refresh_token.expose().to_string()),
        ]);
        self.log(LogLevel::Info, || "refreshing the access token".to_string());
        let r = match self.call_noauth("/v2/auth/token", body, &[], Retry::Yes) {
            Ok(r) => r,
            Err(e) => {
                let fatal = e.http_status == Some(401)
                    || matches!(e.server_code.as_deref(), Some("invalid_request" | "invalid_grant" | "expired_token"));
                if fatal {
                    self.log(LogLevel::Error, || format!("refresh rejected, pairing required: {e}"));
                    self.inner.tokens.set(None);
                    let mut pe = Error::new(
                        ErrorKind::PairingRequired,
                        format!("{} (refresh token rejected; pair again)", e.message),
                    );
                    pe.http_status = e.http_status;
                    pe.server_code = e.server_code;
                    return Err(pe);
                }
                return Err(e);
            }
        };
        let mut new = Tokens::from_response(&r, "POST /v2/auth/token (refresh)")?;
        if new.refresh_token.is_empty() {
            // not rotated (RFC 6749 section 6): the one we have stays valid
            new.refresh_token = tokens.refresh_token.clone();
        }
        self.publish_tokens(new);
        self.log(LogLevel::Info, || "access token refreshed".to_string());
        Ok(())
    }

    /// The tokens' generation once no refresh is in flight (waits for one that is). A 401 seen with
    /// generation G was caused by a refresh elsewhere (which revoked the token) iff this differs from G.
    pub(crate) fn settled_token_generation(&self) -> u64 {
        let _flight = self.inner.tokens.refresh_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.inner.tokens.snapshot().1
    }

    /// The callback sees new tokens before anything else can use them.
    fn publish_tokens(&self, tokens: Tokens) {
        if let Some(cb) = &self.inner.cfg.token_callback {
            cb(&tokens);
        }
        self.inner.tokens.set(Some(tokens));
    }

    /// The access token to use now, refreshing first when it expires within the refresh margin.
    pub(crate) fn access_token_for_use(&self) -> Result<(Secret, u64)> {
        let (tokens, generation) = self.inner.tokens.snapshot();
        let Some(tokens) = tokens else {
            return Err(Error::new(
                ErrorKind::PairingRequired,
                "no tokens: pair the device (or set saved tokens) first",
            ));
        };
        let margin = self.inner.cfg.refresh_margin.as_secs();
        if tokens.expires_at != 0 && unix_now().saturating_add(margin) >= tokens.expires_at {
            if tokens.refresh_token.is_empty() && unix_now() < tokens.expires_at {
                // nothing to refresh with (scope without offline): the token works until it expires
                return Ok((tokens.access_token, generation));
            }
            match self.refresh_if_generation(generation) {
                Ok(()) => {}
                // Only a verdict on the credentials stops us; any other failure of an early refresh (a
                // proxy's HTML page, a 5xx after retries) leaves a token that still works.
                Err(e)
                    if !matches!(
                        e.kind,
                        ErrorKind::PairingRequired | ErrorKind::InvalidClient | ErrorKind::Cancelled
                    ) && unix_now() < tokens.expires_at =>
                {
                    self.log(LogLevel::Warn, || format!("early refresh failed, using the current token: {e}"));
                    return Ok((tokens.access_token, generation));
                }
                Err(e) => return Err(e),
            }
            let (t, g) = self.inner.tokens.snapshot();
            return match t {
                Some(t) => Ok((t.access_token, g)),
                None => Err(Error::new(ErrorKind::PairingRequired, "no tokens: pair the device first")),
            };
        }
        Ok((tokens.access_token, generation))
    }

    /// Revoke the refresh token at Frame.io (un-pair) and forget the tokens locally.
    pub fn revoke(&self) -> Result<()> {
        let Some(tokens) = self.tokens() else {
            return Err(Error::new(ErrorKind::PairingRequired, "revoke: no tokens to revoke"));
        };
        let token = if tokens.refresh_token.is_empty() { &tokens.access_token } else { &tokens.refresh_token };
        let cfg = &self.inner.cfg;
        let body = ApiBody::Form(vec![
            ("client_id", cfg.client_id.clone()),
            ("client_secret", cfg.client_secret.expose().to_string()),
            ("token", token.expose().to_string()),
        ]);
        let r = self.call_noauth("/v2/auth/revoke", body, &[], Retry::Yes);
        match &r {
            Ok(_) => self.clear_tokens(),
            Err(e) if e.http_status == Some(401) => self.clear_tokens(),
            Err(_) => {}
        }
        r.map(|_| {
            self.log(LogLevel::Info, || "tokens revoked".to_string());
        })
    }

    // ----- pairing ------------------------------------------------------------------------------------

    /// Ask for a device code. Show `user_code` (and offer `verification_uri_complete` as a link/QR).
    pub fn pairing_start(&self) -> Result<Pairing> {
        let cfg = &self.inner.cfg;
        let body = ApiBody::Form(vec![
            ("client_id", cfg.client_id.clone()),
            ("client_secret", cfg.client_secret.expose().to_string()),
            ("scope", cfg.scope.clone()),
        ]);
        let headers: &[(&str, &str)] = if cfg.url_pairing { &[("x-client-platypus-enabled", "true")] } else { &[] };
        let what = "POST /v2/auth/device/code";
        let r = self.call_noauth("/v2/auth/device/code", body, headers, Retry::Yes)?;
        let v = r.json(what)?;
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let missing =
            |k: &str| Error::new(ErrorKind::Protocol, format!("{what}: reply has no {k}")).with_status(r.status);
        let device_code = s("device_code").filter(|c| !c.is_empty()).ok_or_else(|| missing("device_code"))?;
        let user_code = s("user_code").filter(|c| !c.is_empty()).ok_or_else(|| missing("user_code"))?;
        let verification_uri = s("verification_uri").ok_or_else(|| missing("verification_uri"))?;
        let expires_in = v
            .get("expires_in")
            .and_then(|x| x.as_f64())
            .filter(|x| x.is_finite() && *x > 0.0)
            .ok_or_else(|| missing("expires_in"))?;
        let interval = v.get("interval").and_then(|x| x.as_f64()).filter(|x| x.is_finite() && *x >= 0.0).unwrap_or(5.0);
        let p = Pairing {
            device_code: Secret::new(device_code),
            user_code,
            verification_uri,
            verification_uri_complete: s("verification_uri_complete").filter(|u| !u.is_empty()),
            name: s("name").unwrap_or_default(),
            expires_in: Duration::from_secs_f64(expires_in.min(86400.0)),
            started: Instant::now(),
            interval_ms: AtomicU64::new(((interval.min(3600.0) * 1000.0) as u64).max(100)),
            cancelled: AtomicBool::new(false),
        };
        self.log(LogLevel::Info, || {
            format!("pairing started: code {} at {} (expires in {:?})", p.user_code, p.verification_uri, p.expires_in)
        });
        Ok(p)
    }

    /// Poll once. Ok(tokens) when paired (the tokens are installed and reported to the token callback);
    /// `AuthorizationPending` while waiting; `SlowDown` (the interval grows by 5 s); `CodeExpired`.
    pub fn pairing_poll(&self, p: &Pairing) -> Result<Tokens> {
        if p.is_cancelled() {
            return Err(Error::new(ErrorKind::Cancelled, "pairing: cancelled"));
        }
        if p.is_expired() {
            return Err(Error::new(ErrorKind::CodeExpired, "pairing: the code expired; start again for a new code"));
        }
        let cfg = &self.inner.cfg;
        let body = ApiBody::Form(vec![
            ("client_id", cfg.client_id.clone()),
            ("client_secret", cfg.client_secret.expose().to_string()),
            ("grant_type", GRANT_DEVICE_CODE.to_string()),
            ("device_code", p.device_code.expose().to_string()),
        ]);
        match self.call_noauth("/v2/auth/token", body, &[], Retry::No) {
            Ok(r) => {
                let t = Tokens::from_response(&r, "POST /v2/auth/token (device code)")?;
                self.publish_tokens(t.clone());
                self.log(LogLevel::Info, || "pairing complete".to_string());
                Ok(t)
            }
            Err(e) => {
                if e.kind == ErrorKind::SlowDown {
                    p.interval_ms.fetch_add(5000, Ordering::Relaxed);
                }
                Err(e)
            }
        }
    }

    /// Poll until paired, the code expires (`CodeExpired`), or `p.cancel()` is called from another
    /// thread (`Cancelled`). Honours the interval and `slow_down`; transient network errors are logged
    /// and polling continues.
    pub fn pairing_wait(&self, p: &Pairing) -> Result<Tokens> {
        loop {
            let wait = p.interval().min(p.remaining());
            if !sleep_cancellable(wait, &|| p.is_cancelled()) {
                return Err(Error::new(ErrorKind::Cancelled, "pairing: cancelled"));
            }
            match self.pairing_poll(p) {
                Ok(t) => return Ok(t),
                Err(e) if matches!(e.kind, ErrorKind::AuthorizationPending | ErrorKind::SlowDown) => {}
                Err(e) if e.is_retryable() && !p.is_expired() => {
                    self.log(LogLevel::Warn, || format!("pairing poll failed, polling on: {e}"));
                }
                Err(e) => return Err(e),
            }
        }
    }
}
