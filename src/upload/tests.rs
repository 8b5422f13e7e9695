//! Engine tests against an in-memory server that follows c2c-api.md 14.2/14.3.

use super::*;
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::AtomicUsize;

const MIB: usize = 1024 * 1024;

type PutFault = Box<dyn Fn(u32, usize) -> Option<Error> + Send + Sync>;
type RegFault = Box<dyn Fn(u32, usize) -> Option<Error> + Send + Sync>;

#[derive(Default)]
struct Server {
    registered: HashMap<u32, (u64, bool)>,
    final_size: Option<u64>,
    url_gen: HashMap<u32, u32>,
    stored: HashMap<u32, Vec<u8>>,
    puts: HashMap<u32, usize>,
    regs: HashMap<u32, usize>,
    complete: Option<Vec<u8>>,
    basic_urls: usize,
}

#[derive(Default)]
struct Mock {
    s: Mutex<Server>,
    put_fault: Option<PutFault>,
    reg_fault: Option<RegFault>,
    put_delay: Duration,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

fn e(kind: ErrorKind) -> Error {
    err(kind, format!("{kind:?}"))
}

impl Mock {
    fn complete_bytes(&self) -> Option<Vec<u8>> {
        self.s.lock().unwrap().complete.clone()
    }
    fn puts(&self, n: u32) -> usize {
        *self.s.lock().unwrap().puts.get(&n).unwrap_or(&0)
    }
    fn check_complete(s: &mut Server) {
        let Some(total) = s.final_size else { return };
        let last = s.registered.iter().find(|(_, v)| v.1).map(|(k, _)| *k).unwrap();
        let mut out = Vec::new();
        for n in 1..=last {
            match (s.registered.get(&n), s.stored.get(&n)) {
                (Some((size, _)), Some(b)) if b.len() as u64 == *size => out.extend_from_slice(b),
                (None, _) => continue, // a gap: the emulator accepts it (the engine must never make one)
                _ => return,
            }
        }
        assert_eq!(out.len() as u64, total, "sizes do not add up");
        s.complete = Some(out);
    }
}

impl Transport for Mock {
    fn create_realtime_asset(&self, _spec: &AssetSpec) -> Result<String> {
        Ok("asset-1".into())
    }
    fn create_basic_asset(&self, _spec: &AssetSpec, filesize: u64) -> Result<(String, Vec<String>)> {
        let mut s = self.s.lock().unwrap();
        let n = s.basic_urls.max(1);
        let chunk = filesize.div_ceil(n as u64);
        for i in 0..n {
            let size = if i + 1 == n { filesize - chunk * (n as u64 - 1) } else { chunk };
            s.registered.insert(i as u32 + 1, (size, i + 1 == n));
        }
        s.final_size = Some(filesize);
        Ok(("basic".into(), (1..=n).map(|i| format!("mock://{i}/0")).collect()))
    }
    fn register_parts(&self, _a: &str, parts: &[PartReq], _n: Option<&str>, total: Option<u64>) -> Result<Vec<String>> {
        let mut s = self.s.lock().unwrap();
        let mut urls = Vec::new();
        for p in parts {
            let c = {
                let c = s.regs.entry(p.number).or_insert(0);
                *c += 1;
                *c
            };
            if let Some(f) = &self.reg_fault {
                if let Some(e) = f(p.number, c) {
                    return Err(e);
                }
            }
            if s.complete.is_some() {
                return Err(e(ErrorKind::BadRequest));
            }
            if let Some(old) = s.registered.get(&p.number) {
                assert_eq!(*old, (p.size, p.is_final), "re-registered part {} differently", p.number);
            }
            if p.is_final {
                // the engine registers the final part only after every earlier one
                for n in 1..p.number {
                    assert!(s.registered.contains_key(&n), "final part {} registered before part {n}", p.number);
                }
                s.final_size = Some(total.expect("asset_filesize with the final part"));
            } else {
                assert!(p.size >= MIN_PART_SIZE, "non-final part below 5 MiB");
            }
            s.registered.insert(p.number, (p.size, p.is_final));
            let g = s.url_gen.entry(p.number).or_insert(0);
            *g += 1;
            urls.push(format!("mock://{}/{}", p.number, g));
        }
        Ok(urls)
    }
    fn put_part(&self, url: &str, body: Body<'_>, _ct: &str, hook: &dyn Fn(u64) -> bool) -> Result<()> {
        let mut it = url.trim_start_matches("mock://").split('/');
        let n: u32 = it.next().unwrap().parse().unwrap();
        let gen: u32 = it.next().unwrap().parse().unwrap();
        let c = {
            let mut s = self.s.lock().unwrap();
            let c = s.puts.entry(n).or_insert(0);
            *c += 1;
            *c
        };
        let cur = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(cur, Ordering::SeqCst);
        let _guard = Guard(&self.in_flight);
        if let Some(f) = &self.put_fault {
            if let Some(e) = f(n, c) {
                return Err(e);
            }
        }
        let bytes = match body {
            Body::Bytes(b) => b.to_vec(),
            Body::File { file, offset, len } => {
                use std::os::unix::fs::FileExt;
                let mut v = vec![0u8; len as usize];
                file.read_exact_at(&mut v, offset).map_err(|e| err(ErrorKind::Io, e.to_string()))?;
                v
            }
        };
        for chunk in bytes.chunks(256 * 1024) {
            if !self.put_delay.is_zero() {
                std::thread::sleep(self.put_delay);
            }
            if !hook(chunk.len() as u64) {
                return Err(e(ErrorKind::Cancelled));
            }
        }
        let mut s = self.s.lock().unwrap();
        if s.url_gen.get(&n).copied().unwrap_or(0) != gen && !url.ends_with("/0") {
            return Err(e(ErrorKind::UrlExpired));
        }
        let (size, _) = s.registered[&n];
        assert_eq!(bytes.len() as u64, size);
        s.stored.insert(n, bytes);
        Mock::check_complete(&mut s);
        Ok(())
    }
}

struct Guard<'a>(&'a AtomicUsize);
impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn spec() -> AssetSpec {
    AssetSpec { name: Some("clip.mp4".into()), filetype: "video/mp4".into(), ..Default::default() }
}

fn fast_opts() -> UploadOptions {
    UploadOptions { retry_backoff: Duration::from_millis(5), ..Default::default() }
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fio-up-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn push_all(up: &Upload, d: &[u8]) {
    let mut i = 0;
    let mut step = 1000;
    while i < d.len() {
        let n = step.min(d.len() - i);
        up.write(&d[i..i + n]).unwrap();
        i += n;
        step = step * 3 % 700_001 + 1;
    }
}

#[test]
fn bytes_source_uploads_byte_identical() {
    let m = Arc::new(Mock::default());
    let d = data(23 * MIB + 12345, 1);
    let up = Upload::start(m.clone(), spec(), Source::Bytes, fast_opts()).unwrap();
    push_all(&up, &d);
    let p = up.finish().unwrap();
    assert!(p.complete);
    assert_eq!(p.parts_total, 5);
    assert_eq!(p.bytes_done, d.len() as u64);
    assert_eq!(m.complete_bytes().unwrap(), d);
}

#[test]
fn bytes_source_exact_part_multiple_and_empty() {
    for len in [0usize, 1, 5 * MIB, 10 * MIB, 5 * MIB + 1] {
        let m = Arc::new(Mock::default());
        let d = data(len, 2);
        let up = Upload::start(m.clone(), spec(), Source::Bytes, fast_opts()).unwrap();
        push_all(&up, &d);
        up.finish().unwrap();
        assert_eq!(m.complete_bytes().unwrap(), d, "len {len}");
        let parts = up.parts();
        assert_eq!(parts.len(), (len.max(1)).div_ceil(5 * MIB), "len {len}");
    }
}

#[test]
fn backpressure_bounds_memory() {
    let m = Arc::new(Mock { put_delay: Duration::from_millis(3), ..Default::default() });
    let budget = 12 * MIB as u64;
    let opts = UploadOptions { buffer_budget: budget, concurrency: 2, ..fast_opts() };
    let d = data(40 * MIB, 3);
    let up = Upload::start(m.clone(), spec(), Source::Bytes, opts).unwrap();
    push_all(&up, &d);
    let p = up.finish().unwrap();
    assert!(p.peak_bytes_buffered <= budget, "{}", p.peak_bytes_buffered);
    assert!(p.peak_bytes_buffered > 5 * MIB as u64);
    assert_eq!(m.complete_bytes().unwrap(), d);
    // a budget that cannot hold two parts is refused
    let bad = UploadOptions { buffer_budget: 10 * MIB as u64, ..fast_opts() };
    assert!(Upload::start(m, spec(), Source::Bytes, bad).is_err());
}

#[test]
fn growing_file_and_parallel_parts() {
    let dir = tmpdir("grow");
    let path = dir.join("rec.mp4");
    let d = data(31 * MIB + 7, 4);
    let mut f = File::create(&path).unwrap();
    let m = Arc::new(Mock { put_delay: Duration::from_millis(1), ..Default::default() });
    let up = Upload::start(m.clone(), spec(), Source::File(path.clone()), fast_opts()).unwrap();
    for chunk in d.chunks(777_777) {
        f.write_all(chunk).unwrap();
        up.file_grew(f.metadata().unwrap().len()).unwrap();
    }
    // before finish only whole parts with a byte past them went out
    assert!(up.parts().iter().all(|p| !p.is_final));
    let p = up.finish().unwrap();
    assert_eq!(p.parts_total, 7);
    assert_eq!(m.complete_bytes().unwrap(), d);
    assert!(m.max_in_flight.load(Ordering::SeqCst) >= 2);
}

#[test]
fn watcher_follows_the_file() {
    let dir = tmpdir("watch");
    let path = dir.join("rec.mov");
    let d = data(12 * MIB, 5);
    let mut f = File::create(&path).unwrap();
    let opts = UploadOptions { watch_interval: Some(Duration::from_millis(20)), ..fast_opts() };
    let m = Arc::new(Mock::default());
    let up = Upload::start(m.clone(), spec(), Source::File(path.clone()), opts).unwrap();
    for chunk in d.chunks(MIB) {
        f.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(15));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(up.parts().len(), 2); // 5 + 5 MiB cut, 2 MiB left for the final part
    up.finish().unwrap();
    assert_eq!(m.complete_bytes().unwrap(), d);
}

#[test]
fn complete_file_realtime_and_basic() {
    let dir = tmpdir("complete");
    let path = dir.join("clip.mov");
    let d = data(17 * MIB + 3, 6);
    std::fs::write(&path, &d).unwrap();
    let m = Arc::new(Mock::default());
    let p = upload_file(m.clone(), &path, spec(), true, fast_opts()).unwrap();
    assert_eq!(p.parts_total, 4);
    assert_eq!(m.complete_bytes().unwrap(), d);

    let m = Arc::new(Mock::default());
    m.s.lock().unwrap().basic_urls = 3;
    let p = upload_file(m.clone(), &path, spec(), false, fast_opts()).unwrap();
    assert_eq!(p.parts_total, 3);
    assert_eq!(m.complete_bytes().unwrap(), d);
}

#[test]
fn expired_url_is_registered_again() {
    // every first PUT of a part gets 403
    let m = Arc::new(Mock {
        put_fault: Some(Box::new(|_, c| if c == 1 { Some(e(ErrorKind::UrlExpired)) } else { None })),
        ..Default::default()
    });
    let d = data(11 * MIB, 7);
    let up = Upload::start(m.clone(), spec(), Source::Bytes, fast_opts()).unwrap();
    push_all(&up, &d);
    let p = up.finish().unwrap();
    assert_eq!(p.reregistrations, 3);
    assert_eq!(m.complete_bytes().unwrap(), d);
}

#[test]
fn second_403_in_a_row_is_reported() {
    let m = Arc::new(Mock {
        put_fault: Some(Box::new(|n, _| if n == 2 { Some(e(ErrorKind::UrlExpired)) } else { None })),
        ..Default::default()
    });
    let d = data(11 * MIB, 8);
    let up = Upload::start(m.clone(), spec(), Source::Bytes, fast_opts()).unwrap();
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| push_all(&up, &d)));
    let e = up.finish().unwrap_err();
    assert_eq!(e.kind, ErrorKind::UrlExpired);
    assert!(e.message.contains("part 2"), "{}", e.message);
    let p2 = &up.parts()[1];
    assert_eq!(p2.status, PartStatus::Failed);
    assert_eq!(p2.attempts, 2);
    assert!(m.complete_bytes().is_none());
}

#[test]
fn transient_failures_are_retried() {
    let m = Arc::new(Mock {
        put_fault: Some(Box::new(|_, c| match c {
            1 => Some(e(ErrorKind::Network)),
            2 => Some(e(ErrorKind::ServerError)),
            3 => Some(e(ErrorKind::RateLimited)),
            _ => None,
        })),
        reg_fault: Some(Box::new(|_, c| if c == 1 { Some(e(ErrorKind::RateLimited)) } else { None })),
        ..Default::default()
    });
    let d = data(16 * MIB, 9);
    let up = Upload::start(m.clone(), spec(), Source::Bytes, fast_opts()).unwrap();
    push_all(&up, &d);
    let p = up.finish().unwrap();
    assert_eq!(p.retries, 4 * 4);
    assert_eq!(m.complete_bytes().unwrap(), d);
}

#[test]
fn lost_network_gives_up_at_the_deadline() {
    let m = Arc::new(Mock { put_fault: Some(Box::new(|_, _| Some(e(ErrorKind::Network)))), ..Default::default() });
    let opts = UploadOptions { retry_deadline: Duration::from_millis(300), ..fast_opts() };
    let d = data(MIB, 10);
    let up = Upload::start(m.clone(), spec(), Source::Bytes, opts).unwrap();
    push_all(&up, &d);
    let t = Instant::now();
    let e = up.finish().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Network);
    assert!(e.message.contains("gave up"), "{}", e.message);
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[test]
fn channel_paused_ends_with_its_status() {
    let m =
        Arc::new(Mock { reg_fault: Some(Box::new(|_, _| Some(e(ErrorKind::ChannelPaused)))), ..Default::default() });
    let d = data(MIB, 11);
    let up = Upload::start(m.clone(), spec(), Source::Bytes, fast_opts()).unwrap();
    push_all(&up, &d);
    assert_eq!(up.finish().unwrap_err().kind, ErrorKind::ChannelPaused);
    assert_eq!(up.failure().unwrap().kind, ErrorKind::ChannelPaused);
}

#[test]
fn cancel_from_another_thread_and_from_progress() {
    let m = Arc::new(Mock { put_delay: Duration::from_millis(20), ..Default::default() });
    let d = data(30 * MIB, 12);
    let up = Arc::new(Upload::start(m.clone(), spec(), Source::Bytes, fast_opts()).unwrap());
    let up2 = up.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        up2.cancel();
    });
    let mut res = Ok(());
    for c in d.chunks(MIB) {
        res = up.write(c);
        if res.is_err() {
            break;
        }
    }
    t.join().unwrap();
    let e = res.and_then(|_| up.finish().map(|_| ())).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Cancelled);
    assert!(m.complete_bytes().is_none());

    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let opts = UploadOptions {
        progress: Some(Box::new(move |p: &Progress| {
            c2.fetch_add(1, Ordering::SeqCst);
            if p.parts_done >= 1 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })),
        ..fast_opts()
    };
    let m = Arc::new(Mock { put_delay: Duration::from_millis(5), ..Default::default() });
    let up = Upload::start(m.clone(), spec(), Source::Bytes, opts).unwrap();
    let mut res = Ok(());
    for c in d.chunks(MIB) {
        res = up.write(c);
        if res.is_err() {
            break;
        }
    }
    let e = res.and_then(|_| up.finish().map(|_| ())).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Cancelled);
    assert!(calls.load(Ordering::SeqCst) >= 1);
}

#[test]
fn progress_is_rate_limited_and_ends_complete() {
    let seen = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let s2 = seen.clone();
    let opts = UploadOptions {
        progress: Some(Box::new(move |p: &Progress| {
            s2.lock().unwrap().push(*p);
            ControlFlow::Continue(())
        })),
        ..fast_opts()
    };
    let m = Arc::new(Mock { put_delay: Duration::from_millis(4), ..Default::default() });
    let d = data(26 * MIB, 13);
    let t = Instant::now();
    let up = Upload::start(m.clone(), spec(), Source::Bytes, opts).unwrap();
    push_all(&up, &d);
    up.finish().unwrap();
    drop(up);
    let secs = t.elapsed().as_secs_f64();
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty());
    assert!(seen.len() as f64 <= secs * 11.0 + 2.0, "{} calls in {secs} s", seen.len());
    let last = seen.last().unwrap();
    assert!(last.complete);
    assert_eq!(last.bytes_sent, d.len() as u64);
}

#[test]
fn bandwidth_cap_is_shared() {
    let m = Arc::new(Mock::default());
    let opts = UploadOptions { bandwidth_limit: 20 * MIB as u64, concurrency: 4, ..fast_opts() };
    let d = data(12 * MIB, 14);
    let t = Instant::now();
    let up = Upload::start(m.clone(), spec(), Source::Bytes, opts).unwrap();
    push_all(&up, &d);
    up.finish().unwrap();
    let el = t.elapsed().as_secs_f64();
    assert!(el > 0.45, "12 MiB at 20 MiB/s took {el} s");
    assert_eq!(m.complete_bytes().unwrap(), d);
}

#[test]
fn resume_file_without_resending_done_parts() {
    let dir = tmpdir("resume-file");
    let path = dir.join("rec.mp4");
    let state = dir.join("rec.state");
    let d = data(27 * MIB, 15);
    std::fs::write(&path, &d[..18 * MIB]).unwrap();
    // first run: part 3 fails fatally (like a crash after parts 1, 2 and maybe 4 are done)
    let m = Arc::new(Mock {
        put_fault: Some(Box::new(|n, _| if n == 3 { Some(e(ErrorKind::BadRequest)) } else { None })),
        ..Default::default()
    });
    let opts = UploadOptions { state_file: Some(state.clone()), concurrency: 1, ..fast_opts() };
    let up = Upload::start(m.clone(), spec(), Source::File(path.clone()), opts).unwrap();
    up.file_grew(18 * MIB as u64).unwrap();
    let t = Instant::now();
    while up.failure().is_none() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(up);
    let saved = SavedUpload::load(&state).unwrap();
    assert!(saved.parts[0].done && saved.parts[1].done && !saved.parts[2].done);
    // the recording went on while we were down
    std::fs::write(&path, &d).unwrap();
    // second run: a fresh process (new transport, same server)
    let m2 = Arc::new(Mock::default());
    {
        let mut s = m.s.lock().unwrap();
        let mut s2 = m2.s.lock().unwrap();
        s2.registered = s.registered.clone();
        s2.stored = std::mem::take(&mut s.stored);
        s2.url_gen = s.url_gen.clone();
    }
    let up = Upload::resume(m2.clone(), &state, fast_opts()).unwrap();
    up.finish().unwrap();
    assert_eq!(m2.puts(1), 0);
    assert_eq!(m2.puts(2), 0);
    assert_eq!(m2.puts(3), 1);
    assert_eq!(m2.complete_bytes().unwrap(), d);
    assert!(SavedUpload::load(&state).unwrap().parts.iter().all(|p| p.done));
}

#[test]
fn resume_bytes_from_the_first_unfinished_part() {
    let dir = tmpdir("resume-bytes");
    let state = dir.join("b.state");
    let d = data(22 * MIB + 5, 16);
    let m = Arc::new(Mock {
        put_fault: Some(Box::new(|n, _| if n == 2 { Some(e(ErrorKind::Network)) } else { None })),
        ..Default::default()
    });
    let opts = UploadOptions { state_file: Some(state.clone()), ..fast_opts() };
    let up = Upload::start(m.clone(), spec(), Source::Bytes, opts).unwrap();
    up.write(&d[..16 * MIB]).unwrap();
    let t = Instant::now();
    while up.parts().iter().filter(|p| p.status == PartStatus::Done).count() < 2 && t.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(up);
    let m2 = Arc::new(Mock::default());
    {
        let mut s = m.s.lock().unwrap();
        let mut s2 = m2.s.lock().unwrap();
        s2.registered = s.registered.clone();
        s2.stored = std::mem::take(&mut s.stored);
        s2.url_gen = s.url_gen.clone();
    }
    let up = Upload::resume(m2.clone(), &state, fast_opts()).unwrap();
    let off = up.resume_offset() as usize;
    assert_eq!(off, 5 * MIB);
    push_all(&up, &d[off..]);
    up.finish().unwrap();
    assert_eq!(m2.puts(1), 0);
    assert_eq!(m2.puts(3), 0);
    assert_eq!(m2.complete_bytes().unwrap(), d);
}

#[test]
fn wrong_source_calls_are_refused() {
    let m = Arc::new(Mock::default());
    let up = Upload::start(m.clone(), spec(), Source::Bytes, fast_opts()).unwrap();
    assert_eq!(up.file_grew(5).unwrap_err().kind, ErrorKind::WrongState);
    up.finish().unwrap();
    assert_eq!(up.write(b"x").unwrap_err().kind, ErrorKind::WrongState);
}

#[test]
fn long_recording_tail_is_split_and_parallel() {
    // parts grow fast (divisor 1): 5, 5, 10, 20 MiB, then a 32 MiB part that never fills; the
    // 20 MiB tail goes out as 3 parts in parallel (concurrency 3)
    let plan = PlanConfig { growth_divisor: 1, ..Default::default() };
    let d = data(60 * MIB + 3, 17);
    for file in [false, true] {
        let m = Arc::new(Mock { put_delay: Duration::from_millis(2), ..Default::default() });
        let opts = UploadOptions { plan, buffer_budget: 64 * MIB as u64, ..fast_opts() };
        let up = if file {
            let dir = tmpdir("tail");
            let path = dir.join("long.mov");
            std::fs::write(&path, &d).unwrap();
            let up = Upload::start(m.clone(), spec(), Source::File(path), opts).unwrap();
            up.file_grew(d.len() as u64).unwrap();
            up
        } else {
            let up = Upload::start(m.clone(), spec(), Source::Bytes, opts).unwrap();
            push_all(&up, &d);
            up
        };
        let p = up.finish().unwrap();
        let sizes: Vec<u64> = up.parts().iter().map(|p| p.size).collect();
        let mib = MIB as u64;
        assert_eq!(&sizes[..4], &[5 * mib, 5 * mib, 10 * mib, 20 * mib], "file {file}");
        assert_eq!(sizes.len(), 7, "{sizes:?}");
        assert!(sizes[4..].iter().all(|s| *s >= MIN_PART_SIZE));
        assert_eq!(p.bytes_done, d.len() as u64);
        assert_eq!(m.complete_bytes().unwrap(), d, "file {file}");
    }
}

#[test]
fn rewritten_file_fails_instead_of_completing() {
    use std::os::unix::fs::FileExt;
    let dir = tmpdir("rewrite");
    let path = dir.join("plain.mov");
    let d = data(12 * MIB, 18);
    std::fs::write(&path, &d).unwrap();
    let m = Arc::new(Mock::default());
    let up = Upload::start(m.clone(), spec(), Source::File(path.clone()), fast_opts()).unwrap();
    up.file_grew(d.len() as u64).unwrap();
    let t = Instant::now();
    while up.stats().parts_done < 2 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    // the muxer seeks back and patches the header (as a plain MOV/MP4 writer does at close)
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().write_all_at(b"\0\0\0\x08wide", 24).unwrap();
    let e = up.finish().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Io);
    assert!(e.message.contains("append-only"), "{}", e.message);
    assert!(m.complete_bytes().is_none(), "the asset must not complete");
    assert!(m.s.lock().unwrap().final_size.is_none(), "the final part must not be registered");

    // a file that shrinks is refused too
    let path2 = dir.join("shrink.mov");
    std::fs::write(&path2, &d).unwrap();
    let m = Arc::new(Mock::default());
    let up = Upload::start(m.clone(), spec(), Source::File(path2.clone()), fast_opts()).unwrap();
    up.file_grew(d.len() as u64).unwrap();
    std::fs::OpenOptions::new().write(true).open(&path2).unwrap().set_len(3 * MIB as u64).unwrap();
    assert_eq!(up.finish().unwrap_err().kind, ErrorKind::Io);
    assert!(m.complete_bytes().is_none());
}

#[test]
fn bandwidth_cap_changes_while_running() {
    let m = Arc::new(Mock::default());
    let opts = UploadOptions { bandwidth_limit: 2 * MIB as u64, ..fast_opts() };
    let d = data(12 * MIB, 19);
    let up = Upload::start(m.clone(), spec(), Source::Bytes, opts).unwrap();
    push_all(&up, &d);
    let t = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    up.set_bandwidth_limit(0); // lift the cap: the rest goes at full speed
    up.finish().unwrap();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(m.complete_bytes().unwrap(), d);
}

#[test]
fn throughput_is_the_link_rate_and_holds_while_idle() {
    // 256 KiB chunks every 50 ms: about 5 MiB/s while a part is on the wire.
    let m = Arc::new(Mock { put_delay: Duration::from_millis(50), ..Default::default() });
    let d = data(6 * MIB, 21);
    let up = Upload::start(m.clone(), spec(), Source::Bytes, fast_opts()).unwrap();
    push_all(&up, &d);
    let t = Instant::now();
    while up.stats().parts_done < 1 {
        assert!(t.elapsed() < Duration::from_secs(20), "first part never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The recording pauses: nothing is in flight for longer than the sampling window.
    std::thread::sleep(Duration::from_millis(2500));
    let p = up.stats();
    assert_eq!(p.parts_in_flight, 0);
    let mib_s = p.throughput_bps / MIB as f64;
    assert!((2.0..=12.0).contains(&mib_s), "idle throughput {mib_s:.2} MiB/s, want the last link rate (~5)");
    up.finish().unwrap();
    assert_eq!(m.complete_bytes().unwrap(), d);
}

#[test]
fn throughput_counts_a_part_sent_between_two_ticks() {
    // No delay: each part goes out in far less than the monitor's 100 ms tick.
    let m = Arc::new(Mock::default());
    let d = data(12 * MIB, 22);
    let up = Upload::start(m.clone(), spec(), Source::Bytes, fast_opts()).unwrap();
    push_all(&up, &d);
    let p = up.finish().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(p.complete);
    assert!(up.stats().throughput_bps > 0.0, "a fast link showed 0 B/s: {:?}", up.stats());
    assert_eq!(m.complete_bytes().unwrap(), d);
}

#[test]
fn garbled_registration_answer_is_registered_again() {
    // The first answer for part 2 is garbled (a proxy's HTML page): a lost response, per 14.2.
    let m = Arc::new(Mock {
        reg_fault: Some(Box::new(|n, c| if n == 2 && c == 1 { Some(e(ErrorKind::Protocol)) } else { None })),
        ..Default::default()
    });
    let d = data(16 * MIB, 23);
    let up = Upload::start(m.clone(), spec(), Source::Bytes, fast_opts()).unwrap();
    push_all(&up, &d);
    up.finish().unwrap();
    assert_eq!(m.complete_bytes().unwrap(), d);
    assert_eq!(*m.s.lock().unwrap().regs.get(&2).unwrap(), 2);
}

#[test]
fn registration_that_stays_garbled_fails_with_protocol() {
    let m = Arc::new(Mock {
        reg_fault: Some(Box::new(|n, _| if n == 2 { Some(e(ErrorKind::Protocol)) } else { None })),
        ..Default::default()
    });
    let d = data(16 * MIB, 24);
    let up = Upload::start(m.clone(), spec(), Source::Bytes, fast_opts()).unwrap();
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| push_all(&up, &d)));
    let e = up.finish().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol);
    assert_eq!(*m.s.lock().unwrap().regs.get(&2).unwrap(), 1 + MAX_GARBLED_REGISTRATIONS as usize);
    assert!(m.complete_bytes().is_none());
}
