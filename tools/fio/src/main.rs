//! `fio`: a command-line tool over the frameio-c2c library (the rlib) for vendor engineers: pair a
//! unit, look at its device record, send heartbeats, upload files (also while they are recorded) and
//! comment on assets, against Frame.io or the local emulator (`--base-url`, `--allow-http`).
//!
//! Tokens live in a config file (mode 0600) and every refreshed pair is written back before the
//! library uses it (refresh tokens are single-use). Run `fio --help` for the commands.

mod args;
mod progress;
mod store;

use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use frameio_c2c::upload::{self, AssetSpec, Body, PartReq, Progress, Source, Transport, Upload, UploadOptions};
use frameio_c2c::{Client, Config, Error, ErrorKind, LogLevel, Tokens};

use args::Args;
use progress::{Display, Mode};
use store::Profile;

/// Ctrl-C / SIGTERM count (the handler only increments it: async-signal-safe). Installed only by
/// `pair` and `upload`; the other commands keep the default action (they hold nothing to clean up:
/// the config file is only ever replaced by a rename).
static SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal(_sig: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

fn install_signal_handlers() {
    // SAFETY: the handler only touches an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

fn signals() -> usize {
    SIGNALS.load(Ordering::SeqCst)
}

/// Why the command failed, and so the exit status.
enum Fail {
    Usage(String),
    Msg(String),
    Lib(Error),
    Interrupted,
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        if e.kind == ErrorKind::Cancelled && signals() > 0 {
            Fail::Interrupted
        } else {
            Fail::Lib(e)
        }
    }
}

type Res<T> = Result<T, Fail>;

fn main() {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fio: {e}");
            std::process::exit(2);
        }
    };
    if args.flag("help") || args.positional.first().map(String::as_str) == Some("help") {
        print!("{}", args::USAGE);
        return;
    }
    if args.flag("version") {
        println!("fio {} (frameio-c2c {})", env!("CARGO_PKG_VERSION"), frameio_c2c::VERSION);
        return;
    }
    let code = match run(&args) {
        Ok(()) => 0,
        Err(Fail::Usage(m)) => {
            eprintln!("fio: {m}");
            eprintln!("Run `fio --help` for usage.");
            2
        }
        Err(Fail::Msg(m)) => {
            eprintln!("fio: error: {m}");
            1
        }
        Err(Fail::Interrupted) => {
            eprintln!("fio: interrupted");
            130
        }
        Err(Fail::Lib(e)) => {
            eprintln!("fio: error: {e}");
            match e.kind {
                ErrorKind::PairingRequired => {
                    eprintln!("fio: this unit is not paired (or its tokens were revoked): run `fio pair`");
                    3
                }
                ErrorKind::ChannelPaused => {
                    eprintln!(
                        "fio: the device's channel is paused in Frame.io (HTTP 409): media recorded while paused is \
                         not accepted, so this file is not retried; resume the channel for new recordings"
                    );
                    4
                }
                ErrorKind::InvalidClient => {
                    eprintln!("fio: Frame.io rejected the client id/secret: check --client-id and --client-secret");
                    1
                }
                ErrorKind::Cancelled => 5,
                _ => 1,
            }
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

fn run(args: &Args) -> Res<()> {
    let cmd = args.positional.first().map(String::as_str).ok_or_else(|| Fail::Usage("no command given".into()))?;
    let ctx = Ctx::new(args)?;
    let rest = &args.positional[1..];
    let want = |n: usize, usage: &str| -> Res<()> {
        if rest.len() == n {
            Ok(())
        } else {
            Err(Fail::Usage(format!("usage: fio {usage}")))
        }
    };
    match cmd {
        "pair" => {
            want(0, "pair")?;
            cmd_pair(&ctx)
        }
        "info" => {
            want(0, "info")?;
            cmd_info(&ctx)
        }
        "heartbeat" => {
            want(0, "heartbeat")?;
            let client = ctx.client(false)?;
            client.heartbeat()?;
            ctx.out(&serde_json::json!({"ok": true}), "heartbeat ok");
            Ok(())
        }
        "upload" => {
            if rest.len() > 1 || (rest.is_empty() && args.value("resume").is_none()) {
                return Err(Fail::Usage("usage: fio upload FILE [--realtime] [--follow] [options]".into()));
            }
            cmd_upload(&ctx, rest.first().map(PathBuf::from))
        }
        "comment" => {
            want(2, "comment ASSET_ID TEXT [--timestamp FRAMES]")?;
            let client = ctx.client(false)?;
            let ts: Option<f64> = args.parsed("timestamp").map_err(Fail::Usage)?;
            let c = client.create_comment(&rest[0], &rest[1], ts)?;
            let v: serde_json::Value =
                serde_json::from_str(&c.json).unwrap_or_else(|_| serde_json::json!({"id": c.id}));
            ctx.out(&v, &format!("comment {}", c.id));
            Ok(())
        }
        "logout" => {
            want(0, "logout")?;
            cmd_logout(&ctx)
        }
        "config" => {
            want(0, "config")?;
            cmd_config(&ctx)
        }
        other => Err(Fail::Usage(format!("unknown command {other:?}"))),
    }
}

/// Settings resolved from options, environment and the config file.
struct Ctx<'a> {
    args: &'a Args,
    path: PathBuf,
    profile_name: String,
    profile: Profile,
    json: bool,
    progress: Mode,
}

impl<'a> Ctx<'a> {
    fn new(args: &'a Args) -> Res<Ctx<'a>> {
        let path = args.value("config").map(PathBuf::from).unwrap_or_else(store::default_path);
        let profile_name = args.value_or_env("profile", "FIO_PROFILE").unwrap_or_else(|| "default".into());
        let profile = store::load(&path).map_err(Fail::Msg)?.profiles.get(&profile_name).cloned().unwrap_or_default();
        let progress = match args.value("progress").unwrap_or("auto") {
            _ if args.flag("quiet") => Mode::None,
            "auto" if progress::is_tty(libc::STDERR_FILENO) => Mode::Bar,
            "auto" | "plain" => Mode::Plain,
            "bar" => Mode::Bar,
            "none" => Mode::None,
            m => return Err(Fail::Usage(format!("--progress: {m:?} is not auto, bar, plain or none"))),
        };
        Ok(Ctx { args, path, profile_name, profile, json: args.flag("json"), progress })
    }

    fn base_url(&self) -> String {
        self.args
            .value_or_env("base-url", "FIO_BASE_URL")
            .or_else(|| self.profile.base_url.clone())
            .unwrap_or_else(|| frameio_c2c::DEFAULT_BASE_URL.to_string())
            .trim_end_matches('/')
            .to_string()
    }

    fn allow_http(&self, base_url: &str) -> bool {
        self.args.flag("allow-http")
            || std::env::var("FIO_ALLOW_HTTP").map(|v| v == "1" || v == "true").unwrap_or(false)
            || (self.profile.allow_http && self.profile.base_url.as_deref() == Some(base_url))
    }

    /// A client for this profile. `pairing`: tokens are not needed, a client id may be generated.
    fn client(&self, pairing: bool) -> Res<Client> {
        if !pairing && self.profile.access_token.as_deref().unwrap_or("").is_empty() {
            return Err(Fail::Lib(Error::new(
                ErrorKind::PairingRequired,
                format!("no tokens in profile {:?} of {}", self.profile_name, self.path.display()),
            )));
        }
        let (cfg, _) = self.config(pairing)?;
        let client = Client::new(cfg)?;
        if !pairing {
            let p = &self.profile;
            match (&p.access_token, &p.refresh_token) {
                (Some(a), r) if !a.is_empty() => {
                    client.set_tokens(Tokens::new(a.clone(), r.clone().unwrap_or_default(), p.expires_at))
                }
                _ => {
                    return Err(Fail::Lib(Error::new(
                        ErrorKind::PairingRequired,
                        format!("no tokens in profile {:?} of {}", self.profile_name, self.path.display()),
                    )))
                }
            }
        }
        Ok(client)
    }

    /// The library config, and the profile settings to save after pairing.
    fn config(&self, pairing: bool) -> Res<(Config, Profile)> {
        let base_url = self.base_url();
        let p = &self.profile;
        if !pairing && p.access_token.is_some() {
            if let Some(saved) = &p.base_url {
                if saved.trim_end_matches('/') != base_url {
                    return Err(Fail::Msg(format!(
                        "the tokens of profile {:?} are for {saved}, not {base_url}: run `fio pair` for that server, or use --profile",
                        self.profile_name
                    )));
                }
            }
        }
        let client_id = self
            .args
            .value_or_env("client-id", "FIO_CLIENT_ID")
            .or_else(|| p.client_id.clone())
            .or_else(|| pairing.then(store::new_client_id))
            .ok_or_else(|| Fail::Usage("no client id: pair first, or give --client-id / FIO_CLIENT_ID".into()))?;
        let secret = self
            .args
            .value_or_env("client-secret", "FIO_CLIENT_SECRET")
            .or_else(|| p.client_secret.clone())
            .ok_or_else(|| {
            Fail::Usage(
                "no client secret: give --client-secret or FIO_CLIENT_SECRET (the device model's secret from Frame.io)"
                    .into(),
            )
        })?;
        let version = self
            .args
            .value_or_env("client-version", "FIO_CLIENT_VERSION")
            .or_else(|| p.client_version.clone())
            .unwrap_or_else(|| "1.0.0".into());
        let ca_file = self.args.value_or_env("ca-file", "FIO_CA_PEM").or_else(|| p.ca_file.clone());
        let allow_http = self.allow_http(&base_url);
        let mut cfg = Config::new(client_id.clone(), secret.clone())
            .with_base_url(base_url.clone())
            .with_client_version(version.clone())
            .with_allow_http(allow_http)
            .with_url_pairing(true);
        if let Some(ca) = &ca_file {
            let pem = std::fs::read(ca).map_err(|e| Fail::Msg(format!("cannot read CA file {ca}: {e}")))?;
            cfg = cfg.with_extra_ca_pem(pem);
        }
        if self.args.verbose > 0 {
            let level = match self.args.verbose {
                1 => LogLevel::Info,
                2 => LogLevel::Debug,
                _ => LogLevel::Trace,
            };
            cfg = cfg.with_log(level, |l, m| eprintln!("[fio {}] {m}", format!("{l:?}").to_lowercase()));
        }
        // every new token pair is saved before the library uses it
        let path = self.path.clone();
        let name = self.profile_name.clone();
        cfg = cfg.with_token_callback(move |t: &Tokens| {
            let r = store::update(&path, &name, |p| {
                p.access_token = Some(t.access_token.expose().to_string());
                p.refresh_token = Some(t.refresh_token.expose().to_string());
                p.expires_at = t.expires_at;
            });
            if let Err(e) = r {
                eprintln!("fio: warning: the new tokens could not be saved ({e}); the next run may need `fio pair`");
            }
        });
        let saved = Profile {
            base_url: Some(base_url),
            allow_http,
            client_id: Some(client_id),
            client_secret: Some(secret),
            client_version: Some(version),
            ca_file,
            ..Profile::default()
        };
        Ok((cfg, saved))
    }

    /// A result: JSON on stdout with --json, else the text.
    fn out(&self, v: &serde_json::Value, text: &str) {
        if self.json {
            println!("{v}");
        } else {
            println!("{text}");
        }
    }
}

fn cmd_pair(ctx: &Ctx) -> Res<()> {
    install_signal_handlers(); // Ctrl-C cancels the wait
    let (cfg, settings) = ctx.config(true)?;
    let client = Client::new(cfg)?;
    // the server and credentials first, with no tokens: the token callback fills them in
    store::update(&ctx.path, &ctx.profile_name, |p| *p = settings.clone()).map_err(Fail::Msg)?;
    let pairing = client.pairing_start()?;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "To connect this device to a Frame.io project, go to\n\n    {}\n\nand enter the code\n\n    {}\n",
        pairing.verification_uri, pairing.user_code
    );
    if let Some(url) = &pairing.verification_uri_complete {
        let _ = writeln!(err, "or open (or scan) {url}");
        let show_qr = ctx.args.flag("qr") || (!ctx.args.flag("no-qr") && progress::is_tty(libc::STDERR_FILENO));
        if show_qr {
            match qr(url) {
                Some(q) => {
                    let _ = writeln!(err, "\n{q}");
                }
                None => {
                    let _ = writeln!(err, "(the URL is too long for a QR code)");
                }
            }
        }
    }
    let _ = writeln!(err, "The code expires in {} s. Waiting... (Ctrl-C cancels)", pairing.expires_in.as_secs());
    drop(err);
    let done = std::sync::atomic::AtomicBool::new(false);
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                if signals() > 0 {
                    pairing.cancel();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let r = client.pairing_wait(&pairing);
        done.store(true, Ordering::SeqCst);
        r
    });
    let tokens = result?;
    // the callback saved them already; saving again makes sure, and reports a failure
    store::update(&ctx.path, &ctx.profile_name, |p| {
        p.access_token = Some(tokens.access_token.expose().to_string());
        p.refresh_token = Some(tokens.refresh_token.expose().to_string());
        p.expires_at = tokens.expires_at;
    })
    .map_err(Fail::Msg)?;
    let device = client.device_info().ok();
    let name = device.as_ref().and_then(|d| d.name.clone()).unwrap_or_default();
    let project = device.as_ref().and_then(|d| d.project_name.clone()).unwrap_or_default();
    let device_json: serde_json::Value =
        device.as_ref().and_then(|d| serde_json::from_str(&d.json).ok()).unwrap_or(serde_json::Value::Null);
    ctx.out(
        &serde_json::json!({"paired": true, "config": ctx.path, "profile": ctx.profile_name, "device": device_json}),
        &format!(
            "Paired{}{}. Tokens saved to {} (profile {}).",
            if name.is_empty() { String::new() } else { format!(" as {name:?}") },
            if project.is_empty() { String::new() } else { format!(" in project {project:?}") },
            ctx.path.display(),
            ctx.profile_name
        ),
    );
    Ok(())
}

/// The QR code of `url` as text (two modules per character), light on dark for terminals.
fn qr(url: &str) -> Option<String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(url.as_bytes()).ok()?;
    Some(code.render::<Dense1x2>().dark_color(Dense1x2::Light).light_color(Dense1x2::Dark).quiet_zone(true).build())
}

fn cmd_info(ctx: &Ctx) -> Res<()> {
    let client = ctx.client(false)?;
    let info = client.device_info()?;
    let v: serde_json::Value =
        serde_json::from_str(&info.json).map_err(|e| Fail::Msg(format!("device info is not JSON: {e}")))?;
    if ctx.json {
        println!("{v}");
    } else {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or(info.json));
    }
    Ok(())
}

fn cmd_logout(ctx: &Ctx) -> Res<()> {
    let client = ctx.client(false)?;
    match client.revoke() {
        Ok(()) => {}
        Err(e) if e.kind == ErrorKind::PairingRequired => {}
        Err(e) => return Err(e.into()),
    }
    store::update(&ctx.path, &ctx.profile_name, |p| {
        p.access_token = None;
        p.refresh_token = None;
        p.expires_at = 0;
    })
    .map_err(Fail::Msg)?;
    ctx.out(&serde_json::json!({"logged_out": true}), "tokens revoked and removed");
    Ok(())
}

fn cmd_config(ctx: &Ctx) -> Res<()> {
    let p = &ctx.profile;
    let v = serde_json::json!({
        "config": ctx.path,
        "profile": ctx.profile_name,
        "base_url": ctx.base_url(),
        "allow_http": ctx.allow_http(&ctx.base_url()),
        "client_id": ctx.args.value_or_env("client-id", "FIO_CLIENT_ID").or_else(|| p.client_id.clone()),
        "client_secret_set": ctx.args.value_or_env("client-secret", "FIO_CLIENT_SECRET").or_else(|| p.client_secret.clone()).is_some(),
        "client_version": p.client_version,
        "paired": p.access_token.is_some(),
        "access_token_expires_at": p.expires_at,
    });
    if ctx.json {
        println!("{v}");
    } else {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    }
    Ok(())
}

// ----- upload -----------------------------------------------------------------------------------

/// The client as the engine's transport, noting the asset id as soon as the asset exists.
struct Tap {
    client: Client,
    asset_id: Mutex<Option<String>>,
    announce: bool,
}

impl Tap {
    fn note(&self, id: &str) {
        *self.asset_id.lock().unwrap_or_else(|e| e.into_inner()) = Some(id.to_string());
        if self.announce {
            eprintln!("fio: created asset {id}");
        }
    }
}

impl Transport for Tap {
    fn create_realtime_asset(&self, spec: &AssetSpec) -> frameio_c2c::Result<String> {
        let id = Transport::create_realtime_asset(&self.client, spec)?;
        self.note(&id);
        Ok(id)
    }
    fn create_basic_asset(&self, spec: &AssetSpec, filesize: u64) -> frameio_c2c::Result<(String, Vec<String>)> {
        let r = Transport::create_basic_asset(&self.client, spec, filesize)?;
        self.note(&r.0);
        Ok(r)
    }
    fn register_parts(
        &self,
        asset_id: &str,
        parts: &[PartReq],
        name: Option<&str>,
        size: Option<u64>,
    ) -> frameio_c2c::Result<Vec<String>> {
        Transport::register_parts(&self.client, asset_id, parts, name, size)
    }
    fn put_part(
        &self,
        url: &str,
        body: Body<'_>,
        content_type: &str,
        hook: &dyn Fn(u64) -> bool,
    ) -> frameio_c2c::Result<()> {
        Transport::put_part(&self.client, url, body, content_type, hook)
    }
}

fn mime_for(path: &Path) -> &'static str {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "mp4" | "m4v" => "video/mp4",
        "mov" => "video/quicktime",
        "mxf" => "application/mxf",
        "mkv" => "video/x-matroska",
        "ts" | "mts" | "m2ts" => "video/mp2t",
        "avi" => "video/x-msvideo",
        "wav" => "audio/wav",
        "mp3" => "audio/mpeg",
        "m4a" | "aac" => "audio/mp4",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "tif" | "tiff" => "image/tiff",
        "dng" => "image/x-adobe-dng",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

fn cmd_upload(ctx: &Ctx, file: Option<PathBuf>) -> Res<()> {
    install_signal_handlers(); // Ctrl-C ends a followed recording, then cancels
    let args = ctx.args;
    let follow = args.flag("follow");
    let resume = args.value("resume").map(PathBuf::from);
    let realtime = args.flag("realtime") || follow || resume.is_some();
    let idle = match args.parsed::<f64>("idle").map_err(Fail::Usage)? {
        Some(s) if s.is_finite() && s >= 0.0 => Duration::from_secs_f64(s),
        Some(_) => return Err(Fail::Usage("--idle: seconds >= 0".into())),
        None => Duration::from_secs(30),
    };
    if args.value("state").is_some() && !realtime {
        return Err(Fail::Usage("--state needs --realtime or --follow (basic uploads cannot resume)".into()));
    }
    let client = ctx.client(false)?;
    let tap = Arc::new(Tap { client, asset_id: Mutex::new(None), announce: !ctx.json && ctx.progress != Mode::None });

    let mut opts = UploadOptions::default();
    if let Some(n) = args.parsed::<usize>("concurrency").map_err(Fail::Usage)? {
        if n == 0 || n > 64 {
            return Err(Fail::Usage("--concurrency: 1..64".into()));
        }
        opts.concurrency = n;
    }
    if let Some(r) = args.value("limit") {
        opts.bandwidth_limit = args::parse_rate(r).map_err(Fail::Usage)?;
    }
    opts.state_file = args.value("state").map(PathBuf::from);
    opts.progress_interval = Duration::from_millis(if ctx.progress == Mode::Bar { 200 } else { 500 });

    // what and how big
    let (path, size_now) = match &file {
        Some(f) => {
            let meta = std::fs::metadata(f);
            match meta {
                Ok(m) if m.is_file() => (Some(f.clone()), m.len()),
                Ok(_) => return Err(Fail::Msg(format!("{} is not a regular file", f.display()))),
                Err(e) if follow && e.kind() == std::io::ErrorKind::NotFound => {
                    wait_for_file(f, idle)?;
                    (Some(f.clone()), std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
                }
                Err(e) => return Err(Fail::Msg(format!("cannot read {}: {e}", f.display()))),
            }
        }
        // --resume without FILE: the file named in the state (for --follow)
        None => match &resume {
            Some(state) => match upload::state::SavedUpload::load(state) {
                Ok(saved) => (saved.path.filter(|_| follow), 0),
                Err(e) => return Err(Fail::Msg(format!("cannot read the state file {}: {e}", state.display()))),
            },
            None => (None, 0),
        },
    };
    let display =
        Arc::new(Mutex::new(Display::new(ctx.progress, (!follow && file.is_some()).then_some(size_now), follow)));
    {
        let d = display.clone();
        let stop_on_signal = !follow; // --follow: the first Ctrl-C means "recording ended", handled below
        opts.progress = Some(Box::new(move |p: &Progress| {
            d.lock().unwrap_or_else(|e| e.into_inner()).update(p);
            if stop_on_signal && signals() > 0 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }));
    }

    let started = Instant::now();
    let result: Res<(Progress, String, String)> = if !realtime {
        let path = path.clone().expect("basic upload has a file");
        let spec = spec_for(args, &path, false)?;
        let name = spec.name.clone().unwrap_or_default();
        let r = upload::upload_file(tap.clone(), &path, spec, false, opts);
        r.map(|p| (p, tap.asset_id.lock().unwrap().clone().unwrap_or_default(), name)).map_err(Fail::from)
    } else {
        let up = match &resume {
            Some(state) => Upload::resume(tap.clone(), state, opts)?,
            None => {
                let path = path.clone().expect("upload has a file");
                let spec = spec_for(args, &path, follow)?;
                Upload::start(tap.clone(), spec, Source::File(path), opts)?
            }
        };
        let name = file
            .as_ref()
            .and_then(|f| f.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .or_else(|| args.value("name").map(str::to_string))
            .unwrap_or_default();
        drive(&up, path.as_deref(), follow, idle).map(|p| (p, up.asset_id().to_string(), name))
    };
    display.lock().unwrap_or_else(|e| e.into_inner()).finish();
    let (p, asset_id, name) = result?;
    let secs = started.elapsed().as_secs_f64();
    let rate = if secs > 0.0 { p.bytes_done as f64 / secs } else { 0.0 };
    ctx.out(
        &serde_json::json!({
            "asset_id": asset_id, "name": name, "bytes": p.bytes_done, "parts": p.parts_done,
            "retries": p.retries, "reregistrations": p.reregistrations, "realtime": realtime,
            "elapsed_secs": (secs * 1000.0).round() / 1000.0,
        }),
        &format!(
            "uploaded {name} as asset {asset_id}: {} in {} part{}, {:.1} s ({}/s){}",
            progress::human(p.bytes_done as f64),
            p.parts_done,
            if p.parts_done == 1 { "" } else { "s" },
            secs,
            progress::human(rate),
            if p.retries > 0 { format!(", {} retries", p.retries) } else { String::new() }
        ),
    );
    Ok(())
}

fn spec_for(args: &Args, path: &Path, follow: bool) -> Res<AssetSpec> {
    let name = args
        .value("name")
        .map(str::to_string)
        .or_else(|| path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .ok_or_else(|| Fail::Usage("no asset name (--name)".into()))?;
    let filetype = args.value("type").map(str::to_string).unwrap_or_else(|| mime_for(Path::new(&name)).to_string());
    let offset = match args.parsed::<i64>("offset").map_err(Fail::Usage)? {
        Some(o) => Some(o),
        None if follow => Some(0),
        // a finished file: it was created about when it was last written
        None => std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .map(|d| d.as_secs() as i64)
            .or(Some(0)),
    };
    Ok(AssetSpec {
        name: Some(name),
        extension: None,
        filetype,
        channel: args.parsed("channel").map_err(Fail::Usage)?,
        offset,
        final_name: None,
    })
}

/// --follow on a file that does not exist yet: wait for the recorder to create it.
fn wait_for_file(path: &Path, idle: Duration) -> Res<()> {
    eprintln!("fio: waiting for {} to appear...", path.display());
    let t = Instant::now();
    loop {
        if path.exists() {
            return Ok(());
        }
        if signals() > 0 {
            return Err(Fail::Interrupted);
        }
        if !idle.is_zero() && t.elapsed() >= idle {
            return Err(Fail::Msg(format!("{} did not appear within {:?}", path.display(), idle)));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Feeds a real-time upload: with `follow`, reports growth until the file stays the same size for
/// `idle` (or the first Ctrl-C), then finishes; a second Ctrl-C cancels (the state file stays).
/// The shortest idle limit before a followed file first grows.
const FIRST_GROWTH_IDLE: Duration = Duration::from_secs(60);

fn drive(up: &Upload, path: Option<&Path>, follow: bool, idle: Duration) -> Res<Progress> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => return finish(up),
    };
    let size = |p: &Path| {
        std::fs::metadata(p).map(|m| m.len()).map_err(|e| Fail::Msg(format!("cannot read {}: {e}", p.display())))
    };
    let mut last = size(&path)?;
    up.file_grew(last)?;
    if follow {
        let mut grew_at = Instant::now();
        let mut by_ctrl_c = false;
        // Until the file first grows, a writer may still be buffering its first fragment or GOP (ffmpeg's
        // default x264 GOP is 250 frames, 8 s at 30 fps): the idle limit is then at least a minute.
        let mut seen_growth = false;
        loop {
            if signals() > 0 {
                eprintln!("\nfio: recording ended (Ctrl-C): uploading the rest; Ctrl-C again cancels");
                by_ctrl_c = true;
                break;
            }
            if let Some(e) = up.failure() {
                return Err(e.into());
            }
            let now = size(&path)?;
            if now < last {
                up.cancel();
                return Err(Fail::Msg(format!(
                    "{} shrank from {last} to {now} bytes: a followed file must grow append-only",
                    path.display()
                )));
            }
            if now > last {
                up.file_grew(now)?;
                last = now;
                grew_at = Instant::now();
                seen_growth = true;
            } else if !idle.is_zero()
                && grew_at.elapsed() >= if seen_growth { idle } else { idle.max(FIRST_GROWTH_IDLE) }
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let p = finish(up)?;
        // A writer quiet for longer than --idle (an encoder buffering a whole fragment or GOP) made us
        // finish early: the asset is complete but shorter than the file. Say so instead of "done".
        let now = size(&path)?;
        if now > p.bytes_recorded && by_ctrl_c {
            eprintln!(
                "fio: warning: {} grew to {now} bytes after the upload ended at {} (ended by Ctrl-C)",
                path.display(),
                p.bytes_recorded
            );
        } else if now > p.bytes_recorded {
            return Err(Fail::Msg(format!(
                "{} grew to {now} bytes after the upload ended at {} (the asset has only those): it did not grow \
                 for --idle {:.1} s; use an --idle longer than the writer's pauses (its fragment or keyframe \
                 interval), or end with Ctrl-C",
                path.display(),
                p.bytes_recorded,
                idle.as_secs_f64()
            )));
        }
        return Ok(p);
    }
    finish(up)
}

/// `finish`, with a watcher that cancels on a (further) Ctrl-C.
fn finish(up: &Upload) -> Res<Progress> {
    let seen = signals();
    let done = std::sync::atomic::AtomicBool::new(false);
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                if signals() > seen {
                    up.cancel();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let r = up.finish();
        done.store(true, Ordering::SeqCst);
        r
    });
    r.map_err(Fail::from)
}
