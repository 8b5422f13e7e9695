//! A token bucket shared by all workers: the bandwidth cap.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Throttle {
    rate: u64,
    state: Mutex<(f64, Instant)>,
}

impl Throttle {
    /// `rate` bytes per second; 0 means no cap.
    pub fn new(rate: u64) -> Throttle {
        Throttle { rate, state: Mutex::new((0.0, Instant::now())) }
    }

    /// How long the caller must wait before sending `n` more bytes (the bytes are taken from the
    /// bucket now; the bucket may go negative, so concurrent senders queue up fairly).
    pub fn take(&self, n: u64) -> Duration {
        if self.rate == 0 {
            return Duration::ZERO;
        }
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let burst = (self.rate as f64) / 10.0; // at most 100 ms worth of burst
        g.0 = (g.0 + now.duration_since(g.1).as_secs_f64() * self.rate as f64).min(burst);
        g.1 = now;
        g.0 -= n as f64;
        if g.0 >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-g.0 / self.rate as f64)
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
    }
}
