//! fio-emulator: a strict local stand-in for the Frame.io C2C device API, with a real S3
//! (s3s + s3s-fs) data plane. See emulator/README.md for the CLI and the control API.

// Handlers return early with a ready HTTP response as their error value; boxing it buys nothing.
#![allow(clippy::result_large_err)]

/// Like eprintln!, but a closed stderr never panics the emulator.
macro_rules! elog {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod api;
mod assemble;
mod config;
mod control;
mod form;
mod s3;
mod server;
mod state;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use server::Port;
use state::App;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match config::parse(&args) {
        Ok(c) => c,
        Err(e) if e.is_empty() => {
            print!("{}", config::USAGE);
            return;
        }
        Err(e) => {
            elog!("fio-emulator: {e}\n\n{}", config::USAGE);
            std::process::exit(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            elog!("fio-emulator: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(cfg)) {
        elog!("fio-emulator: {e}");
        std::process::exit(1);
    }
}

async fn run(cfg: config::Config) -> Result<(), String> {
    let data_dir = match &cfg.data_dir {
        Some(d) => d.clone(),
        None => {
            std::env::temp_dir().join(format!("fio-emulator-{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()))
        }
    };
    std::fs::create_dir_all(&data_dir).map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let data_dir = data_dir.canonicalize().map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let bucket_name = "c2c".to_string();
    std::fs::create_dir_all(data_dir.join(&bucket_name))
        .map_err(|e| format!("cannot create the bucket folder: {e}"))?;

    let api_l = tokio::net::TcpListener::bind((cfg.host.as_str(), cfg.port))
        .await
        .map_err(|e| format!("cannot bind the API port {}:{}: {e}", cfg.host, cfg.port))?;
    let s3_l = tokio::net::TcpListener::bind((cfg.host.as_str(), cfg.s3_port))
        .await
        .map_err(|e| format!("cannot bind the S3 port {}:{}: {e}", cfg.host, cfg.s3_port))?;
    let api_port = api_l.local_addr().map_err(|e| e.to_string())?.port();
    let s3_port = s3_l.local_addr().map_err(|e| e.to_string())?.port();

    let scheme = if cfg.tls { "https" } else { "http" };
    // URLs use the bind address; an unspecified bind is reached over loopback.
    let host = match cfg.host.as_str() {
        "0.0.0.0" => "127.0.0.1".to_string(),
        "::" => "[::1]".to_string(),
        h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
        h => h.to_string(),
    };
    let api_base = format!("{scheme}://{host}:{api_port}");
    let s3_base = format!("{scheme}://{host}:{s3_port}");

    let (tls, ca_path) = if cfg.tls {
        let (acceptor, ca) = make_tls(&data_dir, &cfg.host)?;
        (Some(acceptor), Some(ca))
    } else {
        (None, None)
    };

    let fs = Arc::new(s3s_fs::FileSystem::new(&data_dir).map_err(|e| format!("s3s-fs: {e:?}"))?);
    let endpoint: url::Url = s3_base.parse().map_err(|e| format!("bad S3 URL: {e}"))?;
    let bucket = rusty_s3::Bucket::new(endpoint, rusty_s3::UrlStyle::Path, bucket_name.clone(), cfg.region.clone())
        .map_err(|e| format!("bucket: {e}"))?;
    let app =
        Arc::new(App::new(cfg.clone(), api_base.clone(), s3_base.clone(), data_dir.clone(), fs, bucket, bucket_name));
    let svc = {
        let mut b = s3s::service::S3ServiceBuilder::new(s3::DataPlane { app: app.clone() });
        b.set_auth(s3s::auth::SimpleAuth::from_single(cfg.s3_access_key.clone(), cfg.s3_secret_key.clone()));
        b.build()
    };
    let _ = app.s3svc.set(svc);

    tokio::spawn(server::serve(api_l, tls.clone(), app.clone(), Port::Api));
    tokio::spawn(server::serve(s3_l, tls, app.clone(), Port::S3));

    // Key order as documented: api, s3, ca_cert.
    let ca_json = serde_json::to_string(&ca_path.map(|p| p.display().to_string())).unwrap_or_else(|_| "null".into());
    let ready = format!(
        "{{\"api\": {}, \"s3\": {}, \"ca_cert\": {ca_json}}}",
        serde_json::Value::from(api_base.clone()),
        serde_json::Value::from(s3_base.clone())
    );
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{ready}");
        let _ = out.flush();
    }
    elog!(
        "fio-emulator: ready (api {api_base}, s3 {s3_base}, data {}, client secret {})",
        data_dir.display(),
        if cfg.client_secret == config::DEFAULT_CLIENT_SECRET { "default" } else { "custom" }
    );

    // Run until SIGINT or SIGTERM; a temp data dir we made ourselves is removed then.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("signal handler: {e}"))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    if cfg.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    Ok(())
}

/// Generates a CA and a server certificate for 127.0.0.1/localhost (and the bind host).
fn make_tls(data_dir: &Path, bind_host: &str) -> Result<(tokio_rustls::TlsAcceptor, PathBuf), String> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let e = |e: rcgen::Error| format!("certificate generation: {e}");
    let ca_key = KeyPair::generate().map_err(e)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "fio-emulator test CA");
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(e)?;

    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    if !names.iter().any(|n| n == bind_host) && bind_host != "0.0.0.0" && bind_host != "::" {
        names.push(bind_host.to_string());
    }
    let key = KeyPair::generate().map_err(e)?;
    let mut params = CertificateParams::new(names).map_err(e)?;
    params.distinguished_name.push(DnType::CommonName, "fio-emulator");
    let cert = params.signed_by(&key, &ca).map_err(e)?;

    let dir = data_dir.join(".fio-tls");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).map_err(|e| format!("{}: {e}", ca_path.display()))?;
    std::fs::write(dir.join("server.pem"), cert.pem()).map_err(|e| format!("server.pem: {e}"))?;

    let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| format!("key: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut sc = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone(), ca.der().clone()], key_der)
        .map_err(|e| format!("tls: {e}"))?;
    sc.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((tokio_rustls::TlsAcceptor::from(Arc::new(sc)), ca_path))
}
