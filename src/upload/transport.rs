//! The seam between the engine and the HTTP client: a small trait, implemented for
//! `crate::client::Client` and by the mock transports of the unit tests.

use std::fs::File;

use crate::error::Result;

/// One part to register (c2c-api.md section 5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartReq {
    pub number: u32,
    pub size: u64,
    pub is_final: bool,
}

/// The bytes of one part: from memory, or a range of a file (read with positional reads, so one
/// `File` is shared by all workers).
#[derive(Clone, Copy)]
pub enum Body<'a> {
    Bytes(&'a [u8]),
    File { file: &'a File, offset: u64, len: u64 },
}

/// What to create (the asset's name, type, channel, offset), kept in the resume state.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AssetSpec {
    /// Name with extension (e.g. "A001_C002.mov"); optional for real-time when `extension` is set.
    pub name: Option<String>,
    /// Extension with its dot (".mov"), for real-time assets whose name is not known yet.
    pub extension: Option<String>,
    /// MIME type, e.g. "video/quicktime"; also the Content-Type of every part PUT.
    pub filetype: String,
    /// Device channel (None: the server's default).
    pub channel: Option<i64>,
    /// Seconds since the media was created (c2c-api.md pitfall 3).
    pub offset: Option<i64>,
    /// Name sent with the final part (`asset_name`), for assets created with only an extension.
    pub final_name: Option<String>,
}

/// Everything the engine needs from the network.
pub trait Transport: Send + Sync + 'static {
    /// Creates a real-time asset; returns its id.
    fn create_realtime_asset(&self, spec: &AssetSpec) -> Result<String>;
    /// Creates a basic (non-real-time) asset of `filesize` bytes; returns its id and upload URLs.
    fn create_basic_asset(&self, spec: &AssetSpec, filesize: u64) -> Result<(String, Vec<String>)>;
    /// Registers parts; returns one URL per part, in order.
    fn register_parts(
        &self,
        asset_id: &str,
        parts: &[PartReq],
        asset_name: Option<&str>,
        asset_filesize: Option<u64>,
    ) -> Result<Vec<String>>;
    /// [`register_parts`](Self::register_parts) that gives up (with `Cancelled`) once `cancelled` says
    /// so, also while waiting between retries. The default ignores `cancelled`.
    fn register_parts_cancellable(
        &self,
        asset_id: &str,
        parts: &[PartReq],
        asset_name: Option<&str>,
        asset_filesize: Option<u64>,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Vec<String>> {
        let _ = cancelled;
        self.register_parts(asset_id, parts, asset_name, asset_filesize)
    }
    /// PUTs one part. `hook(n)` is called as each `n` bytes go out; returning false aborts with
    /// `Cancelled`. Transient failures are retried inside; S3 403 gives `UrlExpired`.
    fn put_part(&self, url: &str, body: Body<'_>, content_type: &str, hook: &dyn Fn(u64) -> bool) -> Result<()>;
}
