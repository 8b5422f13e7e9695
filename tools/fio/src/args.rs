//! Command-line parsing (no dependencies): options may come before or after the command;
//! `--opt value` and `--opt=value` both work; `--` ends the options.

use std::collections::HashMap;

pub const USAGE: &str = "\
fio - Frame.io Camera-to-Cloud tool for device engineers (over the frameio-c2c library)

Usage: fio [OPTIONS] <COMMAND> [ARGS]

Commands:
  pair                    pair this tool with a Frame.io project (device code + QR code), save the tokens
  info                    show the device record (GET /v2/devices/me) as JSON
  heartbeat               send one heartbeat
  upload FILE             upload a file (basic asset; --realtime: real-time asset, parts in parallel)
      --realtime              real-time asset (parts planned by the library, registered as they go)
      --follow                FILE is still being recorded: upload while it grows (like tail -f; implies
                              --realtime). Ends after --idle seconds without growth, or on Ctrl-C
                              (a second Ctrl-C cancels)
      --idle SECS             --follow: finish after SECS without growth (default 30; 0 = only Ctrl-C)
      --name NAME             asset name (default: the file's name)
      --type MIME             MIME type (default: from the extension)
      --channel N             device channel
      --offset SECS           seconds since the media was created (default: from the file's mtime; 0 with --follow)
      --concurrency N         parallel part uploads (default 3)
      --limit RATE            cap the send rate, bytes/s (suffix k, M, G)
      --state FILE            --follow/--realtime: keep resume state in FILE
      --resume STATE          continue an interrupted --follow/--realtime upload from its state file
  comment ASSET_ID TEXT   add a comment to an asset
      --timestamp FRAMES      anchor the comment at a frame (default: the whole asset)
  logout                  revoke the tokens at Frame.io and remove them from the config file
  config                  show the config file's path and the profile (secrets hidden)

Options (also from the environment):
  --base-url URL          API base URL [FIO_BASE_URL] (default https://api.frame.io, or the profile's)
  --allow-http            allow a plain http:// base URL (the local emulator only) [FIO_ALLOW_HTTP=1]
  --client-id ID          this unit's client id [FIO_CLIENT_ID] (default: generated once, saved)
  --client-secret SECRET  the device model's client secret [FIO_CLIENT_SECRET]
  --client-version V      firmware version sent as x-client-version, semver [FIO_CLIENT_VERSION] (1.0.0)
  --ca-file PEM           trust this CA besides the built-in roots [FIO_CA_PEM]
  --config PATH           config file [FIO_CONFIG] (default $XDG_CONFIG_HOME/fio/config.json, mode 0600)
  --profile NAME          profile in the config file [FIO_PROFILE] (default \"default\")
  --progress MODE         auto, bar, plain or none (auto: bar on a terminal, plain otherwise)
  --qr / --no-qr          pair: draw the QR code of the pairing URL (default: on a terminal)
  --json                  print results as JSON on stdout
  -q, --quiet             no progress output
  -v, --verbose           library log on stderr (-vv debug, -vvv trace)
  -h, --help              this help
  -V, --version           versions of fio and the library

Exit status: 0 ok, 1 failed, 2 usage, 3 not paired (run `fio pair`), 4 channel paused (409),
5 cancelled, 130 interrupted.
";

/// Options that take a value.
const VALUED: &[&str] = &[
    "base-url",
    "client-id",
    "client-secret",
    "client-version",
    "ca-file",
    "config",
    "profile",
    "progress",
    "idle",
    "name",
    "type",
    "channel",
    "offset",
    "concurrency",
    "limit",
    "state",
    "resume",
    "timestamp",
];
/// Flags.
const FLAGS: &[&str] = &["allow-http", "json", "quiet", "help", "version", "realtime", "follow", "qr", "no-qr"];

#[derive(Debug, Default)]
pub struct Args {
    pub positional: Vec<String>,
    pub values: HashMap<String, String>,
    pub flags: Vec<String>,
    pub verbose: u8,
}

impl Args {
    pub fn parse(argv: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut a = Args::default();
        let mut it = argv.into_iter();
        let mut only_positional = false;
        while let Some(arg) = it.next() {
            if only_positional || arg == "-" || !arg.starts_with('-') {
                a.positional.push(arg);
                continue;
            }
            if arg == "--" {
                only_positional = true;
                continue;
            }
            if !arg.starts_with("--") {
                for c in arg[1..].chars() {
                    match c {
                        'v' => a.verbose = a.verbose.saturating_add(1),
                        'q' => a.flags.push("quiet".into()),
                        'h' => a.flags.push("help".into()),
                        'V' => a.flags.push("version".into()),
                        _ => return Err(format!("unknown option -{c}")),
                    }
                }
                continue;
            }
            let body = &arg[2..];
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            if name == "verbose" {
                a.verbose = a.verbose.saturating_add(1);
            } else if VALUED.contains(&name) {
                let v = match inline {
                    Some(v) => v,
                    None => it.next().ok_or_else(|| format!("--{name} needs a value"))?,
                };
                a.values.insert(name.to_string(), v);
            } else if FLAGS.contains(&name) {
                if inline.is_some() {
                    return Err(format!("--{name} takes no value"));
                }
                a.flags.push(name.to_string());
            } else {
                return Err(format!("unknown option --{name} (see fio --help)"));
            }
        }
        Ok(a)
    }

    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// An option, else an environment variable (empty counts as unset).
    pub fn value_or_env(&self, name: &str, env: &str) -> Option<String> {
        self.value(name).map(str::to_string).or_else(|| std::env::var(env).ok().filter(|v| !v.is_empty()))
    }

    pub fn parsed<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        match self.value(name) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| format!("--{name}: cannot parse {v:?}")),
        }
    }
}

/// "10M" -> 10_000_000; plain numbers are bytes.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('k') | Some('K') => (&s[..s.len() - 1], 1_000u64),
        Some('m') | Some('M') => (&s[..s.len() - 1], 1_000_000),
        Some('g') | Some('G') => (&s[..s.len() - 1], 1_000_000_000),
        _ => (s, 1),
    };
    let v: f64 = num.parse().map_err(|_| format!("cannot parse rate {s:?}"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("cannot parse rate {s:?}"));
    }
    Ok((v * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<Args, String> {
        Args::parse(v.iter().map(|s| s.to_string()))
    }

    #[test]
    fn options_anywhere() {
        let a = p(&["--base-url", "http://x", "upload", "f.mov", "--follow", "--idle=2", "-vv", "--json"]).unwrap();
        assert_eq!(a.positional, ["upload", "f.mov"]);
        assert_eq!(a.value("base-url"), Some("http://x"));
        assert_eq!(a.value("idle"), Some("2"));
        assert!(a.flag("follow") && a.flag("json"));
        assert_eq!(a.verbose, 2);
        let a = p(&["comment", "--", "id", "--not-an-option"]).unwrap();
        assert_eq!(a.positional, ["comment", "id", "--not-an-option"]);
    }

    #[test]
    fn errors() {
        assert!(p(&["--nope"]).unwrap_err().contains("unknown option --nope"));
        assert!(p(&["--name"]).unwrap_err().contains("needs a value"));
        assert!(p(&["--json=1"]).is_err());
        assert!(p(&["-x"]).is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("10M").unwrap(), 10_000_000);
        assert_eq!(parse_rate("1.5k").unwrap(), 1500);
        assert_eq!(parse_rate("42").unwrap(), 42);
        assert!(parse_rate("x").is_err());
    }
}
