//! A token bucket shared by all workers: the bandwidth cap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Throttle {
    rate: AtomicU64,
    state: Mutex<(f64, Instant)>,
}

impl Throttle {
    /// `rate` bytes per second; 0 means no cap.
    pub fn new(rate: u64) -> Throttle {
        Throttle { rate: AtomicU64::new(rate), state: Mutex::new((0.0, Instant::now())) }
    }

    /// Changes the cap (0: none); takes effect for the next bytes sent.
    pub fn set_rate(&self, rate: u64) {
        self.rate.store(rate, Ordering::Relaxed);
    }

    pub fn rate(&self) -> u64 {
        self.rate.load(Ordering::Relaxed)
    }

    /// How long the caller must wait before sending `n` more bytes (the bytes are taken from the
    /// bucket now; the bucket may go negative, so concurrent senders queue up fairly).
    pub fn take(&self, n: u64) -> Duration {
        let rate = self.rate();
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if rate == 0 {
            *g = (0.0, now);
            return Duration::ZERO;
        }
        let burst = (rate as f64) / 10.0; // at most 100 ms worth of burst
        g.0 = (g.0 + now.duration_since(g.1).as_secs_f64() * rate as f64).min(burst);
        // a debt left from a lower cap is forgiven down to 1 s of the current rate
        g.0 = g.0.max(-(rate as f64));
        g.1 = now;
        g.0 -= n as f64;
        if g.0 >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-g.0 / rate as f64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_the_rate() {
        let t = Throttle::new(1_000_000);
        let start = Instant::now();
        for _ in 0..30 {
            std::thread::sleep(t.take(10_000));
        }
        // 300 kB at 1 MB/s: about 300 ms (minus the initial 0 bucket)
        let el = start.elapsed();
        assert!(el >= Duration::from_millis(250), "{el:?}");
        assert_eq!(Throttle::new(0).take(1 << 30), Duration::ZERO);
        t.set_rate(0);
        assert_eq!(t.take(1 << 30), Duration::ZERO);
        t.set_rate(1_000_000);
        assert!(t.take(500_000) <= Duration::from_millis(600));
    }
}
