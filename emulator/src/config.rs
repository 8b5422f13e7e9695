//! Command line parsing (hand-written: a handful of flags does not justify clap's build time).

use std::path::PathBuf;

pub const DEFAULT_CLIENT_SECRET: &str = "fio-emulator-secret";
pub const DEFAULT_S3_ACCESS_KEY: &str = "FIOEMULATORACCESSKEY";
pub const DEFAULT_S3_SECRET_KEY: &str = "fio-emulator-s3-secret-key";
pub const MIB: u64 = 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignedHeaders {
    /// `X-Amz-SignedHeaders=host`
    HostOnly,
    /// `X-Amz-SignedHeaders=content-type;host;x-amz-acl`
    HostContentTypeAcl,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub s3_port: u16,
    pub tls: bool,
    pub auto_approve: bool,
    pub client_secret: String,
    pub data_dir: Option<PathBuf>,
    pub url_expiry: u64,
    pub signed_headers: SignedHeaders,
    pub access_token_ttl: f64,
    pub refresh_token_ttl: f64,
    pub code_ttl: f64,
    pub poll_interval: f64,
    pub rate_limit: u32,
    pub rate_window_ms: u64,
    pub retry_after: bool,
    pub part_size: u64,
    pub stall_max_secs: f64,
    pub s3_idle_timeout: f64,
    pub s3_access_key: String,
    pub s3_secret_key: String,
    pub region: String,
    pub device_name: String,
    pub project_name: String,
    pub quiet: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "127.0.0.1".into(),
            port: 0,
            s3_port: 0,
            tls: false,
            auto_approve: false,
            client_secret: DEFAULT_CLIENT_SECRET.into(),
            data_dir: None,
            url_expiry: 86_400,
            signed_headers: SignedHeaders::HostOnly,
            access_token_ttl: 28_800.0,
            refresh_token_ttl: 14.0 * 86_400.0,
            code_ttl: 120.0,
            poll_interval: 5.0,
            rate_limit: 100,
            rate_window_ms: 1000,
            retry_after: true,
            part_size: 25 * MIB,
            stall_max_secs: 300.0,
            s3_idle_timeout: 20.0,
            s3_access_key: DEFAULT_S3_ACCESS_KEY.into(),
            s3_secret_key: DEFAULT_S3_SECRET_KEY.into(),
            region: "us-east-1".into(),
            device_name: "Emulated C2C Device".into(),
            project_name: "Emulator Project".into(),
            quiet: false,
        }
    }
}

pub const USAGE: &str = "\
fio-emulator: a strict local Frame.io C2C emulator with a real S3 data plane

Usage: fio-emulator [OPTIONS]

  --host ADDR               bind address (default 127.0.0.1)
  --port P                  API port, 0 = pick a free one (default 0)
  --s3-port P               S3 port, 0 = pick a free one (default 0)
  --tls                     serve HTTPS on both ports with a generated CA (path in the ready line)
  --auto-approve            approve every pairing code at once
  --client-secret S         the one accepted client_secret (default fio-emulator-secret)
  --data-dir D              where S3 objects live (default: a new temp dir)
  --url-expiry SECS         presigned URL lifetime (default 86400)
  --signed-headers MODE     host (default) | host;content-type;x-amz-acl (alias: full)
  --access-token-ttl SECS   access token lifetime (default 28800)
  --refresh-token-ttl SECS  refresh token lifetime (default 1209600)
  --code-ttl SECS           device code lifetime, expires_in (default 120)
  --poll-interval SECS      token poll interval (default 5; fractions allowed)
  --rate-limit N            requests per window per token (default 100; 0 = unlimited)
  --rate-window MS          rate limit window in ms (default 1000)
  --no-retry-after          send 429 without Retry-After
  --part-size BYTES         basic upload part size policy (default 26214400, min 5242880)
  --stall-max SECS          how long a stall fault holds a connection (default 300)
  --s3-idle-timeout SECS    a part PUT whose body goes quiet this long gets 400 RequestTimeout (default 20)
  --s3-access-key K         S3 access key used to sign URLs
  --s3-secret-key K         S3 secret key used to sign URLs
  --region R                S3 region in signatures (default us-east-1)
  --device-name NAME        device name in pairing and /v2/devices/me
  --quiet                   no per-request log lines on stderr
  -h, --help                this text
";

pub fn parse(args: &[String]) -> Result<Config, String> {
    let mut c = Config::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg, None),
        };
        let mut value = || -> Result<String, String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            i += 1;
            args.get(i).cloned().ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag {
            "-h" | "--help" => return Err(String::new()),
            "--host" => c.host = value()?,
            "--port" => c.port = num(flag, &value()?)?,
            "--s3-port" => c.s3_port = num(flag, &value()?)?,
            "--tls" => c.tls = true,
            "--auto-approve" => c.auto_approve = true,
            "--client-secret" => {
                c.client_secret = value()?;
                if c.client_secret.is_empty() {
                    return Err("--client-secret must not be empty".into());
                }
            }
            "--data-dir" => c.data_dir = Some(PathBuf::from(value()?)),
            "--url-expiry" => {
                c.url_expiry = num(flag, &value()?)?;
                if c.url_expiry == 0 || c.url_expiry > 604_800 {
                    return Err("--url-expiry must be 1..=604800 (SigV4 limit)".into());
                }
            }
            "--signed-headers" => {
                c.signed_headers = match value()?.to_ascii_lowercase().as_str() {
                    "host" => SignedHeaders::HostOnly,
                    "host;content-type;x-amz-acl" | "content-type;host;x-amz-acl" | "full" => {
                        SignedHeaders::HostContentTypeAcl
                    }
                    other => return Err(format!("unknown --signed-headers mode {other:?}")),
                }
            }
            "--access-token-ttl" => c.access_token_ttl = secs(flag, &value()?)?,
            "--refresh-token-ttl" => c.refresh_token_ttl = secs(flag, &value()?)?,
            "--code-ttl" => c.code_ttl = secs(flag, &value()?)?,
            "--poll-interval" => c.poll_interval = secs(flag, &value()?)?,
            "--rate-limit" => c.rate_limit = num(flag, &value()?)?,
            "--rate-window" => {
                c.rate_window_ms = num(flag, &value()?)?;
                if c.rate_window_ms == 0 {
                    return Err("--rate-window must be > 0".into());
                }
            }
            "--no-retry-after" => c.retry_after = false,
            "--part-size" => {
                c.part_size = num(flag, &value()?)?;
                if c.part_size < 5 * MIB || c.part_size > 5 * 1024 * MIB {
                    return Err("--part-size must be between 5 MiB and 5 GiB".into());
                }
            }
            "--stall-max" => c.stall_max_secs = secs(flag, &value()?)?,
            "--s3-idle-timeout" => c.s3_idle_timeout = secs(flag, &value()?)?,
            "--s3-access-key" => c.s3_access_key = value()?,
            "--s3-secret-key" => c.s3_secret_key = value()?,
            "--region" => c.region = value()?,
            "--device-name" => c.device_name = value()?,
            "--quiet" => c.quiet = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
        i += 1;
    }
    Ok(c)
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{flag}: bad number {v:?}"))
}

fn secs(flag: &str, v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        // The upper bound keeps Duration/Instant arithmetic far from overflow (about 31 years).
        Ok(x) if x.is_finite() && x > 0.0 && x <= 1e9 => Ok(x),
        _ => Err(format!("{flag}: expected seconds in (0, 1e9], got {v:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_parse_and_bad_values_are_refused() {
        let c = parse(&args(&[
            "--port=0",
            "--signed-headers",
            "full",
            "--poll-interval",
            "0.5",
            "--no-retry-after",
            "--client-secret",
            "s3cr3t",
        ]))
        .unwrap();
        assert_eq!(c.signed_headers, SignedHeaders::HostContentTypeAcl);
        assert_eq!(c.poll_interval, 0.5);
        assert!(!c.retry_after);
        assert_eq!(c.client_secret, "s3cr3t");
        assert_eq!(parse(&[]).unwrap().client_secret, DEFAULT_CLIENT_SECRET);
        for bad in [
            &["--port", "70000"][..],
            &["--url-expiry", "0"],
            &["--url-expiry", "604801"],
            &["--code-ttl", "-1"],
            &["--code-ttl", "nan"],
            &["--access-token-ttl", "1e30"],
            &["--signed-headers", "all"],
            &["--part-size", "1000"],
            &["--rate-window", "0"],
            &["--client-secret", ""],
            &["--port"],
            &["--what"],
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }
}
