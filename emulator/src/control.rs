//! The control API under `/_emulator` (tests and demos only; not part of Frame.io).

use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{json, Map, Value};

use crate::server::{collect_limited, json_response, response, Resp};
use crate::state::{unix_now, App, Fault, FaultAction, RateSettings};

fn err(status: u16, msg: &str) -> Resp {
    json_response(status, &json!({ "error": msg }))
}

async fn body_json(req: Request<Incoming>) -> Result<Map<String, Value>, Resp> {
    let Some(b) = collect_limited(req.into_body(), 1 << 20).await else {
        return Err(err(413, "body too large"));
    };
    if b.iter().all(|c| c.is_ascii_whitespace()) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&b) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(err(400, "body must be a JSON object")),
    }
}

pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let segs: Vec<&str> = path.split('/').skip(2).collect();
    let m = req.method().clone();
    match (m.clone(), segs.as_slice()) {
        (Method::GET, ["health"]) | (Method::GET, []) => json_response(
            200,
            &json!({"ok": true, "api": app.api_base, "s3": app.s3_base, "uptime_ms": app.elapsed_ms()}),
        ),
        (Method::POST, ["pairing", "approve"]) => {
            let b = match body_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let Some(code) = b.get("user_code").and_then(Value::as_str) else {
                return err(400, "user_code is required");
            };
            approve(&app, code)
        }
        (Method::GET, ["pair"]) => {
            // Browser-friendly approval for demos: the verification_uri_complete lands here.
            let code = req.uri().query().and_then(|q| {
                form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "user_code").map(|(_, v)| v.into_owned())
            });
            match code {
                Some(c) => {
                    let r = approve(&app, &c);
                    let ok = r.status() == 200;
                    response(
                        if ok { 200 } else { 404 },
                        "text/html; charset=utf-8",
                        if ok { format!("<html><body><h1>Device paired</h1><p>Code {c} approved.</p></body></html>") } else { "<html><body><h1>Unknown or expired code</h1></body></html>".to_string() },
                    )
                }
                None => response(200, "text/html; charset=utf-8", "<html><body><form><input name=\"user_code\" placeholder=\"123456\"><button>Pair</button></form></body></html>"),
            }
        }
        (Method::GET, ["pairing"]) => {
            let st = app.lock();
            let now = Instant::now();
            let codes: Vec<Value> = st
                .codes
                .values()
                .filter(|c| c.expires > now && !c.consumed)
                .map(|c| json!({"user_code": c.user_code, "client_id": c.client_id, "approved": c.approved}))
                .collect();
            json_response(200, &Value::Array(codes))
        }
        (Method::GET, ["assets"]) => {
            // sha256 is computed on first demand (and cached): the list shows it too, as documented
            let uploaded: Vec<String> = app
                .lock()
                .assets
                .values()
                .filter(|a| a.state == crate::state::AssetState::Uploaded && a.sha256.is_none())
                .map(|a| a.id.clone())
                .collect();
            for id in uploaded {
                let _ = crate::s3::sha256_of(&app, &id).await;
            }
            let st = app.lock();
            let list: Vec<Value> = st.assets.values().map(|a| a.control_json()).collect();
            json_response(200, &Value::Array(list))
        }
        (Method::GET, ["assets", id]) => {
            let id = id.to_string();
            let _ = crate::s3::sha256_of(&app, &id).await;
            match app.lock().assets.get(&id) {
                Some(a) => json_response(200, &a.control_json()),
                None => err(404, "unknown asset"),
            }
        }
        (Method::GET, ["assets", id, "content"]) => content(&app, id).await,
        (Method::POST, ["faults"]) => {
            let b = match body_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            match parse_fault(&b) {
                Ok(mut f) => {
                    let mut st = app.lock();
                    f.id = st.next_fault_id;
                    st.next_fault_id += 1;
                    let id = f.id;
                    st.faults.push(f);
                    json_response(200, &json!({ "id": id }))
                }
                Err(e) => err(400, &e),
            }
        }
        (Method::GET, ["faults"]) => {
            let st = app.lock();
            json_response(200, &serde_json::to_value(&st.faults).unwrap_or(Value::Null))
        }
        (Method::DELETE, ["faults"]) => {
            app.lock().faults.clear();
            json_response(200, &json!({"cleared": true}))
        }
        (Method::DELETE, ["faults", id]) => {
            let Ok(id) = id.parse::<u64>() else {
                return err(404, "unknown fault");
            };
            let mut st = app.lock();
            let before = st.faults.len();
            st.faults.retain(|f| f.id != id);
            if st.faults.len() == before {
                err(404, "unknown fault")
            } else {
                json_response(200, &json!({"deleted": id}))
            }
        }
        (Method::POST, ["channels", idx, action @ ("pause" | "resume")]) => {
            let Ok(idx) = idx.parse::<i64>() else {
                return err(400, "channel index must be an integer");
            };
            if idx < 0 {
                return err(400, "channel index must not be negative");
            }
            let mut st = app.lock();
            let now = unix_now();
            let windows = st.pauses.entry(idx).or_default();
            let open = windows.iter().any(|(_, e)| e.is_none());
            if *action == "pause" && !open {
                windows.push((now, None));
            } else if *action == "resume" {
                for w in windows.iter_mut().filter(|w| w.1.is_none()) {
                    w.1 = Some(now);
                }
            }
            json_response(200, &json!({"channel": idx, "paused": *action == "pause"}))
        }
        (Method::POST, ["tokens", "expire"]) => {
            let b = match body_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let also_refresh = b.get("refresh").and_then(Value::as_bool).unwrap_or(false);
            let mut st = app.lock();
            let now = Instant::now();
            let mut n = 0;
            for a in st.access.values_mut() {
                if a.expires > now {
                    a.expires = now;
                    n += 1;
                }
            }
            if also_refresh {
                for r in st.refresh.values_mut() {
                    r.expires = r.expires.min(now);
                }
            }
            json_response(200, &json!({"expired": n}))
        }
        (Method::GET, ["requests"]) => {
            // `?since=ID` returns only newer entries, so pollers need not re-read the whole log.
            let since = req
                .uri()
                .query()
                .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "since"))
                .and_then(|(_, v)| v.parse::<u64>().ok())
                .unwrap_or(0);
            let st = app.lock();
            let entries: Vec<&crate::state::LogEntry> = st.log.iter().filter(|e| e.id > since).collect();
            json_response(200, &serde_json::to_value(entries).unwrap_or(Value::Null))
        }
        (Method::DELETE, ["requests"]) => {
            app.lock().log.clear();
            json_response(200, &json!({"cleared": true}))
        }
        (Method::GET, ["rate-limit"]) => {
            let st = app.lock();
            json_response(200, &serde_json::to_value(st.rate).unwrap_or(Value::Null))
        }
        (Method::POST, ["rate-limit"]) => {
            let b = match body_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let mut st = app.lock();
            let cur = st.rate;
            let limit = b.get("limit").map(|v| v.as_u64().filter(|n| *n <= u32::MAX as u64));
            let window = b.get("window_ms").map(|v| v.as_u64().filter(|n| *n > 0));
            let ra = b.get("retry_after").map(Value::as_bool);
            if matches!(limit, Some(None)) || matches!(window, Some(None)) || matches!(ra, Some(None)) {
                return err(400, "limit (u32), window_ms (> 0) and retry_after (bool) are optional fields");
            }
            st.rate = RateSettings {
                limit: limit.flatten().map(|n| n as u32).unwrap_or(cur.limit),
                window_ms: window.flatten().unwrap_or(cur.window_ms),
                retry_after: ra.flatten().unwrap_or(cur.retry_after),
            };
            st.buckets.clear();
            json_response(200, &serde_json::to_value(st.rate).unwrap_or(Value::Null))
        }
        (Method::POST, ["reset"]) => reset(&app).await,
        _ => err(404, "unknown control endpoint"),
    }
}

fn approve(app: &App, code: &str) -> Resp {
    let mut st = app.lock();
    let now = Instant::now();
    match st.codes.values_mut().find(|c| c.user_code == code && c.expires > now && !c.consumed) {
        Some(c) => {
            c.approved = true;
            json_response(200, &json!({"approved": true, "client_id": c.client_id}))
        }
        None => err(404, "unknown or expired user_code"),
    }
}

async fn content(app: &Arc<App>, id: &str) -> Resp {
    let key = {
        let st = app.lock();
        match st.assets.get(id) {
            None => return err(404, "unknown asset"),
            Some(a) if a.state != crate::state::AssetState::Uploaded => return err(409, "asset is not uploaded"),
            Some(a) => a.key.clone(),
        }
    };
    let path = crate::s3::object_path(app, &key);
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(_) => return err(404, "object missing"),
    };
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let stream = futures::StreamExt::map(tokio_util::io::ReaderStream::with_capacity(file, 1 << 16), |r| {
        r.map(Frame::data).map_err(|e| -> crate::server::BoxError { Box::new(e) })
    });
    let mut r = http::Response::new(StreamBody::new(stream).boxed_unsync());
    r.headers_mut().insert("content-type", http::HeaderValue::from_static("application/octet-stream"));
    r.headers_mut().insert("content-length", http::HeaderValue::from(len));
    r
}

fn parse_fault(b: &Map<String, Value>) -> Result<Fault, String> {
    let s = |k: &str| -> Result<Option<String>, String> {
        match b.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("{k} must be a string")),
        }
    };
    let u = |k: &str| -> Result<Option<u64>, String> {
        match b.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| format!("{k} must be a non-negative integer")),
        }
    };
    let target = s("target")?.unwrap_or_else(|| "api".into());
    if target != "api" && target != "s3" {
        return Err("target must be \"api\" or \"s3\"".into());
    }
    let path_prefix = s("path_prefix")?.unwrap_or_else(|| "/".into());
    if !path_prefix.starts_with('/') {
        return Err("path_prefix must start with /".into());
    }
    let count = u("count")?.unwrap_or(1);
    if count == 0 {
        return Err("count must be at least 1".into());
    }
    let mut actions = Vec::new();
    if let Some(status) = u("status")? {
        if !(200..=599).contains(&status) {
            return Err("status must be 200..599".into());
        }
        let mut headers = Vec::new();
        match b.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(h)) => {
                for (k, v) in h {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    if http::HeaderName::from_bytes(k.as_bytes()).is_err() || http::HeaderValue::from_str(&v).is_err() {
                        return Err(format!("invalid header {k}"));
                    }
                    headers.push((k.clone(), v));
                }
            }
            Some(_) => return Err("headers must be an object".into()),
        }
        let body = match b.get("body") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        actions.push(FaultAction::Respond { status: status as u16, headers, body });
    }
    if let Some(ms) = u("delay_ms")? {
        actions.push(FaultAction::Delay { ms });
    }
    if let Some(k) = u("reset_after_bytes")? {
        actions.push(FaultAction::Reset { after_bytes: k });
    }
    match b.get("stall") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => actions.push(FaultAction::Stall { ms: u("stall_ms")? }),
        Some(_) => return Err("stall must be a boolean".into()),
    }
    if actions.len() != 1 {
        return Err("give exactly one action: status, delay_ms, reset_after_bytes or stall".into());
    }
    Ok(Fault {
        id: 0,
        target,
        method: s("method")?.map(|m| m.to_ascii_uppercase()),
        path_prefix,
        query_contains: s("query_contains")?.filter(|q| !q.is_empty()),
        remaining: count,
        skip: u("skip")?.unwrap_or(0),
        action: actions.remove(0),
        hits: 0,
    })
}

async fn reset(app: &Arc<App>) -> Resp {
    {
        let mut st = app.lock();
        let rate = RateSettings {
            limit: app.cfg.rate_limit,
            window_ms: app.cfg.rate_window_ms,
            retry_after: app.cfg.retry_after,
        };
        *st = crate::state::Inner {
            rate,
            next_fault_id: st.next_fault_id,
            next_log_id: st.next_log_id,
            ..Default::default()
        };
    }
    // Drop stored objects and pending parts; keep the bucket folder and the TLS files.
    let bucket_dir = app.data_dir.join(&app.bucket_name);
    if let Ok(mut rd) = tokio::fs::read_dir(&bucket_dir).await {
        while let Ok(Some(e)) = rd.next_entry().await {
            let p = e.path();
            let _ = if p.is_dir() { tokio::fs::remove_dir_all(&p).await } else { tokio::fs::remove_file(&p).await };
        }
    }
    if let Ok(mut rd) = tokio::fs::read_dir(&app.data_dir).await {
        while let Ok(Some(e)) = rd.next_entry().await {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with(".upload") || name.starts_with(".bucket-") {
                let _ = tokio::fs::remove_file(e.path()).await;
            }
        }
    }
    json_response(200, &json!({"reset": true}))
}
