//! One error type for the whole library: a kind (what the caller acts on), the HTTP status, the server's
//! error code and message, and the retry class (c2c-api.md 14.8).
//!
//! Messages never contain a secret: no tokens, no client secret, no presigned query strings.

use std::fmt;
use std::time::Duration;

/// What went wrong, at the granularity a caller acts on. Each kind maps to one stable C status code
/// ([`ErrorKind::status`]); numbers are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A required pointer/argument was NULL (C) or missing.
    NullArgument,
    /// An argument is out of range or malformed (checked locally, before any request).
    InvalidArgument,
    /// A string argument is not valid UTF-8.
    BadUtf8,
    /// Connection refused/reset/closed, DNS failure.
    Network,
    /// A connect, send, receive or overall deadline passed (also S3 `RequestTimeout`).
    Timeout,
    /// TLS handshake or certificate verification failed.
    Tls,
    /// HTTP 400 from the API (input rejected).
    BadRequest,
    /// HTTP 401 that a token refresh did not cure.
    Unauthorized,
    /// No usable tokens: pair the device again (refresh token rejected, reused, revoked, or none set).
    PairingRequired,
    /// HTTP 404 (asset gone; may come from a proxy).
    NotFound,
    /// HTTP 409 Channel Paused: do not retry this file.
    ChannelPaused,
    /// HTTP 429 (or S3 `SlowDown`) still failing after the retries.
    RateLimited,
    /// HTTP 5xx still failing after the retries.
    ServerError,
    /// S3 answered 403 on a presigned URL (expired or bad signature): register the part again.
    UrlExpired,
    /// Any other S3 error (XML error body).
    S3Error,
    /// The server's reply could not be understood (malformed JSON, HTML from a proxy, missing fields).
    Protocol,
    /// Local I/O failed (reading the part's file, short file).
    Io,
    /// Cancelled by the caller (cancel flag or a callback's non-zero return).
    Cancelled,
    /// A limit was exceeded (retry budget, memory, response size).
    LimitExceeded,
    /// The object is in the wrong state for this call.
    WrongState,
    /// A panic was caught at the C boundary; the handle is poisoned.
    Panic,
    /// Pairing: the user has not entered the code yet (keep polling).
    AuthorizationPending,
    /// Pairing: polling too fast; the interval was increased.
    SlowDown,
    /// Pairing: the device code expired; start again with a new code.
    CodeExpired,
    /// The caller's buffer is too small (the copy is truncated).
    BufferTooSmall,
    /// The server rejected the client credentials (`invalid_client`): wrong client id/secret.
    InvalidClient,
    /// Any other HTTP status the API is not documented to return (3xx, 403, 405, 409 other than paused...).
    HttpStatus,
}

impl ErrorKind {
    /// Every kind, in status-code order (for tests and tables).
    pub const ALL: &'static [ErrorKind] = &[
        ErrorKind::NullArgument,
        ErrorKind::InvalidArgument,
        ErrorKind::BadUtf8,
        ErrorKind::Network,
        ErrorKind::Timeout,
        ErrorKind::Tls,
        ErrorKind::BadRequest,
        ErrorKind::Unauthorized,
        ErrorKind::PairingRequired,
        ErrorKind::NotFound,
        ErrorKind::ChannelPaused,
        ErrorKind::RateLimited,
        ErrorKind::ServerError,
        ErrorKind::UrlExpired,
        ErrorKind::S3Error,
        ErrorKind::Protocol,
        ErrorKind::Io,
        ErrorKind::Cancelled,
        ErrorKind::LimitExceeded,
        ErrorKind::WrongState,
        ErrorKind::Panic,
        ErrorKind::AuthorizationPending,
        ErrorKind::SlowDown,
        ErrorKind::CodeExpired,
        ErrorKind::BufferTooSmall,
        ErrorKind::InvalidClient,
        ErrorKind::HttpStatus,
    ];

    /// The stable C status code (`FIO_ERR_*`). 0 is `FIO_OK` and never an error.
    pub fn status(self) -> i32 {
        match self {
            ErrorKind::NullArgument => 1,
            ErrorKind::InvalidArgument => 2,
            ErrorKind::BadUtf8 => 3,
            ErrorKind::Network => 4,
            ErrorKind::Timeout => 5,
            ErrorKind::Tls => 6,
            ErrorKind::BadRequest => 7,
            ErrorKind::Unauthorized => 8,
            ErrorKind::PairingRequired => 9,
            ErrorKind::NotFound => 10,
            ErrorKind::ChannelPaused => 11,
            ErrorKind::RateLimited => 12,
            ErrorKind::ServerError => 13,
            ErrorKind::UrlExpired => 14,
            ErrorKind::S3Error => 15,
            ErrorKind::Protocol => 16,
            ErrorKind::Io => 17,
            ErrorKind::Cancelled => 18,
            ErrorKind::LimitExceeded => 19,
            ErrorKind::WrongState => 20,
            ErrorKind::Panic => 21,
            ErrorKind::AuthorizationPending => 22,
            ErrorKind::SlowDown => 23,
            ErrorKind::CodeExpired => 24,
            ErrorKind::BufferTooSmall => 25,
            ErrorKind::InvalidClient => 26,
            ErrorKind::HttpStatus => 27,
        }
    }

    /// The kind for a C status code, if it is one.
    pub fn from_status(status: i32) -> Option<ErrorKind> {
        ErrorKind::ALL.iter().copied().find(|k| k.status() == status)
    }

    /// Static, human-readable text for the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NullArgument => "a required argument was NULL",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::BadUtf8 => "string argument is not valid UTF-8",
            ErrorKind::Network => "network error (connection failed, reset or closed)",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Tls => "TLS error (handshake or certificate verification)",
            ErrorKind::BadRequest => "request rejected by the server (HTTP 400)",
            ErrorKind::Unauthorized => "not authorized (HTTP 401)",
            ErrorKind::PairingRequired => "pairing required: the device has no valid tokens",
            ErrorKind::NotFound => "not found (HTTP 404)",
            ErrorKind::ChannelPaused => "channel paused (HTTP 409): do not retry this file",
            ErrorKind::RateLimited => "rate limited (HTTP 429 or S3 SlowDown)",
            ErrorKind::ServerError => "server error (HTTP 5xx)",
            ErrorKind::UrlExpired => "upload URL expired or rejected (S3 403): register the part again",
            ErrorKind::S3Error => "S3 error",
            ErrorKind::Protocol => "malformed or unexpected reply from the server",
            ErrorKind::Io => "local I/O error",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::LimitExceeded => "limit exceeded",
            ErrorKind::WrongState => "object is in the wrong state for this call",
            ErrorKind::Panic => "internal panic (handle is no longer usable)",
            ErrorKind::AuthorizationPending => "pairing: waiting for the user to enter the code",
            ErrorKind::SlowDown => "pairing: polling too fast, interval increased",
            ErrorKind::CodeExpired => "pairing: the code expired, start again",
            ErrorKind::BufferTooSmall => "buffer too small (output truncated)",
            ErrorKind::InvalidClient => "client credentials rejected (invalid_client)",
            ErrorKind::HttpStatus => "unexpected HTTP status",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with its detail. `message` says what failed and never contains a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub kind: ErrorKind,
    /// HTTP status of the reply that caused it, if any.
    pub http_status: Option<u16>,
    /// The server's error code (`invalid_client`, `SlowDown`, `Channel Paused`, ...), if any.
    pub server_code: Option<String>,
    /// What failed, with the server's message when there was one. Never a secret.
    pub message: String,
    /// `Retry-After` sent with a 429/503, if any.
    pub retry_after: Option<Duration>,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error { kind, http_status: None, server_code: None, message: message.into(), retry_after: None }
    }

    pub fn null(what: &str) -> Error {
        Error::new(ErrorKind::NullArgument, format!("{what} must not be NULL"))
    }

    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidArgument, message)
    }

    pub fn with_status(mut self, status: u16) -> Error {
        self.http_status = Some(status);
        self
    }

    pub fn with_server_code(mut self, code: impl Into<String>) -> Error {
        self.server_code = Some(code.into());
        self
    }

    pub fn with_retry_after(mut self, d: Option<Duration>) -> Error {
        self.retry_after = d;
        self
    }

    /// Prefix the message with what was being done ("POST /v2/devices/assets: ...").
    pub fn context(mut self, what: &str) -> Error {
        if !what.is_empty() {
            self.message = format!("{what}: {}", self.message);
        }
        self
    }

    /// The C status code for this error.
    pub fn status(&self) -> i32 {
        self.kind.status()
    }

    /// Retry class of c2c-api.md 14.8: connection errors, timeouts, 429, 500/502/503/504,
    /// S3 RequestTimeout/SlowDown are retryable; everything else is not.
    pub fn is_retryable(&self) -> bool {
        match self.kind {
            ErrorKind::Network | ErrorKind::Timeout | ErrorKind::RateLimited => true,
            ErrorKind::ServerError => {
                matches!(self.http_status, None | Some(500 | 502 | 503 | 504))
            }
            ErrorKind::S3Error => matches!(self.server_code.as_deref(), Some("RequestTimeout" | "SlowDown")),
            _ => false,
        }
    }

    /// How long the server asked us to wait (`Retry-After`), if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match (self.http_status, self.server_code.as_deref()) {
            (Some(s), Some(c)) => write!(f, " (HTTP {s}, server code {c})"),
            (Some(s), None) => write!(f, " (HTTP {s})"),
            (None, Some(c)) => write!(f, " (server code {c})"),
            (None, None) => Ok(()),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::new(ErrorKind::Io, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_unique_and_nonzero() {
        let mut seen = std::collections::HashSet::new();
        for k in ErrorKind::ALL {
            assert!(k.status() > 0);
            assert!(seen.insert(k.status()), "duplicate {k:?}");
            assert_eq!(ErrorKind::from_status(k.status()), Some(*k));
        }
        // Codes are dense 1..=N so the C table stays simple.
        assert_eq!(seen.len() as i32, *seen.iter().max().unwrap());
    }

    #[test]
    fn retry_classes() {
        assert!(Error::new(ErrorKind::Network, "x").is_retryable());
        assert!(Error::new(ErrorKind::Timeout, "x").is_retryable());
        assert!(Error::new(ErrorKind::RateLimited, "x").with_status(429).is_retryable());
        for s in [500, 502, 503, 504] {
            assert!(Error::new(ErrorKind::ServerError, "x").with_status(s).is_retryable());
        }
        assert!(!Error::new(ErrorKind::ServerError, "x").with_status(501).is_retryable());
        assert!(!Error::new(ErrorKind::BadRequest, "x").with_status(400).is_retryable());
        assert!(!Error::new(ErrorKind::ChannelPaused, "x").with_status(409).is_retryable());
        assert!(!Error::new(ErrorKind::UrlExpired, "x").with_status(403).is_retryable());
        assert!(!Error::new(ErrorKind::NotFound, "x").with_status(404).is_retryable());
        assert!(Error::new(ErrorKind::S3Error, "x").with_server_code("SlowDown").is_retryable());
        assert!(!Error::new(ErrorKind::S3Error, "x").with_server_code("EntityTooSmall").is_retryable());
    }

    #[test]
    fn display_includes_status_and_code() {
        let e = Error::new(ErrorKind::BadRequest, "POST /x: bad").with_status(400).with_server_code("invalid_client");
        assert_eq!(e.to_string(), "POST /x: bad (HTTP 400, server code invalid_client)");
    }
}
