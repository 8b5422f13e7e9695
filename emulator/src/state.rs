//! Shared emulator state. One mutex guards everything; it is never held across an await.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Value};

use crate::config::Config;

pub struct App {
    pub cfg: Config,
    pub started: Instant,
    pub api_base: String,
    pub s3_base: String,
    pub data_dir: PathBuf,
    pub bucket_name: String,
    pub fs: Arc<s3s_fs::FileSystem>,
    pub bucket: rusty_s3::Bucket,
    pub s3_creds: rusty_s3::Credentials,
    /// Built after `App` because the data plane wrapper needs an `Arc<App>`.
    pub s3svc: OnceLock<s3s::service::S3Service>,
    st: Mutex<Inner>,
}

#[derive(Default)]
pub struct Inner {
    pub codes: HashMap<String, DeviceCode>,
    pub access: HashMap<String, AccessToken>,
    pub refresh: HashMap<String, RefreshToken>,
    pub devices: HashMap<String, Device>,
    pub assets: HashMap<String, Asset>,
    /// S3 upload id -> asset id.
    pub uploads: HashMap<String, String>,
    /// S3 upload id -> the object assembled so far.
    pub assemblies: HashMap<String, crate::assemble::Shared>,
    /// Channel index -> pause windows as (start, end) in unix seconds; end None = still paused.
    pub pauses: HashMap<i64, Vec<(f64, Option<f64>)>>,
    pub faults: Vec<Fault>,
    pub next_fault_id: u64,
    pub log: Vec<LogEntry>,
    pub next_log_id: u64,
    pub buckets: HashMap<String, (f64, Instant)>,
    pub rate: RateSettings,
}

#[derive(Clone, Copy, Debug, Default, Serialize, serde::Deserialize)]
pub struct RateSettings {
    pub limit: u32,
    pub window_ms: u64,
    pub retry_after: bool,
}

pub struct DeviceCode {
    pub client_id: String,
    pub user_code: String,
    pub scopes: Vec<String>,
    pub expires: Instant,
    pub interval: f64,
    pub last_poll: Option<Instant>,
    pub approved: bool,
    pub consumed: bool,
}

pub struct AccessToken {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub expires: Instant,
    pub revoked: bool,
}

pub struct RefreshToken {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub access_token: String,
    pub expires: Instant,
    pub used: bool,
    pub revoked: bool,
}

pub struct Device {
    pub id: String,
    pub device_id: String,
    pub project_device_id: String,
    pub inserted_at: String,
    pub last_seen_at: String,
    pub firmware: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssetState {
    Created,
    Uploading,
    /// Internal: completion is running (shown as "uploading").
    Completing,
    Uploaded,
    Failed,
}

impl AssetState {
    pub fn as_str(self) -> &'static str {
        match self {
            AssetState::Created => "created",
            AssetState::Uploading | AssetState::Completing => "uploading",
            AssetState::Uploaded => "uploaded",
            AssetState::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Part {
    pub size: u64,
    pub is_final: bool,
    /// Size of the bytes S3 stored for this part, once uploaded.
    pub uploaded: Option<u64>,
}

pub struct Asset {
    pub id: String,
    pub client_id: String,
    pub name: String,
    /// Realtime asset created with only `extension`: `asset_name` may still rename it.
    pub default_name: bool,
    pub filetype: String,
    pub realtime: bool,
    /// Basic: the declared filesize. Realtime: `asset_filesize` once the final part is known.
    pub filesize: Option<u64>,
    pub channel: i64,
    pub offset: i64,
    pub inserted_at: String,
    pub upload_id: String,
    pub key: String,
    pub parts: BTreeMap<u32, Part>,
    pub final_part: Option<u32>,
    pub state: AssetState,
    pub failure: Option<String>,
    pub sha256: Option<String>,
    pub comments: usize,
}

impl Asset {
    pub fn control_json(&self) -> Value {
        let parts: Vec<Value> = self
            .parts
            .iter()
            .map(|(n, p)| json!({"number": n, "size": p.size, "is_final": p.is_final, "uploaded": p.uploaded.is_some(), "uploaded_size": p.uploaded}))
            .collect();
        json!({
            "id": self.id,
            "name": self.name,
            "filetype": self.filetype,
            "state": self.state.as_str(),
            "filesize": self.filesize,
            "sha256": self.sha256,
            "parts": parts,
            "failure": self.failure,
            "is_realtime_upload": self.realtime,
            "channel": self.channel,
            "offset": self.offset,
            "upload_id": self.upload_id,
            "comments": self.comments,
        })
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Fault {
    pub id: u64,
    pub target: String,
    pub method: Option<String>,
    pub path_prefix: String,
    /// Optional substring of the raw query, e.g. `partNumber=2`.
    pub query_contains: Option<String>,
    pub remaining: u64,
    pub skip: u64,
    pub action: FaultAction,
    pub hits: u64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    Respond { status: u16, headers: Vec<(String, String)>, body: String },
    Delay { ms: u64 },
    Reset { after_bytes: u64 },
    Stall { ms: Option<u64> },
}

impl FaultAction {
    pub fn kind(&self) -> &'static str {
        match self {
            FaultAction::Respond { .. } => "status",
            FaultAction::Delay { .. } => "delay",
            FaultAction::Reset { .. } => "reset",
            FaultAction::Stall { .. } => "stall",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct LogEntry {
    pub id: u64,
    pub port: &'static str,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub content_length: Option<u64>,
    pub transfer_encoding: Option<String>,
    /// The request's `Expect` header (`100-continue`), if any.
    pub expect: Option<String>,
    pub signed_headers_ok: Option<bool>,
    pub time_ms: u64,
    pub duration_ms: u64,
    pub fault: Option<String>,
    pub client_version: Option<String>,
}

/// Cap on the request log so a long demo cannot eat all memory.
const LOG_CAP: usize = 200_000;

impl App {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: Config,
        api_base: String,
        s3_base: String,
        data_dir: PathBuf,
        fs: Arc<s3s_fs::FileSystem>,
        bucket: rusty_s3::Bucket,
        bucket_name: String,
    ) -> App {
        let s3_creds = rusty_s3::Credentials::new(cfg.s3_access_key.clone(), cfg.s3_secret_key.clone());
        let rate = RateSettings { limit: cfg.rate_limit, window_ms: cfg.rate_window_ms, retry_after: cfg.retry_after };
        App {
            cfg,
            started: Instant::now(),
            api_base,
            s3_base,
            data_dir,
            bucket_name,
            fs,
            bucket,
            s3_creds,
            s3svc: OnceLock::new(),
            st: Mutex::new(Inner { rate, next_fault_id: 1, next_log_id: 1, ..Default::default() }),
        }
    }

    /// Lock the state; a panic elsewhere must not wedge the emulator, so poisoning is ignored.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn log(&self, mut e: LogEntry) {
        if !self.cfg.quiet {
            let fault = e.fault.as_deref().map(|f| format!(" [fault {f}]")).unwrap_or_default();
            elog!("fio-emulator: {} {} {} -> {}{}", e.port, e.method, e.path, e.status, fault);
        }
        let mut st = self.lock();
        e.id = st.next_log_id;
        st.next_log_id += 1;
        if st.log.len() >= LOG_CAP {
            st.log.drain(..LOG_CAP / 10);
        }
        st.log.push(e);
    }

    /// The first fault that matches consumes one use; `skip` lets earlier matches through.
    pub fn take_fault(&self, target: &str, method: &str, path: &str, query: &str) -> Option<(u64, FaultAction)> {
        let mut st = self.lock();
        let mut found = None;
        for (i, f) in st.faults.iter_mut().enumerate() {
            if f.target != target || f.remaining == 0 || !path.starts_with(&f.path_prefix) {
                continue;
            }
            if f.query_contains.as_ref().is_some_and(|q| !query.contains(q.as_str())) {
                continue;
            }
            if let Some(m) = &f.method {
                if !m.eq_ignore_ascii_case(method) {
                    continue;
                }
            }
            if f.skip > 0 {
                f.skip -= 1;
                continue;
            }
            f.remaining -= 1;
            f.hits += 1;
            found = Some((i, f.id, f.action.clone()));
            break;
        }
        let (i, id, action) = found?;
        if st.faults[i].remaining == 0 {
            st.faults.remove(i);
        }
        Some((id, action))
    }

    /// Leaky bucket per key. Returns (allowed, limit, remaining, window_ms, retry_after_secs).
    pub fn rate_check(&self, key: &str) -> RateResult {
        let mut st = self.lock();
        let rs = st.rate;
        if rs.limit == 0 {
            return RateResult { allowed: true, settings: rs, remaining: 0, retry_after: 0 };
        }
        let now = Instant::now();
        // Forget idle buckets now and then so made-up tokens cannot grow the map forever.
        if st.buckets.len() > 10_000 {
            let idle = std::time::Duration::from_millis(rs.window_ms.saturating_mul(2));
            st.buckets.retain(|_, (_, t)| now.duration_since(*t) < idle);
        }
        let limit = rs.limit as f64;
        let leak_per_ms = limit / rs.window_ms as f64;
        let entry = st.buckets.entry(key.to_string()).or_insert((0.0, now));
        let dt = now.duration_since(entry.1).as_secs_f64() * 1000.0;
        entry.0 = (entry.0 - dt * leak_per_ms).max(0.0);
        entry.1 = now;
        if entry.0 + 1.0 > limit + 1e-9 {
            let wait_ms = (entry.0 + 1.0 - limit) / leak_per_ms;
            let retry_after = ((wait_ms / 1000.0).ceil() as u64).max(1);
            RateResult { allowed: false, settings: rs, remaining: 0, retry_after }
        } else {
            entry.0 += 1.0;
            let remaining = (limit - entry.0).floor().max(0.0) as u64;
            RateResult { allowed: true, settings: rs, remaining, retry_after: 0 }
        }
    }
}

pub struct RateResult {
    pub allowed: bool,
    pub settings: RateSettings,
    pub remaining: u64,
    pub retry_after: u64,
}

pub fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

pub fn rfc3339_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// 64 hex chars of OS randomness (two v4 UUIDs).
pub fn new_token() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}
