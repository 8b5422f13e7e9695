#!/usr/bin/env python3
"""frameio-c2c benchmarks against peers measured in the same run (issue 7). Driven by `make bench`.

    python3 bench/run.py [--quick] [--only SECTION[,SECTION...]] [--out bench/RESULTS.md]

Sections: throughput, memory, latency, concurrency, footprint. Each one runs its peers in the same run and
reports ratios. A section whose prerequisites are missing (library symbols, engine, emulator, root for the
network namespace) says so in RESULTS.md instead of inventing a number.
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
WORK = Path(os.environ.get("FIO_BENCH_WORK", "/tmp/fio-bench"))
SHM = Path(os.environ.get("FIO_BENCH_SHM", "/dev/shm/fio-bench"))
MIB = 1024 * 1024
GIB = 1024 * MIB

sys.path.insert(0, str(BENCH / "lib"))
import fiobench  # noqa: E402  (bench/lib/fiobench.py: processes, sink, emulator, shaped link)
from fiobench import Skip, log, run_measured  # noqa: E402


# --------------------------------------------------------------------------------------------------------
# machine and tools

def sh(cmd: str) -> str:
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:  # noqa: BLE001
        return ""


def machine_info() -> dict:
    cpu = sh("lscpu | sed -n 's/^Model name: *//p' | head -1") or platform.processor()
    mem = sh("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "os": sh(". /etc/os-release && echo $PRETTY_NAME"),
        "git": sh(f"git -C {ROOT} rev-parse --short HEAD") + (" (dirty tree)" if sh(f"git -C {ROOT} status --porcelain -- src emulator Cargo.toml") else ""),
        "rustc": sh("rustc --version"),
        "curl": sh("curl --version | head -1"),
        "nginx": sh("nginx -v 2>&1"),
        "python": sh(f"{sys.executable} -c 'import sys,requests; print(sys.version.split()[0], \"requests\", requests.__version__)'"),
        "gcc": sh("gcc --version | head -1"),
        "load_at_start": sh("cut -d' ' -f1-3 /proc/loadavg"),
    }


# --------------------------------------------------------------------------------------------------------
# formatting

def fmt(x, digits=2):
    if x is None:
        return "n/a"
    if isinstance(x, str):
        return x
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def ratio(a, b, digits=2):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.{digits}f}"


def table(headers, rows) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# --------------------------------------------------------------------------------------------------------
# 1. part PUT throughput on loopback

def bench_throughput(args, res: dict) -> str:
    size = args.part_mib * MIB
    reps = args.reps
    libs = fiobench.library()
    SHM.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    mem_file = SHM / "part.bin"       # "memory-ish": tmpfs
    disk_file = WORK / "part.bin"     # a regular file on disk (page cache warm after writing it)
    fiobench.make_random_file(mem_file, size)
    fiobench.make_random_file(disk_file, size, copy_from=mem_file)

    curl_bench = fiobench.build_c("curl_put_bench", ["-lcurl"])
    put_bench = None
    lib_reason = None
    try:
        put_bench = fiobench.build_c_with_library("put_part_bench", need=["fio_put_part", "fio_put_part_fd"])
    except Skip as e:
        lib_reason = str(e)
        log(f"throughput: library sender not available: {lib_reason}")

    sections = []
    verdicts = []
    with fiobench.NginxSink(WORK / "nginx") as sink:
      for sink_kind, sink_path in (("discard", "/discard/part"), ("store", "/put/part")):
        for scheme in ("http", "https"):
            url = sink.url(scheme, sink_path)
            ca = [str(sink.ca_pem)] if scheme == "https" else []
            senders = [
                # (key, label, source, kind, argv)
                ("curl_cli_mem", "curl -T (CLI)", "tmpfs file", "cli",
                 ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", "-T", str(mem_file), url]
                 + (["--cacert", str(sink.ca_pem)] if ca else [])),
                ("curl_cli_file", "curl -T (CLI)", "disk file", "cli",
                 ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", "-T", str(disk_file), url]
                 + (["--cacert", str(sink.ca_pem)] if ca else [])),
                ("libcurl_mem", "libcurl (C, in-process timing)", "memory buffer", "json",
                 [str(curl_bench), url, str(mem_file), "memory"] + ca),
                ("libcurl_file", "libcurl (C, in-process timing)", "disk file", "json",
                 [str(curl_bench), url, str(disk_file), "file"] + ca),
                ("requests_mem", "Python requests", "memory (bytes)", "json",
                 [sys.executable, str(BENCH / "peers" / "put_requests.py"), url, str(mem_file), "memory"] + ca),
                ("requests_file", "Python requests", "disk file", "json",
                 [sys.executable, str(BENCH / "peers" / "put_requests.py"), url, str(disk_file), "file"] + ca),
            ]
            if put_bench:
                senders += [
                    ("fio_mem", "**fio_put_part**", "memory buffer", "json",
                     [str(put_bench), url, str(mem_file), "memory"] + ca),
                    ("fio_fd", "**fio_put_part_fd**", "disk file", "json",
                     [str(put_bench), url, str(disk_file), "fd"] + ca),
                ]
            runs = {k: [] for k, *_ in senders}
            errors = {}
            for rep in range(reps):
                order = senders[rep % len(senders):] + senders[:rep % len(senders)]  # rotate the order each rep
                for key, label, source, kind, argv in order:
                    sink.clear("/put/part")
                    m = run_measured(argv, timeout=300)
                    got = sink.stored_size("/put/part") if sink_kind == "store" else size
                    if m["rc"] != 0 or got != size:
                        errors[key] = (f"rc={m['rc']} stored={got} of {size}; "
                                       + (m["stderr"].strip() or m["stdout"].strip())[:300])
                        continue
                    if kind == "cli":
                        code, secs = m["stdout"].split()
                        secs = float(secs)
                        cpu = m["user"] + m["sys"]  # whole process, includes start-up
                    else:
                        j = json.loads(m["stdout"].strip().splitlines()[-1])
                        secs = j["seconds"]
                        cpu = j["cpu_user"] + j["cpu_sys"]
                    runs[key].append({"seconds": secs, "cpu": cpu,
                                      "threads": None if kind == "cli" else j.get("threads_during")})
                    if kind != "cli" and j.get("threads_during") is not None:
                        res.setdefault("threads_seen", {}).setdefault(key, []).append(j["threads_during"])
                log(f"throughput {sink_kind} {scheme}: rep {rep + 1}/{reps} done")
            summary = {}
            for key, label, source, kind, argv in senders:
                rs = runs[key]
                if not rs:
                    summary[key] = None
                    continue
                secs = median([r["seconds"] for r in rs])
                cpu = median([r["cpu"] for r in rs])
                summary[key] = {
                    "label": label, "source": source, "runs": len(rs),
                    "mb_s": size / secs / 1e6, "mb_s_min": size / max(r["seconds"] for r in rs) / 1e6,
                    "mb_s_max": size / min(r["seconds"] for r in rs) / 1e6,
                    "cpu_s_per_gib": cpu * GIB / size, "command": " ".join(shlex.quote(a) for a in argv),
                }
            res.setdefault("throughput", {})[f"{sink_kind}-{scheme}"] = {"summary": summary, "errors": errors}
            ref_mem, ref_file = summary.get("curl_cli_mem"), summary.get("curl_cli_file")
            ref_lib_mem, ref_lib_file = summary.get("libcurl_mem"), summary.get("libcurl_file")
            rows = []
            for key, label, source, kind, argv in senders:
                s = summary.get(key)
                file_like = "file" in source and "tmpfs" not in source
                ref = ref_file if file_like else ref_mem
                ref_lib = ref_lib_file if file_like else ref_lib_mem
                if not s:
                    rows.append([label, source, "failed: " + errors.get(key, "?").replace("|", "/"), "", "", "", ""])
                    continue
                rows.append([
                    label, source, f"{fmt(s['mb_s'])} ({fmt(s['mb_s_min'])}–{fmt(s['mb_s_max'])})",
                    ratio(s["mb_s"], ref and ref["mb_s"]), ratio(s["mb_s"], ref_lib and ref_lib["mb_s"]),
                    fmt(s["cpu_s_per_gib"], 3), ratio(s["cpu_s_per_gib"], ref and ref["cpu_s_per_gib"]),
                ])
            # verdict against the targets, judged against BOTH curl references (the stricter wins)
            target = 1.0 if scheme == "http" else 0.9
            for key, ref_cli, ref_lib in (("fio_mem", ref_mem, ref_lib_mem), ("fio_fd", ref_file, ref_lib_file)):
                s = summary.get(key)
                if not s or not ref_cli or not ref_lib:
                    continue
                r_tp = min(s["mb_s"] / ref_cli["mb_s"], s["mb_s"] / ref_lib["mb_s"])
                r_best = min(s["mb_s_max"] / ref_cli["mb_s_max"], s["mb_s_max"] / ref_lib["mb_s_max"])
                r_cpu = max(s["cpu_s_per_gib"] / ref_cli["cpu_s_per_gib"], s["cpu_s_per_gib"] / ref_lib["cpu_s_per_gib"])
                ok = r_tp >= target and r_cpu <= 1.0
                verdicts.append(f"{sink_kind} sink, {scheme.upper()}, {s['label'].strip('*')} ({s['source']}): throughput ratio "
                                f"{r_tp:.2f} of medians (best run vs best run: {r_best:.2f}; target ≥ {target}), CPU ratio "
                                f"{r_cpu:.2f} (target ≤ 1.0), each against the stricter of curl -T and libcurl: "
                                f"**{'PASS' if ok else 'FAIL'}**")
            title = (f"{sink_kind} sink, " + ("plain HTTP" if scheme == "http"
                     else "TLS (self-signed CA made at bench time; every client trusts that CA)"))
            sections.append(f"#### {title}\n\n" + table(
                ["sender", "source", f"MB/s, median of {reps} (min–max)", "throughput ratio vs curl -T (same source kind)",
                 "ratio vs libcurl in-process", "CPU s per GiB", "CPU ratio vs curl -T"], rows))
        tls_info = sink.tls_info()
        # the CLI's fixed cost (process start-up + one empty request), so its CPU column can be read fairly
        fixed = []
        for _ in range(5):
            m = run_measured(["curl", "-sS", "-o", "/dev/null", sink.url("http", "/discard/empty")], timeout=30)
            if m["rc"] == 0:
                fixed.append(m["user"] + m["sys"])
        curl_fixed = median(fixed)
    notes = [
        f"Part: {size // MIB} MiB of random bytes, PUT to nginx ({sink.describe()}) on 127.0.0.1. "
        "**discard sink**: nginx reads and drops the body (`return 204`; its request_time shows it read the "
        "whole body by the time the client finished) — the fast sink, where sender differences show. "
        "**store sink**: nginx stores the body in RAM (tmpfs, WebDAV PUT) and answers only after the last byte "
        "is stored, as S3 does; after every PUT the stored size is checked (so every sender is verified to "
        "deliver the whole part); on 2 cores this sink is often the bottleneck.",
        "\"curl -T (CLI)\": time is curl's own `time_total`, CPU is the whole process (start-up included). "
        "The in-process senders (libcurl C program, Python requests, fio_put_part*) time and count CPU "
        "(getrusage, all threads) around the PUT call only, after the source is loaded.",
        "\"memory\" sources: curl CLI reads a tmpfs file; the others PUT from a buffer. \"disk file\": a file on "
        "the root disk, page-cache warm (written just before).",
        f"TLS: {tls_info}.",
        (f"curl CLI fixed cost in this run (start-up + one empty HTTP request, median of 5): "
         f"{curl_fixed * 1000:.1f} ms CPU, i.e. {curl_fixed * GIB / size:.3f} of its CPU s per GiB above."
         if curl_fixed is not None else "curl CLI fixed cost: not measured"),
    ]
    if lib_reason:
        notes.append(f"**fio_put_part / fio_put_part_fd: NOT MEASURED in this run** — {lib_reason}")
    res.setdefault("throughput", {})["verdicts"] = verdicts
    res.setdefault("targets", []).extend(("1. part PUT", v) for v in verdicts)
    head = ("**Against the targets:**\n\n" + "\n".join(f"- {v}" for v in verdicts) + "\n\n") if verdicts else ""
    return head + "\n\n".join(sections) + "\n\n" + "\n".join(f"- {n}" for n in notes)


# --------------------------------------------------------------------------------------------------------
# 5. footprint

def bench_footprint(args, res: dict) -> str:
    rows = []
    notes = []
    peer = fiobench.curl_stack_size()
    so = TARGET / "release" / "libframeio_c2c.so"
    if so.exists():
        stripped = WORK / "libframeio_c2c.stripped.so"
        WORK.mkdir(parents=True, exist_ok=True)
        shutil.copy(so, stripped)
        subprocess.run(["strip", "--strip-all", str(stripped)], check=True)
        s = stripped.stat().st_size
        res.setdefault("footprint", {})["so_stripped"] = s
        rows.append(["libframeio_c2c.so, stripped (HTTP + TLS + JSON, rustls)", f"{s / MIB:.2f} MiB",
                     f"{s / peer['total']:.2f} of libcurl+libssl+libcrypto ({peer['total'] / MIB:.2f} MiB)",
                     "PASS (< 3 MiB)" if s < 3 * MIB else f"FAIL (target < 3 MiB; over by {(s - 3 * MIB) / MIB:.2f} MiB)"])
    else:
        notes.append(f"**.so size: NOT MEASURED** — {so} does not exist (build with `make release`).")
    def stripped_size(binary: Path) -> int:
        out = WORK / (binary.name + ".stripped")
        shutil.copy(binary, out)
        subprocess.run(["strip", "--strip-all", str(out)], check=True)
        return out.stat().st_size
    try:
        s = stripped_size(fiobench.build_c_with_library("footprint_example", need=["fio_client_new"], static="a"))
        res.setdefault("footprint", {})["static_example_stripped"] = s
        rows.append(["C example (bench/c/footprint_example.c) linked with libframeio_c2c.a, libc shared, "
                     "`--gc-sections`, stripped", f"{s / MIB:.2f} MiB",
                     f"{s / peer['total']:.2f} of libcurl+libssl+libcrypto", "(no target)"])
        s = stripped_size(fiobench.build_c_with_library("footprint_example", need=["fio_client_new"], static="full"))
        base = WORK / "bin" / "empty-static"
        (WORK / "empty.c").write_text("int main(void) { return 0; }\n")
        subprocess.run(["gcc", "-O2", "-static", "-o", str(base), str(WORK / "empty.c")], check=True)
        b = stripped_size(base)
        res["footprint"]["full_static_example_stripped"] = s
        rows.append(["the same, fully static (`-static`, glibc inside), stripped", f"{s / MIB:.2f} MiB",
                     f"{s / peer['total']:.2f} of libcurl+libssl+libcrypto",
                     f"an empty fully static C program is {b / MIB:.2f} MiB, so the library adds {(s - b) / MIB:.2f} MiB"])
    except Skip as e:
        notes.append(f"**static C example: NOT MEASURED** — {e}")
    rows.append(["peer: libcurl + libssl + libcrypto shared objects on this machine",
                 f"{peer['total'] / MIB:.2f} MiB", "1.00", ", ".join(f"{Path(p).name} {n / MIB:.2f}" for p, n in peer['files'])])
    if so.exists():
        s = res["footprint"]["so_stripped"]
        res.setdefault("targets", []).append(("5. footprint", f"stripped .so {s / MIB:.2f} MiB (target < 3 MiB): "
                                              f"**{'PASS' if s < 3 * MIB else 'FAIL'}**"))
    out = table(["artifact", "size", "ratio", "note"], rows)
    trows = []
    eng = res.get("threads_engine")
    if eng:
        trows.append(["engine_bench: client made, no upload yet (idle)", eng["idle"], ""])
        trows.append(["engine_bench: during an upload (fio_upload_file, default settings: concurrency 3)",
                      eng["max"], "most seen, sampled every 20 ms"])
    seen = res.get("threads_seen", {})
    for key, label in (("fio_mem", "put_part_bench: during fio_put_part"), ("fio_fd", "put_part_bench: during fio_put_part_fd"),
                       ("libcurl_mem", "peer: libcurl C program during curl_easy_perform"),):
        if seen.get(key):
            trows.append([label, max(seen[key]), "most seen, sampled every 50 ms"])
    if trows:
        out += "\n\n**Threads** (counted in /proc/self/task by the program itself; the sampling thread is not counted)\n\n" + \
            table(["process and moment", "threads", "note"], trows)
    else:
        notes.append("**threads at idle / during an upload: NOT MEASURED in this run** — they come from the "
                     "throughput and memory sections, which did not run here.")
    prof = fiobench.release_profile()
    notes.append(f"Release profile in Cargo.toml: `{prof}`.")
    return out + "\n\n" + "\n".join(f"- {n}" for n in notes)


# --------------------------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions")
    ap.add_argument("--only", default="", help="comma-separated sections")
    ap.add_argument("--out", default=str(BENCH / "RESULTS.md"))
    args = ap.parse_args()
    args.reps = 3 if args.quick else 9
    args.part_mib = 256
    args.mem_sizes = [64 * MIB, 1 * GIB] if args.quick else [64 * MIB, 1 * GIB, 4 * GIB]
    args.rec_seconds = 20 if args.quick else 60
    args.rec_mbit = 50
    args.lat_reps = 1 if args.quick else 2
    args.link = {"rate_mbit": 100, "delay_ms": 20, "loss": 0.001}
    args.conc_mib = 64 if args.quick else 256
    only = set(filter(None, args.only.split(",")))

    info = machine_info()
    res = {"machine": info, "quick": args.quick}
    log(f"machine: {info['nproc']} cores, {info['cpu']}, kernel {info['kernel']}")
    sections = [
        ("throughput", "1. Part PUT throughput on loopback", bench_throughput),
        ("memory", "2. Peak RSS through the engine", fiobench_section("memory")),
        ("latency", "3. Real-time tail latency over a shaped link", fiobench_section("latency")),
        ("concurrency", "4. Throughput at concurrency 1, 2, 4, 8 over the shaped link", fiobench_section("concurrency")),
        ("footprint", "5. Footprint", bench_footprint),
    ]
    bodies = []
    for key, title, fn in sections:
        if only and key not in only:
            continue
        log(f"=== {title}")
        t0 = time.time()
        try:
            body = fn(args, res)
        except Skip as e:
            body = f"**NOT RUN in this run** — {e}"
            log(f"{key}: skipped: {e}")
        except Exception as e:  # noqa: BLE001  (a broken section must not hide the others)
            import traceback
            traceback.print_exc()
            body = f"**FAILED in this run** — {type(e).__name__}: {e}"
        bodies.append((key, title, body, time.time() - t0))
    info["load_at_end"] = sh("cut -d' ' -f1-3 /proc/loadavg")
    write_results(Path(args.out), args, info, bodies, res)
    (BENCH / "results.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    log(f"wrote {args.out}")
    return 0


def fiobench_section(name):
    """Sections 2-4 live in bench/lib/sections.py (they need the emulator, the engine and the shaped link)."""
    def run(args, res):
        import sections
        return getattr(sections, name)(args, res)
    return run


def write_results(path: Path, args, info, bodies, res):
    cmd = "make bench-quick" if args.quick else "make bench"
    head = [
        "# Benchmarks: frameio-c2c against its peers",
        "",
        f"Generated by `{cmd}` (`python3 bench/run.py{' --quick' if args.quick else ''}`) on {info['date_utc']}. "
        "Every ratio compares figures measured in this same run on this same machine.",
        "",
        table(["machine", ""], [
            ["CPU", f"{info['cpu']}, **{info['nproc']} cores** (shared: other work on the machine competes for them)"],
            ["memory", info["memory"]], ["kernel", info["kernel"]], ["OS", info["os"]],
            ["library commit", info["git"]], ["rustc", info["rustc"]], ["curl", info["curl"]],
            ["nginx", info["nginx"]], ["python", info["python"]], ["gcc", info["gcc"]],
            ["load average at start / end", f"{info['load_at_start']} / {info.get('load_at_end', '?')}"],
            ["priority", f"every benchmark process (ours and the peers') at nice {os.getpriority(os.PRIO_PROCESS, 0)}"],
        ]),
        "",
    ]
    body = []
    targets = res.get("targets", [])
    if targets:
        body += ["## The issue's targets at a glance (this run)", ""]
        body += [f"- {sec}: {v}" for sec, v in targets]
        body += [""]
    for key, title, text, secs in bodies:
        body += [f"## {title}", "", text, "", f"_(section took {secs:.0f} s)_", ""]
    analysis = BENCH / "ANALYSIS.md"
    if analysis.exists() and not args.only:
        body += ["---", "", "_The analysis below is written by hand (bench/ANALYSIS.md) for the run it names; if the "
                 "tables above come from a later run, read it against them._", "", analysis.read_text()]
    path.write_text("\n".join(head + body))


if __name__ == "__main__":
    sys.exit(main())
