"""Shared machinery for bench/run.py: measured processes, C builds, the nginx sink, the emulator, the link."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
BENCH = ROOT / "bench"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
WORK = Path(os.environ.get("FIO_BENCH_WORK", "/tmp/fio-bench"))
SHM = Path(os.environ.get("FIO_BENCH_SHM", "/dev/shm/fio-bench"))
MIB = 1024 * 1024
GIB = 1024 * MIB


class Skip(Exception):
    """A benchmark (or one of its senders) cannot run here; the message says why, for RESULTS.md."""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run_measured(argv, timeout=600, env=None, cwd=None, stdin_path=None) -> dict:
    """Run argv; return wall seconds, user/sys CPU seconds and peak RSS (KiB) of the child (wait4), rc, output."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=out, stderr=err, stdin=stdin, env=env, cwd=cwd, start_new_session=True)
        killed = []

        def kill():
            killed.append(True)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if stdin_path:
            stdin.close()
        out.seek(0)
        err.seek(0)
        return {
            "rc": p.returncode if not killed else f"killed after {timeout}s timeout",
            "wall": wall, "user": ru.ru_utime, "sys": ru.ru_stime, "maxrss_kib": ru.ru_maxrss,
            "stdout": out.read().decode(errors="replace"), "stderr": err.read().decode(errors="replace"),
        }


def free_port(host="127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(host, port, timeout=20.0, netns=None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if netns:
            r = subprocess.run(["ip", "netns", "exec", netns, "bash", "-c", f"exec 3<>/dev/tcp/{host}/{port}"],
                               capture_output=True)
            if r.returncode == 0:
                return
        else:
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    return
            except OSError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {host}:{port} after {timeout}s")


def make_random_file(path: Path, size: int, copy_from: Path = None) -> None:
    """Random bytes (incompressible); reused when a file of that size is already there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.stat().st_size == size:
        return
    if copy_from and copy_from.exists() and copy_from.stat().st_size == size:
        shutil.copyfile(copy_from, path)
        return
    block = 16 * MIB
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(block, left)
            f.write(os.urandom(n))
            left -= n


# --------------------------------------------------------------------------------------------------------
# C programs

CFLAGS = ["-O2", "-Wall", "-Wextra", "-g0"]


def build_c(name: str, libs=()) -> Path:
    src = BENCH / "c" / f"{name}.c"
    out = WORK / "bin" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["gcc", *CFLAGS, "-I", str(BENCH / "c"), "-o", str(out), str(src), *libs, "-lpthread"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise Skip(f"{name}.c did not compile: {r.stderr.strip()[:600]}")
    return out


def library() -> dict:
    so = TARGET / "release" / "libframeio_c2c.so"
    a = TARGET / "release" / "libframeio_c2c.a"
    header = ROOT / "include" / "frameio_c2c.h"
    return {"so": so, "a": a, "header": header}


def exported_symbols(so: Path) -> set:
    r = subprocess.run(["nm", "-D", "--defined-only", str(so)], capture_output=True, text=True)
    return {line.split()[-1] for line in r.stdout.splitlines() if line.strip()}


_native_libs = None


def native_static_libs() -> list:
    """What a C program must add when linking the Rust staticlib (from rustc's own --print native-static-libs)."""
    global _native_libs
    if _native_libs is None:
        _native_libs = ["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl", "-lc"]
        try:
            r = subprocess.run(["cargo", "rustc", "--release", "-p", "frameio-c2c", "--lib", "--crate-type", "staticlib",
                                "--", "--print", "native-static-libs"], cwd=ROOT, capture_output=True, text=True,
                               timeout=900)
            m = re.search(r"native-static-libs: (.*)", r.stderr)
            if m:
                _native_libs = m.group(1).split()
        except Exception:  # noqa: BLE001
            pass
    return _native_libs


def build_c_with_library(name: str, need=(), static=False) -> Path:
    lib = library()
    src = BENCH / "c" / f"{name}.c"
    if not lib["header"].exists():
        raise Skip(f"the library's C header {lib['header'].relative_to(ROOT)} does not exist yet")
    if not lib["so"].exists():
        raise Skip(f"{lib['so']} does not exist (the release library did not build)")
    missing = [s for s in need if s not in exported_symbols(lib["so"])]
    if missing:
        raise Skip(f"the library does not export {', '.join(missing)} yet")
    if not src.exists():
        raise Skip(f"bench/c/{name}.c is not written yet")
    out = WORK / "bin" / (name + (f"-static-{static}" if static else ""))
    out.parent.mkdir(parents=True, exist_ok=True)
    if static == "full":  # everything inside, glibc too
        link = ["-static", "-Wl,--gc-sections", str(lib["a"]), "-lpthread", "-lm", "-ldl", "-lc"]
    elif static:  # the library static, libc shared
        link = ["-Wl,--gc-sections", str(lib["a"]), *native_static_libs()]
    else:
        link = ["-L", str(lib["so"].parent), "-lframeio_c2c", f"-Wl,-rpath,{lib['so'].parent}"]
    cmd = ["gcc", *CFLAGS, "-I", str(ROOT / "include"), "-I", str(BENCH / "c"), "-o", str(out), str(src), *link,
           "-lpthread"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise Skip(f"bench/c/{name}.c did not compile against the current header: {r.stderr.strip()[:800]}")
    return out


def curl_stack_size() -> dict:
    """Sizes of the shared objects `curl` loads for HTTP + TLS: libcurl, libssl, libcrypto (the peer footprint)."""
    r = subprocess.run(["ldd", shutil.which("curl") or "/usr/bin/curl"], capture_output=True, text=True)
    files = []
    for line in r.stdout.splitlines():
        m = re.search(r"=> (\S*(libcurl|libssl|libcrypto)\S*)", line)
        if m:
            p = os.path.realpath(m.group(1))
            files.append((p, os.path.getsize(p)))
    return {"files": files, "total": sum(n for _, n in files)}


def release_profile() -> str:
    text = (ROOT / "Cargo.toml").read_text()
    m = re.search(r"\[profile\.release\]\n((?:[^\[\n][^\n]*\n?)*)", text)
    return "; ".join(line.strip() for line in (m.group(1) if m else "").splitlines() if line.strip()) or "(default)"


# --------------------------------------------------------------------------------------------------------
# the fast sink: nginx storing PUT bodies in tmpfs

NGINX_CONF = """\
user root;
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_max_body_size 0;
  client_body_buffer_size 1m;
  client_body_temp_path {shm}/tmp;
  keepalive_requests 100000;
  server {{
    listen {host}:{http_port};
    listen {host}:{https_port} ssl;
    ssl_certificate {dir}/server.pem;
    ssl_certificate_key {dir}/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    # "store": keeps the body (WebDAV PUT into tmpfs) and answers after the last byte is stored
    location /put/ {{ root {shm}/root; dav_methods PUT; create_full_put_path on; }}
    # "discard": reads and drops the body (nginx's discard path), no copy to storage
    location /discard/ {{ return 204; }}
  }}
}}
"""


def make_ca_and_server_cert(d: Path, names=("127.0.0.1",)) -> None:
    """A throwaway CA and a server certificate for the given IPs/hostnames, made with openssl at bench time."""
    d.mkdir(parents=True, exist_ok=True)
    san = ",".join(("IP:" if re.match(r"^[0-9.]+$", n) else "DNS:") + n for n in names)

    def ossl(*a):
        subprocess.run(["openssl", *a], check=True, capture_output=True)
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"), "-days", "2", "-subj", "/CN=fio-bench throwaway CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(d / "server.key"),
         "-out", str(d / "server.csr"), "-subj", f"/CN={names[0]}")
    ext = d / "server.ext"
    ext.write_text(f"subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
         "-CAcreateserial", "-out", str(d / "server.pem"), "-days", "2", "-extfile", str(ext))


class NginxSink:
    def __init__(self, d: Path, netns=None, host="127.0.0.1"):
        self.dir = d
        self.netns, self.host = netns, host
        self.shm = SHM / ("nginx-" + (netns or "lo"))
        self.proc = None

    def __enter__(self):
        if not shutil.which("nginx"):
            raise Skip("nginx is not installed (`make bench` installs nginx-light with apt-get)")
        shutil.rmtree(self.shm, ignore_errors=True)
        (self.shm / "tmp").mkdir(parents=True)
        (self.shm / "root").mkdir(parents=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        make_ca_and_server_cert(self.dir, names=(self.host,))
        self.ca_pem = self.dir / "ca.pem"
        self.http_port, self.https_port = free_port(), free_port()  # free here; a fresh namespace has all free
        conf = self.dir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=self.dir, shm=self.shm, http_port=self.http_port,
                                          https_port=self.https_port, host=self.host))
        argv = ["nginx", "-c", str(conf)]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(self.dir / "stderr.log", "wb"))
        wait_port(self.host, self.http_port, netns=self.netns)
        wait_port(self.host, self.https_port, netns=self.netns)
        log(f"nginx sink: {self.host} http {self.http_port}, https {self.https_port}"
            + (f" (netns {self.netns})" if self.netns else ""))
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.shm, ignore_errors=True)

    def url(self, scheme: str, path: str) -> str:
        port = self.http_port if scheme == "http" else self.https_port
        return f"{scheme}://{self.host}:{port}{path}"

    def clear(self, path: str) -> None:
        try:
            (self.shm / "root" / path.lstrip("/")).unlink()
        except FileNotFoundError:
            pass

    def stored_size(self, path: str):
        p = self.shm / "root" / path.lstrip("/")
        return p.stat().st_size if p.exists() else None

    def describe(self) -> str:
        v = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip().split("/")[-1]
        return f"nginx {v}, 1 worker process"

    def tls_info(self) -> str:
        r = subprocess.run(["curl", "-sv", "-o", "/dev/null", "--cacert", str(self.ca_pem),
                            self.url("https", "/")], capture_output=True, text=True)
        m = re.search(r"SSL connection using (.*)", r.stderr)
        return (f"curl negotiates {m.group(1).strip()}" if m else "cipher unknown") + \
            "; server key ECDSA P-256"


# --------------------------------------------------------------------------------------------------------
# the emulator (optionally inside the shaped link's namespace)

def emulator_bin() -> Path:
    for p in (TARGET / "release" / "fio-emulator", TARGET / "debug" / "fio-emulator"):
        if p.exists():
            return p
    raise Skip("the emulator binary (target/release/fio-emulator) does not exist")


def emulator_kind() -> str:
    p = emulator_bin()
    return "release build" if p.parent.name == "release" else "DEBUG build (the release build was missing)"


class Emulator:
    def __init__(self, netns=None, host="127.0.0.1", extra=(), name="emu", data_root=None):
        self.netns, self.host, self.extra, self.name = netns, host, list(extra), name
        self.data_root = data_root or WORK
        self.proc = None

    def __enter__(self):
        binary = emulator_bin()
        self.data = self.data_root / f"{self.name}-data"
        shutil.rmtree(self.data, ignore_errors=True)
        self.data.mkdir(parents=True)
        argv = [str(binary), "--host", self.host, "--auto-approve", "--poll-interval", "0.1",
                "--signed-headers", "full", "--quiet", "--data-dir", str(self.data), *self.extra]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        self.log_path = WORK / f"{self.name}.log"
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=open(self.log_path, "wb"), text=True)
        line = [None]

        def read():
            line[0] = self.proc.stdout.readline()
        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(30)
        if not line[0]:
            self.__exit__()
            raise Skip(f"the emulator did not start: {self.log_path.read_text()[-600:]}")
        import json
        ready = json.loads(line[0])
        self.api, self.s3, self.ca = ready["api"], ready["s3"], ready.get("ca_cert")
        log(f"emulator {self.name}: api {self.api}, s3 {self.s3}" + (f" (netns {self.netns})" if self.netns else ""))
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(getattr(self, "data", WORK / "none"), ignore_errors=True)

    def assets(self) -> list:
        import json
        argv = ["curl", "-sS", "--max-time", "10", f"{self.api}/_emulator/assets"]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        return json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)

    def reset(self) -> None:
        subprocess.run(self.in_ns(["curl", "-sS", "--max-time", "60", "-X", "POST", f"{self.api}/_emulator/reset"]),
                       capture_output=True, check=True)

    def in_ns(self, argv) -> list:
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else list(argv)


# --------------------------------------------------------------------------------------------------------
# the shaped link: netns + veth + tbf (rate) + fio_netem over NFQUEUE (delay, loss)

class ShapedLink:
    NS = os.environ.get("FIO_BENCH_NS", "fiobench")
    SERVER_IP = "10.231.0.2"

    def __init__(self, rate_mbit=100, delay_ms=20, loss=0.001):
        self.rate_mbit, self.delay_ms, self.loss = rate_mbit, delay_ms, loss
        self.script = BENCH / "net" / "shaped_link.sh"

    def __enter__(self):
        if os.geteuid() != 0:
            raise Skip("the shaped link needs root (network namespace, tc, iptables)")
        env = dict(os.environ, FIO_BENCH_STATE=str(WORK / "net"), FIO_BENCH_NS=self.NS)
        r = subprocess.run(["bash", str(self.script), "up", str(self.rate_mbit), str(self.delay_ms), str(self.loss)],
                           capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise Skip(f"could not build the shaped link: {(r.stderr or r.stdout).strip()[-600:]}")
        self.env = env
        log(r.stdout.strip())
        return self

    def __exit__(self, *exc):
        subprocess.run(["bash", str(self.script), "down"], capture_output=True, env=self.env)
        log_path = WORK / "net" / "netem.log"
        self.netem_stats = log_path.read_text().strip().splitlines()[-1] if log_path.exists() else "?"
        log(f"shaped link down; {self.netem_stats}")

    def describe(self) -> str:
        return (f"{self.rate_mbit} Mbit/s each way (tbf), {self.delay_ms} ms each way = {2 * self.delay_ms} ms RTT "
                f"and {self.loss * 100:g}% packet loss each way (fio_netem on NFQUEUE: this kernel has no sch_netem), "
                f"veth into the namespace `{self.NS}`")
