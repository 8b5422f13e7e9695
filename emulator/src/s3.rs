//! The S3 data plane: s3s + s3s-fs behind a thin layer that refuses what real S3 refuses,
//! plus presigning (rusty-s3) and completion of uploads (section 14.3).

use std::sync::Arc;
use std::time::Duration;

use std::future::Future;

use http::{Method, Request};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use s3s::dto;
use s3s::{S3Request, S3Response, S3Result, S3};

use crate::api::MAX_PART;
use crate::config::SignedHeaders;
use crate::server::{response, Resp};
use crate::state::{App, AssetState};

fn s3_error(status: u16, code: &str, message: &str, extra: &str) -> Resp {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>{extra}<RequestId>{}</RequestId></Error>",
        uuid::Uuid::new_v4().simple()
    );
    response(status, "application/xml", body)
}

fn query_pairs(req: &Request<Incoming>) -> Vec<(String, String)> {
    req.uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
        .unwrap_or_default()
}

fn signed_list(req: &Request<Incoming>) -> Option<Vec<String>> {
    query_pairs(req)
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-signedheaders"))
        .map(|(_, v)| v.split(';').map(|s| s.trim().to_ascii_lowercase()).collect())
}

/// x-amz-* request headers that the presigned URL did not sign.
fn unsigned_amz_headers(req: &Request<Incoming>, signed: &[String]) -> Vec<String> {
    let mut out: Vec<String> = req
        .headers()
        .keys()
        .map(|k| k.as_str().to_ascii_lowercase())
        .filter(|k| k.starts_with("x-amz-") && !signed.contains(k))
        .collect();
    out.dedup();
    out
}

/// For a presigned request: every x-amz-* header is signed and every signed header is present.
pub fn signed_headers_ok(req: &Request<Incoming>) -> Option<bool> {
    let signed = signed_list(req)?;
    let present = signed.iter().all(|h| h == "host" || req.headers().contains_key(h.as_str()));
    Some(present && unsigned_amz_headers(req, &signed).is_empty())
}

/// A request body handed to s3s that gives itself back if s3s answers without reading it,
/// so the emulator can drain it: clients then see the error status instead of a broken pipe.
/// It also ends a body that goes idle, as S3 does with 400 RequestTimeout.
struct ReturnOnDrop {
    inner: Option<Incoming>,
    slot: Arc<std::sync::Mutex<Option<Incoming>>>,
    idle: std::pin::Pin<Box<tokio::time::Sleep>>,
    idle_limit: Duration,
    timed_out: Arc<std::sync::atomic::AtomicBool>,
}

impl http_body::Body for ReturnOnDrop {
    type Data = bytes::Bytes;
    type Error = crate::server::BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        let this = self.get_mut();
        let Some(b) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match std::pin::Pin::new(b).poll_frame(cx) {
            Poll::Ready(f) => {
                let deadline = tokio::time::Instant::now() + this.idle_limit;
                this.idle.as_mut().reset(deadline);
                Poll::Ready(f.map(|r| r.map_err(|e| -> crate::server::BoxError { Box::new(e) })))
            }
            Poll::Pending => {
                if this.idle.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.timed_out.store(true, std::sync::atomic::Ordering::SeqCst);
                this.inner = None; // not handed back: the connection is closed after the answer
                Poll::Ready(Some(Err("request body idle timeout".into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.as_ref().map(|b| b.size_hint()).unwrap_or_default()
    }
}

impl Drop for ReturnOnDrop {
    fn drop(&mut self) {
        if let Some(b) = self.inner.take() {
            if !http_body::Body::is_end_stream(&b) {
                if let Ok(mut slot) = self.slot.lock() {
                    *slot = Some(b);
                }
            }
        }
    }
}

/// Error answer after draining the request body (see `ReturnOnDrop`).
async fn refuse(req: Request<Incoming>, r: Resp) -> Resp {
    let _ = crate::server::drain(req.into_body(), MAX_PART).await;
    r
}

pub async fn handle(app: &Arc<App>, req: Request<Incoming>) -> Resp {
    if req.method() == Method::PUT || req.method() == Method::POST {
        if let Some(te) = req.headers().get("transfer-encoding") {
            let te = xml_escape(&String::from_utf8_lossy(te.as_bytes()));
            let extra = format!("<Header>Transfer-Encoding</Header><HeaderValue>{te}</HeaderValue>");
            let msg = "A header you provided implies functionality that is not implemented";
            return refuse(req, s3_error(501, "NotImplemented", msg, &extra)).await;
        }
        let Some(len) = req.headers().get("content-length") else {
            let msg = "You must provide the Content-Length HTTP header.";
            return s3_error(411, "MissingContentLength", msg, "");
        };
        let len: Option<u64> = len.to_str().ok().and_then(|s| s.trim().parse().ok());
        match len {
            None => return s3_error(400, "InvalidArgument", "Bad Content-Length", ""),
            Some(n) if n > MAX_PART => {
                let msg = "Your proposed upload exceeds the maximum allowed size";
                return s3_error(400, "EntityTooLarge", msg, "");
            }
            _ => {}
        }
    }
    if let Some(signed) = signed_list(&req) {
        let unsigned = unsigned_amz_headers(&req, &signed);
        if !unsigned.is_empty() {
            let extra = format!("<HeadersNotSigned>{}</HeadersNotSigned>", xml_escape(&unsigned.join(", ")));
            let msg = "There were headers present in the request which were not signed";
            return refuse(req, s3_error(403, "AccessDenied", msg, &extra)).await;
        }
    }
    let Some(svc) = app.s3svc.get() else {
        return s3_error(503, "ServiceUnavailable", "Starting up", "");
    };
    let slot = Arc::new(std::sync::Mutex::new(None));
    let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let idle_limit = Duration::from_secs_f64(app.cfg.s3_idle_timeout);
    let req = req.map(|b| {
        s3s::Body::http_body_unsync(ReturnOnDrop {
            inner: Some(b),
            slot: slot.clone(),
            idle: Box::pin(tokio::time::sleep(idle_limit)),
            idle_limit,
            timed_out: timed_out.clone(),
        })
    });
    let result = svc.call(req).await;
    if timed_out.load(std::sync::atomic::Ordering::SeqCst) {
        let msg = "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.";
        let mut r = s3_error(400, "RequestTimeout", msg, "");
        r.headers_mut().insert("connection", http::HeaderValue::from_static("close"));
        return r;
    }
    let unread = slot.lock().ok().and_then(|mut s| s.take());
    if let Some(body) = unread {
        let _ = crate::server::drain(body, MAX_PART).await;
    }
    match result {
        Ok(resp) => resp.map(|b| b.map_err(|e| -> crate::server::BoxError { e }).boxed_unsync()),
        Err(e) => {
            elog!("fio-emulator: s3s error: {e:?}");
            let msg = "We encountered an internal error. Please try again.";
            s3_error(500, "InternalError", msg, "")
        }
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn creds(app: &App) -> s3s::auth::Credentials {
    s3s::auth::Credentials {
        access_key: app.cfg.s3_access_key.clone(),
        secret_key: app.cfg.s3_secret_key.clone().into(),
    }
}

/// An in-process S3 call made as the emulator's own access key.
fn s3req<T>(app: &App, input: T) -> S3Request<T> {
    S3Request {
        input,
        method: Method::POST,
        uri: http::Uri::from_static("/"),
        headers: Default::default(),
        extensions: Default::default(),
        credentials: Some(creds(app)),
        region: None,
        service: None,
        trailing_headers: None,
    }
}

/// Starts the multipart upload (same access key as the URL signer, or every PUT gets 403).
pub async fn start_upload(app: &App, key: &str, content_type: &str) -> Result<String, String> {
    let input = dto::CreateMultipartUploadInput {
        bucket: app.bucket_name.clone(),
        key: key.to_string(),
        content_type: Some(content_type.to_string()),
        ..Default::default()
    };
    let out = app.fs.create_multipart_upload(s3req(app, input)).await.map_err(|e| format!("{e:?}"))?;
    out.output.upload_id.ok_or_else(|| "no upload id".to_string())
}

pub fn presign(app: &App, key: &str, upload_id: &str, part: u32, filetype: &str) -> String {
    let mut action = app.bucket.upload_part(Some(&app.s3_creds), key, part as u16, upload_id);
    if app.cfg.signed_headers == SignedHeaders::HostContentTypeAcl {
        action.headers_mut().insert("content-type", filetype);
        action.headers_mut().insert("x-amz-acl", "private");
    }
    use rusty_s3::S3Action;
    action.sign(Duration::from_secs(app.cfg.url_expiry)).to_string()
}

/// The S3 surface exposed on the S3 port: UploadPart (watched), GetObject and HeadObject.
pub struct DataPlane {
    pub app: Arc<App>,
}

#[async_trait::async_trait]
impl S3 for DataPlane {
    async fn upload_part(&self, req: S3Request<dto::UploadPartInput>) -> S3Result<S3Response<dto::UploadPartOutput>> {
        let upload_id = req.input.upload_id.clone();
        let part = req.input.part_number;
        let declared = req.input.content_length;
        let out = self.app.fs.upload_part(req).await?;
        let size = match declared {
            Some(n) if n >= 0 => n as u64,
            _ => tokio::fs::metadata(self.app.data_dir.join(format!(".upload_id-{upload_id}.part-{part}")))
                .await
                .map(|m| m.len())
                .unwrap_or(0),
        };
        let asset_id = {
            let mut st = self.app.lock();
            let Some(asset_id) = st.uploads.get(&upload_id).cloned() else {
                return Ok(out);
            };
            if let Some(a) = st.assets.get_mut(&asset_id) {
                if let Some(p) = a.parts.get_mut(&(part as u32)) {
                    p.uploaded = Some(size);
                }
                if a.state == AssetState::Created {
                    a.state = AssetState::Uploading;
                }
            }
            asset_id
        };
        crate::assemble::part_stored(&self.app, &asset_id, &upload_id, part as u32).await;
        // Complete before answering the last PUT, so "200 on the last part" means "assembled".
        maybe_complete(&self.app, &asset_id).await;
        Ok(out)
    }

    async fn get_object(&self, req: S3Request<dto::GetObjectInput>) -> S3Result<S3Response<dto::GetObjectOutput>> {
        self.app.fs.get_object(req).await
    }

    async fn head_object(&self, req: S3Request<dto::HeadObjectInput>) -> S3Result<S3Response<dto::HeadObjectOutput>> {
        self.app.fs.head_object(req).await
    }
}

/// Completes the asset when its final part is known and every part up to it is uploaded. The work runs
/// in its own task: a client that goes away drops the request's future, and a completion dropped
/// half-way left the asset "completing" (shown as uploading) forever.
pub async fn maybe_complete(app: &Arc<App>, asset_id: &str) {
    let (app, asset_id) = (app.clone(), asset_id.to_string());
    let _ = tokio::spawn(async move { complete_if_ready(&app, &asset_id).await }).await;
}

async fn complete_if_ready(app: &Arc<App>, asset_id: &str) {
    // Decide under the lock, act outside it.
    let (key, upload_id, numbers, failure) = {
        let mut st = app.lock();
        let Some(a) = st.assets.get_mut(asset_id) else {
            return;
        };
        if matches!(a.state, AssetState::Uploaded | AssetState::Failed | AssetState::Completing) {
            return;
        }
        let Some(final_num) = a.final_part else {
            return;
        };
        if a.parts.values().any(|p| p.uploaded.is_none()) {
            return;
        }
        let mut failure = None;
        let mut sum = 0u64;
        for (n, p) in &a.parts {
            let got = p.uploaded.unwrap_or(0);
            if got != p.size {
                failure = Some(format!("part {n} was registered with {} bytes but {got} were uploaded", p.size));
                break;
            }
            sum += got;
        }
        if failure.is_none() {
            if let Some(total) = a.filesize {
                if sum != total {
                    failure = Some(format!("parts add up to {sum} bytes but the file size is {total}"));
                }
            }
        }
        debug_assert!(a.parts.keys().all(|n| *n <= final_num));
        a.state = AssetState::Completing;
        (a.key.clone(), a.upload_id.clone(), a.parts.iter().map(|(n, p)| (*n, p.size)).collect::<Vec<_>>(), failure)
    };
    let result = match failure {
        Some(f) => {
            crate::assemble::discard(app, &upload_id).await;
            abort(app, &key, &upload_id).await;
            Err(f)
        }
        None => crate::assemble::complete(app, &key, &upload_id, &numbers).await,
    };
    let mut st = app.lock();
    st.uploads.remove(&upload_id);
    if let Some(a) = st.assets.get_mut(asset_id) {
        match result {
            Ok(()) => a.state = AssetState::Uploaded,
            Err(f) => {
                elog!("fio-emulator: asset {asset_id} failed: {f}");
                a.state = AssetState::Failed;
                a.failure = Some(f);
            }
        }
    }
}

async fn abort(app: &App, key: &str, upload_id: &str) {
    let input = dto::AbortMultipartUploadInput {
        bucket: app.bucket_name.clone(),
        key: key.to_string(),
        upload_id: upload_id.to_string(),
        ..Default::default()
    };
    let _ = app.fs.abort_multipart_upload(s3req(app, input)).await;
}

pub fn object_path(app: &App, key: &str) -> std::path::PathBuf {
    app.data_dir.join(&app.bucket_name).join(key)
}

/// SHA-256 of the assembled object, computed once (off the async threads) and cached.
pub async fn sha256_of(app: &Arc<App>, asset_id: &str) -> Option<String> {
    let key = {
        let st = app.lock();
        let a = st.assets.get(asset_id)?;
        if a.state != AssetState::Uploaded {
            return None;
        }
        if let Some(h) = &a.sha256 {
            return Some(h.clone());
        }
        a.key.clone()
    };
    let path = object_path(app, &key);
    let hash = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        use std::io::Read;
        let mut f = std::fs::File::open(path)?;
        // ring's assembly SHA-256 stays fast in debug builds (sha2 crawls there).
        let mut h = ring::digest::Context::new(&ring::digest::SHA256);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(h.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect())
    })
    .await
    .ok()?
    .ok()?;
    if let Some(a) = app.lock().assets.get_mut(asset_id) {
        a.sha256 = Some(hash.clone());
    }
    Some(hash)
}
