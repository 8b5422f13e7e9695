//! Assets, comments, real-time part registration, URL lists and part PUTs.

use std::ffi::{c_char, c_int, c_void, CString};
use std::fs::File;
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;

use super::client::{fio_client, with_client};
use super::{
    fio_status, guard_value, into_raw_string, opt_str, req_out, req_str, to_c_string, UserData, FIO_SIZE_NONE,
};
use crate::assets::{Asset, AssetParams};
use crate::error::{Error, Result};
use crate::realtime::PartSpec;
use crate::s3::PartBody;

/// Parameters of fio_asset_create. Zero-initialise it (or call fio_asset_params_init), then set fields.
/// Strings are borrowed for the call only.
#[repr(C)]
pub struct fio_asset_params {
    /// Display name. Required for a basic upload; for real-time it must end in an extension (".mp4")
    /// unless `extension` is set. NULL = none.
    pub name: *const c_char,
    /// Real-time only: the extension (".mp4") when the final name is not known yet. NULL = none.
    pub extension: *const c_char,
    /// MIME type ("video/mp4"). Required.
    pub filetype: *const c_char,
    /// Basic upload: the file size in bytes. Ignored for real-time.
    pub filesize: u64,
    /// true: real-time upload (register parts as they are recorded); false: basic upload (upload URLs
    /// come back with the asset).
    pub realtime: bool,
    /// Whether `channel` is sent.
    pub has_channel: bool,
    /// Device channel the media comes from.
    pub channel: i64,
    /// Whether `offset` is sent (send it: it files media under its capture date and drives pause checks).
    pub has_offset: bool,
    /// Seconds since the media was created.
    pub offset: i64,
}

/// One part for fio_register_parts.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fio_part_spec {
    /// Part number, 1..10000.
    pub number: u32,
    /// Bytes in the part: at least 5 MiB (5242880) unless final; at most 5 GiB.
    pub size: u64,
    /// The last part of the file (then asset_filesize is required).
    pub is_final: bool,
}

/// Progress callback for part PUTs: called with the number of bytes just handed to the socket (the sum
/// restarts from 0 when the library retries the part, so it can exceed the part size). Return 0 to
/// continue; any other value aborts the PUT with FIO_ERR_CANCELLED. Called on the thread that called
/// fio_put_part(_fd); it may sleep (to cap bandwidth); it must not throw or longjmp.
pub type fio_part_progress_cb = Option<unsafe extern "C" fn(userdata: *mut c_void, bytes: u64) -> c_int>;

/// Opaque created asset. Free with fio_asset_free. Its accessors are thread-safe.
pub struct fio_asset {
    asset: Asset,
    id: CString,
    name: CString,
    urls: Vec<CString>,
}

/// Opaque list of presigned upload URLs, in the order of the parts registered. Free with
/// fio_url_list_free. Its accessors are thread-safe.
pub struct fio_url_list {
    urls: Vec<CString>,
}

/// Reset `params` to "nothing set" (all zero / NULL / false). NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fio_asset_params_init(params: *mut fio_asset_params) {
    guard_value((), || {
        if let Some(p) = params.as_mut() {
            *p = fio_asset_params {
                name: std::ptr::null(),
                extension: std::ptr::null(),
                filetype: std::ptr::null(),
                filesize: 0,
                realtime: false,
                has_channel: false,
                channel: 0,
                has_offset: false,
                offset: 0,
            };
        }
    })
}

unsafe fn params_from_c(p: &fio_asset_params) -> Result<AssetParams> {
    Ok(AssetParams {
        name: opt_str(p.name, "params.name")?.map(str::to_string),
        extension: opt_str(p.extension, "params.extension")?.map(str::to_string),
        filetype: req_str(p.filetype, "params.filetype")?.to_string(),
        filesize: if p.realtime { None } else { Some(p.filesize) },
        realtime: p.realtime,
        channel: p.has_channel.then_some(p.channel),
        offset: p.has_offset.then_some(p.offset),
        auto_version_id: None,
    })
}

/// POST /v2/devices/assets: create a basic or real-time asset and write it to `*out` (free with
/// fio_asset_free). Arguments are checked before any request (name/extension/filetype rules,
/// filesize <= 5 TiB). Errors: NULL_ARGUMENT, BAD_UTF8, INVALID_ARGUMENT, CHANNEL_PAUSED (do not retry
/// this file), PAIRING_REQUIRED, BAD_REQUEST, RATE_LIMITED, NETWORK, ... Transient failures are retried
/// (which may create a duplicate asset if a reply was lost).
#[no_mangle]
pub unsafe extern "C" fn fio_asset_create(
    client: *const fio_client,
    params: *const fio_asset_params,
    out: *mut *mut fio_asset,
) -> fio_status {
    with_client(client, |c| {
        let p = params.as_ref().ok_or_else(|| Error::null("params"))?;
        req_out(out, "out")?;
        let params = params_from_c(p)?;
        let asset = c.create_asset(&params)?;
        let h = fio_asset {
            id: to_c_string(&asset.id),
            name: to_c_string(&asset.name),
            urls: asset.upload_urls.iter().map(|u| to_c_string(u)).collect(),
            asset,
        };
        *out = Box::into_raw(Box::new(h));
        Ok(())
    })
}

/// The asset's id. Valid until fio_asset_free; NULL if `asset` is NULL.
#[no_mangle]
pub unsafe extern "C" fn fio_asset_id(asset: *const fio_asset) -> *const c_char {
    guard_value(std::ptr::null(), || asset.as_ref().map_or(std::ptr::null(), |a| a.id.as_ptr()))
}

/// The asset's name. Valid until fio_asset_free; NULL if `asset` is NULL.
#[no_mangle]
pub unsafe extern "C" fn fio_asset_name(asset: *const fio_asset) -> *const c_char {
    guard_value(std::ptr::null(), || asset.as_ref().map_or(std::ptr::null(), |a| a.name.as_ptr()))
}

/// Whether the asset is a real-time upload (false if `asset` is NULL).
#[no_mangle]
pub unsafe extern "C" fn fio_asset_is_realtime(asset: *const fio_asset) -> bool {
    guard_value(false, || asset.as_ref().is_some_and(|a| a.asset.realtime))
}

/// Number of upload URLs (basic uploads; 0 for real-time assets or NULL).
/// Part i (0-based) covers bytes [i*chunk, min((i+1)*chunk, filesize)) with
/// chunk = ceil(filesize / count).
#[no_mangle]
pub unsafe extern "C" fn fio_asset_upload_url_count(asset: *const fio_asset) -> usize {
    guard_value(0, || asset.as_ref().map_or(0, |a| a.urls.len()))
}

/// Upload URL `index` (0-based), or NULL if out of range. Valid until fio_asset_free. It is a
/// credential: do not log it.
#[no_mangle]
pub unsafe extern "C" fn fio_asset_upload_url(asset: *const fio_asset, index: usize) -> *const c_char {
    guard_value(std::ptr::null(), || {
        asset.as_ref().and_then(|a| a.urls.get(index)).map_or(std::ptr::null(), |u| u.as_ptr())
    })
}

/// Free an asset. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fio_asset_free(asset: *mut fio_asset) {
    guard_value((), || {
        if !asset.is_null() {
            drop(Box::from_raw(asset));
        }
    })
}

/// POST /v2/devices/assets/{asset_id}/comments: add a comment. `timestamp` is in frames from 0; a
/// negative value makes it a comment on the whole asset. `comment_id_out` may be NULL; otherwise it gets
/// the new comment's id (free with fio_string_free). Errors: NULL_ARGUMENT, BAD_UTF8, INVALID_ARGUMENT
/// (empty text, malformed id), NOT_FOUND, PAIRING_REQUIRED, ...
#[no_mangle]
pub unsafe extern "C" fn fio_comment_create(
    client: *const fio_client,
    asset_id: *const c_char,
    text: *const c_char,
    timestamp: f64,
    comment_id_out: *mut *mut c_char,
) -> fio_status {
    with_client(client, |c| {
        let id = req_str(asset_id, "asset_id")?;
        let text = req_str(text, "text")?;
        if timestamp.is_nan() {
            return Err(Error::invalid("timestamp is NaN"));
        }
        let ts = if timestamp < 0.0 { None } else { Some(timestamp) };
        let comment = c.create_comment(id, text, ts)?;
        if !comment_id_out.is_null() {
            *comment_id_out = into_raw_string(&comment.id);
        }
        Ok(())
    })
}

/// Register parts of a real-time asset and write their presigned URLs to `*out` (free with
/// fio_url_list_free), in the order of `parts`. `n` parts; `asset_name` (NULL = none) renames an asset
/// created with only an extension; `asset_filesize` (FIO_SIZE_NONE = none) is the whole file's size and is
/// required when a part is final. Checked before any request: n >= 1, numbers 1..10000 without duplicates,
/// non-final parts >= 5 MiB, parts <= 5 GiB, final part needs asset_filesize, total <= 5 TiB.
/// Registering a number again with the same size and is_final gives a fresh URL (after FIO_ERR_URL_EXPIRED).
/// Errors: NULL_ARGUMENT, BAD_UTF8, INVALID_ARGUMENT, BAD_REQUEST, NOT_FOUND, PAIRING_REQUIRED, ...
#[no_mangle]
pub unsafe extern "C" fn fio_register_parts(
    client: *const fio_client,
    asset_id: *const c_char,
    parts: *const fio_part_spec,
    n: usize,
    asset_name: *const c_char,
    asset_filesize: u64,
    out: *mut *mut fio_url_list,
) -> fio_status {
    with_client(client, |c| {
        let id = req_str(asset_id, "asset_id")?;
        if parts.is_null() {
            return Err(Error::null("parts"));
        }
        req_out(out, "out")?;
        if n == 0 {
            return Err(Error::invalid("register parts: no parts given (n is 0)"));
        }
        if n > crate::realtime::MAX_PART_NUMBER as usize {
            return Err(Error::invalid("register parts: more than 10000 parts"));
        }
        let name = opt_str(asset_name, "asset_name")?;
        let specs: Vec<PartSpec> = std::slice::from_raw_parts(parts, n)
            .iter()
            .map(|p| PartSpec { number: p.number, size: p.size, is_final: p.is_final })
            .collect();
        let fs = if asset_filesize == FIO_SIZE_NONE { None } else { Some(asset_filesize) };
        let urls = c.register_parts(id, &specs, name, fs)?;
        *out = Box::into_raw(Box::new(fio_url_list { urls: urls.iter().map(|u| to_c_string(u)).collect() }));
        Ok(())
    })
}

/// Number of URLs in the list (0 if NULL).
#[no_mangle]
pub unsafe extern "C" fn fio_url_list_len(list: *const fio_url_list) -> usize {
    guard_value(0, || list.as_ref().map_or(0, |l| l.urls.len()))
}

/// URL `index` (0-based), or NULL if out of range. Valid until fio_url_list_free. It is a credential:
/// do not log it.
#[no_mangle]
pub unsafe extern "C" fn fio_url_list_get(list: *const fio_url_list, index: usize) -> *const c_char {
    guard_value(std::ptr::null(), || {
        list.as_ref().and_then(|l| l.urls.get(index)).map_or(std::ptr::null(), |u| u.as_ptr())
    })
}

/// Free a URL list. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fio_url_list_free(list: *mut fio_url_list) {
    guard_value((), || {
        if !list.is_null() {
            drop(Box::from_raw(list));
        }
    })
}

fn hook_from_c(cb: fio_part_progress_cb, userdata: *mut c_void) -> Option<impl Fn(u64) -> bool> {
    let ud = UserData(userdata);
    // SAFETY: the caller registered cb/userdata for the duration of the call.
    cb.map(move |f| move |n: u64| unsafe { f(ud.0, n) == 0 })
}

/// PUT `len` bytes from `data` to a presigned part URL (no bearer token; exactly the headers the URL
/// signs; explicit Content-Length). `content_type` is the asset's filetype. `data` may be NULL only when
/// `len` is 0. `progress` (NULL = none) sees each chunk and can cancel. Transient failures (connection
/// reset, timeouts, 5xx, 429, S3 SlowDown/RequestTimeout, stale pooled connections) are retried per
/// the retry policy, resending the part from its start. Errors: URL_EXPIRED (S3 403: register the part
/// again for a fresh URL), S3, CANCELLED, NETWORK, TIMEOUT, INVALID_ARGUMENT, NULL_ARGUMENT, BAD_UTF8.
/// Thread-safe: parts may be PUT in parallel on one client.
#[no_mangle]
pub unsafe extern "C" fn fio_put_part(
    client: *const fio_client,
    url: *const c_char,
    data: *const u8,
    len: usize,
    content_type: *const c_char,
    progress: fio_part_progress_cb,
    userdata: *mut c_void,
) -> fio_status {
    with_client(client, |c| {
        let url = req_str(url, "url")?;
        let ct = req_str(content_type, "content_type")?;
        let bytes: &[u8] = if len == 0 {
            &[]
        } else if data.is_null() {
            return Err(Error::null("data"));
        } else if len as u64 > crate::realtime::MAX_PART_SIZE {
            // checked before the slice is made: a slice over isize::MAX bytes is undefined behaviour
            return Err(Error::invalid("part is larger than 5 GiB"));
        } else {
            std::slice::from_raw_parts(data, len)
        };
        let hook = hook_from_c(progress, userdata);
        c.put_part(url, PartBody::Bytes(bytes), ct, hook.as_ref().map(|h| h as &dyn Fn(u64) -> bool))
    })
}

/// Like fio_put_part, but streams `len` bytes of the open file `fd` starting at `offset`, read with
/// pread while sending (never read whole into memory; the fd's file position is not used or changed;
/// the fd is not closed). A file shorter than offset+len gives FIO_ERR_IO. Errors as fio_put_part, plus
/// INVALID_ARGUMENT for a negative fd.
#[no_mangle]
pub unsafe extern "C" fn fio_put_part_fd(
    client: *const fio_client,
    url: *const c_char,
    fd: c_int,
    offset: u64,
    len: u64,
    content_type: *const c_char,
    progress: fio_part_progress_cb,
    userdata: *mut c_void,
) -> fio_status {
    with_client(client, |c| {
        let url = req_str(url, "url")?;
        let ct = req_str(content_type, "content_type")?;
        if fd < 0 {
            return Err(Error::invalid("fd is negative"));
        }
        // Borrow the caller's fd without taking ownership (never closed here).
        let file = ManuallyDrop::new(File::from_raw_fd(fd));
        let hook = hook_from_c(progress, userdata);
        c.put_part(
            url,
            PartBody::File { file: &file, offset, len },
            ct,
            hook.as_ref().map(|h| h as &dyn Fn(u64) -> bool),
        )
    })
}
