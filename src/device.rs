//! `/v2/devices/me` and the heartbeat, with an optional background heartbeat thread (c2c-api.md 3).

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::client::{Client, Inner};
use crate::config::LogLevel;
use crate::error::{Error, Result};
use crate::http::ApiBody;

/// Heartbeat cadence limits from the API reference: at most once a minute, at least every 5 minutes.
pub const HEARTBEAT_MIN: Duration = Duration::from_secs(60);
pub const HEARTBEAT_MAX: Duration = Duration::from_secs(300);

/// What `/v2/devices/me` says, with the raw JSON for anything else.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceInfo {
    /// The complete reply, as JSON text.
    pub json: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub project_id: Option<String>,
    pub project_name: Option<String>,
    /// `online`, `offline` or `paused`.
    pub status: Option<String>,
}

impl Client {
    /// `GET /v2/devices/me`: check the token and get the device/project to show in the UI.
    pub fn device_info(&self) -> Result<DeviceInfo> {
        let what = "GET /v2/devices/me";
        let r = self.call_auth("GET", "/v2/devices/me", ApiBody::None)?;
        let v = r.json(what)?;
        let s = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        Ok(DeviceInfo {
            json: String::from_utf8_lossy(&r.body).into_owned(),
            id: s(&v, "id"),
            name: s(&v, "name"),
            project_id: s(&v, "project_id"),
            project_name: v.get("project").and_then(|p| s(p, "name")),
            status: s(&v, "status"),
        })
    }

    /// `POST /v2/devices/heartbeat`: marks the device online.
    pub fn heartbeat(&self) -> Result<()> {
        self.heartbeat_cancellable(&|| false)
    }

    fn heartbeat_cancellable(&self, cancelled: &dyn Fn() -> bool) -> Result<()> {
        self.call_auth_cancellable("POST", "/v2/devices/heartbeat", ApiBody::None, cancelled).map(|_| ())
    }

    /// Start (or retune) a background thread that heartbeats every `interval` (clamped to 1-5 minutes).
    /// It stops with [`Client::stop_heartbeat`] or when the last clone of the client is dropped.
    /// Failures are logged, never fatal.
    pub fn start_heartbeat(&self, interval: Duration) -> Result<()> {
        let interval = interval.clamp(HEARTBEAT_MIN, HEARTBEAT_MAX);
        let mut slot = self.inner.heartbeat.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = slot.take() {
            old.stop_and_join();
        }
        *slot = Some(HeartbeatThread::spawn(Arc::downgrade(&self.inner), interval)?);
        self.log(LogLevel::Info, || format!("background heartbeat every {} s", interval.as_secs()));
        Ok(())
    }

    /// Same as `start_heartbeat` but without the 1-5 minute clamp (tests).
    #[doc(hidden)]
    pub fn start_heartbeat_unclamped(&self, interval: Duration) -> Result<()> {
        let mut slot = self.inner.heartbeat.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = slot.take() {
            old.stop_and_join();
        }
        *slot = Some(HeartbeatThread::spawn(Arc::downgrade(&self.inner), interval.max(Duration::from_millis(10)))?);
        Ok(())
    }

    /// Stop the background heartbeat (waits for the thread to end). No-op when it is not running.
    pub fn stop_heartbeat(&self) {
        let t = self.inner.heartbeat.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = t {
            t.stop_and_join();
        }
    }

    /// Whether the background heartbeat runs.
    pub fn heartbeat_running(&self) -> bool {
        self.inner.heartbeat.lock().map(|s| s.is_some()).unwrap_or(false)
    }
}

pub(crate) struct HeartbeatThread {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl HeartbeatThread {
    fn spawn(inner: Weak<Inner>, interval: Duration) -> Result<HeartbeatThread> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stop2 = stop.clone();
        let handle = std::thread::Builder::new()
            .name("fio-heartbeat".into())
            .spawn(move || {
                let (lock, cv) = &*stop2;
                loop {
                    {
                        let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
                        let (guard, _) = cv
                            .wait_timeout_while(guard, interval, |stopped| !*stopped)
                            .unwrap_or_else(|p| p.into_inner());
                        if *guard {
                            return;
                        }
                    }
                    let Some(inner) = inner.upgrade() else { return };
                    let client = Client { inner };
                    // stop_and_join must not wait out the heartbeat's retries (a Retry-After may be long)
                    let stopped = || *lock.lock().unwrap_or_else(|p| p.into_inner());
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        client.heartbeat_cancellable(&stopped)
                    }));
                    match r {
                        Ok(Ok(())) => client.log(LogLevel::Debug, || "heartbeat sent".into()),
                        Ok(Err(e)) => client.log(LogLevel::Warn, || format!("background heartbeat failed: {e}")),
                        Err(_) => client.log(LogLevel::Error, || "background heartbeat panicked".into()),
                    }
                    // If this was the last clone, Inner::drop runs here, on this thread; it stops the loop and
                    // does not join itself.
                    drop(client);
                }
            })
            .map_err(|e| Error::new(crate::error::ErrorKind::Io, format!("cannot start heartbeat thread: {e}")))?;
        Ok(HeartbeatThread { stop, handle: Some(handle) })
    }

    pub(crate) fn stop_and_join(mut self) {
        {
            let (lock, cv) = &*self.stop;
            *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
            cv.notify_all();
        }
        if let Some(h) = self.handle.take() {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }
}
