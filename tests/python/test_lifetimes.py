"""Object lifetimes across threads: callbacks survive garbage collection, close() while another
thread is inside a call, closing from a callback, dropping objects, Ctrl-C."""

from __future__ import annotations

import gc
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import List

import pytest

from conftest import ROOT, SECRET
import frameio_c2c as fio

MiB = 1024 * 1024


def test_callbacks_survive_garbage_collection(make_client, emulator):
    seen_tokens: List[fio.Tokens] = []
    seen_progress: List[fio.Progress] = []
    # The lambdas are referenced only by the package's objects.
    c = make_client(on_tokens=lambda t: seen_tokens.append(t), on_log=lambda lv, m: None, log_level=fio.LogLevel.TRACE)
    gc.collect()
    with c.pair() as p:
        p.wait(timeout=30)
    assert len(seen_tokens) == 1
    data = os.urandom(11 * MiB)
    up = c.upload("gc.mov", "video/quicktime", progress=lambda pr: seen_progress.append(pr), progress_interval=0.01)
    for i in range(0, len(data), MiB):
        up.write(data[i : i + MiB])
        gc.collect()
    up.finish()
    up.close()
    assert seen_progress and seen_progress[-1].complete
    assert emulator.wait_asset_state(up.asset_id)["sha256"] == hashlib.sha256(data).hexdigest()


def test_close_while_another_thread_is_blocked_in_write(paired):
    up = paired.upload("close.mov", "video/quicktime", bandwidth_limit=2 * MiB, buffer_budget=10 * MiB + 1)
    result: List[BaseException] = []
    data = os.urandom(40 * MiB)

    def writer():
        try:
            up.write(data)
        except BaseException as e:
            result.append(e)

    t = threading.Thread(target=writer)
    t.start()
    deadline = time.monotonic() + 20
    while up.stats.bytes_recorded < 10 * MiB and time.monotonic() < deadline:
        time.sleep(0.02)  # until the write is in, and blocked on the full budget
    assert t.is_alive()
    t0 = time.monotonic()
    up.close()  # cancels, waits for the blocked write to return, then frees
    assert time.monotonic() - t0 < 5
    t.join(10)
    assert not t.is_alive()
    assert len(result) == 1 and isinstance(result[0], fio.CancelledError)
    assert up.closed
    up.cancel()  # no-op once closed
    with pytest.raises(fio.StateError):
        up.write(b"x")


def test_upload_outlives_its_client(make_client, emulator):
    c = make_client()
    with c.pair() as p:
        p.wait(timeout=30)
    data = os.urandom(6 * MiB + 5)
    up = c.upload("orphan.mov", "video/quicktime")
    c.close()
    up.write(data)
    up.finish()
    up.close()
    assert emulator.wait_asset_state(up.asset_id)["sha256"] == hashlib.sha256(data).hexdigest()


def test_close_from_inside_the_progress_callback(paired):
    holder: List[fio.Upload] = []

    def progress(p: fio.Progress):
        if p.bytes_sent > 0 and holder:
            holder[0].close()  # on the library's monitor thread

    up = paired.upload("selfclose.mov", "video/quicktime", progress=progress, progress_interval=0.02,
                       bandwidth_limit=4 * MiB)
    holder.append(up)
    up.write(os.urandom(8 * MiB))
    with pytest.raises(fio.FrameioError):  # cancelled, or closed under us
        up.finish()
    deadline = time.monotonic() + 5
    while not up.closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert up.closed


def test_dropping_a_running_upload_cancels_and_frees_it(paired, emulator):
    up = paired.upload("dropped.mov", "video/quicktime", bandwidth_limit=2 * MiB,
                       progress=lambda p: None, progress_interval=0.01)
    up.write(os.urandom(8 * MiB))
    asset_id = up.asset_id
    del up
    gc.collect()
    time.sleep(0.2)
    assert emulator.asset(asset_id)["state"] != "uploaded"


def test_ctrl_c_cancels_finish(emulator, tmp_path):
    """SIGINT while the main thread waits in finish(): the upload is cancelled and KeyboardInterrupt
    is raised promptly (the wait runs on a helper thread so the signal is seen)."""
    script = tmp_path / "ctrlc.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(ROOT / 'python')!r})
        import frameio_c2c as fio
        c = fio.Client("ctrlc-{os.getpid()}", {SECRET!r}, client_version="1.0.0",
                       base_url={emulator.api!r}, allow_http=True)
        with c.pair() as p:
            p.wait(timeout=30)
        up = c.upload("ctrlc.mov", "video/quicktime", bandwidth_limit=1024 * 1024)
        up.write(os.urandom(8 * 1024 * 1024))
        print("FINISHING", up.asset_id, flush=True)
        t0 = time.monotonic()
        try:
            up.finish()
            print("FINISHED")
        except KeyboardInterrupt:
            print("INTERRUPTED", round(time.monotonic() - t0, 2), type(up.error).__name__, flush=True)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("FINISHING"), line
    asset_id = line.split()[1]
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=20)
    assert "INTERRUPTED" in out and "CancelledError" in out, out
    assert emulator.asset(asset_id)["state"] != "uploaded"
