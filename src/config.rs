//! Client configuration: base URL, client credentials and version, timeouts, retry policy, TLS roots,
//! proxy, callbacks.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::Tokens;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// The production API.
pub const DEFAULT_BASE_URL: &str = "https://api.frame.io";

/// Log levels, most severe first. The numbers are the C `FIO_LOG_*` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(i32)]
pub enum LogLevel {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

impl LogLevel {
    pub fn from_i32(v: i32) -> Option<LogLevel> {
        Some(match v {
            1 => LogLevel::Error,
            2 => LogLevel::Warn,
            3 => LogLevel::Info,
            4 => LogLevel::Debug,
            5 => LogLevel::Trace,
            _ => return None,
        })
    }
}

/// Receives log lines. Lines never contain secrets. Called on whichever thread logs.
pub type LogCallback = Arc<dyn Fn(LogLevel, &str) + Send + Sync>;

/// Receives every new token pair (pairing, refresh) *before* anything uses it, so firmware can persist it
/// atomically. Called on the thread that obtained the tokens, with the refresh lock held: it must not call
/// back into the client (that can deadlock).
pub type TokenCallback = Arc<dyn Fn(&Tokens) + Send + Sync>;

/// Timeouts. `None` disables a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP + TLS connection setup (default 10 s).
    pub connect: Duration,
    /// Whole API call (one attempt: send, receive headers and body; default 30 s).
    pub request: Duration,
    /// Waiting for the response headers after a part PUT's body was sent (default 60 s).
    pub response: Duration,
    /// A part PUT's body deadline is `part_base + size / min_throughput` (default base 30 s).
    pub part_base: Duration,
    /// Minimum throughput, bytes per second, used to derive the body deadline (default 16 KiB/s).
    pub min_throughput: u64,
    /// A single socket write or read blocking longer than this fails the attempt (stall; default 30 s).
    pub stall: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(30),
            response: Duration::from_secs(60),
            part_base: Duration::from_secs(30),
            min_throughput: 16 * 1024,
            stall: Duration::from_secs(30),
        }
    }
}

/// Retry policy for one call (c2c-api.md 14.8): capped exponential backoff with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, including the first (default 5; 1 disables retries).
    pub max_attempts: u32,
    /// First backoff (default 500 ms; a 429 waits at least 1 s).
    pub base_backoff: Duration,
    /// Backoff cap (default 30 s).
    pub max_backoff: Duration,
    /// Give up once this much time has passed since the first attempt (default 5 min; None = no limit).
    pub deadline: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            deadline: Some(Duration::from_secs(300)),
        }
    }
}

/// Everything a [`crate::Client`] needs. Build with [`Config::new`] and the `with_*` setters or assign
/// the public fields.
#[derive(Clone)]
pub struct Config {
    /// API base URL, default `https://api.frame.io`. Must be https unless `allow_http`.
    pub base_url: String,
    /// Unique, stable id of this physical unit (serial number or persisted UUID).
    pub client_id: String,
    /// The device model's secret, issued by Frame.io.
    pub client_secret: Secret,
    /// Firmware version, a semantic version, sent as `x-client-version` on every API call.
    pub client_version: String,
    /// OAuth scope requested at pairing (default `asset_create offline`).
    pub scope: String,
    /// Ask for URL/QR pairing (`x-client-platypus-enabled: true`) so `verification_uri_complete` is set.
    pub url_pairing: bool,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    /// Extra CA certificates (PEM), added to the built-in Mozilla roots.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Proxy URL (`http://host:port` or `https://host:port`; SOCKS is refused at client setup); None = no
    /// proxy (environment ignored).
    pub proxy: Option<String>,
    /// Allow plain `http://` base URLs and upload URLs (emulator, tests). Default false.
    pub allow_http: bool,
    /// Refresh the access token this long before it expires (default 5 min).
    pub refresh_margin: Duration,
    /// Idle connections kept per host (at least the part concurrency; default 8).
    pub max_idle_connections_per_host: usize,
    /// Send `Expect: 100-continue` on part PUTs so a rejected URL fails before the body (default true);
    /// skipped for URLs this client registered less than half their lifetime ago (see `s3::FreshUrls`).
    pub expect_continue: bool,
    pub log_callback: Option<LogCallback>,
    /// Lines above this level are not produced (default Info).
    pub log_level: LogLevel,
    pub token_callback: Option<TokenCallback>,
    /// `User-Agent` header (default `frameio-c2c/<version>`).
    pub user_agent: String,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("client_version", &self.client_version)
            .field("scope", &self.scope)
            .field("timeouts", &self.timeouts)
            .field("retry", &self.retry)
            .field("extra_ca_pem", &self.extra_ca_pem.as_ref().map(|v| v.len()))
            .field("proxy", &self.proxy.as_deref().map(crate::secret::redact_url))
            .field("allow_http", &self.allow_http)
            .field("log_level", &self.log_level)
            .finish_non_exhaustive()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            base_url: DEFAULT_BASE_URL.to_string(),
            client_id: String::new(),
            client_secret: Secret::default(),
            client_version: "0.0.0".to_string(),
            scope: "asset_create offline".to_string(),
            url_pairing: false,
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            extra_ca_pem: None,
            proxy: None,
            allow_http: false,
            refresh_margin: Duration::from_secs(300),
            max_idle_connections_per_host: 8,
            expect_continue: true,
            log_callback: None,
            log_level: LogLevel::Info,
            token_callback: None,
            user_agent: concat!("frameio-c2c/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

impl Config {
    /// A config for the production API with this unit's id and the model's secret.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Config {
        Config { client_id: client_id.into(), client_secret: Secret::new(client_secret.into()), ..Config::default() }
    }

    pub fn with_base_url(mut self, url: impl Into<String>) -> Config {
        self.base_url = url.into();
        self
    }
    pub fn with_client_version(mut self, v: impl Into<String>) -> Config {
        self.client_version = v.into();
        self
    }
    pub fn with_timeouts(mut self, t: Timeouts) -> Config {
        self.timeouts = t;
        self
    }
    pub fn with_retry(mut self, r: RetryPolicy) -> Config {
        self.retry = r;
        self
    }
    pub fn with_extra_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Config {
        self.extra_ca_pem = Some(pem.into());
        self
    }
    pub fn with_proxy(mut self, proxy: impl Into<String>) -> Config {
        self.proxy = Some(proxy.into());
        self
    }
    pub fn with_allow_http(mut self, allow: bool) -> Config {
        self.allow_http = allow;
        self
    }
    pub fn with_url_pairing(mut self, on: bool) -> Config {
        self.url_pairing = on;
        self
    }
    pub fn with_log(mut self, level: LogLevel, cb: impl Fn(LogLevel, &str) + Send + Sync + 'static) -> Config {
        self.log_level = level;
        self.log_callback = Some(Arc::new(cb));
        self
    }
    pub fn with_token_callback(mut self, cb: impl Fn(&Tokens) + Send + Sync + 'static) -> Config {
        self.token_callback = Some(Arc::new(cb));
        self
    }
    pub fn with_refresh_margin(mut self, d: Duration) -> Config {
        self.refresh_margin = d;
        self
    }

    /// Check the config before a client is built. No network access.
    pub fn validate(&self) -> Result<()> {
        validate_base_url(&self.base_url, self.allow_http)?;
        if self.client_id.is_empty() {
            return Err(Error::invalid("config: client_id is empty"));
        }
        if self.client_secret.is_empty() {
            return Err(Error::invalid("config: client_secret is empty"));
        }
        if !is_semver(&self.client_version) {
            return Err(Error::invalid(format!(
                "config: client version {:?} is not a semantic version (MAJOR.MINOR.PATCH)",
                self.client_version
            )));
        }
        if self.retry.max_attempts == 0 {
            return Err(Error::invalid("config: retry max_attempts must be at least 1"));
        }
        if self.timeouts.min_throughput == 0 {
            return Err(Error::invalid("config: min_throughput must be > 0"));
        }
        if let Some(p) = &self.proxy {
            if !(p.starts_with("http://") || p.starts_with("https://") || p.starts_with("socks")) {
                return Err(Error::invalid("config: proxy must be an http://, https:// or socks URL"));
            }
        }
        Ok(())
    }
}

/// `https://host[:port][/prefix]`, or `http://` when allowed. No query, no fragment.
pub fn validate_base_url(url: &str, allow_http: bool) -> Result<()> {
    let rest = if let Some(r) = url.strip_prefix("https://") {
        r
    } else if let Some(r) = url.strip_prefix("http://") {
        if !allow_http {
            return Err(Error::invalid("config: plain http:// base URL refused (HTTPS only unless allow_http is set)"));
        }
        r
    } else {
        return Err(Error::invalid("config: base URL must start with https://"));
    };
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || url.contains(['?', '#', ' ']) || host.contains('@') {
        return Err(Error::invalid("config: malformed base URL"));
    }
    Ok(())
}

/// Semantic version 2.0.0: `MAJOR.MINOR.PATCH[-pre][+build]`, no leading zeros in numeric parts.
pub fn is_semver(v: &str) -> bool {
    let (core_pre, build) = match v.split_once('+') {
        Some((a, b)) => (a, Some(b)),
        None => (v, None),
    };
    let (core, pre) = match core_pre.split_once('-') {
        Some((a, b)) => (a, Some(b)),
        None => (core_pre, None),
    };
    let num = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    let ident = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 || !parts.iter().all(|p| num(p)) {
        return false;
    }
    if let Some(pre) = pre {
        for id in pre.split('.') {
            if !ident(id) {
                return false;
            }
            if id.bytes().all(|b| b.is_ascii_digit()) && !num(id) {
                return false;
            }
        }
    }
    if let Some(build) = build {
        if !build.split('.').all(ident) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver() {
        for ok in ["0.0.0", "1.2.3", "2.16.4", "1.0.0-alpha.1", "1.0.0+build.5", "1.0.0-rc.1+x-y"] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in ["", "1", "1.2", "1.2.3.4", "01.2.3", "1.2.x", "1.2.3-", "1.2.3-01", "v1.2.3", "1.2.3+"] {
            assert!(!is_semver(bad), "{bad}");
        }
    }

    #[test]
    fn base_urls() {
        assert!(validate_base_url("https://api.frame.io", false).is_ok());
        assert!(validate_base_url("http://127.0.0.1:1234", false).is_err());
        assert!(validate_base_url("http://127.0.0.1:1234", true).is_ok());
        assert!(validate_base_url("ftp://x", true).is_err());
        assert!(validate_base_url("https://", false).is_err());
        assert!(validate_base_url("https://a/b?c", false).is_err());
    }

    #[test]
    fn validate_config() {
        let c = Config::new("unit-1", "s3cret").with_client_version("1.2.3");
        assert!(c.validate().is_ok());
        assert!(Config::new("", "x").validate().is_err());
        assert!(Config::new("a", "").validate().is_err());
        assert!(Config::new("a", "b").with_client_version("1.2").validate().is_err());
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
