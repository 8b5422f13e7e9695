//! `fio_upload_*`: the upload engine (crate::upload) for C.
//!
//! An upload takes its bytes either pushed by the caller (`fio_upload_write`) or from a file on disk
//! that grows append-only (`fio_upload_file_grew`, or the engine polling the file's size), uploads
//! parts in parallel on background threads while the recording goes on, and completes the asset at
//! `fio_upload_finish`. `fio_upload_file` uploads a complete file in one call.

use std::ffi::{c_char, c_int, c_void, CString};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::assets::fio_asset_params;
use super::client::{fio_client, with_client};
use super::{fio_status, guard, guard_value, opt_str, req_out, req_str, UserData, FIO_OK};
use crate::error::{Error, ErrorKind, Result};
use crate::upload::{self, AssetSpec, PartStatus, PlanConfig, Progress, Source, Transport, Upload, UploadOptions};

/// A snapshot of an upload's counters: passed to the progress callback and filled by
/// fio_upload_stats / fio_upload_finish.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct fio_progress {
    /// Bytes recorded so far (pushed, or the file size the engine knows).
    pub bytes_recorded: u64,
    /// Bytes of finished parts plus bytes of parts on the wire now.
    pub bytes_sent: u64,
    /// Bytes of finished parts.
    pub bytes_done: u64,
    /// Parts uploaded.
    pub parts_done: u32,
    /// Parts cut so far (the final count once fio_upload_finish was called).
    pub parts_total: u32,
    /// Parts on the wire now.
    pub parts_in_flight: u32,
    /// Transient failures that were retried.
    pub retries: u32,
    /// Parts registered again after S3 rejected their URL (expired).
    pub reregistrations: u32,
    /// Send rate while parts are in flight (over the last second or so of sending), bytes per second;
    /// holds its last value while the upload waits for the recording.
    pub throughput_bps: f64,
    /// Pushed bytes held in memory now, and the most held at once (never above the buffer budget).
    pub bytes_buffered: u64,
    pub peak_bytes_buffered: u64,
    /// Seconds since the upload started.
    pub elapsed_secs: f64,
    /// true once every part is uploaded: the asset is complete.
    pub complete: bool,
}

impl From<Progress> for fio_progress {
    fn from(p: Progress) -> Self {
        fio_progress {
            bytes_recorded: p.bytes_recorded,
            bytes_sent: p.bytes_sent,
            bytes_done: p.bytes_done,
            parts_done: p.parts_done,
            parts_total: p.parts_total,
            parts_in_flight: p.parts_in_flight,
            retries: p.retries,
            reregistrations: p.reregistrations,
            throughput_bps: p.throughput_bps,
            bytes_buffered: p.bytes_buffered,
            peak_bytes_buffered: p.peak_bytes_buffered,
            elapsed_secs: p.elapsed_secs,
            complete: p.complete,
        }
    }
}

/// Progress callback: `userdata` first, then the counters (valid for the call only). Runs on the
/// upload's monitor thread (never on the caller's), at most every `interval_ms` while something
/// changes, and once more when the upload completes, fails or is cancelled. Return 0 to go on; any
/// other value cancels the upload (FIO_ERR_CANCELLED). It must not throw or longjmp, and must not call
/// fio_upload_free on its own upload.
pub type fio_progress_cb = Option<unsafe extern "C" fn(userdata: *mut c_void, progress: *const fio_progress) -> c_int>;

/// Part state in fio_upload_part.
pub type fio_part_state = u32;
/// Waiting for a worker (or for its bytes).
pub const FIO_PART_QUEUED: fio_part_state = 0;
/// Being registered or sent.
pub const FIO_PART_SENDING: fio_part_state = 1;
/// Uploaded.
pub const FIO_PART_DONE: fio_part_state = 2;
/// Failed; `last_status` says why.
pub const FIO_PART_FAILED: fio_part_state = 3;

/// One part of an upload (per-part detail for the final status).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct fio_upload_part {
    /// Part number, from 1.
    pub number: u32,
    /// Where the part starts in the recording, and its size in bytes.
    pub offset: u64,
    pub size: u64,
    /// The last part.
    pub is_final: bool,
    /// FIO_PART_QUEUED / _SENDING / _DONE / _FAILED.
    pub state: fio_part_state,
    /// PUT attempts made by the engine (each retry and each re-registration adds one).
    pub attempts: u32,
    /// Status of this part's last failure (FIO_OK if none), and its HTTP status (0 if none).
    pub last_status: fio_status,
    pub last_http_status: u16,
}

/// Opaque upload settings. Create with fio_upload_options_new, free with fio_upload_options_free.
/// Not thread-safe while being set; copied by fio_upload_start, so it may be freed afterwards.
pub struct fio_upload_options {
    concurrency: usize,
    buffer_budget: u64,
    plan: PlanConfig,
    bandwidth_limit: u64,
    retry_deadline: Duration,
    retry_backoff: Duration,
    progress: fio_progress_cb,
    progress_userdata: UserData,
    progress_interval: Duration,
    state_file: Option<PathBuf>,
    watch_interval: Option<Duration>,
    final_name: Option<String>,
}

impl Default for fio_upload_options {
    fn default() -> Self {
        let d = UploadOptions::default();
        fio_upload_options {
            concurrency: d.concurrency,
            buffer_budget: d.buffer_budget,
            plan: d.plan,
            bandwidth_limit: d.bandwidth_limit,
            retry_deadline: d.retry_deadline,
            retry_backoff: d.retry_backoff,
            progress: None,
            progress_userdata: UserData(std::ptr::null_mut()),
            progress_interval: d.progress_interval,
            state_file: None,
            watch_interval: None,
            final_name: None,
        }
    }
}

impl fio_upload_options {
    fn to_rust(&self) -> UploadOptions {
        let progress: Option<upload::ProgressFn> = self.progress.map(|cb| {
            let ud = self.progress_userdata;
            Box::new(move |p: &Progress| {
                let cp = fio_progress::from(*p);
                let whole = ud; // capture the whole (Send) wrapper, not its raw pointer field
                                // SAFETY: the caller registered `cb` with `ud` and promised both are usable from the
                                // upload's monitor thread until the upload is freed.
                let r = unsafe { cb(whole.0, &cp) };
                if r == 0 {
                    ControlFlow::Continue(())
                } else {
                    ControlFlow::Break(())
                }
            }) as upload::ProgressFn
        });
        UploadOptions {
            concurrency: self.concurrency,
            buffer_budget: self.buffer_budget,
            plan: self.plan,
            bandwidth_limit: self.bandwidth_limit,
            retry_deadline: self.retry_deadline,
            retry_backoff: self.retry_backoff,
            progress,
            progress_interval: self.progress_interval,
            state_file: self.state_file.clone(),
            watch_interval: self.watch_interval,
        }
    }
}

/// Opaque upload. Created by fio_upload_start or fio_upload_resume, freed with fio_upload_free.
///
/// Thread safety: every function taking a `const fio_upload *` may be called from any thread, also
/// while another thread is blocked in fio_upload_write or fio_upload_finish (e.g. fio_upload_stats,
/// fio_upload_cancel). Feed it (write / file_grew / finish) from one thread at a time. Only
/// fio_upload_free must not race with other calls.
pub struct fio_upload {
    upload: Upload,
    asset_id: CString,
    poisoned: AtomicBool,
}

fn with_upload(ptr: *const fio_upload, f: impl FnOnce(&Upload) -> Result<()>) -> fio_status {
    guard(|| {
        // SAFETY: the caller passes a pointer from fio_upload_start/resume (or NULL, rejected here).
        let h = unsafe { ptr.as_ref() }.ok_or_else(|| Error::null("upload"))?;
        if h.poisoned.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorKind::Panic, "upload is unusable after an internal panic; free it"));
        }
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&h.upload))) {
            Ok(r) => r,
            Err(p) => {
                h.poisoned.store(true, Ordering::SeqCst);
                std::panic::resume_unwind(p)
            }
        }
    })
}

unsafe fn spec_from_c(p: &fio_asset_params, final_name: Option<String>) -> Result<AssetSpec> {
    Ok(AssetSpec {
        name: opt_str(p.name, "params.name")?.map(str::to_string),
        extension: opt_str(p.extension, "params.extension")?.map(str::to_string),
        filetype: req_str(p.filetype, "params.filetype")?.to_string(),
        channel: p.has_channel.then_some(p.channel),
        offset: p.has_offset.then_some(p.offset),
        final_name,
    })
}

unsafe fn options_or_default(opts: *const fio_upload_options, default: &fio_upload_options) -> &fio_upload_options {
    opts.as_ref().unwrap_or(default)
}

fn opts_mut<'a>(opts: *mut fio_upload_options) -> Result<&'a mut fio_upload_options> {
    // SAFETY: a pointer from fio_upload_options_new (or NULL, rejected here).
    unsafe { opts.as_mut() }.ok_or_else(|| Error::null("options"))
}

fn boxed(upload: Upload) -> *mut fio_upload {
    let asset_id = super::to_c_string(upload.asset_id());
    Box::into_raw(Box::new(fio_upload { upload, asset_id, poisoned: AtomicBool::new(false) }))
}

// ----- options --------------------------------------------------------------------------------------

/// New upload options with the defaults: 3 workers, 32 MiB buffer budget for pushed bytes, parts of
/// 5 MiB growing with the recording (any recording up to 5 TiB fits in 10,000 parts), no bandwidth cap,
/// transient failures retried for 300 s per part, no progress callback, no state file, no file
/// watching. NULL only if out of memory. Free with fio_upload_options_free.
#[no_mangle]
pub extern "C" fn fio_upload_options_new() -> *mut fio_upload_options {
    guard_value(std::ptr::null_mut(), || Box::into_raw(Box::default()))
}

/// Free options. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fio_upload_options_free(opts: *mut fio_upload_options) {
    guard_value((), || {
        if !opts.is_null() {
            drop(Box::from_raw(opts));
        }
    })
}

/// Worker threads uploading parts in parallel, 1..=64 (default 3).
#[no_mangle]
pub unsafe extern "C" fn fio_upload_options_set_concurrency(opts: *mut fio_upload_options, workers: u32) -> fio_status {
    guard(|| {
        let o = opts_mut(opts)?;
        if !(1..=64).contains(&workers) {
            return Err(Error::invalid("concurrency must be 1..64"));
        }
        o.concurrency = workers as usize;
        Ok(())
    })
}

/// Pushed bytes (fio_upload_write): the most bytes held in memory at once, in bytes (default 32 MiB;
/// at least 2 x the first part size + 1, i.e. 10 MiB + 1 with the default parts). fio_upload_write
/// blocks while it is full. Parts are capped at half of it.
#[no_mangle]
pub unsafe extern "C" fn fio_upload_options_set_buffer_budget(opts: *mut fio_upload_options, bytes: u64) -> fio_status {
    guard(|| {
        let o = opts_mut(opts)?;
        if bytes < 2 * o.plan.first_part_size + 1 {
            return Err(Error::invalid("buffer budget must be at least 2 x the first part size + 1"));
        }
        o.buffer_budget = bytes;
        Ok(())
    })
}

/// Part sizes: `first_part_size` (>= 5 MiB, default 5 MiB), parts grow to (bytes so far /
/// `growth_divisor`) (1..=1024, default 512), capped at `max_part_size` (<= 5 GiB, default 5 GiB).
/// 0 keeps a value's default. Errors: INVALID_ARGUMENT when the plan breaks S3's limits.
#[no_mangle]
pub unsafe extern "C" fn fio_upload_options_set_part_sizes(
    opts: *mut fio_upload_options,
    first_part_size: u64,
    growth_divisor: u64,
    max_part_size: u64,
) -> fio_status {
    guard(|| {
        let o = opts_mut(opts)?;
        let d = PlanConfig::default();
        let p = PlanConfig {
            first_part_size: if first_part_size == 0 { d.first_part_size } else { first_part_size },
            growth_divisor: if growth_divisor == 0 { d.growth_divisor } else { growth_divisor },
            max_part_size: if max_part_size == 0 { d.max_part_size } else { max_part_size },
        };
        p.validate().map_err(Error::invalid)?;
        o.plan = p;
        Ok(())
    })
}

/// Cap on the send rate of all the upload's workers together, bytes per second; 0 = none (default).
#[no_mangle]
pub unsafe extern "C" fn fio_upload_options_set_bandwidth_limit(
    opts: *mut fio_upload_options,
    bytes_per_second: u64,
) -> fio_status {
    guard(|| {
        opts_mut(opts)?.bandwidth_limit = bytes_per_second;
        Ok(())
    })
}

/// Retries: a part keeps retrying transient failures (lost network, timeouts, 5xx, 429) for
/// `deadline_ms` (default 300000) before the upload fails with that failure's status; the first wait
/// is `first_backoff_ms` (default 500), doubling with jitter up to 30 s. 0 keeps a value's default.
#[no_mangle]
pub unsafe extern "C" fn fio_upload_options_set_retry(
    opts: *mut fio_upload_options,
    deadline_ms: u64,
    first_backoff_ms: u32,
) -> fio_status {
    guard(|| {
        let o = opts_mut(opts)?;
        if deadline_ms > 0 {
            o.retry_deadline = Duration::from_millis(deadline_ms);
        }
        if first_backoff_ms > 0 {
            o.retry_backoff = Duration::from_millis(first_backoff_ms as u64);
        }
        Ok(())
    })
}

/// Progress callback (see fio_progress_cb), called at most every `interval_ms` (0: 100 ms, about 10
/// calls a second). `userdata` is handed back as is. NULL `cb` removes it.
#[no_mangle]
pub unsafe extern "C" fn fio_upload_options_set_progress(
    opts: *mut fio_upload_options,
    cb: fio_progress_cb,
    userdata: *mut c_void,
    interval_ms: u32,
) -> fio_status {
    guard(|| {
        let o = opts_mut(opts)?;
        o.progress = cb;
        o.progress_userdata = UserData(userdata);
        o.progress_interval = Duration::from_millis(if interval_ms == 0 { 100 } else { interval_ms as u64 });
        Ok(())
    })
}

/// File that keeps the resume state (asset id, part table, finished parts), rewritten atomically
/// after every change; give it to fio_upload_resume after a restart. NULL = none (default).
#[no_mangle]
pub unsafe extern "C" fn fio_upload_options_set_state_file(
    opts: *mut fio_upload_options,
    path: *const c_char,
) -> fio_status {
    guard(|| {
        let o = opts_mut(opts)?;
        o.state_file = opt_str(path, "path")?.map(PathBuf::from);
        Ok(())
    })
}

/// File source: poll the file's size every `interval_ms` and upload what appeared (0 = off, the
/// default: only fio_upload_file_grew reports growth).
#[no_mangle]
pub unsafe extern "C" fn fio_upload_options_set_watch_interval(
    opts: *mut fio_upload_options,
    interval_ms: u32,
) -> fio_status {
    guard(|| {
        let o = opts_mut(opts)?;
        o.watch_interval = (interval_ms > 0).then(|| Duration::from_millis(interval_ms as u64));
        Ok(())
    })
}

/// Name sent with the final part (`asset_name`), for an asset created with only an extension.
/// NULL = none (default).
#[no_mangle]
pub unsafe extern "C" fn fio_upload_options_set_final_name(
    opts: *mut fio_upload_options,
    name: *const c_char,
) -> fio_status {
    guard(|| {
        let o = opts_mut(opts)?;
        o.final_name = opt_str(name, "name")?.map(str::to_string);
        Ok(())
    })
}

// ----- the upload -----------------------------------------------------------------------------------

/// Create a real-time asset (`params`, whose `realtime` and `filesize` are ignored) and start
/// uploading it while it is recorded. `file_path` NULL: the bytes come from fio_upload_write;
/// otherwise from that file, which must only grow by appending (bytes already written must never
/// change), reported with fio_upload_file_grew or watched (fio_upload_options_set_watch_interval).
/// `options` NULL = defaults. Blocks for the asset create only; parts go out on background threads.
/// Writes the upload to `*out` (free with fio_upload_free). Errors: NULL_ARGUMENT, BAD_UTF8,
/// INVALID_ARGUMENT, IO (file), CHANNEL_PAUSED, PAIRING_REQUIRED, and the asset create's errors.
#[no_mangle]
pub unsafe extern "C" fn fio_upload_start(
    client: *const fio_client,
    params: *const fio_asset_params,
    file_path: *const c_char,
    options: *const fio_upload_options,
    out: *mut *mut fio_upload,
) -> fio_status {
    with_client(client, |c| {
        let p = params.as_ref().ok_or_else(|| Error::null("params"))?;
        req_out(out, "out")?;
        let default = fio_upload_options::default();
        let o = options_or_default(options, &default);
        let spec = spec_from_c(p, o.final_name.clone())?;
        let source = match opt_str(file_path, "file_path")? {
            Some(path) => Source::File(PathBuf::from(path)),
            None => Source::Bytes,
        };
        let t: Arc<dyn Transport> = Arc::new(c.clone());
        let up = Upload::start(t, spec, source, o.to_rust())?;
        *out = boxed(up);
        Ok(())
    })
}

/// Continue an upload after a restart from its state file (see fio_upload_options_set_state_file;
/// the state file in `options` is ignored, `state_file` is used and kept up to date). Finished
/// parts are not sent again. A file source continues from the file named in the state; a pushed-bytes
/// source needs its bytes again from fio_upload_resume_offset on. Then go on as after
/// fio_upload_start (file_grew / write, then finish). Errors: NULL_ARGUMENT, IO (state file or media
/// file missing, malformed, or the file shrank), INVALID_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn fio_upload_resume(
    client: *const fio_client,
    state_file: *const c_char,
    options: *const fio_upload_options,
    out: *mut *mut fio_upload,
) -> fio_status {
    with_client(client, |c| {
        let path = req_str(state_file, "state_file")?;
        req_out(out, "out")?;
        let default = fio_upload_options::default();
        let o = options_or_default(options, &default);
        let t: Arc<dyn Transport> = Arc::new(c.clone());
        let up = Upload::resume(t, Path::new(path), o.to_rust())?;
        *out = boxed(up);
        Ok(())
    })
}

/// Pushed-bytes upload: append `len` recorded bytes (copied). Blocks while the buffer budget is full
/// (backpressure) until workers have sent enough. Errors: NULL_ARGUMENT (data NULL with len > 0),
/// WRONG_STATE (a file upload, or already finished), CANCELLED, LIMIT_EXCEEDED, or the failure that
/// stopped the upload.
#[no_mangle]
pub unsafe extern "C" fn fio_upload_write(upload: *const fio_upload, data: *const u8, len: usize) -> fio_status {
    with_upload(upload, |u| {
        if len == 0 {
            return Ok(());
        }
        if data.is_null() {
            return Err(Error::null("data"));
        }
        if len > isize::MAX as usize {
            // no buffer is that large; making a slice of it is undefined behaviour (tests/c/abuse)
            return Err(Error::invalid("len is impossibly large"));
        }
        u.write(std::slice::from_raw_parts(data, len))
    })
}

/// File upload: the file now holds `new_size` bytes (smaller values are ignored). Cuts and queues
/// every part whose bytes now exist; does not block on the network. Errors: NULL_ARGUMENT,
/// WRONG_STATE (a pushed-bytes upload), CANCELLED, or the failure that stopped the upload.
#[no_mangle]
pub unsafe extern "C" fn fio_upload_file_grew(upload: *const fio_upload, new_size: u64) -> fio_status {
    with_upload(upload, |u| u.file_grew(new_size))
}

/// The recording ended: register the rest of the recording (for a file, up to its size now) as the
/// last part(s) with the asset's size (a large rest is split into up to `concurrency` parts sent in
/// parallel), and wait until every part is uploaded and the asset is complete. On success writes the final
/// counters to `*stats` if not NULL; on failure `*stats` is left as it was (out-parameters are written
/// only on success): call fio_upload_stats for how far the upload got. Errors: CANCELLED, LIMIT_EXCEEDED (more than 5 TiB or 10,000 parts), or the
/// failure that stopped the upload (fio_upload_part_info tells which part and why); the last error
/// message names the part.
#[no_mangle]
pub unsafe extern "C" fn fio_upload_finish(upload: *const fio_upload, stats: *mut fio_progress) -> fio_status {
    with_upload(upload, |u| {
        let p = u.finish()?;
        if let Some(s) = stats.as_mut() {
            *s = p.into();
        }
        Ok(())
    })
}

/// Cancel the upload: workers stop at their next chunk, a blocked fio_upload_write or
/// fio_upload_finish returns FIO_ERR_CANCELLED. Only stores an atomic flag: safe from any thread and
/// from a signal handler. The state file is kept, so the upload can be resumed. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fio_upload_cancel(upload: *const fio_upload) {
    if let Some(h) = upload.as_ref() {
        h.upload.cancel_flag().store(true, Ordering::SeqCst);
    }
}

/// Change the bandwidth cap of a running upload (bytes per second shared by its workers; 0 = none).
/// Thread-safe; takes effect for the next bytes sent. Errors: NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn fio_upload_set_bandwidth_limit(
    upload: *const fio_upload,
    bytes_per_second: u64,
) -> fio_status {
    with_upload(upload, |u| {
        u.set_bandwidth_limit(bytes_per_second);
        Ok(())
    })
}

/// Current counters into `*out`. Thread-safe. Errors: NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn fio_upload_stats(upload: *const fio_upload, out: *mut fio_progress) -> fio_status {
    with_upload(upload, |u| {
        req_out(out, "out")?;
        *out = u.stats().into();
        Ok(())
    })
}

/// The upload's final status so far: FIO_OK while it runs or once complete; otherwise the status of
/// the failure that stopped it (FIO_ERR_CANCELLED after a cancel), and its message becomes the
/// calling thread's last error.
#[no_mangle]
pub unsafe extern "C" fn fio_upload_status(upload: *const fio_upload) -> fio_status {
    with_upload(upload, |u| {
        if let Some(e) = u.failure() {
            return Err(e);
        }
        if u.cancel_flag().load(Ordering::SeqCst) && !u.stats().complete {
            return Err(Error::new(ErrorKind::Cancelled, "upload cancelled"));
        }
        Ok(())
    })
}

/// The asset's id. Valid until fio_upload_free; NULL if `upload` is NULL.
#[no_mangle]
pub unsafe extern "C" fn fio_upload_asset_id(upload: *const fio_upload) -> *const c_char {
    guard_value(std::ptr::null(), || upload.as_ref().map_or(std::ptr::null(), |h| h.asset_id.as_ptr()))
}

/// Pushed-bytes upload after fio_upload_resume: the offset of the first byte to push again (0 for a
/// new upload or a file upload, or if `upload` is NULL).
#[no_mangle]
pub unsafe extern "C" fn fio_upload_resume_offset(upload: *const fio_upload) -> u64 {
    guard_value(0, || upload.as_ref().map_or(0, |h| h.upload.resume_offset()))
}

/// Number of parts cut so far (0 if `upload` is NULL).
#[no_mangle]
pub unsafe extern "C" fn fio_upload_part_count(upload: *const fio_upload) -> usize {
    guard_value(0, || upload.as_ref().map_or(0, |h| h.upload.parts().len()))
}

/// Detail of part `index` (0-based; part number index + 1) into `*out`. Errors: NULL_ARGUMENT,
/// INVALID_ARGUMENT (index out of range).
#[no_mangle]
pub unsafe extern "C" fn fio_upload_part_info(
    upload: *const fio_upload,
    index: usize,
    out: *mut fio_upload_part,
) -> fio_status {
    with_upload(upload, |u| {
        req_out(out, "out")?;
        let parts = u.parts();
        let p = parts.get(index).ok_or_else(|| Error::invalid(format!("part index {index} out of range")))?;
        *out = fio_upload_part {
            number: p.number,
            offset: p.offset,
            size: p.size,
            is_final: p.is_final,
            state: match p.status {
                PartStatus::Queued => FIO_PART_QUEUED,
                PartStatus::Sending => FIO_PART_SENDING,
                PartStatus::Done => FIO_PART_DONE,
                PartStatus::Failed => FIO_PART_FAILED,
            },
            attempts: p.attempts,
            last_status: p.last_error.as_ref().map_or(FIO_OK, |e| e.status()),
            last_http_status: p.last_error.as_ref().and_then(|e| e.http_status).unwrap_or(0),
        };
        Ok(())
    })
}

/// Free an upload: if it is not complete it is cancelled first (the state file is kept for resume);
/// waits until its threads have ended, so no progress callback runs after this returns. NULL is a
/// no-op. No other call may use the upload during or after this.
#[no_mangle]
pub unsafe extern "C" fn fio_upload_free(upload: *mut fio_upload) {
    guard_value((), || {
        if !upload.is_null() {
            drop(Box::from_raw(upload));
        }
    })
}

/// Upload a complete file in one call: `params.realtime` true makes a real-time asset whose parts
/// (planned by the library) are registered and sent in parallel; false makes a basic asset and sends
/// the parts the server asked for (chunk = ceil(size / URLs)) in parallel. Blocks until the asset is
/// complete; writes the final counters to `*stats` if not NULL. `options` NULL = defaults (the state
/// file and watch interval are ignored here). Errors: as fio_upload_start and fio_upload_finish; a
/// basic upload whose URL S3 rejects fails with URL_EXPIRED (basic URLs cannot be renewed).
#[no_mangle]
pub unsafe extern "C" fn fio_upload_file(
    client: *const fio_client,
    params: *const fio_asset_params,
    path: *const c_char,
    options: *const fio_upload_options,
    stats: *mut fio_progress,
) -> fio_status {
    with_client(client, |c| {
        let p = params.as_ref().ok_or_else(|| Error::null("params"))?;
        let path = req_str(path, "path")?;
        let default = fio_upload_options::default();
        let o = options_or_default(options, &default);
        let spec = spec_from_c(p, o.final_name.clone())?;
        let mut opts = o.to_rust();
        opts.state_file = None;
        let t: Arc<dyn Transport> = Arc::new(c.clone());
        let r = upload::upload_file(t, Path::new(path), spec, p.realtime, opts)?;
        if let Some(s) = stats.as_mut() {
            *s = r.into();
        }
        Ok(())
    })
}
