//! The Frame.io C2C device API (c2c-api.md sections 1-8, decisions in section 14).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderValue, Method, Request};
use hyper::body::Incoming;
use serde_json::{json, Map, Value};

use crate::server::{collect_limited, json_response, response, Resp};
use crate::state::{new_token, new_uuid, rfc3339_now, unix_now, App, Asset, AssetState, Device, Part};

const MAX_API_BODY: usize = 1 << 20;
pub const MIN_PART: u64 = 5 * 1024 * 1024;
pub const MAX_PART: u64 = 5 * 1024 * 1024 * 1024;
pub const MAX_FILE: u64 = 5 * 1024 * 1024 * 1024 * 1024;
pub const MAX_PARTS: u64 = 10_000;
const ALLOWED_SCOPES: &[&str] = &["asset_create", "offline"];

/// `{"error": code}` (section 1.4, simple shape).
pub fn simple_error(status: u16, code: &str) -> Resp {
    json_response(status, &json!({ "error": code }))
}

/// `{"code", "errors": [{code, detail, status, title}], "message"}` (section 1.4, detailed shape).
pub fn detailed_error(status: u16, title: &str, detail: &str) -> Resp {
    json_response(
        status,
        &json!({
            "code": status,
            "errors": [{"code": status, "detail": detail, "status": status, "title": title}],
            "message": title,
        }),
    )
}

fn bad_request(detail: impl AsRef<str>) -> Resp {
    detailed_error(400, "Bad Request", detail.as_ref())
}

fn not_authorized() -> Resp {
    detailed_error(401, "Not Authorized", "You are not allowed to access that resource")
}

fn not_found(detail: &str) -> Resp {
    detailed_error(404, "Not Found", detail)
}

fn method_not_allowed() -> Resp {
    detailed_error(405, "Method Not Allowed", "This method is not allowed on this resource")
}

fn header<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

enum Route {
    DeviceCode,
    Token,
    Revoke,
    Me,
    Heartbeat,
    AssetCreate,
    Parts(String),
    Comments(String),
}

fn route(path: &str) -> Option<Route> {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    Some(match segs.as_slice() {
        ["v2", "auth", "device", "code"] | ["v2", "device", "code"] => Route::DeviceCode,
        ["v2", "auth", "token"] => Route::Token,
        ["v2", "auth", "revoke"] => Route::Revoke,
        ["v2", "devices", "me"] => Route::Me,
        ["v2", "devices", "heartbeat"] => Route::Heartbeat,
        ["v2", "devices", "assets"] | ["v2", "assets"] => Route::AssetCreate,
        ["v2", "devices", "assets", id, "realtime_upload", "parts"]
        | ["v2", "assets", id, "realtime_upload", "parts"] => Route::Parts(id.to_string()),
        ["v2", "devices", "assets", id, "comments"] => Route::Comments(id.to_string()),
        _ => return None,
    })
}

pub async fn handle(app: &Arc<App>, req: Request<Incoming>) -> Resp {
    // Rate limit per bearer token (auth endpoints: one shared bucket, they carry no token).
    let key = header(&req, "authorization").map(|a| a.to_string()).unwrap_or_else(|| "unauthenticated".into());
    let rl = app.rate_check(&key);
    let mut resp = if !rl.allowed {
        let mut r = detailed_error(429, "Too Many Requests", "Rate limit exceeded, please slow down");
        if rl.settings.retry_after {
            r.headers_mut().insert("retry-after", HeaderValue::from(rl.retry_after));
        }
        r
    } else {
        dispatch(app, req).await
    };
    let h = resp.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(rl.settings.limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(rl.remaining));
    h.insert("x-ratelimit-window", HeaderValue::from(rl.settings.window_ms));
    resp
}

async fn dispatch(app: &Arc<App>, req: Request<Incoming>) -> Resp {
    let Some(r) = route(req.uri().path()) else {
        return not_found("The requested resource was not found");
    };
    let is_auth = matches!(r, Route::DeviceCode | Route::Token | Route::Revoke);
    // x-client-version must be semver when present (absent means 0.0.0).
    if let Some(v) = req.headers().get("x-client-version") {
        let ok = v.to_str().ok().map(|s| semver::Version::parse(s).is_ok()).unwrap_or(false);
        if !ok {
            return if is_auth {
                simple_error(400, "invalid_request")
            } else {
                bad_request("x-client-version must be a semantic version")
            };
        }
    }
    let method = req.method().clone();
    match r {
        Route::DeviceCode if method == Method::POST => device_code(app, req).await,
        Route::Token if method == Method::POST => token(app, req).await,
        Route::Revoke if method == Method::POST => revoke(app, req).await,
        Route::Me if method == Method::GET => {
            let client = match bearer(app, &req, false) {
                Ok(c) => c,
                Err(r) => return r,
            };
            devices_me(app, &client, &req)
        }
        Route::Heartbeat if method == Method::POST => match bearer(app, &req, false) {
            Ok(client) => {
                touch_device(app, &client, &req);
                response(204, "", "")
            }
            Err(r) => r,
        },
        Route::AssetCreate if method == Method::POST => asset_create(app, req).await,
        Route::Parts(id) if method == Method::POST => parts(app, req, &id).await,
        Route::Comments(id) if method == Method::POST => comment(app, req, &id).await,
        _ => method_not_allowed(),
    }
}

// ---------------------------------------------------------------- auth

async fn read_form(req: Request<Incoming>) -> Result<HashMap<String, String>, Resp> {
    let ct = header(&req, "content-type").map(str::to_string);
    let Some(body) = collect_limited(req.into_body(), MAX_API_BODY).await else {
        return Err(simple_error(400, "invalid_request"));
    };
    crate::form::parse(ct.as_deref(), &body).map_err(|_| simple_error(400, "invalid_request"))
}

/// Checks client_id and client_secret; returns the client_id.
fn client_auth(app: &App, f: &HashMap<String, String>) -> Result<String, Resp> {
    let id = f.get("client_id").filter(|s| !s.is_empty());
    let secret = f.get("client_secret").filter(|s| !s.is_empty());
    let (Some(id), Some(secret)) = (id, secret) else {
        return Err(simple_error(400, "invalid_request"));
    };
    // Constant-time-ish comparison is pointless here; the emulator guards no real secret.
    if secret != &app.cfg.client_secret {
        return Err(simple_error(400, "invalid_client"));
    }
    Ok(id.clone())
}

async fn device_code(app: &Arc<App>, req: Request<Incoming>) -> Resp {
    let platypus = header(&req, "x-client-platypus-enabled").map(str::to_string);
    let f = match read_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let client_id = match client_auth(app, &f) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(scope) = f.get("scope") else {
        return simple_error(400, "invalid_request");
    };
    let scopes: Vec<String> = scope.split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect();
    if scopes.is_empty() || scopes.iter().any(|s| !ALLOWED_SCOPES.contains(&s.as_str())) {
        return simple_error(400, "invalid_scope");
    }
    let url_pairing = match platypus.as_deref() {
        None => false,
        Some("true") => true,
        Some(_) => return simple_error(400, "invalid_request"),
    };
    let device_code = new_token();
    let mut st = app.lock();
    let now = Instant::now();
    st.codes.retain(|_, c| c.expires + Duration::from_secs(600) > now);
    let user_code = loop {
        let n = u32::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..4].try_into().unwrap_or([0; 4])) % 1_000_000;
        let code = format!("{n:06}");
        if !st.codes.values().any(|c| c.user_code == code && c.expires > now) {
            break code;
        }
    };
    st.codes.insert(
        device_code.clone(),
        crate::state::DeviceCode {
            client_id,
            user_code: user_code.clone(),
            scopes,
            expires: now + Duration::from_secs_f64(app.cfg.code_ttl),
            interval: app.cfg.poll_interval,
            last_poll: None,
            approved: app.cfg.auto_approve,
            consumed: false,
        },
    );
    drop(st);
    let verification_uri = format!("{}/_emulator/pair", app.api_base);
    let complete = url_pairing.then(|| format!("{verification_uri}?user_code={user_code}"));
    json_response(
        200,
        &json!({
            "device_code": device_code,
            "expires_in": secs_json(app.cfg.code_ttl),
            "interval": secs_json(app.cfg.poll_interval),
            "name": app.cfg.device_name,
            "user_code": user_code,
            "verification_uri": verification_uri,
            "verification_uri_complete": complete,
        }),
    )
}

/// Whole seconds as an integer, fractions as a double.
fn secs_json(s: f64) -> Value {
    if s.fract() == 0.0 && s < 9.0e15 {
        json!(s as u64)
    } else {
        json!(s)
    }
}

fn issue_tokens(app: &App, st: &mut crate::state::Inner, client_id: &str, scopes: &[String]) -> Value {
    let access = new_token();
    let now = Instant::now();
    st.access.insert(
        access.clone(),
        crate::state::AccessToken {
            client_id: client_id.to_string(),
            scopes: scopes.to_vec(),
            expires: now + Duration::from_secs_f64(app.cfg.access_token_ttl),
            revoked: false,
        },
    );
    let mut out = json!({
        "access_token": access,
        "expires_in": app.cfg.access_token_ttl.round() as u64,
        "token_type": "bearer",
    });
    // Refresh tokens need the `offline` scope (section 2.3).
    if scopes.iter().any(|s| s == "offline") {
        let refresh = new_uuid();
        st.refresh.insert(
            refresh.clone(),
            crate::state::RefreshToken {
                client_id: client_id.to_string(),
                scopes: scopes.to_vec(),
                access_token: access,
                expires: now + Duration::from_secs_f64(app.cfg.refresh_token_ttl),
                used: false,
                revoked: false,
            },
        );
        out["refresh_token"] = json!(refresh);
    }
    st.devices.entry(client_id.to_string()).or_insert_with(|| Device {
        id: new_uuid(),
        device_id: new_uuid(),
        project_device_id: new_uuid(),
        inserted_at: rfc3339_now(),
        last_seen_at: rfc3339_now(),
        firmware: "0.0.0".into(),
    });
    out
}

async fn token(app: &Arc<App>, req: Request<Incoming>) -> Resp {
    let f = match read_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let client_id = match client_auth(app, &f) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match f.get("grant_type").map(String::as_str) {
        Some("urn:ietf:params:oauth:grant-type:device_code") => {
            let Some(code) = f.get("device_code").filter(|s| !s.is_empty()) else {
                return simple_error(400, "invalid_request");
            };
            let mut st = app.lock();
            let now = Instant::now();
            let Some(dc) = st.codes.get_mut(code) else {
                return simple_error(400, "invalid_grant");
            };
            if dc.client_id != client_id || dc.consumed {
                return simple_error(400, "invalid_grant");
            }
            if now >= dc.expires {
                return simple_error(400, "expired_token");
            }
            let too_fast = dc.last_poll.is_some_and(|t| now.duration_since(t).as_secs_f64() < dc.interval);
            dc.last_poll = Some(now);
            if too_fast {
                return simple_error(400, "slow_down");
            }
            if !dc.approved {
                return simple_error(400, "authorization_pending");
            }
            dc.consumed = true;
            let scopes = dc.scopes.clone();
            let body = issue_tokens(app, &mut st, &client_id, &scopes);
            json_response(200, &body)
        }
        Some("refresh_token") => {
            // The old reference spells the field `refresh_tokem`.
            let Some(rt) = f.get("refresh_token").or_else(|| f.get("refresh_tokem")).filter(|s| !s.is_empty()) else {
                return simple_error(400, "invalid_request");
            };
            let mut st = app.lock();
            let now = Instant::now();
            let Some(r) = st.refresh.get_mut(rt) else {
                return simple_error(400, "invalid_grant");
            };
            if r.client_id != client_id {
                return simple_error(400, "invalid_grant");
            }
            if r.revoked || now >= r.expires {
                return not_authorized();
            }
            if r.used {
                return simple_error(400, "invalid_request");
            }
            r.used = true;
            let old_access = r.access_token.clone();
            let scopes = r.scopes.clone();
            // The previous pair is invalid once refreshed.
            if let Some(a) = st.access.get_mut(&old_access) {
                a.revoked = true;
            }
            let body = issue_tokens(app, &mut st, &client_id, &scopes);
            json_response(200, &body)
        }
        _ => simple_error(400, "invalid_request"),
    }
}

async fn revoke(app: &Arc<App>, req: Request<Incoming>) -> Resp {
    let f = match read_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let client_id = match client_auth(app, &f) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(token) = f.get("token").filter(|s| !s.is_empty()) else {
        return simple_error(400, "invalid_request");
    };
    let mut st = app.lock();
    // Either token of a pair revokes the whole pair. Unknown tokens succeed (RFC 7009).
    let mut access_to_revoke = None;
    if let Some(r) = st.refresh.get_mut(token) {
        if r.client_id == client_id {
            r.revoked = true;
            access_to_revoke = Some(r.access_token.clone());
        }
    } else if st.access.get(token).is_some_and(|a| a.client_id == client_id) {
        access_to_revoke = Some(token.clone());
        for r in st.refresh.values_mut() {
            if &r.access_token == token {
                r.revoked = true;
            }
        }
    }
    if let Some(a) = access_to_revoke.and_then(|a| st.access.get_mut(&a)) {
        a.revoked = true;
    }
    json_response(200, &json!({"success": true}))
}

/// Validates `Authorization: Bearer`; returns the client_id.
fn bearer(app: &App, req: &Request<Incoming>, need_create: bool) -> Result<String, Resp> {
    let Some(h) = header(req, "authorization") else {
        return Err(not_authorized());
    };
    let mut it = h.splitn(2, ' ');
    let scheme = it.next().unwrap_or("");
    let tok = it.next().unwrap_or("").trim();
    if !scheme.eq_ignore_ascii_case("bearer") || tok.is_empty() {
        return Err(not_authorized());
    }
    let st = app.lock();
    match st.access.get(tok) {
        Some(a) if !a.revoked && Instant::now() < a.expires => {
            if need_create && !a.scopes.iter().any(|s| s == "asset_create") {
                return Err(detailed_error(403, "Forbidden", "The token lacks the asset_create scope"));
            }
            Ok(a.client_id.clone())
        }
        _ => Err(not_authorized()),
    }
}

fn touch_device(app: &App, client_id: &str, req: &Request<Incoming>) {
    let fw = header(req, "x-client-version").map(str::to_string);
    let mut st = app.lock();
    let d = st.devices.entry(client_id.to_string()).or_insert_with(|| Device {
        id: new_uuid(),
        device_id: new_uuid(),
        project_device_id: new_uuid(),
        inserted_at: rfc3339_now(),
        last_seen_at: rfc3339_now(),
        firmware: "0.0.0".into(),
    });
    d.last_seen_at = rfc3339_now();
    if let Some(fw) = fw {
        d.firmware = fw;
    }
}

/// The asset exists and belongs to this device (others' assets look unknown: 404).
fn owns(app: &App, asset_id: &str, client_id: &str) -> bool {
    app.lock().assets.get(asset_id).is_some_and(|a| a.client_id == client_id)
}

fn channel_paused_at(st: &crate::state::Inner, channel: i64, t: f64) -> bool {
    st.pauses.get(&channel).is_some_and(|ws| ws.iter().any(|(s, e)| t >= *s && e.is_none_or(|e| t < e)))
}

fn devices_me(app: &App, client_id: &str, req: &Request<Incoming>) -> Resp {
    touch_device(app, client_id, req);
    let st = app.lock();
    let Some(d) = st.devices.get(client_id) else {
        return not_authorized();
    };
    let now = unix_now();
    let paused = st.pauses.keys().any(|c| channel_paused_at(&st, *c, now));
    let project_id = "b0d3f4a6-1c2e-4f5a-9b7c-0e1f2a3b4c5d";
    let mut channels: Vec<i64> = st.pauses.keys().copied().collect();
    if !channels.contains(&0) {
        channels.push(0);
    }
    channels.sort();
    let channels: Vec<Value> = channels
        .iter()
        .map(|i| {
            json!({
                "_type": "project_device_channel",
                "id": format!("{}-{i}", d.project_device_id),
                "asset_type": "video",
                "device_id": d.device_id,
                "external_index": i,
                "inserted_at": d.inserted_at,
                "name": format!("Channel {i}"),
                "project_id": project_id,
                "project_device_id": d.project_device_id,
                "real_time_logging_capable": false,
                "status": if channel_paused_at(&st, *i, now) { "paused" } else { "online" },
                "updated_at": d.last_seen_at,
            })
        })
        .collect();
    json_response(
        200,
        &json!({
            "_type": "project_device",
            "id": d.project_device_id,
            "asset_type": "video",
            "authorization": {
                "_type": "project_device_authorization",
                "creator": {"_type": "user", "id": "5f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b", "name": "Emulator User"},
                "creator_id": "5f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
                "expires_at": null,
                "id": d.id,
                "inserted_at": d.inserted_at,
                "project_device_id": d.project_device_id,
                "scopes": {"asset_create": true, "offline": true, "comment_create": true, "device_connect": false},
            },
            "channels": channels,
            "creator_id": "5f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
            "device_id": d.device_id,
            "inserted_at": d.inserted_at,
            "updated_at": d.last_seen_at,
            "deleted_at": null,
            "last_seen_at": d.last_seen_at,
            "last_known_firmware_version": d.firmware,
            "name": app.cfg.device_name,
            "project": {"_type": "project", "id": project_id, "name": app.cfg.project_name},
            "project_id": project_id,
            "status": if paused { "paused" } else { "online" },
            "timezone": "Etc/UTC",
            "client_id": client_id,
        }),
    )
}

// ---------------------------------------------------------------- assets

/// Reads a JSON object body; `None` = not JSON content type.
async fn read_json_object(req: Request<Incoming>) -> Result<Map<String, Value>, Resp> {
    let Some(body) = collect_limited(req.into_body(), MAX_API_BODY).await else {
        return Err(detailed_error(413, "Payload Too Large", "Request body too large"));
    };
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad_request("Request body must be a JSON object")),
        Err(_) => Err(bad_request("Malformed JSON body")),
    }
}

/// A typed view of an optional field, whether it came from JSON or a form.
fn opt_str(m: &Map<String, Value>, k: &str) -> Result<Option<String>, Resp> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad_request(format!("{k} must be a string"))),
    }
}

fn opt_int(m: &Map<String, Value>, k: &str) -> Result<Option<i64>, Resp> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| bad_request(format!("{k} must be an integer"))),
        Some(_) => Err(bad_request(format!("{k} must be an integer"))),
    }
}

fn opt_bool(m: &Map<String, Value>, k: &str) -> Result<Option<bool>, Resp> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(bad_request(format!("{k} must be a boolean"))),
    }
}

/// Form values are strings; convert the known numeric/boolean fields to JSON types.
fn form_to_json(f: HashMap<String, String>) -> Result<Map<String, Value>, Resp> {
    let mut m = Map::new();
    for (k, v) in f {
        let val = match k.as_str() {
            "filesize" | "channel" | "offset" | "parts" => {
                if v.is_empty() {
                    Value::Null
                } else {
                    Value::Number(
                        v.trim().parse::<i64>().map_err(|_| bad_request(format!("{k} must be an integer")))?.into(),
                    )
                }
            }
            "is_realtime_upload" => match v.as_str() {
                "true" => Value::Bool(true),
                "false" | "" => Value::Bool(false),
                _ => return Err(bad_request("is_realtime_upload must be a boolean")),
            },
            _ => Value::String(v),
        };
        m.insert(k, val);
    }
    Ok(m)
}

fn extension_of(name: &str) -> Option<&str> {
    let ext = &name[name.rfind('.')?..];
    (ext.len() > 1).then_some(ext)
}

/// Basic upload URL count (section 14.4): ~part_size parts, none empty, non-final >= 5 MiB.
pub fn basic_plan(filesize: u64, part_size: u64, requested: Option<u64>) -> Result<Vec<u64>, String> {
    if filesize == 0 {
        return Ok(vec![0]);
    }
    // floor, not ceil: every non-final part is then at least part_size (>= 5 MiB).
    let n = match requested {
        Some(n) => n,
        None => (filesize / part_size).clamp(1, MAX_PARTS),
    };
    if n == 0 || n > MAX_PARTS {
        return Err("parts must be between 1 and 10000".into());
    }
    let chunk = filesize.div_ceil(n);
    let count = filesize.div_ceil(chunk);
    if count != n {
        return Err("that many parts would leave an empty part".into());
    }
    let mut sizes = vec![chunk; (n - 1) as usize];
    sizes.push(filesize - chunk * (n - 1));
    if n > 1 && chunk < MIN_PART {
        return Err("parts would be smaller than 5 MiB".into());
    }
    if chunk > MAX_PART {
        return Err("parts would be larger than 5 GiB".into());
    }
    Ok(sizes)
}

async fn asset_create(app: &Arc<App>, req: Request<Incoming>) -> Resp {
    let client_id = match bearer(app, &req, true) {
        Ok(c) => c,
        Err(r) => return r,
    };
    touch_device(app, &client_id, &req);
    let ct = crate::form::essence(header(&req, "content-type"));
    let m = match ct.as_str() {
        "application/json" => match read_json_object(req).await {
            Ok(m) => m,
            Err(r) => return r,
        },
        "application/x-www-form-urlencoded" => {
            let ctype = header(&req, "content-type").map(str::to_string);
            let Some(body) = collect_limited(req.into_body(), MAX_API_BODY).await else {
                return detailed_error(413, "Payload Too Large", "Request body too large");
            };
            let f = match crate::form::parse(ctype.as_deref(), &body) {
                Ok(f) => f,
                Err(e) => return bad_request(e),
            };
            match form_to_json(f) {
                Ok(mut m) => {
                    if m.get("is_realtime_upload") == Some(&Value::Bool(true)) {
                        return bad_request("Real-time uploads must be created with a JSON body");
                    }
                    m.insert("__form".into(), Value::Bool(true));
                    m
                }
                Err(r) => return r,
            }
        }
        _ => return bad_request("Content-Type must be application/json or application/x-www-form-urlencoded"),
    };
    let fields = (|| -> Result<_, Resp> {
        Ok((
            opt_str(&m, "name")?,
            opt_str(&m, "filetype")?,
            opt_int(&m, "filesize")?,
            opt_bool(&m, "is_realtime_upload")?.unwrap_or(false),
            opt_int(&m, "channel")?.unwrap_or(0),
            opt_int(&m, "offset")?.unwrap_or(0),
            opt_str(&m, "extension")?,
            opt_str(&m, "auto_version_id")?,
            opt_int(&m, "parts")?,
        ))
    })();
    let (name, filetype, filesize, realtime, channel, offset, extension, auto_version_id, parts) = match fields {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(filetype) = filetype.filter(|f| !f.trim().is_empty()) else {
        return bad_request("filetype is required");
    };
    if !filetype.contains('/') || filetype.chars().any(|c| c.is_control() || c == ' ') {
        return bad_request("filetype must be a MIME type such as video/mp4");
    }
    if channel < 0 {
        return bad_request("channel must not be negative");
    }
    if let Some(v) = &auto_version_id {
        if uuid::Uuid::parse_str(v).is_err() {
            return bad_request("auto_version_id must be a UUID");
        }
        if !owns(app, v, &client_id) {
            return not_found("auto_version_id does not name a known asset");
        }
    }
    let (final_name, default_name, plan) = if realtime {
        if filesize.is_some() {
            return bad_request("filesize must be omitted or null for real-time uploads");
        }
        if parts.is_some() {
            return bad_request("parts is not allowed for real-time uploads");
        }
        if let Some(ext) = &extension {
            if ext.len() < 2 || !ext.starts_with('.') {
                return bad_request("extension must look like .mp4");
            }
        }
        match (name.as_deref().filter(|n| !n.is_empty()), extension.as_deref()) {
            (Some(n), Some(ext)) => {
                if extension_of(n) != Some(ext) {
                    return bad_request("name and extension do not match");
                }
                (n.to_string(), false, None)
            }
            (Some(n), None) => {
                if extension_of(n).is_none() {
                    return bad_request("name must contain an extension (or pass extension)");
                }
                (n.to_string(), false, None)
            }
            (None, Some(ext)) => (format!("[new file]{ext}"), true, None),
            (None, None) => return bad_request("name with an extension, or extension, is required"),
        }
    } else {
        let Some(n) = name.filter(|n| !n.is_empty()) else {
            return bad_request("name is required");
        };
        let Some(size) = filesize else {
            return bad_request("filesize is required");
        };
        if size < 0 || size as u64 > MAX_FILE {
            return bad_request("filesize must be between 0 and 5 TiB");
        }
        let requested = match parts {
            Some(p) if p < 1 => return bad_request("parts must be between 1 and 10000"),
            Some(p) => Some(p as u64),
            None => None,
        };
        match basic_plan(size as u64, app.cfg.part_size, requested) {
            Ok(plan) => (n, false, Some(plan)),
            Err(e) => return bad_request(e),
        }
    };
    if final_name.chars().count() > 255 {
        return bad_request("name must be at most 255 characters");
    }
    // 409 when the media was created (now - offset) while its channel was paused.
    let created_at = unix_now() - offset as f64;
    if channel_paused_at(&app.lock(), channel, created_at) {
        return detailed_error(409, "Channel Paused", "The channel you're uploading from is currently paused.");
    }

    let id = new_uuid();
    let upload_id = match crate::s3::start_upload(app, &id, &filetype).await {
        Ok(u) => u,
        Err(e) => {
            elog!("fio-emulator: create_multipart_upload failed: {e}");
            return detailed_error(500, "Internal Server Error", "Could not start the upload");
        }
    };
    let mut asset = Asset {
        id: id.clone(),
        client_id,
        name: final_name.clone(),
        default_name,
        filetype: filetype.clone(),
        realtime,
        filesize: filesize.map(|f| f as u64),
        channel,
        offset,
        inserted_at: rfc3339_now(),
        upload_id: upload_id.clone(),
        key: id.clone(),
        parts: Default::default(),
        final_part: None,
        state: AssetState::Created,
        failure: None,
        sha256: None,
        comments: 0,
    };
    let mut urls = Vec::new();
    if let Some(plan) = &plan {
        let n = plan.len();
        for (i, size) in plan.iter().enumerate() {
            let num = (i + 1) as u32;
            asset.parts.insert(num, Part { size: *size, is_final: i + 1 == n, uploaded: None });
            urls.push(crate::s3::presign(app, &asset.key, &upload_id, num, &filetype));
        }
        asset.final_part = Some(n as u32);
    }
    let inserted_at = asset.inserted_at.clone();
    {
        let mut st = app.lock();
        st.uploads.insert(upload_id, id.clone());
        st.assets.insert(id.clone(), asset);
    }
    if realtime {
        return json_response(200, &json!({"id": id, "name": final_name}));
    }
    json_response(
        200,
        &json!({
            "_type": "file",
            "id": id,
            "name": final_name,
            "type": "file",
            "asset_type": "stream",
            "filetype": filetype,
            "filesize": filesize,
            "project_id": "b0d3f4a6-1c2e-4f5a-9b7c-0e1f2a3b4c5d",
            "parent_asset_id": null,
            "inserted_at": inserted_at,
            "label": "none",
            "upload_urls": urls,
        }),
    )
}

async fn parts(app: &Arc<App>, req: Request<Incoming>, id: &str) -> Resp {
    let client_id = match bearer(app, &req, true) {
        Ok(c) => c,
        Err(r) => return r,
    };
    touch_device(app, &client_id, &req);
    if !owns(app, id, &client_id) {
        return not_found("Asset not found");
    }
    if crate::form::essence(header(&req, "content-type")) != "application/json" {
        return bad_request("Content-Type must be application/json");
    }
    let m = match read_json_object(req).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let Some(Value::Array(list)) = m.get("parts") else {
        return bad_request("parts is required and must be an array");
    };
    if list.is_empty() {
        return bad_request("parts must not be empty");
    }
    if list.len() as u64 > MAX_PARTS {
        return bad_request("too many parts");
    }
    let asset_filesize = match opt_int(&m, "asset_filesize") {
        Ok(v) => v,
        Err(r) => return r,
    };
    let asset_name = match opt_str(&m, "asset_name") {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut req_parts: Vec<(u32, u64, bool)> = Vec::new();
    for (i, p) in list.iter().enumerate() {
        let Value::Object(p) = p else {
            return bad_request(format!("parts[{i}] must be an object"));
        };
        let number = match opt_int(p, "number") {
            Ok(Some(n)) => n,
            Ok(None) => return bad_request(format!("parts[{i}].number is required")),
            Err(r) => return r,
        };
        let size = match opt_int(p, "size") {
            Ok(Some(s)) => s,
            Ok(None) => return bad_request(format!("parts[{i}].size is required")),
            Err(r) => return r,
        };
        let is_final = match opt_bool(p, "is_final") {
            Ok(Some(b)) => b,
            Ok(None) => return bad_request(format!("parts[{i}].is_final is required")),
            Err(r) => return r,
        };
        if !(1..=MAX_PARTS as i64).contains(&number) {
            return bad_request(format!("parts[{i}].number must be between 1 and 10000"));
        }
        if size < 0 || size as u64 > MAX_PART {
            return bad_request(format!("parts[{i}].size must be between 0 and 5 GiB"));
        }
        if !is_final && (size as u64) < MIN_PART {
            return bad_request(format!("parts[{i}].size must be at least 5242880 bytes unless is_final"));
        }
        if req_parts.iter().any(|(n, _, _)| *n == number as u32) {
            return bad_request(format!("parts[{i}].number is repeated in this request"));
        }
        req_parts.push((number as u32, size as u64, is_final));
    }
    let finals: Vec<&(u32, u64, bool)> = req_parts.iter().filter(|p| p.2).collect();
    if finals.len() > 1 {
        return bad_request("only one part can be final");
    }
    if !finals.is_empty() {
        match asset_filesize {
            None => return bad_request("asset_filesize is required with a final part"),
            Some(s) if s < 0 || s as u64 > MAX_FILE => {
                return bad_request("asset_filesize must be between 1 and 5 TiB")
            }
            // 0 only for an empty file: a single empty final part number 1 (section 14.1).
            Some(0) if !(finals[0].0 == 1 && finals[0].1 == 0) => {
                return bad_request("asset_filesize must be between 1 and 5 TiB")
            }
            _ => {}
        }
    } else if let Some(s) = asset_filesize {
        if s < 1 || s as u64 > MAX_FILE {
            return bad_request("asset_filesize must be between 1 and 5 TiB");
        }
    }
    if let Some(n) = &asset_name {
        if n.is_empty() || n.chars().count() > 255 {
            return bad_request("asset_name must be 1..255 characters");
        }
    }

    // Validate against the asset, then register atomically.
    let (key, upload_id, filetype) = {
        let mut st = app.lock();
        let Some(a) = st.assets.get_mut(id) else {
            return not_found("Asset not found");
        };
        if !a.realtime {
            return bad_request("This asset is not a real-time upload");
        }
        if matches!(a.state, AssetState::Uploaded | AssetState::Failed | AssetState::Completing) {
            return bad_request("The upload of this asset is already complete");
        }
        let mut final_num = a.final_part;
        for (n, size, is_final) in &req_parts {
            if let Some(p) = a.parts.get(n) {
                if p.size != *size || p.is_final != *is_final {
                    return bad_request(format!("part {n} is already registered with a different size or is_final"));
                }
            }
            if *is_final {
                if let Some(f) = final_num {
                    if f != *n {
                        return bad_request(format!("part {f} is already the final part"));
                    }
                }
                final_num = Some(*n);
            }
        }
        if let Some(f) = final_num {
            let max_registered = a.parts.keys().chain(req_parts.iter().map(|p| &p.0)).copied().max().unwrap_or(0);
            if max_registered > f {
                return bad_request(format!("part numbers above the final part {f} are not allowed"));
            }
        }
        if !finals.is_empty() && a.final_part.is_some() && a.filesize != asset_filesize.map(|s| s as u64) {
            return bad_request("asset_filesize differs from the one registered with the final part");
        }
        for (n, size, is_final) in &req_parts {
            a.parts.entry(*n).or_insert(Part { size: *size, is_final: *is_final, uploaded: None });
        }
        if finals.len() == 1 && a.final_part.is_none() {
            a.final_part = final_num;
            a.filesize = asset_filesize.map(|s| s as u64);
        }
        if let Some(n) = asset_name {
            if a.default_name {
                a.name = n;
                a.default_name = false;
            }
        }
        (a.key.clone(), a.upload_id.clone(), a.filetype.clone())
    };
    let urls: Vec<String> =
        req_parts.iter().map(|(n, _, _)| crate::s3::presign(app, &key, &upload_id, *n, &filetype)).collect();
    // Parts may already all be uploaded when the final part is registered last.
    crate::s3::maybe_complete(app, id).await;
    json_response(200, &json!({"upload_urls": urls}))
}

async fn comment(app: &Arc<App>, req: Request<Incoming>, id: &str) -> Resp {
    let client_id = match bearer(app, &req, false) {
        Ok(c) => c,
        Err(r) => return r,
    };
    touch_device(app, &client_id, &req);
    if !owns(app, id, &client_id) {
        return not_found("Asset not found");
    }
    if crate::form::essence(header(&req, "content-type")) != "application/json" {
        return bad_request("Content-Type must be application/json");
    }
    let m = match read_json_object(req).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let text = match opt_str(&m, "text") {
        Ok(Some(t)) if !t.trim().is_empty() => t,
        Ok(_) => return bad_request("text is required"),
        Err(r) => return r,
    };
    let timestamp = match m.get("timestamp") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_f64().is_some_and(|f| f >= 0.0 && f.is_finite()) => n.as_f64(),
        Some(_) => return bad_request("timestamp must be a non-negative number of frames"),
    };
    if let Some(a) = app.lock().assets.get_mut(id) {
        a.comments += 1;
    }
    let now = rfc3339_now();
    json_response(
        200,
        &json!({
            "_type": "comment",
            "id": new_uuid(),
            "asset_id": id,
            "target_asset_id": id,
            "text": text,
            "timestamp": timestamp.map(|t| t.floor() as i64),
            "frame": timestamp,
            "owner_id": "5f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
            "owner": {"_type": "user", "id": "5f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b", "name": "Emulator User"},
            "annotation": null,
            "completed": false,
            "completed_at": null,
            "completer_id": null,
            "has_replies": false,
            "like_count": 0,
            "parent_id": null,
            "private": false,
            "inserted_at": now,
            "updated_at": now,
            "deleted_at": null,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_have_no_empty_or_small_parts() {
        for f in [1u64, 5 * 1024 * 1024, 21_136_250, 25 * 1024 * 1024 + 1, 1 << 34, MAX_FILE] {
            let p = basic_plan(f, 25 * 1024 * 1024, None).unwrap();
            assert_eq!(p.iter().sum::<u64>(), f);
            assert!(p.iter().all(|s| *s > 0));
            let chunk = f.div_ceil(p.len() as u64);
            assert!(p[..p.len() - 1].iter().all(|s| *s == chunk && (*s >= MIN_PART)));
        }
        assert_eq!(basic_plan(0, 25 << 20, None).unwrap(), vec![0]);
        assert!(basic_plan(10, 25 << 20, Some(3)).is_err());
    }
}
