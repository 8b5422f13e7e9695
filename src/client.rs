//! The client: one per device, shared by all threads (Send + Sync, cheap Clone).

use std::sync::{Arc, Mutex};

use crate::auth::TokenStore;
use crate::config::{Config, LogLevel};
use crate::device::HeartbeatThread;
use crate::error::{Error, ErrorKind, Result};
use crate::http::{api_error, ApiBody, ApiResponse, Http};

// The types of the client's calls, reachable from here too (the upload engine imports them from here).
pub use crate::assets::{Asset, AssetParams, Comment};
pub use crate::auth::{Pairing, Tokens};
pub use crate::device::DeviceInfo;
pub use crate::realtime::PartSpec;
pub use crate::s3::PartBody;

/// A Frame.io C2C client. Clone it freely: clones share the connection pool, tokens and heartbeat.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) cfg: Config,
    pub(crate) http: Http,
    pub(crate) tokens: TokenStore,
    pub(crate) heartbeat: Mutex<Option<HeartbeatThread>>,
    /// The presigned URLs this client registered, for part PUTs without 100-continue.
    pub(crate) fresh_urls: crate::s3::FreshUrls,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut hb) = self.heartbeat.lock() {
            if let Some(t) = hb.take() {
                t.stop_and_join();
            }
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base_url", &self.inner.cfg.base_url).finish_non_exhaustive()
    }
}

/// Retry behaviour of one API call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Retry {
    /// Retry every retryable failure (idempotent calls, and asset create per 14.8).
    Yes,
    /// One attempt only (pairing poll: the caller's loop paces it).
    No,
}

impl Client {
    /// Build a client. Validates the config (semver client version, https base URL unless allow_http,
    /// credentials present, CA PEM parses). No network access.
    pub fn new(config: Config) -> Result<Client> {
        config.validate()?;
        let http = Http::new(&config)?;
        let tokens = TokenStore::new();
        let client = Client {
            inner: Arc::new(Inner {
                cfg: config,
                http,
                tokens,
                heartbeat: Mutex::new(None),
                fresh_urls: crate::s3::FreshUrls::new(),
            }),
        };
        client.log(LogLevel::Debug, || format!("client created for {}", client.inner.cfg.base_url));
        Ok(client)
    }

    /// The config this client was built with.
    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    pub(crate) fn log(&self, level: LogLevel, msg: impl FnOnce() -> String) {
        self.inner.http.log.log(level, msg)
    }

    pub(crate) fn http(&self) -> &Http {
        &self.inner.http
    }

    /// An unauthenticated call (auth endpoints), with retries when `retry` says so. Returns the 2xx reply.
    pub(crate) fn call_noauth(
        &self,
        path: &str,
        body: ApiBody,
        headers: &[(&str, &str)],
        retry: Retry,
    ) -> Result<ApiResponse> {
        let what = format!("POST {path}");
        let http = self.http();
        let attempt = |_: u32| -> Result<ApiResponse> {
            let r = http.api_once("POST", path, None, headers, &body)?;
            if r.is_success() {
                Ok(r)
            } else {
                Err(api_error(&r, &what))
            }
        };
        match retry {
            Retry::Yes => http.retry(&what, &|| false, attempt),
            Retry::No => attempt(1),
        }
    }

    /// An authenticated API call: refreshes a token about to expire first; on 401, one single-flight
    /// refresh and the call once more (14.8). Retryable failures are retried per the policy.
    pub(crate) fn call_auth(&self, method: &str, path: &str, body: ApiBody) -> Result<ApiResponse> {
        self.call_auth_cancellable(method, path, body, &|| false)
    }

    /// [`call_auth`](Self::call_auth), stopped with `Cancelled` when `cancelled` says so (checked before
    /// each attempt and while waiting between attempts).
    pub(crate) fn call_auth_cancellable(
        &self,
        method: &str,
        path: &str,
        body: ApiBody,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<ApiResponse> {
        let what = format!("{method} {path}");
        let (token, generation) = self.access_token_for_use()?;
        let http = self.http();
        let run = |tok: &str| -> Result<ApiResponse> {
            http.retry(&what, cancelled, |n| {
                if n > 1 && method == "POST" && path.ends_with("/v2/devices/assets") {
                    self.log(LogLevel::Warn, || {
                        format!("{what}: retrying asset create; the server may have made a duplicate asset")
                    });
                }
                let r = http.api_once(method, path, Some(tok), &[], &body)?;
                if r.is_success() {
                    Ok(r)
                } else {
                    Err(api_error(&r, &what))
                }
            })
        };
        let (mut token, mut generation) = (token, generation);
        let mut refreshed = 0;
        loop {
            match run(token.expose()) {
                Err(e) if e.kind == ErrorKind::Unauthorized => {
                    // After our refresh, a 401 is final unless another thread refreshed since (its
                    // refresh revoked the token we just got: replaced, not rejected). Bounded.
                    if refreshed > 0 && (refreshed >= 3 || self.settled_token_generation() == generation) {
                        return Err(Error { message: format!("{} (still 401 after a token refresh)", e.message), ..e });
                    }
                    self.log(LogLevel::Info, || format!("{what}: 401, refreshing the access token"));
                    self.refresh_if_generation(generation).map_err(|re| {
                        if re.kind == ErrorKind::PairingRequired {
                            re
                        } else {
                            re.context("refresh after 401")
                        }
                    })?;
                    (token, generation) = self.access_token_for_use()?;
                    refreshed += 1;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_send_sync_clone() {
        fn assert_traits<T: Send + Sync + Clone + 'static>() {}
        assert_traits::<Client>();
    }

    #[test]
    fn new_validates() {
        assert!(Client::new(Config::new("a", "b")).is_ok());
        let e = Client::new(Config::new("a", "b").with_base_url("http://127.0.0.1:1")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert!(Client::new(Config::new("a", "b").with_base_url("http://127.0.0.1:1").with_allow_http(true)).is_ok());
        let e = Client::new(Config::new("a", "b").with_extra_ca_pem(b"garbage".to_vec())).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
    }
}
