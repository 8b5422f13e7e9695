//! The progress display on stderr: a redrawn bar on a terminal, a line every few seconds otherwise.

use std::io::Write;
use std::time::{Duration, Instant};

use frameio_c2c::upload::Progress;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One line redrawn in place (`\r`), for terminals.
    Bar,
    /// A plain line every `PLAIN_EVERY`, for logs and pipes.
    Plain,
    None,
}

const PLAIN_EVERY: Duration = Duration::from_secs(2);

pub struct Display {
    mode: Mode,
    /// The file's size when it is known and final (complete-file uploads).
    total: Option<u64>,
    following: bool,
    last_plain: Option<Instant>,
    drawn: bool,
}

pub fn human(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} {}", UNITS[i])
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

impl Display {
    pub fn new(mode: Mode, total: Option<u64>, following: bool) -> Display {
        Display { mode, total, following, last_plain: None, drawn: false }
    }

    /// The status text for one snapshot (also used by tests).
    pub fn line(&self, p: &Progress, width: usize) -> String {
        let total = if self.following { p.bytes_recorded } else { self.total.unwrap_or(p.bytes_recorded) };
        let rate = format!("{}/s", human(p.throughput_bps));
        let parts = format!("parts {}/{}", p.parts_done, p.parts_total);
        let extra = if p.retries > 0 { format!(" retries {}", p.retries) } else { String::new() };
        if self.following && !p.complete {
            return format!(
                "following: {} recorded, {} sent, {} uploaded  {rate}  {parts}{extra}",
                human(p.bytes_recorded as f64),
                human(p.bytes_sent as f64),
                human(p.bytes_done as f64)
            );
        }
        let frac = if total == 0 {
            if p.complete {
                1.0
            } else {
                0.0
            }
        } else {
            (p.bytes_sent as f64 / total as f64).min(1.0)
        };
        let eta = if p.complete {
            format!("done in {}", duration(p.elapsed_secs))
        } else if p.throughput_bps > 1.0 && total > p.bytes_sent {
            format!("ETA {}", duration((total - p.bytes_sent) as f64 / p.throughput_bps))
        } else {
            String::new()
        };
        let text = format!(
            "{:>3}% {} / {}  {rate}  {parts}{extra}  {eta}",
            (frac * 100.0).floor() as u32,
            human(p.bytes_sent as f64),
            human(total as f64)
        );
        let bar_w = width.saturating_sub(text.chars().count() + 4).clamp(0, 40);
        if bar_w < 10 {
            return text;
        }
        let filled = ((frac * bar_w as f64).round() as usize).min(bar_w);
        format!("[{}{}] {text}", "#".repeat(filled), "-".repeat(bar_w - filled))
    }

    pub fn update(&mut self, p: &Progress) {
        match self.mode {
            Mode::None => {}
            Mode::Bar => {
                let width = terminal_width().unwrap_or(100);
                let mut line = self.line(p, width);
                if line.chars().count() >= width {
                    line = line.chars().take(width.saturating_sub(1)).collect();
                }
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[2K{line}");
                let _ = err.flush();
                self.drawn = true;
            }
            Mode::Plain => {
                let due = self.last_plain.map(|t| t.elapsed() >= PLAIN_EVERY).unwrap_or(true);
                if due || p.complete {
                    self.last_plain = Some(Instant::now());
                    eprintln!("fio: {}", self.line(p, 0));
                }
            }
        }
    }

    /// Ends the bar's line so later output starts on a new one.
    pub fn finish(&mut self) {
        if self.drawn {
            eprintln!();
            self.drawn = false;
        }
    }
}

pub fn is_tty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

fn terminal_width() -> Option<usize> {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize into the struct we own.
    let r = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_col > 0).then_some(ws.ws_col as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human(0.0), "0 B");
        assert_eq!(human(1536.0), "1.5 KiB");
        assert_eq!(human(5.0 * 1024.0 * 1024.0), "5.0 MiB");
    }

    #[test]
    fn bar_line() {
        let d = Display::new(Mode::Bar, Some(100 << 20), false);
        let p = Progress {
            bytes_sent: 50 << 20,
            bytes_done: 40 << 20,
            parts_done: 2,
            parts_total: 5,
            throughput_bps: 10.0 * 1048576.0,
            ..Default::default()
        };
        let l = d.line(&p, 120);
        assert!(l.starts_with('['), "{l}");
        assert!(l.contains(" 50% 50.0 MiB / 100.0 MiB"), "{l}");
        assert!(l.contains("parts 2/5") && l.contains("ETA 5s"), "{l}");
        let done = Progress { complete: true, bytes_sent: 100 << 20, elapsed_secs: 61.0, ..p };
        assert!(d.line(&done, 120).contains("100%") && d.line(&done, 120).contains("done in 1m01s"));
    }

    #[test]
    fn follow_line() {
        let d = Display::new(Mode::Plain, None, true);
        let p = Progress { bytes_recorded: 3 << 20, bytes_sent: 1 << 20, ..Default::default() };
        assert!(d.line(&p, 0).starts_with("following: 3.0 MiB recorded, 1.0 MiB sent"));
    }
}
