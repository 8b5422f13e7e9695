"""Sections 2-4 of the benchmarks: they need the emulator, the upload engine and the shaped link.

The engine is driven by bench/c/engine_bench.c (a C program using the public C API), whose contract is:

    engine_bench MODE --path P [--concurrency N] [--mbit R --seconds S --source file|push]
    env: FIO_BENCH_API, FIO_BENCH_ACCESS_TOKEN, FIO_BENCH_REFRESH_TOKEN, [FIO_BENCH_CA]
    MODE file:   upload the complete file P through the engine (file source), default settings
    MODE push:   read P in 1 MiB pieces and push them with fio_upload_write (bytes source), default settings
    MODE record: record for S seconds at R Mbit/s (25 frames a second) into P, feeding the engine as it goes
                 (file source: fio_upload_file_grew after each frame; push: fio_upload_write of each frame)
    prints one JSON line: bytes, seconds, t_last_byte, t_finished (CLOCK_MONOTONIC), threads_idle,
    threads_max, vmhwm_kib, cpu_user, cpu_sys, status, asset_id, ...
"""
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import c2c
import fiobench
from fiobench import MIB, SHM, WORK, Emulator, NginxSink, ShapedLink, Skip, log, run_measured

BENCH = fiobench.BENCH
GIB = 1024 * MIB
ENGINE_SYMBOLS = ["fio_upload_start", "fio_upload_write", "fio_upload_file_grew", "fio_upload_finish",
                  "fio_upload_free", "fio_client_set_tokens"]


def table(headers, rows):
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def engine_binary():
    return fiobench.build_c_with_library("engine_bench", need=ENGINE_SYMBOLS)


def engine_env(emu: Emulator, tokens: dict) -> dict:
    env = dict(os.environ)
    env.update(FIO_BENCH_API=emu.api, FIO_BENCH_CLIENT_ID=tokens["client_id"],
               FIO_BENCH_ACCESS_TOKEN=tokens["access_token"],
               FIO_BENCH_REFRESH_TOKEN=tokens.get("refresh_token", ""))
    if emu.ca:
        env["FIO_BENCH_CA"] = emu.ca
    return env


def last_json(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"no JSON line in output: {text[-300:]}")


class Watcher:
    """watch_complete.py next to the emulator: when did the asset complete, on CLOCK_MONOTONIC."""

    def __init__(self, emu: Emulator, timeout=900):
        self.emu = emu
        exclude = ",".join(a["id"] for a in emu.assets())
        ready = WORK / "watcher.ready"
        ready.unlink(missing_ok=True)
        self.proc = subprocess.Popen(emu.in_ns([sys.executable, str(BENCH / "lib" / "watch_complete.py"), emu.api,
                                                "--timeout", str(timeout), "--exclude", exclude,
                                                "--ready-file", str(ready)]),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(200):
            if ready.exists():
                break
            time.sleep(0.05)

    def result(self, timeout=900) -> dict:
        out, err = self.proc.communicate(timeout=timeout)
        try:
            return last_json(out)
        except ValueError:
            raise RuntimeError(f"watcher failed: {err[-400:]}")


def server_timeline(emu: Emulator, asset_id: str, t_ref: float) -> dict:
    """From the emulator's request log: when (seconds after t_ref, CLOCK_MONOTONIC) the server saw the last
    parts registration and the start and end of the last part PUT of this asset."""
    try:
        def get(path):
            r = subprocess.run(emu.in_ns(["curl", "-sS", "--max-time", "10", f"{emu.api}{path}"]),
                               capture_output=True, text=True, check=True)
            return json.loads(r.stdout)
        t_before = time.monotonic()
        up = get("/_emulator/health")["uptime_ms"]
        t_now = (t_before + time.monotonic()) / 2
        reqs = get("/_emulator/requests")

        def mono(ms):
            return t_now - (up - ms) / 1000.0 - t_ref
        regs = [r for r in reqs if r["method"] == "POST" and asset_id in r["path"] and "realtime_upload" in r["path"]]
        puts = [r for r in reqs if r["method"] == "PUT" and asset_id in r["path"]]
        out = {}
        if regs:
            out["last_register"] = mono(max(r["time_ms"] for r in regs))
        if puts:
            last = max(puts, key=lambda r: r["time_ms"])
            out["last_put_start"] = mono(last["time_ms"])
            out["last_put_end"] = mono(last["time_ms"] + last["duration_ms"])
            # parts other than the last still on the wire when the recording ended share the link with it
            others = [r for r in puts if r is not last and r.get("status") == 200
                      and mono(r["time_ms"] + r["duration_ms"]) > 0]
            if others:
                out["others_in_flight"] = len(others)
                out["others_bytes"] = sum(r.get("content_length") or 0 for r in others)
                out["others_end"] = max(mono(r["time_ms"] + r["duration_ms"]) for r in others)
        return out
    except Exception as e:  # noqa: BLE001  (diagnostic only)
        return {"error": str(e)}


def final_part_size(parts: list):
    fin = [p for p in parts if p.get("is_final")]
    if fin:
        return fin[0]["size"]
    return max(parts, key=lambda p: p["number"])["size"] if parts else None


# --------------------------------------------------------------------------------------------------------
# 2. memory

def documented_default_budget():
    """The default buffer budget as the C header documents it (fio_upload_options_set_buffer_budget)."""
    import re
    text = (fiobench.ROOT / "include" / "frameio_c2c.h").read_text()
    m = re.search(r"most bytes held in memory at once, in bytes \(default (\d+) MiB", text)
    return int(m.group(1)) * MIB if m else None

def memory(args, res):
    binary = engine_binary()
    rows = []
    thread_rows = []
    data = {}
    with Emulator(name="emu-mem") as emu:
        tokens = c2c.pair(emu.api, "fio-bench-memory")
        env = engine_env(emu, tokens)
        naive_tokens = c2c.pair(emu.api, "fio-bench-memory-naive")
        for i, size in enumerate(args.mem_sizes):
            path = WORK / f"mem-{size // MIB}MiB.bin"
            fiobench.make_random_file(path, size)
            if i:  # drop the stored objects of the previous size (disk space), then pair again
                emu.reset()
                tokens = c2c.pair(emu.api, "fio-bench-memory")
                env = engine_env(emu, tokens)
                naive_tokens = c2c.pair(emu.api, "fio-bench-memory-naive")
            row = {}
            for mode in ("file", "push"):
                m = run_measured([str(binary), mode, "--path", str(path)], env=env, timeout=1800)
                if m["rc"] != 0:
                    row[mode] = {"error": f"rc={m['rc']}: {(m['stderr'] or m['stdout']).strip()[-400:]}"}
                    continue
                j = last_json(m["stdout"])
                row[mode] = {"maxrss_kib": j["vmhwm_kib"], "seconds": j.get("seconds"), "json": j}
                log(f"memory {size // MIB} MiB {mode}: peak RSS {j['vmhwm_kib'] / 1024:.1f} MiB, "
                    f"{size / j['seconds'] / 1e6:.0f} MB/s")
            # peer: the naive Python uploader (sequential, like Frame.io's client) on the same file
            nm = run_measured([sys.executable, str(BENCH / "peers" / "naive_upload.py"), emu.api,
                               naive_tokens["access_token"], str(path), "--threads", "1"], timeout=1800)
            row["naive"] = ({"maxrss_kib": last_json(nm["stdout"])["vmhwm_kib"]} if nm["rc"] == 0
                            else {"error": f"rc={nm['rc']}: {nm['stderr'][-300:]}"})
            data[size] = row
        # diagnosis: the same pushed-bytes upload with glibc's mmap threshold pinned at its initial 128 KiB
        # (glibc otherwise raises it after the first large free, so freed part buffers stay in the heap)
        pushed = [x for x in args.mem_sizes if "maxrss_kib" in data[x].get("push", {})]
        diag_size = max(pushed, key=lambda x: data[x]["push"]["maxrss_kib"]) if pushed else None
        diag = None
        if diag_size:
            denv = dict(env, MALLOC_MMAP_THRESHOLD_="131072")
            m = run_measured([str(binary), "push", "--path", str(WORK / f"mem-{diag_size // MIB}MiB.bin")], env=denv,
                             timeout=1800)
            if m["rc"] == 0:
                diag = (diag_size, last_json(m["stdout"])["vmhwm_kib"], data[diag_size]["push"]["maxrss_kib"])
    res["memory"] = {str(k): v for k, v in data.items()}
    base = data[args.mem_sizes[0]]

    def cell(r, key):
        x = r.get(key, {})
        return f"{x['maxrss_kib'] / 1024:.1f}" if "maxrss_kib" in x else "failed: " + x.get("error", "?")[:200]

    def growth(r, key):
        a, b = r.get(key, {}).get("maxrss_kib"), base.get(key, {}).get("maxrss_kib")
        return f"{a / b:.2f}" if a and b else "n/a"
    for size in args.mem_sizes:
        r = data[size]
        rows.append([f"{size / MIB:,.0f} MiB" if size < GIB else f"{size / GIB:g} GiB",
                     cell(r, "file"), growth(r, "file"), cell(r, "push"), growth(r, "push"), cell(r, "naive"),
                     (f"{r['naive']['maxrss_kib'] / r['file']['maxrss_kib']:.1f}"
                      if "maxrss_kib" in r.get("naive", {}) and "maxrss_kib" in r.get("file", {}) else "n/a")])
    file_peaks = [data[s]["file"]["maxrss_kib"] for s in args.mem_sizes if "maxrss_kib" in data[s].get("file", {})]
    push_peaks = [data[s]["push"]["maxrss_kib"] for s in args.mem_sizes if "maxrss_kib" in data[s].get("push", {})]
    budget = documented_default_budget()
    peak_buf = max((data[s].get("push", {}).get("json", {}).get("peak_bytes_buffered", 0) for s in args.mem_sizes),
                   default=0)
    verdict = []
    if file_peaks:
        mx = max(file_peaks) / 1024
        grow = (max(file_peaks) - file_peaks[0]) / 1024
        verdict.append(f"file source: bound {mx:.1f} MiB over all sizes (target < 16 MiB: **{'PASS' if mx < 16 else 'FAIL'}**); "
                       f"from the smallest to the largest file it grows by {grow:.1f} MiB (flat, taken here as within "
                       f"1 MiB: **{'PASS' if grow <= 1 else 'FAIL'}**)")
    if push_peaks:
        mx = max(push_peaks) / 1024
        if budget:
            lim = budget / MIB + 8
            verdict.append(f"pushed bytes: bound {mx:.1f} MiB with the default buffer budget of {budget / MIB:g} MiB "
                           f"(as the header documents it) (target budget + 8 = {lim:g} MiB: "
                           f"**{'PASS' if mx <= lim else 'FAIL'}**); from the smallest to the largest file it grows by "
                           f"{(max(push_peaks) - push_peaks[0]) / 1024:.1f} MiB; the engine's own counter of the most "
                           f"bytes it held at once: {peak_buf / MIB:.1f} MiB")
        else:
            verdict.append(f"pushed bytes: bound {mx:.1f} MiB (the program did not report the buffer budget)")
    # threads, for the footprint section
    j = (data[args.mem_sizes[0]].get("file") or {}).get("json")
    if j:
        res["threads_engine"] = {"idle": j.get("threads_idle"), "max": j.get("threads_max")}
    res.setdefault("targets", []).extend(("2. memory", v) for v in verdict)
    if diag:
        verdict.append(f"diagnosis, pushed bytes, {diag[0] // MIB} MiB, run again with `MALLOC_MMAP_THRESHOLD_=131072` "
                       f"(glibc no longer raises its mmap threshold after freeing a large block, so freed part "
                       f"buffers go back to the system): peak RSS {diag[1] / 1024:.1f} MiB instead of "
                       f"{diag[2] / 1024:.1f} MiB")
    return (table(["file size", "engine, file source: peak RSS MiB", "growth vs smallest",
                   "engine, pushed bytes: peak RSS MiB", "growth vs smallest",
                   "peer: naive Python uploader (sequential, Frame.io style): peak RSS MiB",
                   "naive / engine (file)"], rows)
            + "\n\n" + "\n".join(f"- {v}" for v in verdict)
            + "\n- Peak RSS is the process's VmHWM (/proc/self/status) read by the program itself just before it "
              "exits: the whole process (C program, libc, the library's code and heap, every thread's stack). "
              "(wait4's ru_maxrss is not used: it also counts the parent's image from before exec.) Uploads go "
              f"to the emulator on loopback ({fiobench.emulator_kind()})."
            + "\n- Files are random bytes on the root disk; pushed bytes are read from that file in 1 MiB pieces "
              "by the C program (its 1 MiB buffer is included).")


# --------------------------------------------------------------------------------------------------------
# 3. real-time tail latency

def latency(args, res):
    binary = engine_binary()
    link = args.link
    out_rows = []
    data = {}
    with ShapedLink(link["rate_mbit"], link["delay_ms"], link["loss"]) as sl:
        with Emulator(netns=sl.NS, host=sl.SERVER_IP, name="emu-lat", data_root=SHM) as emu:
            rec = WORK / "recording.mov"
            engine_runs = []
            for source in [src for _ in range(args.lat_reps) for src in ("file", "push")]:
                emu.reset()  # free the previous run's objects (tmpfs) and its log; tokens go too
                env = engine_env(emu, c2c.pair(emu.api, "fio-bench-latency"))
                rec.unlink(missing_ok=True)
                w = Watcher(emu)
                m = run_measured([str(binary), "record", "--path", str(rec), "--mbit", str(args.rec_mbit),
                                  "--seconds", str(args.rec_seconds), "--source", source], env=env,
                                 timeout=args.rec_seconds + 600)
                if m["rc"] != 0:
                    w.proc.kill()
                    engine_runs.append({"source": source, "error": f"rc={m['rc']}: {(m['stderr'] or m['stdout'])[-400:]}"})
                    continue
                j = last_json(m["stdout"])
                c = w.result()
                tail = c["t_complete"] - j["t_last_byte"]
                last = final_part_size(c.get("parts", []))
                # the bytes the engine had not cut into a part when the recording ended must cross the link after
                # the end; with one tail part that is exactly the final part
                tail_bytes = j["bytes"] - j["cut_before_end"] if j.get("cut_before_end") is not None else last
                n_tail = len(c.get("parts", [])) - j.get("parts_before_end", 0)
                bound = tail_bytes * 8 / (link["rate_mbit"] * 1e6) + 2 * link["delay_ms"] / 1000
                assembly = c["t_complete"] - c["t_completing"] if c.get("t_completing") else None
                tl = server_timeline(emu, c["id"], j["t_last_byte"])
                engine_runs.append({"source": source, "tail": tail, "last_part": last, "bound": bound,
                                    "tail_bytes": tail_bytes, "tail_parts": n_tail,
                                    "assembly": assembly, "late_frames": j.get("late_frames"), "timeline": tl,
                                    "max_feed_block": j.get("max_feed_block"),
                                    "bytes": j["bytes"], "parts": len(c.get("parts", [])), "state": c.get("state"),
                                    "finish_returned_after": j.get("t_finished", 0) - j["t_last_byte"]})
                log(f"latency engine ({source}): tail {tail:.3f} s, bound {bound}")
            size = rec.stat().st_size if rec.exists() else int(args.rec_mbit * 1e6 / 8 * args.rec_seconds)
            naive_runs = []
            for threads in (1, 5):
                emu.reset()
                naive_tokens = c2c.pair(emu.api, "fio-bench-latency-naive")
                w = Watcher(emu)
                t_last = time.monotonic()  # the recording has just ended: the naive uploader starts now
                m = run_measured([sys.executable, str(BENCH / "peers" / "naive_upload.py"), emu.api,
                                  naive_tokens["access_token"], str(rec), "--threads", str(threads)], timeout=900)
                if m["rc"] != 0:
                    w.proc.kill()
                    naive_runs.append({"threads": threads, "error": m["stderr"][-300:]})
                    continue
                c = w.result()
                naive_runs.append({"threads": threads, "tail": c["t_complete"] - t_last, "state": c.get("state"),
                                   "assembly": c["t_complete"] - c["t_completing"] if c.get("t_completing") else None,
                                   "parts": len(c.get("parts", []))})
                log(f"latency naive ({threads} threads): tail {c['t_complete'] - t_last:.3f} s")
    data = {"engine": engine_runs, "naive": naive_runs, "netem": sl.netem_stats, "bytes": size}
    res["latency"] = data
    best_naive = min((n["tail"] for n in naive_runs if "tail" in n), default=None)

    def timeline_text(tl):
        if "last_put_start" not in tl:
            return ""
        text = (f"server saw the final registration at +{tl.get('last_register', float('nan')) * 1000:.0f} ms, the "
                f"final PUT's headers at +{tl['last_put_start'] * 1000:.0f} ms, its 200 (after assembly) at "
                f"+{tl['last_put_end'] * 1000:.0f} ms")
        if tl.get("others_in_flight"):
            text += (f"; {tl['others_in_flight']} earlier part(s) of {tl['others_bytes'] / MIB:.2f} MiB still on the "
                     f"wire at the end (last 200 at +{tl['others_end'] * 1000:.0f} ms)")
        else:
            text += "; no earlier part on the wire at the end"
        return text

    def asm(x):
        return f"{x['assembly']:.3f}" if x.get("assembly") is not None else "n/a (< 5 ms or not seen)"
    for e in engine_runs:
        label = ("**engine**, growing file (fio_upload_file_grew)" if e["source"] == "file"
                 else "**engine**, pushed bytes (fio_upload_write)")
        if "error" in e:
            out_rows.append([label, "failed: " + e["error"].replace("|", "/")[:300], "", "", "", "", "", ""])
            continue
        net = e["tail"] - (e["assembly"] or 0)
        out_rows.append([
            label, f"{e['tail']:.3f}", asm(e),
            f"{e['bound']:.3f} ({e['tail_bytes'] / MIB:.2f} MiB after the last cut, sent as {e['tail_parts']} part(s); "
            f"final part {e['last_part'] / MIB:.2f} MiB)",
            f"{e['tail'] / e['bound']:.2f} ({'PASS' if e['tail'] <= 1.5 * e['bound'] else 'FAIL'} ≤ 1.5)",
            f"{net / e['bound']:.2f}",
            f"{best_naive / e['tail']:.1f} ({'PASS' if best_naive >= 5 * e['tail'] else 'FAIL'} ≥ 5)" if best_naive else "n/a",
            f"{e['parts']} parts, asset {e['state']}; frames late > 40 ms: {e.get('late_frames')}; "
            f"longest feed call {e.get('max_feed_block', 0) * 1000:.1f} ms; " + timeline_text(e.get("timeline") or {}),
        ])
    for n in naive_runs:
        label = ("naive uploader after the recording ends, sequential parts"
                 if n["threads"] == 1 else "naive uploader after the recording ends, 5 threads (the official SDK's pool)")
        if "error" in n:
            out_rows.append([label, "failed: " + n["error"].replace("|", "/")[:300], "", "", "", "", "", ""])
            continue
        out_rows.append([label, f"{n['tail']:.3f}", asm(n), "", "", "",
                         "1.0" if n["tail"] == best_naive else f"{best_naive / n['tail']:.2f}",
                         f"{n['parts']} parts, asset {n['state']}"])
    for e in engine_runs:
        if "tail" in e:
            res.setdefault("targets", []).append(("3. tail latency", (
                f"engine, {e['source']} source: tail {e['tail']:.3f} s = {e['tail'] / e['bound']:.2f} x the physical "
                f"bound (target ≤ 1.5: **{'PASS' if e['tail'] <= 1.5 * e['bound'] else 'FAIL'}**); naive / engine = "
                + (f"{best_naive / e['tail']:.1f} (target ≥ 5: **{'PASS' if best_naive >= 5 * e['tail'] else 'FAIL'}**)"
                   if best_naive else "n/a"))))
    mb = size / 1e6
    return (table(["uploader", "tail latency s (last byte written → asset complete in the emulator)",
                   "of which the emulator assembling the object after the last byte arrived, s",
                   "physical bound s (bytes after the engine's last cut before the end / link rate + 1 RTT)", "tail / bound (target ≤ 1.5)",
                   "(tail − assembly) / bound", "naive (best) / this (target ≥ 5)", "notes"], out_rows)
            + f"\n\n- Recording: {args.rec_seconds} s at {args.rec_mbit} Mbit/s, 25 frames a second "
              f"({mb:,.0f} MB), written by the C program in real time; the engine uploads while it records."
            + f"\n- Link: {sl.describe()}. Counters: `{sl.netem_stats}`."
            + f"\n- Emulator ({fiobench.emulator_kind()}, objects in tmpfs, reset before each upload) inside the namespace; the completion time is read by a watcher polling "
              "the emulator's control API every 5 ms from inside the namespace (not across the link), on the "
              "same CLOCK_MONOTONIC as the recorder. The emulator appends each part to the object as it arrives and "
              "completes by appending what is left (emulator/src/assemble.rs) before it marks the asset complete; "
              "the watcher also notes when every part had arrived, so that server-side share is shown on its own."
            + "\n- The physical bound counts only the bytes after the last cut. When an earlier part is still on the "
              "wire at the end (the notes say so), its remaining bytes share the link with the final part and the "
              "final PUT's headers queue behind them in the shaper: the bound is then not reachable by any uploader "
              "that cuts parts, and the notes show by how much."
            + "\n- The naive uploader is bench/peers/naive_upload.py (requests): basic asset with the file size, "
              "chunk = ceil(size / len(upload_urls)), each chunk read into memory and PUT, no retries — what "
              "Frame.io's Python client does. It starts the moment the recording ends.")


# --------------------------------------------------------------------------------------------------------
# 4. concurrency over the shaped link

def concurrency(args, res):
    binary = engine_binary()
    link = args.link
    size = args.conc_mib * MIB
    path = WORK / f"conc-{args.conc_mib}MiB.bin"
    fiobench.make_random_file(path, size)
    rows = []
    data = {}
    with ShapedLink(link["rate_mbit"], link["delay_ms"], link["loss"]) as sl:
        # peer 1: one curl -T stream over the same link to nginx inside the namespace
        with NginxSink(WORK / "nginx-ns", netns=sl.NS, host=sl.SERVER_IP) as sink:
            url = sink.url("http", "/put/part")
            m = run_measured(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", "-T", str(path), url],
                             timeout=900)
            if m["rc"] == 0 and sink.stored_size("/put/part") == size:
                data["curl"] = size / float(m["stdout"].split()[1])
        with Emulator(netns=sl.NS, host=sl.SERVER_IP, name="emu-conc", data_root=SHM) as emu:
            def fresh():
                emu.reset()  # free the previous upload's objects (tmpfs); tokens go too
                return (engine_env(emu, c2c.pair(emu.api, "fio-bench-concurrency")),
                        c2c.pair(emu.api, "fio-bench-concurrency-naive"))
            for n in (1, 2, 4, 8):
                env, naive_tokens = fresh()
                m = run_measured([str(binary), "file", "--path", str(path), "--concurrency", str(n)], env=env,
                                 timeout=900)
                if m["rc"] != 0:
                    data[f"engine{n}"] = {"error": (m["stderr"] or m["stdout"])[-300:]}
                    continue
                j = last_json(m["stdout"])
                data[f"engine{n}"] = size / j["seconds"]
                log(f"concurrency {n}: {size / j['seconds'] / 1e6:.2f} MB/s")
            env, naive_tokens = fresh()
            m = run_measured([str(binary), "file", "--path", str(path), "--basic", "1"], env=env, timeout=900)
            if m["rc"] == 0:
                data["engine_basic"] = size / last_json(m["stdout"])["seconds"]
                log(f"concurrency basic: {data['engine_basic'] / 1e6:.2f} MB/s")
            else:
                data["engine_basic"] = {"error": (m["stderr"] or m["stdout"])[-300:]}
            for threads in (1, 5):
                env, naive_tokens = fresh()
                m = run_measured([sys.executable, str(BENCH / "peers" / "naive_upload.py"), emu.api,
                                  naive_tokens["access_token"], str(path), "--threads", str(threads)], timeout=900)
                if m["rc"] == 0:
                    data[f"naive{threads}"] = size / last_json(m["stdout"])["seconds"]
                else:
                    data[f"naive{threads}"] = {"error": m["stderr"][-300:]}
    res["concurrency"] = {k: v for k, v in data.items()}
    line = link["rate_mbit"] * 1e6 / 8
    curl = data.get("curl")

    def row(label, key):
        v = data.get(key)
        if v is None or isinstance(v, dict):
            return [label, "failed: " + (v or {}).get("error", "did not run").replace("|", "/")[:300], "", ""]
        return [label, f"{v / 1e6:.2f}", f"{v / line:.2f}", f"{v / curl:.2f}" if curl else "n/a"]
    for n in (1, 2, 4, 8):
        rows.append(row(f"**engine**, concurrency {n}", f"engine{n}"))
    rows.append(row("**engine**, basic asset (the server's 25 MiB parts), default concurrency (3)", "engine_basic"))
    rows.append(row("peer: curl -T, one stream, to nginx across the same link", "curl"))
    rows.append(row("peer: naive Python uploader, sequential", "naive1"))
    rows.append(row("peer: naive Python uploader, 5 threads (official SDK pool)", "naive5"))
    return (table(["sender", "MB/s", "ratio vs link rate", "ratio vs curl (1 stream)"], rows)
            + f"\n\n- {args.conc_mib} MiB file (random bytes) uploaded as a complete file through the engine with a "
              "file source (`fio_upload_file`, real-time asset: the library's part plan, 5 MiB parts at this size); "
              "only the part concurrency changes. MB/s = file bytes / wall time of the upload call, which includes "
              "the asset create and the emulator assembling the object before it answers the last part (curl's "
              "nginx does neither). The naive uploader's time includes the same two steps. "
              f"Emulator: {fiobench.emulator_kind()}."
            + f"\n- Link: {sl.describe()}; link rate = {line / 1e6:.1f} MB/s. Counters: `{sl.netem_stats}`.")
