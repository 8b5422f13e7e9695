//! Register real-time parts: `POST /v2/devices/assets/{id}/realtime_upload/parts` (c2c-api.md 5.2, 14.1-14.2).

use crate::assets::{check_asset_id, MAX_FILE_SIZE};
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::http::ApiBody;

/// Smallest non-final part: 5 MiB.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Largest part: 5 GiB.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Highest part number.
pub const MAX_PART_NUMBER: u32 = 10_000;

/// One part to register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartSpec {
    /// 1..=10000.
    pub number: u32,
    /// Bytes in the part: >= 5 MiB unless final, <= 5 GiB.
    pub size: u64,
    /// The last part of the file (then `asset_filesize` is required).
    pub is_final: bool,
}

/// Check a registration locally (before any request is sent).
pub fn validate_parts(parts: &[PartSpec], asset_name: Option<&str>, asset_filesize: Option<u64>) -> Result<()> {
    let bad = |m: String| Err(Error::invalid(format!("register parts: {m}")));
    if parts.is_empty() {
        return bad("no parts given".into());
    }
    if parts.len() > MAX_PART_NUMBER as usize {
        return bad(format!("{} parts in one call (at most {MAX_PART_NUMBER})", parts.len()));
    }
    let mut seen = std::collections::HashSet::new();
    let mut final_number = None;
    let mut sum: u64 = 0;
    for p in parts {
        if p.number == 0 || p.number > MAX_PART_NUMBER {
            return bad(format!("part number {} is out of range (1..={MAX_PART_NUMBER})", p.number));
        }
        if !seen.insert(p.number) {
            return bad(format!("part number {} appears twice", p.number));
        }
        if p.size > MAX_PART_SIZE {
            return bad(format!("part {} is {} bytes, over the 5 GiB part limit", p.number, p.size));
        }
        if !p.is_final && p.size < MIN_PART_SIZE {
            return bad(format!(
                "part {} is {} bytes; every part except the final one must be at least 5 MiB (5242880 bytes)",
                p.number, p.size
            ));
        }
        if p.is_final {
            if final_number.is_some() {
                return bad("more than one final part".into());
            }
            final_number = Some(p.number);
        }
        sum = sum.saturating_add(p.size);
    }
    if let Some(f) = final_number {
        if parts.iter().any(|p| p.number > f) {
            return bad("a part is numbered after the final part".into());
        }
        match asset_filesize {
            None => return bad("asset_filesize is required with the final part".into()),
            Some(s) if s > MAX_FILE_SIZE => return bad(format!("asset_filesize {s} is over 5 TiB")),
            Some(s) if s < sum => {
                return bad(format!("asset_filesize {s} is smaller than the parts in this call ({sum})"))
            }
            Some(0) if !(f == 1 && parts.len() == 1) => {
                return bad("asset_filesize 0 is only valid for a single empty part".into())
            }
            _ => {}
        }
    } else if let Some(s) = asset_filesize {
        if s > MAX_FILE_SIZE {
            return bad(format!("asset_filesize {s} is over 5 TiB"));
        }
    }
    if sum > MAX_FILE_SIZE {
        return bad("parts add up to more than 5 TiB".into());
    }
    if let Some(n) = asset_name {
        if n.is_empty() {
            return bad("asset_name must not be empty".into());
        }
    }
    Ok(())
}

impl Client {
    /// Register parts of a real-time asset and get one presigned URL per part, in the order given.
    /// Checks locally first (1..=10000, non-final >= 5 MiB, final needs `asset_filesize`, <= 5 TiB).
    /// Registering the same number again with the same size/is_final returns a fresh URL (14.2).
    pub fn register_parts(
        &self,
        asset_id: &str,
        parts: &[PartSpec],
        asset_name: Option<&str>,
        asset_filesize: Option<u64>,
    ) -> Result<Vec<String>> {
        self.register_parts_cancellable(asset_id, parts, asset_name, asset_filesize, &|| false)
    }

    /// [`register_parts`](Self::register_parts), also stopped (with `Cancelled`) by `cancelled`, which is
    /// checked before each attempt and while waiting between attempts (a `Retry-After` wait may be long).
    pub fn register_parts_cancellable(
        &self,
        asset_id: &str,
        parts: &[PartSpec],
        asset_name: Option<&str>,
        asset_filesize: Option<u64>,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Vec<String>> {
        check_asset_id(asset_id)?;
        validate_parts(parts, asset_name, asset_filesize)?;
        let list: Vec<serde_json::Value> = parts
            .iter()
            .map(|p| serde_json::json!({"number": p.number, "size": p.size, "is_final": p.is_final}))
            .collect();
        let mut m = serde_json::Map::new();
        m.insert("parts".into(), list.into());
        if let Some(n) = asset_name {
            m.insert("asset_name".into(), n.into());
        }
        if let Some(s) = asset_filesize {
            m.insert("asset_filesize".into(), s.into());
        }
        let path = format!("/v2/devices/assets/{asset_id}/realtime_upload/parts");
        let what = format!("POST {path}");
        let body = serde_json::to_vec(&serde_json::Value::Object(m))
            .map_err(|e| Error::new(ErrorKind::InvalidArgument, e.to_string()))?;
        let r = self.call_auth_cancellable("POST", &path, ApiBody::Json(body), cancelled)?;
        let v = r.json(&what)?;
        let urls = v.get("upload_urls").and_then(|u| u.as_array()).ok_or_else(|| {
            Error::new(ErrorKind::Protocol, format!("{what}: reply has no upload_urls")).with_status(r.status)
        })?;
        let urls: Vec<String> = urls.iter().filter_map(|u| u.as_str().map(str::to_string)).collect();
        for u in &urls {
            self.inner.fresh_urls.received(u);
        }
        if urls.len() != parts.len() {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("{what}: asked for {} URLs, got {}", parts.len(), urls.len()),
            )
            .with_status(r.status));
        }
        Ok(urls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(number: u32, size: u64, is_final: bool) -> PartSpec {
        PartSpec { number, size, is_final }
    }

    #[test]
    fn valid() {
        assert!(validate_parts(&[p(1, MIN_PART_SIZE, false)], None, None).is_ok());
        assert!(validate_parts(&[p(1, MIN_PART_SIZE, false), p(2, 10, true)], None, Some(MIN_PART_SIZE + 10)).is_ok());
        assert!(validate_parts(&[p(3, 1, true)], None, Some(MIN_PART_SIZE * 2 + 1)).is_ok());
        assert!(validate_parts(&[p(1, 0, true)], None, Some(0)).is_ok());
        assert!(validate_parts(&[p(10_000, 1, true)], Some("x.mp4"), Some(1)).is_ok());
    }

    #[test]
    fn invalid() {
        let e = |parts: &[PartSpec], fs: Option<u64>| validate_parts(parts, None, fs).unwrap_err();
        assert!(e(&[p(0, MIN_PART_SIZE, false)], None).message.contains("out of range"));
        assert!(e(&[p(10_001, MIN_PART_SIZE, false)], None).message.contains("out of range"));
        assert!(e(&[p(1, MIN_PART_SIZE - 1, false)], None).message.contains("5 MiB"));
        assert!(e(&[p(1, 10, true)], None).message.contains("asset_filesize is required"));
        assert!(e(&[p(1, 10, true)], Some(MAX_FILE_SIZE + 1)).message.contains("5 TiB"));
        assert!(e(&[p(1, MAX_PART_SIZE + 1, true)], Some(MAX_PART_SIZE + 1)).message.contains("5 GiB"));
        assert!(e(&[], None).message.contains("no parts"));
        assert!(e(&[p(1, MIN_PART_SIZE, false), p(1, MIN_PART_SIZE, false)], None).message.contains("twice"));
        assert!(e(&[p(2, 1, true), p(3, MIN_PART_SIZE, false)], Some(100_000_000)).message.contains("after the final"));
        assert_eq!(e(&[p(0, 1, false)], None).kind, ErrorKind::InvalidArgument);
    }
}
