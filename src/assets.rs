//! Asset create (basic and real-time) and comments (c2c-api.md 4, 5.1, 6).

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::http::ApiBody;

/// Parameters of `POST /v2/devices/assets`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssetParams {
    /// Display name. Required for basic uploads; for real-time, it must carry an extension unless
    /// `extension` is given.
    pub name: Option<String>,
    /// Real-time only: the extension (".mp4") when the name is not known yet.
    pub extension: Option<String>,
    /// MIME type (`video/mp4`). Required for real-time; sent as Content-Type on part PUTs.
    pub filetype: String,
    /// Basic uploads: the file size in bytes (required). Ignored for real-time.
    pub filesize: Option<u64>,
    /// Real-time upload (parts registered as they are recorded).
    pub realtime: bool,
    /// Device channel the media comes from.
    pub channel: Option<i64>,
    /// Seconds since the media was created (for pause checks and the capture date). Send it.
    pub offset: Option<i64>,
    /// Make this asset the next version of the given asset.
    pub auto_version_id: Option<String>,
}

/// A created asset. Its Debug form prints the upload URLs without their query strings (they are
/// credentials).
#[derive(Clone, PartialEq)]
pub struct Asset {
    pub id: String,
    pub name: String,
    /// Basic uploads: presigned part URLs in part order. Empty for real-time assets.
    pub upload_urls: Vec<String>,
    pub filetype: Option<String>,
    pub filesize: Option<u64>,
    pub realtime: bool,
}

impl std::fmt::Debug for Asset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<String> = self.upload_urls.iter().map(|u| crate::secret::redact_url(u)).collect();
        f.debug_struct("Asset")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("upload_urls", &urls)
            .field("filetype", &self.filetype)
            .field("filesize", &self.filesize)
            .field("realtime", &self.realtime)
            .finish()
    }
}

/// A created comment.
#[derive(Debug, Clone, PartialEq)]
pub struct Comment {
    pub id: String,
    pub text: String,
    /// The complete reply, as JSON text.
    pub json: String,
}

/// 5 TiB: the largest file S3 multipart (and Frame.io) accepts.
pub const MAX_FILE_SIZE: u64 = 5 * 1024 * 1024 * 1024 * 1024;

fn extension_of(name: &str) -> Option<&str> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let i = base.rfind('.')?;
    let ext = &base[i..];
    if ext.len() > 1 {
        Some(ext)
    } else {
        None
    }
}

/// Asset ids go into URL paths: allow only id characters, so nothing can change the path.
pub(crate) fn check_asset_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(Error::invalid("asset_id must be a non-empty id (letters, digits, '-', '_')"));
    }
    Ok(())
}

impl AssetParams {
    /// Local checks (no request is sent when they fail).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::invalid(format!("asset create: {m}")));
        if let Some(n) = &self.name {
            if n.is_empty() && !self.realtime {
                return bad("name must not be empty");
            }
        }
        if let Some(e) = &self.extension {
            if !(e.starts_with('.') && e.len() > 1) {
                return bad("extension must look like \".mp4\"");
            }
        }
        if self.realtime {
            if self.filetype.is_empty() {
                return bad("filetype (MIME type) is required for a real-time upload");
            }
            match (&self.name, &self.extension) {
                (None, None) => return bad("a real-time asset needs a name with an extension, or an extension"),
                (Some(n), None) if extension_of(n).is_none() => {
                    return bad("a real-time asset's name must carry an extension (\".mp4\") unless extension is given")
                }
                (Some(n), Some(e)) if !n.is_empty() => {
                    if let Some(ne) = extension_of(n) {
                        if !ne.eq_ignore_ascii_case(e) {
                            return bad("name and extension disagree");
                        }
                    }
                }
                _ => {}
            }
        } else {
            if self.name.as_deref().unwrap_or("").is_empty() {
                return bad("name is required for a basic upload");
            }
            if self.filetype.is_empty() {
                return bad("filetype (MIME type) is required");
            }
            match self.filesize {
                None => return bad("filesize is required for a basic upload"),
                Some(s) if s > MAX_FILE_SIZE => return bad("filesize is over 5 TiB"),
                _ => {}
            }
        }
        if let Some(v) = &self.auto_version_id {
            check_asset_id(v).map_err(|_| Error::invalid("asset create: auto_version_id is not an id"))?;
        }
        Ok(())
    }

    fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        if let Some(n) = &self.name {
            m.insert("name".into(), n.clone().into());
        }
        m.insert("filetype".into(), self.filetype.clone().into());
        if self.realtime {
            m.insert("is_realtime_upload".into(), true.into());
            if let Some(e) = &self.extension {
                m.insert("extension".into(), e.clone().into());
            }
        } else if let Some(s) = self.filesize {
            m.insert("filesize".into(), s.into());
        }
        if let Some(c) = self.channel {
            m.insert("channel".into(), c.into());
        }
        if let Some(o) = self.offset {
            m.insert("offset".into(), o.into());
        }
        if let Some(v) = &self.auto_version_id {
            m.insert("auto_version_id".into(), v.clone().into());
        }
        serde_json::Value::Object(m)
    }
}

impl Client {
    /// `POST /v2/devices/assets` (JSON). Basic uploads get their `upload_urls`; real-time ones do not.
    /// Retried on transient failures even though that may create a duplicate asset (14.8; logged).
    pub fn create_asset(&self, p: &AssetParams) -> Result<Asset> {
        p.validate()?;
        let what = "POST /v2/devices/assets";
        let body =
            serde_json::to_vec(&p.to_json()).map_err(|e| Error::new(ErrorKind::InvalidArgument, e.to_string()))?;
        let r = self.call_auth("POST", "/v2/devices/assets", ApiBody::Json(body))?;
        let v = r.json(what)?;
        let id = v.get("id").and_then(|x| x.as_str()).filter(|s| !s.is_empty());
        let Some(id) = id else {
            return Err(Error::new(ErrorKind::Protocol, format!("{what}: reply has no asset id")).with_status(r.status));
        };
        if check_asset_id(id).is_err() {
            return Err(Error::new(ErrorKind::Protocol, format!("{what}: reply has a malformed asset id"))
                .with_status(r.status));
        }
        let mut upload_urls = Vec::new();
        if let Some(urls) = v.get("upload_urls") {
            let arr = urls
                .as_array()
                .ok_or_else(|| Error::new(ErrorKind::Protocol, format!("{what}: upload_urls is not a list")))?;
            for u in arr {
                let u = u
                    .as_str()
                    .ok_or_else(|| Error::new(ErrorKind::Protocol, format!("{what}: upload URL is not a string")))?;
                self.inner.fresh_urls.received(u);
                upload_urls.push(u.to_string());
            }
        }
        if !p.realtime && upload_urls.is_empty() && p.filesize.unwrap_or(0) > 0 {
            return Err(Error::new(ErrorKind::Protocol, format!("{what}: basic upload reply has no upload_urls"))
                .with_status(r.status));
        }
        Ok(Asset {
            id: id.to_string(),
            name: v
                .get("name")
                .and_then(|x| x.as_str())
                .map(str::to_string)
                .or_else(|| p.name.clone())
                .unwrap_or_default(),
            upload_urls,
            filetype: v
                .get("filetype")
                .and_then(|x| x.as_str())
                .map(str::to_string)
                .or_else(|| Some(p.filetype.clone())),
            filesize: v.get("filesize").and_then(|x| x.as_u64()).or(if p.realtime { None } else { p.filesize }),
            realtime: p.realtime,
        })
    }

    /// `POST /v2/devices/assets/{id}/comments`. `timestamp` is in frames (from 0); None = whole asset.
    pub fn create_comment(&self, asset_id: &str, text: &str, timestamp: Option<f64>) -> Result<Comment> {
        check_asset_id(asset_id)?;
        if text.is_empty() {
            return Err(Error::invalid("comment: text must not be empty"));
        }
        if let Some(t) = timestamp {
            if !t.is_finite() || t < 0.0 {
                return Err(Error::invalid("comment: timestamp must be a frame number >= 0"));
            }
        }
        let mut m = serde_json::Map::new();
        m.insert("text".into(), text.into());
        if let Some(t) = timestamp {
            m.insert(
                "timestamp".into(),
                serde_json::Number::from_f64(t).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null),
            );
        }
        let path = format!("/v2/devices/assets/{asset_id}/comments");
        let what = format!("POST {path}");
        let body = serde_json::to_vec(&serde_json::Value::Object(m))
            .map_err(|e| Error::new(ErrorKind::InvalidArgument, e.to_string()))?;
        let r = self.call_auth("POST", &path, ApiBody::Json(body))?;
        let v = r.json(&what)?;
        Ok(Comment {
            id: v.get("id").and_then(|x| x.as_str()).unwrap_or_default().to_string(),
            text: v.get("text").and_then(|x| x.as_str()).unwrap_or(text).to_string(),
            json: String::from_utf8_lossy(&r.body).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(name: Option<&str>, ext: Option<&str>) -> AssetParams {
        AssetParams {
            name: name.map(Into::into),
            extension: ext.map(Into::into),
            filetype: "video/mp4".into(),
            realtime: true,
            ..Default::default()
        }
    }

    #[test]
    fn realtime_validation() {
        assert!(rt(Some("a.mp4"), None).validate().is_ok());
        assert!(rt(None, Some(".mp4")).validate().is_ok());
        assert!(rt(Some("a.mp4"), Some(".mp4")).validate().is_ok());
        assert!(rt(Some("a"), None).validate().is_err());
        assert!(rt(None, None).validate().is_err());
        assert!(rt(None, Some("mp4")).validate().is_err());
        assert!(rt(Some("a.mov"), Some(".mp4")).validate().is_err());
        let mut p = rt(Some("a.mp4"), None);
        p.filetype.clear();
        assert!(p.validate().is_err());
    }

    #[test]
    fn basic_validation() {
        let p = AssetParams {
            name: Some("clip.mp4".into()),
            filetype: "video/mp4".into(),
            filesize: Some(10),
            ..Default::default()
        };
        assert!(p.validate().is_ok());
        let j = p.to_json();
        assert_eq!(j["filesize"], 10);
        assert!(j.get("is_realtime_upload").is_none());
        assert!(AssetParams { filesize: None, ..p.clone() }.validate().is_err());
        assert!(AssetParams { name: None, ..p.clone() }.validate().is_err());
        assert!(AssetParams { filesize: Some(MAX_FILE_SIZE + 1), ..p.clone() }.validate().is_err());
    }

    #[test]
    fn asset_ids() {
        assert!(check_asset_id("9a280f99-8f4f-46b0-a4b4-ec4c2f95138e").is_ok());
        assert!(check_asset_id("").is_err());
        assert!(check_asset_id("../x").is_err());
        assert!(check_asset_id("a?b").is_err());
    }
}
