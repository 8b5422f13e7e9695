//! The upload engine: uploads a recording to a real-time asset while it is being recorded.
//!
//! Sources:
//! - bytes pushed by the caller ([`Upload::write`]), held in a bounded buffer: `write` blocks when
//!   the buffer budget is full (backpressure) and never grows past it;
//! - a file on disk that grows ([`Upload::file_grew`], or the engine polling the file's size when
//!   [`UploadOptions::watch_interval`] is set); nothing is buffered, parts are file ranges;
//! - a complete file ([`upload_file`]), real-time (parallel registered parts) or basic.
//!
//! The file must grow append-only: bytes already written must never change (see the README for
//! how to get that from ffmpeg).
//!
//! Parts are cut by the planner ([`plan`]) when their bytes exist, registered, and PUT in parallel
//! by `concurrency` worker threads. At [`Upload::finish`] the rest of the recording becomes the last
//! part(s) (split in up to `concurrency` parts of at least 5 MiB when it is large, so they go out in
//! parallel); the final part is registered with the asset's size, and only after every earlier part
//! was registered, so the server cannot complete the asset with a part missing. Each part retries per the retry classes of c2c-api.md 14.8; an
//! expired URL is registered again (14.2). With a state file, the part table is saved atomically
//! after every change and [`Upload::resume`] continues after a crash without re-sending finished
//! parts.

pub mod plan;
pub mod state;
pub mod throttle;
pub mod transport;

mod client_impl;
mod pagebuf;

use std::collections::VecDeque;
use std::fs::File;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use pagebuf::PartBuf;

pub use plan::{PlanConfig, PlannedPart, MAX_PARTS, MAX_PART_SIZE, MAX_TOTAL_SIZE, MIN_PART_SIZE};
pub use transport::{AssetSpec, Body, PartReq, Transport};

use state::{PartState as SavedPart, SavedUpload, STATE_VERSION};
use throttle::Throttle;

/// How often one part's registration may come back garbled (HTML, cut-off JSON) before the upload fails.
const MAX_GARBLED_REGISTRATIONS: u32 = 3;

/// A snapshot for the progress callback and [`Upload::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Progress {
    /// Bytes recorded so far (pushed, or the file size the engine knows).
    pub bytes_recorded: u64,
    /// Bytes of finished parts plus bytes of parts on the wire now.
    pub bytes_sent: u64,
    /// Bytes of finished parts.
    pub bytes_done: u64,
    /// Parts uploaded.
    pub parts_done: u32,
    /// Parts cut so far (the total once the upload is finishing).
    pub parts_total: u32,
    /// Parts on the wire now.
    pub parts_in_flight: u32,
    /// Send rate over the last second or so of sending, bytes per second (holds its last value while
    /// no part is in flight).
    pub throughput_bps: f64,
    /// Transient failures retried, and URLs registered again.
    pub retries: u32,
    pub reregistrations: u32,
    /// Bytes source: bytes held in memory now, and the most held at once (bounded by the budget).
    pub bytes_buffered: u64,
    pub peak_bytes_buffered: u64,
    /// True once every part is uploaded (the asset is complete).
    pub complete: bool,
    /// Seconds since the upload started.
    pub elapsed_secs: f64,
}

/// The progress callback: runs on the engine's monitor thread, at most every
/// [`UploadOptions::progress_interval`] and once more at the end. `Break` cancels the upload.
pub type ProgressFn = Box<dyn FnMut(&Progress) -> ControlFlow<()> + Send>;

/// Settings of one upload.
pub struct UploadOptions {
    /// Worker threads uploading parts in parallel (default 3).
    pub concurrency: usize,
    /// Bytes source: the most bytes held in memory (the part being filled plus parts waiting or
    /// on the wire). Default 32 MiB; at least 2 x `plan.first_part_size` + 1. Parts are capped at
    /// half of it.
    pub buffer_budget: u64,
    /// Part sizes.
    pub plan: PlanConfig,
    /// Shared cap on the send rate of all workers, bytes per second; 0: none.
    pub bandwidth_limit: u64,
    /// How long a part keeps retrying transient failures (lost network, 5xx, 429) before the
    /// upload fails with that failure's status. Default 300 s.
    pub retry_deadline: Duration,
    /// First wait between retries (doubles, with jitter, up to 30 s). Default 500 ms.
    pub retry_backoff: Duration,
    /// Progress callback.
    pub progress: Option<ProgressFn>,
    /// Least time between two progress calls (default 100 ms).
    pub progress_interval: Duration,
    /// File that holds the resume state, rewritten atomically after each part.
    pub state_file: Option<PathBuf>,
    /// File source: poll the file's size this often (None: only `file_grew` reports growth).
    pub watch_interval: Option<Duration>,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            concurrency: 3,
            buffer_budget: 32 * 1024 * 1024,
            plan: PlanConfig::default(),
            bandwidth_limit: 0,
            retry_deadline: Duration::from_secs(300),
            retry_backoff: Duration::from_millis(500),
            progress: None,
            progress_interval: Duration::from_millis(100),
            state_file: None,
            watch_interval: None,
        }
    }
}

/// Where the bytes come from.
pub enum Source {
    /// Bytes pushed with [`Upload::write`].
    Bytes,
    /// A file on disk that grows append-only (or is complete).
    File(PathBuf),
}

/// Where a part is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartStatus {
    Queued,
    Sending,
    Done,
    Failed,
}

/// Per-part detail, for the final status.
#[derive(Clone, Debug)]
pub struct PartInfo {
    pub number: u32,
    pub offset: u64,
    pub size: u64,
    pub is_final: bool,
    pub status: PartStatus,
    /// PUT attempts (each retry and each re-registration adds one).
    pub attempts: u32,
    /// The last failure of this part, if any.
    pub last_error: Option<Error>,
}

fn err(kind: ErrorKind, msg: impl Into<String>) -> Error {
    Error::new(kind, msg)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Realtime,
    Basic,
}

struct PartRec {
    number: u32,
    offset: u64,
    size: u64,
    is_final: bool,
    status: PartStatus,
    url: Option<String>,
    /// Bytes source: the buffer holding this part's bytes from the given index (the parts of the
    /// tail split at finish share one buffer).
    body: Option<(Arc<PartBuf>, usize)>,
    attempts: u32,
    last_error: Option<Error>,
    /// The body has been attached (always for files; for bytes once its bytes were pushed).
    ready: bool,
    /// Planned by an earlier process (resume): its registration may predate this one.
    from_state: bool,
    /// File source: fingerprint of the part's bytes once uploaded (its head and tail), checked again
    /// at finish to catch a file that was rewritten instead of appended to.
    sample: Option<u64>,
}

struct Inner {
    parts: Vec<PartRec>,
    queue: VecDeque<u32>,
    available: u64,
    cut_offset: u64,
    buf: PartBuf,
    mem_held: u64,
    peak_mem: u64,
    final_size: Option<u64>,
    failure: Option<Error>,
    parts_done: u32,
    bytes_done: u64,
    in_flight: u32,
    complete: bool,
    /// Bytes source after resume: the first byte the caller must push again, and how many parts of
    /// the saved table still wait for their bytes.
    resume_offset: u64,
    unready: usize,
}

struct Shared {
    transport: Arc<dyn Transport>,
    mode: Mode,
    asset_id: String,
    asset: AssetSpec,
    path: Option<PathBuf>,
    file: Option<File>,
    plan: PlanConfig,
    concurrency: u32,
    budget: u64,
    retry_deadline: Duration,
    retry_backoff: Duration,
    state_file: Option<PathBuf>,
    inner: Mutex<Inner>,
    cv: Condvar,
    save_lock: Mutex<()>,
    cancel: AtomicBool,
    finished_threads: AtomicBool,
    bytes_in_flight: AtomicU64,
    retries: AtomicU32,
    reregistrations: AtomicU32,
    throttle: Throttle,
    started: Instant,
    /// Throughput computed by the monitor, as f64 bits.
    throughput: AtomicU64,
}

/// One upload. All methods take `&self`; `cancel` may be called from any thread (and from a
/// signal handler: it only stores an atomic flag).
pub struct Upload {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Upload {
    /// Creates a real-time asset and starts the workers. Feed it with [`write`](Self::write) or
    /// [`file_grew`](Self::file_grew), then call [`finish`](Self::finish).
    pub fn start(
        transport: Arc<dyn Transport>,
        asset: AssetSpec,
        source: Source,
        opts: UploadOptions,
    ) -> Result<Upload> {
        let plan = effective_plan(&source, &opts)?;
        let (path, file) = open_source(&source)?;
        let asset_id = transport.create_realtime_asset(&asset)?;
        let inner = new_inner(Vec::new(), 0);
        let up = Self::launch(transport, Mode::Realtime, asset_id, asset, path, file, plan, opts, inner)?;
        up.shared.save_state();
        Ok(up)
    }

    /// Continues an upload from its state file after a restart. A file source continues from the
    /// file named in the state (already-finished parts are not sent again); a bytes source needs
    /// its bytes again from [`resume_offset`](Self::resume_offset) on.
    pub fn resume(transport: Arc<dyn Transport>, state_file: &Path, mut opts: UploadOptions) -> Result<Upload> {
        let saved = SavedUpload::load(state_file).map_err(|m| err(ErrorKind::Io, m))?;
        let plan: PlanConfig = (&saved.plan).into();
        plan.validate().map_err(|m| err(ErrorKind::InvalidArgument, m))?;
        opts.state_file = Some(state_file.to_path_buf());
        let source = match (saved.source.as_str(), &saved.path) {
            ("file", Some(p)) => Source::File(p.clone()),
            ("bytes", _) => Source::Bytes,
            _ => return Err(err(ErrorKind::InvalidArgument, "state file names no source")),
        };
        if let Source::Bytes = source {
            // pushed bytes are cut into parts of the saved sizes: a budget that cannot hold one of them
            // would leave write() waiting forever (nothing in flight frees memory)
            let future = if saved.final_size.is_none() { plan.max_part_size } else { 0 };
            let need = saved.parts.iter().filter(|p| !p.done).map(|p| p.size).max().unwrap_or(0).max(future);
            if opts.buffer_budget < need {
                return Err(err(
                    ErrorKind::InvalidArgument,
                    format!(
                        "buffer budget {} is below the {need}-byte parts of the saved upload: resume with its budget",
                        opts.buffer_budget
                    ),
                ));
            }
        }
        let (path, file) = open_source(&source)?;
        let is_file = file.is_some();
        let mut parts = Vec::new();
        for p in &saved.parts {
            parts.push(PartRec {
                number: p.number,
                offset: p.offset,
                size: p.size,
                is_final: p.is_final,
                status: if p.done { PartStatus::Done } else { PartStatus::Queued },
                url: None,
                body: None,
                attempts: 0,
                last_error: None,
                ready: is_file,
                from_state: true,
                sample: p.sample,
            });
        }
        let end = parts.last().map(|p| p.offset + p.size).unwrap_or(0);
        let mut inner = new_inner(Vec::new(), 0);
        inner.parts_done = parts.iter().filter(|p| p.status == PartStatus::Done).count() as u32;
        inner.bytes_done = parts.iter().filter(|p| p.status == PartStatus::Done).map(|p| p.size).sum();
        inner.final_size = saved.final_size;
        if is_file {
            let len = file.as_ref().unwrap().metadata().map_err(io_err)?.len();
            if len < end {
                return Err(err(
                    ErrorKind::Io,
                    format!(
                        "file is {len} bytes, shorter than the {end} bytes already planned: it must grow append-only"
                    ),
                ));
            }
            // the file must still be the recording the uploaded parts came from, not a new clip recorded
            // under the same name after the restart (its bytes would be mixed into this asset)
            for p in parts.iter().filter(|p| p.status == PartStatus::Done) {
                let Some(sample) = p.sample else { continue };
                if fingerprint(file.as_ref().unwrap(), p.offset, p.size).map_err(io_err)? != sample {
                    return Err(err(
                        ErrorKind::Io,
                        format!(
                            "part {} (bytes {}..{}) of the file differs from what was uploaded: the file is not \
                             the recording this state belongs to; the asset is left incomplete",
                            p.number,
                            p.offset,
                            p.offset + p.size
                        ),
                    ));
                }
            }
            inner.available = len;
            inner.cut_offset = end;
            for p in &parts {
                if p.status != PartStatus::Done {
                    inner.queue.push_back(p.number);
                }
            }
        } else {
            // bytes: everything from the first unfinished part must be pushed again
            let first = parts.iter().find(|p| p.status != PartStatus::Done).map(|p| p.offset).unwrap_or(end);
            for p in parts.iter_mut() {
                p.ready = p.offset < first || (p.status == PartStatus::Done && p.size == 0);
            }
            inner.available = first;
            inner.cut_offset = first;
            inner.resume_offset = first;
            inner.unready = parts.iter().filter(|p| !p.ready).count();
        }
        inner.parts = parts;
        let mode = Mode::Realtime;
        let up = Self::launch(transport, mode, saved.asset_id, saved.asset, path, file, plan, opts, inner)?;
        {
            let sh = &up.shared;
            let mut g = sh.lock();
            sh.cut_available(&mut g);
            sh.check_complete(&mut g);
        }
        up.shared.cv.notify_all();
        Ok(up)
    }

    #[allow(clippy::too_many_arguments)]
    fn launch(
        transport: Arc<dyn Transport>,
        mode: Mode,
        asset_id: String,
        asset: AssetSpec,
        path: Option<PathBuf>,
        file: Option<File>,
        plan: PlanConfig,
        mut opts: UploadOptions,
        inner: Inner,
    ) -> Result<Upload> {
        let shared = Arc::new(Shared {
            transport,
            mode,
            asset_id,
            asset,
            path,
            file,
            plan,
            concurrency: opts.concurrency.clamp(1, 64) as u32,
            budget: opts.buffer_budget,
            retry_deadline: opts.retry_deadline,
            retry_backoff: opts.retry_backoff.max(Duration::from_millis(1)),
            state_file: opts.state_file.clone(),
            inner: Mutex::new(inner),
            cv: Condvar::new(),
            save_lock: Mutex::new(()),
            cancel: AtomicBool::new(false),
            finished_threads: AtomicBool::new(false),
            bytes_in_flight: AtomicU64::new(0),
            retries: AtomicU32::new(0),
            reregistrations: AtomicU32::new(0),
            throttle: Throttle::new(opts.bandwidth_limit),
            started: Instant::now(),
            throughput: AtomicU64::new(0),
        });
        let mut threads = Vec::new();
        for i in 0..opts.concurrency.clamp(1, 64) {
            let sh = shared.clone();
            let t = std::thread::Builder::new()
                .name(format!("fio-upload-{i}"))
                .spawn(move || sh.worker())
                .map_err(|e| err(ErrorKind::Io, format!("cannot start a worker thread: {e}")))?;
            threads.push(t);
        }
        let sh = shared.clone();
        let progress = opts.progress.take();
        let interval = opts.progress_interval.max(Duration::from_millis(10));
        let watch = opts.watch_interval;
        // taken here, not when the thread first runs: on a loaded machine it may start after the bytes went
        // out, and would then never see them move (throughput 0)
        let sent_at_start = (shared.progress().bytes_sent, Instant::now());
        let t = std::thread::Builder::new()
            .name("fio-upload-monitor".into())
            .spawn(move || sh.monitor(progress, interval, watch, sent_at_start))
            .map_err(|e| err(ErrorKind::Io, format!("cannot start the monitor thread: {e}")))?;
        threads.push(t);
        Ok(Upload { shared, threads: Mutex::new(threads) })
    }

    /// The asset's id.
    pub fn asset_id(&self) -> &str {
        &self.shared.asset_id
    }

    /// Bytes source after [`resume`](Self::resume): the offset of the first byte to push again.
    pub fn resume_offset(&self) -> u64 {
        self.shared.lock().resume_offset
    }

    /// Pushes recorded bytes. Blocks while the buffer budget is full.
    pub fn write(&self, data: &[u8]) -> Result<()> {
        let sh = &self.shared;
        if sh.file.is_some() {
            return Err(err(ErrorKind::WrongState, "this upload reads a file; use file_grew"));
        }
        let mut data = data;
        let mut g = sh.lock();
        let resumed_final = g.final_size;
        if let Some(total) = resumed_final {
            // resumed after the recording had ended: exactly the missing bytes may come again
            if g.available + data.len() as u64 > total || g.complete {
                return Err(err(ErrorKind::WrongState, "the upload is finished"));
            }
        }
        while !data.is_empty() {
            sh.check_alive(&g)?;
            if resumed_final.is_none() && g.final_size.is_some() {
                // finish() ran on another thread while this write waited for room
                return Err(err(ErrorKind::WrongState, "the upload was finished during this write"));
            }
            // the part being filled: the first one not filled yet (resume), else a new one
            let known = if g.unready > 0 { g.parts.iter().position(|p| !p.ready) } else { None };
            let next = known.map(|i| i as u32 + 1).unwrap_or(g.parts.len() as u32 + 1);
            let size = match known {
                Some(i) => g.parts[i].size,
                None if next >= MAX_PARTS => sh.plan.max_part_size,
                None => sh.plan.part_size(next, g.cut_offset),
            };
            if g.buf.len() as u64 == size {
                // one more byte exists: the buffer is a whole part
                if known.is_none() && next >= MAX_PARTS {
                    return Err(err(ErrorKind::LimitExceeded, "the recording does not fit in 10,000 parts"));
                }
                sh.cut_bytes(&mut g, next, size);
                sh.cv.notify_all();
                drop(g);
                sh.save_state();
                g = sh.lock();
                continue;
            }
            let room = sh.budget.saturating_sub(g.mem_held);
            if room == 0 {
                g = sh.wait(g);
                continue;
            }
            let n = room.min(size - g.buf.len() as u64).min(data.len() as u64) as usize;
            if g.buf.capacity() == 0 {
                g.buf.reserve_exact(size as usize);
            }
            g.buf.extend_from_slice(&data[..n]);
            g.mem_held += n as u64;
            g.peak_mem = g.peak_mem.max(g.mem_held);
            g.available += n as u64;
            data = &data[n..];
        }
        Ok(())
    }

    /// File source: the file now holds `new_size` bytes (it only grows).
    pub fn file_grew(&self, new_size: u64) -> Result<()> {
        let sh = &self.shared;
        if sh.file.is_none() {
            return Err(err(ErrorKind::WrongState, "this upload takes pushed bytes; use write"));
        }
        sh.grew(new_size)
    }

    /// Ends the recording: registers the final part with the asset's size and waits until every
    /// part is uploaded (or the upload failed or was cancelled). For a file source the final size
    /// is the file's size now.
    pub fn finish(&self) -> Result<Progress> {
        let sh = &self.shared;
        if let Err(e) = sh.verify_append_only() {
            let mut g = sh.lock();
            if g.failure.is_none() {
                g.failure = Some(e.clone());
            }
            drop(g);
            sh.cv.notify_all();
            return Err(e);
        }
        // the tail waits here until the state file lists it: a resume must never plan (split) the tail
        // differently from what the server already heard
        let mut held = VecDeque::new();
        {
            let mut g = sh.lock();
            sh.check_alive(&g)?;
            if g.final_size.is_none() {
                let total = if let Some(f) = &sh.file {
                    let len = f.metadata().map_err(io_err)?.len();
                    if len < g.available {
                        let e = err(
                            ErrorKind::Io,
                            format!(
                                "the file shrank to {len} bytes after {} were seen: it must grow append-only",
                                g.available
                            ),
                        );
                        g.failure = Some(e.clone());
                        return Err(e);
                    }
                    g.available = g.available.max(len);
                    sh.cut_available(&mut g);
                    g.available
                } else {
                    g.available
                };
                if g.unready > 0 {
                    return Err(err(
                        ErrorKind::WrongState,
                        format!("resumed upload: push the bytes from offset {} again first", g.resume_offset),
                    ));
                }
                let number = g.parts.len() as u32 + 1;
                // the tail goes out as up to `concurrency` parts in parallel
                let tail = sh
                    .plan
                    .final_parts(number, g.cut_offset, total, sh.concurrency)
                    .map_err(|m| err(ErrorKind::LimitExceeded, m))?;
                g.final_size = Some(total);
                let queued = g.queue.len();
                if sh.file.is_some() {
                    for p in tail {
                        sh.add_part(&mut g, p.number, p.offset, p.size, p.is_final, None);
                    }
                } else {
                    let list: Vec<(u32, u64)> = tail.iter().map(|p| (p.number, p.size)).collect();
                    sh.cut_bytes_many(&mut g, &list);
                }
                held = g.queue.split_off(queued);
                sh.cv.notify_all();
            } else if sh.file.is_none() {
                // resumed bytes upload that had already finished: the last part comes from the buffer
                let total = g.final_size.unwrap();
                if g.available != total {
                    return Err(err(
                        ErrorKind::WrongState,
                        format!("{} bytes pushed, the recording had {total}", g.available),
                    ));
                }
                let list: Vec<(u32, u64)> = g.parts.iter().filter(|p| !p.ready).map(|p| (p.number, p.size)).collect();
                if !list.is_empty() {
                    sh.cut_bytes_many(&mut g, &list);
                }
            }
        }
        sh.save_state();
        let mut g = sh.lock();
        g.queue.extend(held);
        sh.cv.notify_all();
        loop {
            if g.complete {
                break;
            }
            if let Some(e) = &g.failure {
                return Err(e.clone());
            }
            if sh.cancel.load(Ordering::SeqCst) {
                return Err(err(ErrorKind::Cancelled, "upload cancelled"));
            }
            g = sh.wait(g);
        }
        drop(g);
        self.join();
        Ok(sh.progress())
    }

    /// Cancels the upload: workers stop at the next chunk, `write` and `finish` return `Cancelled`.
    /// Only stores an atomic flag, so it is safe from any thread and from a signal handler.
    pub fn cancel(&self) {
        self.shared.cancel.store(true, Ordering::SeqCst);
    }

    /// Changes the bandwidth cap shared by the workers while the upload runs (bytes per second,
    /// 0: none), e.g. to leave room for live video over the same link.
    pub fn set_bandwidth_limit(&self, bytes_per_second: u64) {
        self.shared.throttle.set_rate(bytes_per_second);
    }

    /// The cancel flag itself, for callers that need to set it without holding the `Upload`.
    pub fn cancel_flag(&self) -> &AtomicBool {
        &self.shared.cancel
    }

    /// Current counters.
    pub fn stats(&self) -> Progress {
        self.shared.progress()
    }

    /// The first fatal failure, if any.
    pub fn failure(&self) -> Option<Error> {
        self.shared.lock().failure.clone()
    }

    /// Per-part detail.
    pub fn parts(&self) -> Vec<PartInfo> {
        self.shared
            .lock()
            .parts
            .iter()
            .map(|p| PartInfo {
                number: p.number,
                offset: p.offset,
                size: p.size,
                is_final: p.is_final,
                status: p.status,
                attempts: p.attempts,
                last_error: p.last_error.clone(),
            })
            .collect()
    }

    fn join(&self) {
        self.shared.finished_threads.store(true, Ordering::SeqCst);
        self.shared.cv.notify_all();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Upload {
    /// Stops the workers (cancelling the upload unless it completed) and waits for them, so no
    /// callback runs after the `Upload` is gone. The state file is kept: resume can continue.
    fn drop(&mut self) {
        if !self.shared.lock().complete {
            self.shared.cancel.store(true, Ordering::SeqCst);
        }
        self.join();
    }
}

/// Uploads a complete file. `realtime`: a real-time asset with parts planned by the planner and
/// registered as they go; otherwise a basic asset with the URLs the server hands out
/// (`chunk = ceil(size / urls)`). Parts go in parallel. Returns the final counters.
pub fn upload_file(
    transport: Arc<dyn Transport>,
    path: &Path,
    asset: AssetSpec,
    realtime: bool,
    mut opts: UploadOptions,
) -> Result<Progress> {
    if realtime {
        opts.watch_interval = None;
        let up = Upload::start(transport, asset, Source::File(path.to_path_buf()), opts)?;
        return up.finish();
    }
    let (path, file) = open_source(&Source::File(path.to_path_buf()))?;
    let size = file.as_ref().unwrap().metadata().map_err(io_err)?.len();
    let (asset_id, urls) = transport.create_basic_asset(&asset, size)?;
    if urls.is_empty() {
        return Err(err(ErrorKind::Protocol, "basic asset create returned no upload URLs"));
    }
    let chunk = size.div_ceil(urls.len() as u64).max(1);
    let mut inner = new_inner(Vec::new(), size);
    let mut off = 0u64;
    let n = urls.len();
    for (i, url) in urls.into_iter().enumerate() {
        let len = if i + 1 == n { size - off.min(size) } else { chunk.min(size - off.min(size)) };
        inner.parts.push(PartRec {
            number: i as u32 + 1,
            offset: off.min(size),
            size: len,
            is_final: i + 1 == n,
            status: PartStatus::Queued,
            url: Some(url),
            body: None,
            attempts: 0,
            last_error: None,
            ready: true,
            from_state: false,
            sample: None,
        });
        inner.queue.push_back(i as u32 + 1);
        off += len;
    }
    inner.final_size = Some(size);
    inner.cut_offset = size;
    opts.state_file = None;
    opts.watch_interval = None;
    let plan = opts.plan;
    let up = Upload::launch(transport, Mode::Basic, asset_id, asset, path, file, plan, opts, inner)?;
    up.shared.cv.notify_all();
    up.finish()
}

fn io_err(e: std::io::Error) -> Error {
    err(ErrorKind::Io, e.to_string())
}

fn new_inner(parts: Vec<PartRec>, available: u64) -> Inner {
    Inner {
        parts,
        queue: VecDeque::new(),
        available,
        cut_offset: 0,
        buf: PartBuf::new(),
        mem_held: 0,
        peak_mem: 0,
        final_size: None,
        failure: None,
        parts_done: 0,
        bytes_done: 0,
        in_flight: 0,
        complete: false,
        resume_offset: 0,
        unready: 0,
    }
}

fn effective_plan(source: &Source, opts: &UploadOptions) -> Result<PlanConfig> {
    let mut plan = opts.plan;
    plan.validate().map_err(|m| err(ErrorKind::InvalidArgument, m))?;
    if let Source::Bytes = source {
        if opts.buffer_budget < 2 * plan.first_part_size + 1 {
            return Err(err(
                ErrorKind::InvalidArgument,
                format!("buffer budget {} is below 2 x the first part size + 1", opts.buffer_budget),
            ));
        }
        plan.max_part_size = plan.max_part_size.min(opts.buffer_budget / 2).max(plan.first_part_size);
    }
    Ok(plan)
}

fn open_source(source: &Source) -> Result<(Option<PathBuf>, Option<File>)> {
    match source {
        Source::Bytes => Ok((None, None)),
        Source::File(p) => {
            let f = File::open(p).map_err(|e| err(ErrorKind::Io, format!("cannot open {}: {e}", p.display())))?;
            let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            Ok((Some(abs), Some(f)))
        }
    }
}

/// The error for a file source whose uploaded bytes changed: `what` changed, and what that means for
/// the asset.
fn not_append_only(what: String, asset: &str) -> Error {
    err(
        ErrorKind::Io,
        format!(
            "{what}: the recording must grow append-only (for MP4/MOV use fragmented MP4; see the README); {asset}"
        ),
    )
}

/// A fingerprint of a file range: its first 64 KiB and last 4 KiB (where headers get rewritten).
fn fingerprint(f: &File, offset: u64, size: u64) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let head = size.min(64 * 1024);
    let tail = size.saturating_sub(head).min(4096);
    let mut buf = vec![0u8; (head + tail) as usize];
    f.read_exact_at(&mut buf[..head as usize], offset)?;
    f.read_exact_at(&mut buf[head as usize..], offset + size - tail)?;
    // FNV-1a: the same value in every process and Rust version (it is saved in the state file)
    Ok(buf.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)))
}

fn jitter(d: Duration) -> Duration {
    // xorshift on the clock: no need for a real RNG to spread retries
    let mut x = Instant::now().elapsed().as_nanos() as u64 ^ 0x9E37_79B9_7F4A_7C15;
    x ^= std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    let f = 0.5 + (x % 1000) as f64 / 1000.0; // 0.5 .. 1.5
    d.mul_f64(f)
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, g: MutexGuard<'a, Inner>) -> MutexGuard<'a, Inner> {
        self.cv.wait_timeout(g, Duration::from_millis(100)).unwrap_or_else(|e| e.into_inner()).0
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    fn check_alive(&self, g: &Inner) -> Result<()> {
        if let Some(e) = &g.failure {
            return Err(e.clone());
        }
        if self.cancelled() {
            return Err(err(ErrorKind::Cancelled, "upload cancelled"));
        }
        Ok(())
    }

    fn grew(&self, new_size: u64) -> Result<()> {
        let mut g = self.lock();
        self.check_alive(&g)?;
        if g.final_size.is_some() || new_size <= g.available {
            return Ok(());
        }
        g.available = new_size;
        let before = g.parts.len();
        self.cut_available(&mut g);
        let cut = g.parts.len() != before;
        drop(g);
        if cut {
            self.cv.notify_all();
            self.save_state();
        }
        Ok(())
    }

    /// File source: cuts every part whose bytes exist (one byte past it).
    fn cut_available(&self, g: &mut Inner) {
        if self.file.is_none() || g.final_size.is_some() {
            return;
        }
        loop {
            let number = g.parts.len() as u32 + 1;
            match self.plan.should_cut(number, g.cut_offset, g.available) {
                Some(size) => {
                    let off = g.cut_offset;
                    self.add_part(g, number, off, size, false, None);
                }
                None => break,
            }
        }
    }

    /// Bytes source: the buffer (exactly `size` bytes) becomes part `number`.
    fn cut_bytes(&self, g: &mut Inner, number: u32, size: u64) {
        self.cut_bytes_many(g, &[(number, size)]);
    }

    /// Bytes source: the buffer (exactly the sum of the sizes) becomes consecutive parts that share it.
    fn cut_bytes_many(&self, g: &mut Inner, parts: &[(u32, u64)]) {
        debug_assert_eq!(g.buf.len() as u64, parts.iter().map(|p| p.1).sum::<u64>());
        let whole = Arc::new(std::mem::take(&mut g.buf));
        let mut start = 0usize;
        for &(number, size) in parts {
            let is_final = g.final_size == Some(g.cut_offset + size);
            let off = g.cut_offset;
            self.add_part(g, number, off, size, is_final, Some((whole.clone(), start)));
            start += size as usize;
        }
    }

    fn add_part(
        &self,
        g: &mut Inner,
        number: u32,
        offset: u64,
        size: u64,
        is_final: bool,
        body: Option<(Arc<PartBuf>, usize)>,
    ) {
        g.cut_offset = offset + size;
        if let Some(p) = g.parts.get_mut(number as usize - 1) {
            // known from the state file (resume of a bytes source)
            debug_assert_eq!((p.offset, p.size), (offset, size));
            if !p.ready {
                p.ready = true;
                g.unready -= 1;
            }
            let p = &mut g.parts[number as usize - 1];
            if p.status == PartStatus::Done {
                g.mem_held -= size; // already uploaded before the restart: drop the bytes
            } else {
                p.body = body;
                g.queue.push_back(number);
            }
            return;
        }
        g.parts.push(PartRec {
            number,
            offset,
            size,
            is_final,
            status: PartStatus::Queued,
            url: None,
            body,
            attempts: 0,
            last_error: None,
            ready: true,
            from_state: false,
            sample: None,
        });
        g.queue.push_back(number);
    }

    /// File source, at finish and before the final part: the parts already uploaded must still hold
    /// the bytes that were sent. A muxer that seeks back to rewrite a header (plain MP4/MOV) breaks
    /// this; the upload then fails instead of completing an asset that differs from the file.
    fn verify_append_only(&self) -> Result<()> {
        let Some(f) = &self.file else { return Ok(()) };
        let samples: Vec<(u32, u64, u64, u64)> = {
            let g = self.lock();
            if g.final_size.is_some() {
                return Ok(());
            }
            g.parts.iter().filter_map(|p| p.sample.map(|s| (p.number, p.offset, p.size, s))).collect()
        };
        for (number, offset, size, sample) in samples {
            if fingerprint(f, offset, size).map_err(io_err)? != sample {
                return Err(not_append_only(
                    format!(
                        "part {number} (bytes {offset}..{}) changed in the file after it was uploaded",
                        offset + size
                    ),
                    "the asset is left incomplete",
                ));
            }
        }
        Ok(())
    }

    fn check_complete(&self, g: &mut Inner) {
        if g.final_size.is_some()
            && g.parts.last().is_some_and(|p| p.is_final)
            && g.parts_done as usize == g.parts.len()
        {
            g.complete = true;
        }
    }

    fn save_state(&self) {
        let Some(path) = &self.state_file else { return };
        if self.mode == Mode::Basic {
            return;
        }
        let _s = self.save_lock.lock().unwrap_or_else(|e| e.into_inner());
        let saved = {
            let g = self.lock();
            SavedUpload {
                version: STATE_VERSION,
                asset_id: self.asset_id.clone(),
                asset: self.asset.clone(),
                source: if self.file.is_some() { "file".into() } else { "bytes".into() },
                path: self.path.clone(),
                plan: self.plan.into(),
                final_size: g.final_size,
                parts: g
                    .parts
                    .iter()
                    .map(|p| SavedPart {
                        number: p.number,
                        offset: p.offset,
                        size: p.size,
                        is_final: p.is_final,
                        done: p.status == PartStatus::Done,
                        sample: p.sample,
                    })
                    .collect(),
            }
        };
        if let Err(e) = saved.save(path) {
            let mut g = self.lock();
            if g.failure.is_none() {
                g.failure = Some(err(ErrorKind::Io, format!("cannot write state file {}: {e}", path.display())));
            }
            drop(g);
            self.cv.notify_all();
        }
    }

    fn progress(&self) -> Progress {
        let g = self.lock();
        let in_flight = self.bytes_in_flight.load(Ordering::SeqCst);
        Progress {
            bytes_recorded: g.available.max(g.final_size.unwrap_or(0)),
            bytes_sent: g.bytes_done + in_flight,
            bytes_done: g.bytes_done,
            parts_done: g.parts_done,
            parts_total: g.parts.len() as u32,
            parts_in_flight: g.in_flight,
            throughput_bps: f64::from_bits(self.throughput.load(Ordering::Relaxed)),
            retries: self.retries.load(Ordering::Relaxed),
            reregistrations: self.reregistrations.load(Ordering::Relaxed),
            bytes_buffered: g.mem_held,
            peak_bytes_buffered: g.peak_mem,
            complete: g.complete,
            elapsed_secs: self.started.elapsed().as_secs_f64(),
        }
    }

    fn worker(self: Arc<Self>) {
        loop {
            let number = {
                let mut g = self.lock();
                loop {
                    if g.failure.is_some() || self.cancelled() || g.complete {
                        return;
                    }
                    if self.finished_threads.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Some(n) = g.queue.pop_front() {
                        g.in_flight += 1;
                        g.parts[n as usize - 1].status = PartStatus::Sending;
                        break n;
                    }
                    g = self.wait(g);
                }
            };
            let range = {
                let g = self.lock();
                (g.parts[number as usize - 1].offset, g.parts[number as usize - 1].size)
            };
            // Sampled before and after the PUT: a rewrite while the part was being read and sent would
            // otherwise be fingerprinted as the new bytes, and finish would find nothing changed.
            let before = self.file.as_ref().and_then(|f| fingerprint(f, range.0, range.1).ok());
            let mut res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.upload_part(number)))
                .unwrap_or_else(|_| Err(err(ErrorKind::Io, format!("worker panicked on part {number}"))));
            let sample = match (&res, &self.file) {
                (Ok(()), Some(f)) => fingerprint(f, range.0, range.1).ok(),
                _ => None,
            };
            if res.is_ok() && matches!((before, sample), (Some(b), Some(a)) if b != a) {
                res = Err(not_append_only(
                    format!(
                        "bytes {}..{} changed in the file while they were being uploaded",
                        range.0,
                        range.0 + range.1
                    ),
                    "the asset holds the bytes as they were sent and may already be complete, but it differs from \
                     the file",
                ));
            }
            let mut g = self.lock();
            g.in_flight -= 1;
            let idx = number as usize - 1;
            match res {
                Ok(()) => {
                    let size = g.parts[idx].size;
                    g.parts[idx].status = PartStatus::Done;
                    g.parts[idx].url = None;
                    g.parts[idx].sample = sample;
                    if g.parts[idx].body.take().is_some() {
                        g.mem_held -= size;
                    }
                    g.parts_done += 1;
                    g.bytes_done += size;
                    self.check_complete(&mut g);
                    drop(g);
                    self.cv.notify_all();
                    self.save_state();
                }
                Err(e) => {
                    if e.kind == ErrorKind::Cancelled && self.cancelled() {
                        g.parts[idx].status = PartStatus::Queued;
                    } else {
                        g.parts[idx].status = PartStatus::Failed;
                        g.parts[idx].last_error = Some(e.clone());
                        if g.failure.is_none() {
                            let mut e = e;
                            e.message = format!("part {number}: {}", e.message);
                            g.failure = Some(e);
                        }
                    }
                    drop(g);
                    self.cv.notify_all();
                }
            }
        }
    }

    /// Sleeps `d`, waking early on cancel or failure. Returns false if the upload stopped.
    fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            if self.cancelled() || self.lock().failure.is_some() {
                return false;
            }
            let now = Instant::now();
            if now >= end {
                return true;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
    }

    /// A fresh URL for part `number`: registered in order for the final part (every earlier part
    /// registered first), reused while it works.
    fn url_for(&self, number: u32) -> Result<String> {
        let idx = number as usize - 1;
        let (size, is_final) = {
            let mut g = self.lock();
            loop {
                self.check_alive(&g)?;
                if let Some(u) = &g.parts[idx].url {
                    return Ok(u.clone());
                }
                if self.mode == Mode::Basic {
                    return Err(err(ErrorKind::UrlExpired, "basic upload URL rejected; no way to get a new one"));
                }
                let p = &g.parts[idx];
                if !p.is_final {
                    break (p.size, false);
                }
                // the final part waits until every earlier part was registered (or is done)
                let ready = g.parts[..idx].iter().all(|q| q.url.is_some() || q.status == PartStatus::Done);
                if ready {
                    break (p.size, true);
                }
                g = self.wait(g);
            }
        };
        let req = [PartReq { number, size, is_final }];
        let total = if is_final { Some(self.lock().final_size.unwrap_or(0)) } else { None };
        let name = if is_final { self.asset.final_name.as_deref() } else { None };
        // a cancelled or failed upload must not sit out the client's retries (fio_upload_free waits)
        let stopped = || self.cancelled() || self.lock().failure.is_some();
        let urls = self.transport.register_parts_cancellable(&self.asset_id, &req, name, total, &stopped)?;
        let url = urls.into_iter().next().ok_or_else(|| err(ErrorKind::Protocol, "register parts returned no URL"))?;
        self.lock().parts[idx].url = Some(url.clone());
        self.cv.notify_all();
        Ok(url)
    }

    fn upload_part(&self, number: u32) -> Result<()> {
        let idx = number as usize - 1;
        let (offset, size, body) = {
            let g = self.lock();
            let p = &g.parts[idx];
            (p.offset, p.size, p.body.clone())
        };
        let mut backoff = self.retry_backoff;
        let mut failing_since: Option<Instant> = None;
        let mut consecutive_403 = 0u32;
        let mut garbled_registrations = 0u32;
        loop {
            if self.cancelled() {
                return Err(err(ErrorKind::Cancelled, "upload cancelled"));
            }
            let mut registration_garbled = false;
            let res = self
                .url_for(number)
                .inspect_err(|e| registration_garbled = e.kind == ErrorKind::Protocol)
                .and_then(|url| {
                    self.lock().parts[idx].attempts += 1;
                    let sent = AtomicU64::new(0);
                    let hook = |n: u64| -> bool {
                        if self.cancelled() {
                            return false;
                        }
                        let wait = self.throttle.take(n);
                        if !wait.is_zero() && !self.sleep(wait) {
                            return false;
                        }
                        // the client may replay the body inside (its own retries): count each byte once
                        let before = sent.fetch_add(n, Ordering::SeqCst);
                        let add = (before + n).min(size).saturating_sub(before.min(size));
                        self.bytes_in_flight.fetch_add(add, Ordering::SeqCst);
                        true
                    };
                    let b = match (&body, &self.file) {
                        (Some((v, start)), _) => Body::Bytes(&v[*start..*start + size as usize]),
                        (None, Some(f)) => Body::File { file: f, offset, len: size },
                        (None, None) => return Err(err(ErrorKind::WrongState, "part has no bytes")),
                    };
                    let r = self.transport.put_part(&url, b, &self.asset.filetype, &hook);
                    self.bytes_in_flight.fetch_sub(sent.load(Ordering::SeqCst).min(size), Ordering::SeqCst);
                    r
                });
            let e = match res {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if self.cancelled() {
                return Err(err(ErrorKind::Cancelled, "upload cancelled"));
            }
            self.lock().parts[idx].last_error = Some(e.clone());
            if e.kind == ErrorKind::UrlExpired {
                consecutive_403 += 1;
                if consecutive_403 >= 2 || self.mode == Mode::Basic {
                    return Err(e);
                }
                self.reregistrations.fetch_add(1, Ordering::Relaxed);
                self.lock().parts[idx].url = None;
                continue;
            }
            // A garbled answer to a registration (an HTML page from a proxy, cut-off JSON) is a lost
            // response, and registering the same part again is allowed (c2c-api.md 14.2): try a few times.
            let retry_garbled = registration_garbled && garbled_registrations < MAX_GARBLED_REGISTRATIONS;
            garbled_registrations += u32::from(registration_garbled);
            if !e.is_retryable() && !retry_garbled {
                let mut e = e;
                let (resumed, sent_before, others_done) = {
                    let g = self.lock();
                    let p = &g.parts[idx];
                    let others = g.parts.iter().filter(|q| q.number != number).all(|q| q.status == PartStatus::Done);
                    (p.from_state && p.attempts == 0, p.attempts > 0, others && g.final_size.is_some())
                };
                // The C2C API cannot say whether an asset is complete, so this stays an error, but one that
                // tells firmware not to upload the clip again blindly.
                if e.kind == ErrorKind::BadRequest && others_done && (resumed || sent_before) {
                    let why = if resumed {
                        "if the process stopped right after uploading it"
                    } else {
                        "the answer to an earlier upload of this part was lost"
                    };
                    e.message = format!(
                        "{} (registering this part again was refused; {why}, so the asset may already be complete)",
                        e.message
                    );
                }
                return Err(e);
            }
            consecutive_403 = 0;
            let since = *failing_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= self.retry_deadline {
                let mut e = e;
                e.message = format!("{} (gave up after {:.0} s of retries)", e.message, since.elapsed().as_secs_f64());
                return Err(e);
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            let wait = e.retry_after().unwrap_or(jitter(backoff)).max(Duration::from_millis(1));
            let wait = wait.min(self.retry_deadline.saturating_sub(since.elapsed()) + Duration::from_millis(1));
            if !self.sleep(wait) {
                return Err(self
                    .lock()
                    .failure
                    .clone()
                    .unwrap_or_else(|| err(ErrorKind::Cancelled, "upload cancelled")));
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    fn monitor(
        self: Arc<Self>,
        mut progress: Option<ProgressFn>,
        interval: Duration,
        watch: Option<Duration>,
        sent_at_start: (u64, Instant),
    ) {
        let mut active: VecDeque<(Duration, u64)> = VecDeque::new();
        let mut last_tick = sent_at_start.1;
        let mut last_bytes = sent_at_start.0; // a resumed upload starts past zero
        let mut last_call: Option<Instant> = None;
        let mut last_sent: Option<Progress> = None;
        let mut last_watch = Instant::now();
        let tick = interval.min(watch.unwrap_or(interval)).min(Duration::from_millis(100));
        loop {
            std::thread::sleep(tick);
            let stop = self.finished_threads.load(Ordering::SeqCst);
            if self.cancelled() {
                self.cv.notify_all();
            }
            if let (Some(w), Some(f)) = (watch, &self.file) {
                if last_watch.elapsed() >= w {
                    last_watch = Instant::now();
                    if let Ok(m) = f.metadata() {
                        let _ = self.grew(m.len());
                    }
                }
            }
            let now = Instant::now();
            let p = self.progress();
            // A real-time upload is idle between parts. Count only the ticks in which bytes moved or a
            // part was on the wire, and keep the last rate while idle: the figure is the link's speed, not
            // a duty cycle. (A part sent within one tick still counts, at tick resolution.)
            let moved = p.bytes_sent.saturating_sub(last_bytes);
            let dt = now.duration_since(last_tick);
            last_bytes = p.bytes_sent;
            last_tick = now;
            if moved > 0 || p.parts_in_flight > 0 {
                active.push_back((dt, moved));
                while active.len() > 1 && active.iter().map(|a| a.0).sum::<Duration>() > Duration::from_millis(1500) {
                    active.pop_front();
                }
            }
            let busy: Duration = active.iter().map(|a| a.0).sum();
            let sent: u64 = active.iter().map(|a| a.1).sum();
            let tp = if busy > Duration::from_millis(50) && sent > 0 {
                sent as f64 / busy.as_secs_f64()
            } else {
                f64::from_bits(self.throughput.load(Ordering::Relaxed))
            };
            self.throughput.store(tp.to_bits(), Ordering::Relaxed);
            let done = p.complete || self.lock().failure.is_some() || self.cancelled() || stop;
            if let Some(cb) = progress.as_mut() {
                let due = last_call.is_none_or(|t| t.elapsed() >= interval);
                let changed = last_sent.is_none_or(|l| {
                    l.bytes_sent != p.bytes_sent
                        || l.bytes_recorded != p.bytes_recorded
                        || l.parts_done != p.parts_done
                        || l.complete != p.complete
                });
                if (due && changed) || done {
                    let mut p = p;
                    p.throughput_bps = tp;
                    last_call = Some(Instant::now());
                    last_sent = Some(p);
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb(&p)));
                    if !matches!(r, Ok(ControlFlow::Continue(()))) {
                        self.cancel.store(true, Ordering::SeqCst);
                        self.cv.notify_all();
                    }
                }
            }
            if done {
                self.cv.notify_all();
                if stop || p.complete || self.lock().failure.is_some() || self.cancelled() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
