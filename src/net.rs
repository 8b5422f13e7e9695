//! The agent's connector: ureq's default chain (CONNECT proxy, TCP, rustls) with our own TCP layer, whose
//! transport starts a part PUT's response timeout when the request has left the machine, not when its last
//! byte was handed to the kernel.
//!
//! Why: ureq starts `timeout_recv_response` once the body is written to the socket. On a slow link the
//! kernel's send buffer (Linux autotunes it up to `tcp_wmem` max, 4 MB) can hold more than
//! (response timeout x link rate), so a part that is still moving failed with "timed out (receive
//! response)", was retried from scratch and could fail forever on a slow cellular link.
//!
//! How (Linux and Android): before waiting for the response headers, the transport waits while the
//! socket's send queue (`SIOCOUTQ`: bytes the peer has not acknowledged) drains, checking it every 25 ms.
//! The time spent draining is added to the response timeout that ureq computed, for every read of that
//! response (ureq computes the remaining time from the end of the body on each read, so a one-off
//! allowance would be lost at the second read). The wait ends early when input arrives (an early answer,
//! a reset, a close). A queue that does not shrink for the stall limit fails the attempt with a timeout,
//! as a blocked write does; a drain that outlasts the body's own deadline fails with "send body".
//! Elsewhere (macOS, BSD) the agent uses ureq's default connector and the timeout starts as before.

use std::time::Duration;

use ureq::config::Config as UreqConfig;
use ureq::Agent;

/// The agent for `config` with a connector that waits for the send queue to drain (see the module docs);
/// `stall` is how long the queue may stay the same size.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn agent(config: UreqConfig, stall: Duration) -> Agent {
    use ureq::unversioned::resolver::DefaultResolver;
    use ureq::unversioned::transport::{ConnectProxyConnector, Connector, RustlsConnector};

    // ureq's DefaultConnector for our features (rustls; no SOCKS, no native-tls) with DrainTcpConnector
    // in place of TcpConnector. A CONNECT proxy runs the whole chain again for the proxy's own address,
    // so the socket to the proxy is a DrainTcpTransport too (that is where a proxied request queues).
    let connector =
        ().chain(ConnectProxyConnector::default())
            .chain(linux::DrainTcpConnector { stall })
            .chain(RustlsConnector::default());
    Agent::with_parts(config, connector, DefaultResolver::default())
}

/// Other targets: ureq's default connector (no send queue to read).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn agent(config: UreqConfig, _stall: Duration) -> Agent {
    Agent::new_with_config(config)
}

/// Whether `proxy` is a SOCKS proxy (this build of ureq has no SOCKS support).
pub(crate) fn is_socks(proxy: &ureq::Proxy) -> bool {
    use ureq::ProxyProtocol as P;
    matches!(proxy.protocol(), P::Socks4 | P::Socks4A | P::Socks5 | P::Socks5h)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux {
    use std::fmt;
    use std::io::{self, Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::os::fd::AsRawFd;
    use std::sync::{Arc, Weak};
    use std::time::{Duration, Instant};

    use ureq::unversioned::transport::time::{Duration as UDuration, Instant as UInstant};
    use ureq::unversioned::transport::{
        Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, ShutdownHandle, Transport,
    };
    use ureq::{Error, Timeout};

    /// How often the send queue is read while it drains.
    const TICK: Duration = Duration::from_millis(25);

    /// Opens TCP connections like ureq's `TcpConnector` (addresses resolved by ureq, the connect timeout
    /// shared between them, `no_delay`, the agent's shutdown handle), as a [`DrainTcpTransport`].
    #[derive(Debug)]
    pub(super) struct DrainTcpConnector {
        pub(super) stall: Duration,
    }

    impl<In: Transport> Connector<In> for DrainTcpConnector {
        type Out = Either<In, DrainTcpTransport>;

        fn connect(&self, details: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, Error> {
            if let Some(t) = chained {
                // A CONNECT tunnel (its socket to the proxy was made by this connector, one level down).
                return Ok(Some(Either::A(t)));
            }
            if let Some(p) = details.config.proxy() {
                // ureq's default chain panics here (no socks-proxy feature); never connect around a proxy.
                if super::is_socks(p) && !p.is_no_proxy(details.uri) {
                    return Err(Error::InvalidProxyUrl);
                }
            }
            let stream = Arc::new(connect(details)?);
            (details.register_shutdown)(Arc::downgrade(&stream) as Weak<dyn ShutdownHandle>)?;
            let cfg = details.config;
            Ok(Some(Either::B(DrainTcpTransport {
                stream,
                buffers: LazyBuffers::new(cfg.input_buffer_size(), cfg.output_buffer_size()),
                timeout_read: None,
                timeout_write: None,
                stall: self.stall,
                check_queue: false,
                credit: Duration::ZERO,
                body_deadline: None,
            })))
        }
    }

    /// ureq's `try_connect`: each address gets a share of the connect timeout (1/2, 1/4, ... of it, at
    /// least 10 ms); an error that concerns one address (refused, unreachable) moves on to the next.
    fn connect(details: &ConnectionDetails) -> Result<TcpStream, Error> {
        const MIN_PER_ADDRESS: Duration = Duration::from_millis(10);
        let addrs: &[SocketAddr] = &details.addrs;
        let started = match details.now {
            UInstant::Exact(t) => t,
            _ => Instant::now(),
        };
        let total_weight = 2.0 * (1.0 - 0.5_f64.powi(addrs.len() as i32));
        let mut weight = 1.0_f64;
        let mut last_err: Option<Error> = None;
        for addr in addrs {
            let per_addr = details
                .timeout
                .not_zero()
                .map(|t| Duration::from_secs_f64(t.as_secs_f64() * weight / total_weight).max(MIN_PER_ADDRESS));
            let r = match per_addr {
                Some(t) => TcpStream::connect_timeout(addr, t),
                None => TcpStream::connect(addr),
            };
            match r {
                Ok(s) => {
                    if details.config.no_delay() {
                        s.set_nodelay(true)?;
                    }
                    return Ok(s);
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => {
                    if started.elapsed() > *details.timeout.after {
                        return Err(Error::Timeout(details.timeout.reason));
                    }
                    last_err = Some(Error::Timeout(Timeout::Connect));
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused
                            | io::ErrorKind::HostUnreachable
                            | io::ErrorKind::NetworkUnreachable
                            | io::ErrorKind::NetworkDown
                            | io::ErrorKind::AddrNotAvailable
                    ) =>
                {
                    last_err = Some(Error::Io(e));
                }
                Err(e) => return Err(Error::Io(e)),
            }
            weight /= 2.0;
        }
        Err(last_err
            .unwrap_or_else(|| Error::Io(io::Error::new(io::ErrorKind::ConnectionRefused, "Connection refused"))))
    }

    /// ureq's `TcpTransport` (not exported by ureq), except that waiting for a response starts when the
    /// send queue has drained.
    pub(super) struct DrainTcpTransport {
        /// In an Arc so that the agent's shutdown handle (a Weak) can shut the socket down.
        stream: Arc<TcpStream>,
        buffers: LazyBuffers,
        /// The socket's read and write timeouts as last set (a syscall only when they change).
        timeout_read: Option<Duration>,
        timeout_write: Option<Duration>,
        /// Longest time the send queue may stay the same size while it should drain.
        stall: Duration,
        /// Bytes were written since the send queue was last seen empty.
        check_queue: bool,
        /// Time spent draining during the current response wait: added to its timeout.
        credit: Duration,
        /// When the body being sent must have gone (from ureq's send-body timeout): bounds the drain.
        body_deadline: Option<Instant>,
    }

    impl fmt::Debug for DrainTcpTransport {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("DrainTcpTransport").field("addr", &self.stream.peer_addr().ok()).finish()
        }
    }

    /// ureq's `NextTimeout::check` (crate-private): no time left is a timeout before any I/O.
    fn check(timeout: NextTimeout) -> Result<NextTimeout, Error> {
        if timeout.after.is_zero() {
            Err(Error::Timeout(timeout.reason))
        } else {
            Ok(timeout)
        }
    }

    /// A read or write that timed out becomes ureq's timeout error for `reason`.
    fn io_result<T>(r: io::Result<T>, reason: Timeout) -> Result<T, Error> {
        match r {
            Ok(v) => Ok(v),
            Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => {
                Err(Error::Timeout(reason))
            }
            Err(e) => Err(Error::Io(e)),
        }
    }

    /// Bytes written but not yet acknowledged by the peer; None if the kernel cannot tell.
    fn unacked(stream: &TcpStream) -> Option<u64> {
        let mut n: libc::c_int = 0;
        // SAFETY: TIOCOUTQ (== SIOCOUTQ) on our socket's fd writes one int.
        let r = unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut n as *mut libc::c_int) };
        (r == 0 && n >= 0).then_some(n as u64)
    }

    /// `write_all`, except that a write timeout is a stall only if the peer acknowledged nothing
    /// meanwhile. Linux wakes a blocked writer only once half of the queued bytes are acknowledged;
    /// with a send buffer autotuned to megabytes on a slow link that takes longer than the write
    /// timeout (the stall limit) while bytes keep moving, and the part failed "timed out (per write)".
    fn write_moving(stream: &TcpStream, mut output: &[u8], reason: Timeout) -> Result<(), Error> {
        let mut stream = stream;
        while !output.is_empty() {
            let queued_before = unacked(stream);
            match stream.write(output) {
                Ok(0) => return Err(Error::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => output = &output[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => {
                    // nothing was written, so a smaller queue means the peer took bytes
                    match (queued_before, unacked(stream)) {
                        (Some(before), Some(now)) if now < before => {}
                        _ => return Err(Error::Timeout(reason)),
                    }
                }
                Err(e) => return Err(Error::Io(e)),
            }
        }
        Ok(())
    }

    impl DrainTcpTransport {
        /// Bytes written but not yet acknowledged by the peer; None if the kernel cannot tell.
        fn unacked(&self) -> Option<u64> {
            unacked(&self.stream)
        }

        /// Whether input (or EOF, an error) arrives within `d`.
        fn input_within(&self, d: Duration) -> bool {
            let mut p = libc::pollfd { fd: self.stream.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut p, 1, d.as_millis().clamp(1, 1000) as libc::c_int) };
            // -1 (EINTR or worse): report input, so that the read that follows sees what happened
            r != 0
        }

        /// Wait while the send queue drains. Ends when it is empty (true), when input arrives (false: the
        /// caller reads it and comes back), or with a timeout when the queue stops shrinking for the stall
        /// limit or outlasts the body deadline. A kernel that cannot tell counts as empty.
        fn drain(&mut self) -> Result<bool, Error> {
            let Some(mut queued) = self.unacked() else { return Ok(true) };
            let started = Instant::now();
            let mut progress_at = started;
            let result = loop {
                if queued == 0 {
                    break Ok(true);
                }
                if self.body_deadline.is_some_and(|d| Instant::now() >= d) {
                    break Err(Error::Timeout(Timeout::SendBody));
                }
                if self.input_within(TICK) {
                    break Ok(false);
                }
                let Some(now_queued) = self.unacked() else { break Ok(true) };
                if now_queued < queued {
                    progress_at = Instant::now();
                }
                queued = now_queued;
                if queued > 0 && !self.stall.is_zero() && progress_at.elapsed() >= self.stall {
                    break Err(Error::Io(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "send stalled: the peer acknowledged none of the last {queued} bytes queued in the socket for {:.1} s",
                            progress_at.elapsed().as_secs_f64()
                        ),
                    )));
                }
            };
            self.credit += started.elapsed();
            result
        }

        /// ureq's read: the read timeout for `timeout`, reads interrupted by a signal retried with the
        /// time left (Linux does not restart them when SO_RCVTIMEO is set).
        fn read_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
            let timeout = check(timeout.for_read())?;
            let limit = timeout.not_zero().map(|d| *d);
            if limit != self.timeout_read {
                io_result(self.stream.set_read_timeout(limit), timeout.reason)?;
                self.timeout_read = limit;
            }
            let started = Instant::now();
            let mut stream = &*self.stream;
            let input = self.buffers.input_append_buf();
            let r = loop {
                match stream.read(input) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                        let Some(limit) = limit else { break Err(e) };
                        let left = limit.saturating_sub(started.elapsed());
                        if left.is_zero() {
                            break Err(io::ErrorKind::TimedOut.into());
                        }
                        if let Err(e) = stream.set_read_timeout(Some(left)) {
                            break Err(e);
                        }
                        self.timeout_read = Some(left);
                    }
                    r => break r,
                }
            };
            let amount = io_result(r, timeout.reason)?;
            self.buffers.input_appended(amount);
            Ok(amount > 0)
        }
    }

    impl Transport for DrainTcpTransport {
        fn buffers(&mut self) -> &mut dyn Buffers {
            &mut self.buffers
        }

        fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
            if timeout.reason != Timeout::RecvResponse {
                // A write of a new phase (not TLS housekeeping while awaiting the response) ends the
                // response wait the credit belonged to.
                self.credit = Duration::ZERO;
                self.body_deadline = match (timeout.reason, timeout.after) {
                    (Timeout::SendBody, UDuration::Exact(d)) => Instant::now().checked_add(d),
                    _ => None,
                };
            }
            self.check_queue = true;
            let timeout = check(timeout.for_write())?;
            let limit = timeout.not_zero().map(|d| *d);
            if limit != self.timeout_write {
                io_result(self.stream.set_write_timeout(limit), timeout.reason)?;
                self.timeout_write = limit;
            }
            let output = &self.buffers.output()[..amount];
            write_moving(&self.stream, output, timeout.reason)
        }

        fn await_input(&mut self, mut timeout: NextTimeout) -> Result<bool, Error> {
            if timeout.reason != Timeout::RecvResponse {
                // Only the response wait is measured from the drain: connect, 100-continue, the body and
                // every API call (bounded by a global timeout) keep ureq's timing.
                self.credit = Duration::ZERO;
                return self.read_input(timeout);
            }
            if self.check_queue {
                // Input that arrives first (an early answer, or TLS session tickets sent long ago) is read
                // at once; the queue is looked at again on the next wait of this response.
                self.check_queue = !self.drain()?;
            }
            if let UDuration::Exact(d) = timeout.after {
                timeout.after = UDuration::Exact(d.saturating_add(self.credit));
            }
            self.read_input(timeout)
        }

        fn is_open(&mut self) -> bool {
            // ureq's probe: a pooled connection is usable if a non-blocking read finds nothing waiting.
            let mut stream = &*self.stream;
            if stream.set_nonblocking(true).is_err() {
                return false;
            }
            let mut buf = [0u8; 1];
            match stream.read(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.set_nonblocking(false).is_ok(),
                // bytes nobody asked for, EOF, or an error
                _ => false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::error::ErrorKind;
    use crate::http::Http;

    #[test]
    fn socks_proxy_is_refused_at_setup() {
        let mut cfg = Config::new("unit", "secret");
        cfg.proxy = Some("socks5://127.0.0.1:1080".into());
        let e = Http::new(&cfg).err().expect("a SOCKS proxy was accepted");
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert!(e.to_string().contains("SOCKS"), "{e}");
        cfg.proxy = Some("http://127.0.0.1:3128".into());
        assert!(Http::new(&cfg).is_ok());
    }
}
