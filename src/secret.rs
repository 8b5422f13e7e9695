//! Secrets: redacted in Debug, wiped on drop, and redaction helpers for URLs in logs and errors.

use std::fmt;

/// Overwrite a string's bytes with zeros (best effort: the optimiser may not elide volatile writes).
pub fn wipe_string(s: &mut String) {
    // SAFETY: zero bytes are valid UTF-8; we write through the existing allocation only.
    unsafe {
        for b in s.as_bytes_mut() {
            std::ptr::write_volatile(b, 0);
        }
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    s.clear();
}

/// Overwrite a byte vector with zeros.
pub fn wipe_bytes(v: &mut Vec<u8>) {
    for b in v.iter_mut() {
        // SAFETY: b is a valid &mut u8.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    v.clear();
}

/// A string that never prints and is wiped when dropped.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret value. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        wipe_string(&mut self.0);
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_string())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s)
    }
}

/// A URL safe to log: the query string (presigned credentials and signature) is replaced.
pub fn redact_url(url: &str) -> String {
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    let (base, rest) = url.split_at(cut);
    // Drop any userinfo (user:pass@) from the authority too.
    let base = match base.find("://") {
        Some(i) => {
            let after = &base[i + 3..];
            let auth_end = after.find('/').unwrap_or(after.len());
            match after[..auth_end].rfind('@') {
                Some(at) => format!("{}{}", &base[..i + 3], &after[at + 1..]),
                None => base.to_string(),
            }
        }
        None => base.to_string(),
    };
    if rest.is_empty() {
        base
    } else {
        format!("{base}?<redacted>")
    }
}

/// Limit a server-provided string for messages: printable, at most `max` characters.
pub fn sanitize_server_text(s: &str, max: usize) -> String {
    let mut out: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).take(max).collect();
    if s.chars().count() > max {
        out.push_str("...");
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_query_and_userinfo() {
        assert_eq!(
            redact_url("https://b.s3.example/parts/1?X-Amz-Signature=abc&X-Amz-Credential=k"),
            "https://b.s3.example/parts/1?<redacted>"
        );
        assert_eq!(redact_url("http://u:p@h:1/x"), "http://h:1/x");
        assert_eq!(redact_url("https://api.frame.io/v2/devices/me"), "https://api.frame.io/v2/devices/me");
    }

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new("topsecret");
        assert!(!format!("{s:?}").contains("topsecret"));
        assert_eq!(s.expose(), "topsecret");
    }

    #[test]
    fn wipe() {
        let mut s = String::from("abc");
        wipe_string(&mut s);
        assert!(s.is_empty());
    }
}
