"""The upload engine through Python: real-time recordings, files, cancel, callbacks, the GIL."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import List

import pytest

import frameio_c2c as fio

MiB = 1024 * 1024
NON_ASCII = "Aufnahme Über 東京 🎬.mp4"
CT = "video/mp4"

FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg not installed (make setup installs it)")


def record_cmd(seconds: float, realtime: bool = True) -> List[str]:
    """ffmpeg recording a live test pattern (H.264 CBR 40 Mbit/s + AAC) as fragmented MP4 (append-only)
    to stdout, at the speed of a camera with ``realtime``."""
    return [
        FFMPEG or "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
        *(["-re"] if realtime else []),
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
        "-b:v", "40M", "-minrate", "40M", "-maxrate", "40M", "-bufsize", "20M", "-x264-params", "nal-hrd=cbr",
        "-pix_fmt", "yuv420p", "-g", "30", "-c:a", "aac", "-b:a", "128k",
        "-f", "mp4", "-movflags", "frag_keyframe+empty_moov+default_base_moof", "pipe:1",
    ]


@pytest.fixture(scope="session")
def media_file(tmp_path_factory) -> Path:
    """A real media file (H.264/AAC MP4, >= 12 MB so it spans several parts), encoded once."""
    if FFMPEG is None:
        pytest.skip("ffmpeg not installed")
    out = tmp_path_factory.mktemp("media") / "clip.mp4"
    with open(out, "wb") as f:
        subprocess.run(record_cmd(3.2, realtime=False), stdout=f, check=True, timeout=120)
    assert out.stat().st_size >= 12 * MiB, out.stat().st_size
    return out


def sha256_file(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def check_progress_sane(seen: List[fio.Progress], total: int) -> None:
    assert len(seen) >= 2
    done = [p.bytes_done for p in seen]
    assert done == sorted(done), "bytes_done went backwards"
    assert all(p.bytes_done <= p.bytes_recorded for p in seen)
    last = seen[-1]
    assert last.complete and last.bytes_done == total and last.bytes_recorded == total


# -- real-time recordings ----------------------------------------------------------------------------


@needs_ffmpeg
def test_realtime_recording_written_while_recording(paired, emulator, tmp_path):
    """ffmpeg records 3 s in real time; each chunk is written to the upload as it comes out (and kept
    locally); the asset the emulator assembled is byte-identical, and parts went out during the
    recording, not after it."""
    local = tmp_path / "recorded.mp4"
    seen: List[fio.Progress] = []
    done_while_recording = []
    rec = subprocess.Popen(record_cmd(3.0), stdout=subprocess.PIPE)
    assert rec.stdout is not None
    with open(local, "wb") as keep:
        with paired.upload(NON_ASCII, CT, progress=seen.append, progress_interval=0.05) as up:
            while True:
                chunk = rec.stdout.read(256 * 1024)
                if not chunk:
                    break
                keep.write(chunk)
                up.write(chunk)
                done_while_recording.append(up.stats.parts_done)
            assert rec.wait(30) == 0
            stats = up.finish()
    size = local.stat().st_size
    assert size >= 12 * MiB
    assert stats.complete and stats.bytes_done == size and stats.parts_total >= 2
    assert max(done_while_recording) >= 1, "no part finished while recording: not real time"
    check_progress_sane(seen, size)
    assert [p.state for p in up.parts] == [fio.PartState.DONE] * stats.parts_total
    info = emulator.wait_asset_state(up.asset_id)
    assert info["state"] == "uploaded", info
    assert info["sha256"] == sha256_file(local)
    assert info["name"] == NON_ASCII


@needs_ffmpeg
def test_growing_file_with_file_grew(paired, emulator, media_file, tmp_path):
    """A file on disk that grows (the recording replayed at ~6 MB/s into it); the engine is told of
    growth with file_grew and sends file ranges."""
    data = media_file.read_bytes()
    growing = tmp_path / "growing.mp4"
    growing.write_bytes(b"")
    seen: List[fio.Progress] = []
    with paired.upload("growing.mp4", CT, path=growing, progress=seen.append) as up:
        with open(growing, "ab") as f:
            for i in range(0, len(data), 512 * 1024):
                f.write(data[i : i + 512 * 1024])
                f.flush()
                up.file_grew(f.tell())
                time.sleep(0.08)
        stats = up.finish()
    assert stats.bytes_done == len(data)
    check_progress_sane(seen, len(data))
    info = emulator.wait_asset_state(up.asset_id)
    assert info["state"] == "uploaded" and info["sha256"] == sha256_file(media_file)


@needs_ffmpeg
def test_growing_file_watched(paired, emulator, media_file, tmp_path):
    data = media_file.read_bytes()
    growing = tmp_path / "watched.mp4"
    growing.write_bytes(b"")
    up = paired.upload("watched.mp4", CT, path=growing, watch_interval=0.05)
    try:
        with open(growing, "ab") as f:
            for i in range(0, len(data), 1024 * 1024):
                f.write(data[i : i + 1024 * 1024])
                f.flush()
                time.sleep(0.05)
        deadline = time.monotonic() + 10
        while up.stats.bytes_recorded < len(data) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert up.stats.bytes_recorded == len(data)
        up.finish()
    finally:
        up.close()
    assert emulator.wait_asset_state(up.asset_id)["sha256"] == sha256_file(media_file)


@needs_ffmpeg
@pytest.mark.parametrize("realtime", [True, False], ids=["realtime", "basic"])
def test_upload_complete_file(paired, emulator, media_file, realtime):
    seen: List[fio.Progress] = []
    before = {a["id"] for a in emulator.control("GET", "/_emulator/assets")}
    stats = paired.upload_file(media_file, None, CT, realtime=realtime, progress=seen.append, concurrency=4)
    assert stats.complete and stats.bytes_done == media_file.stat().st_size
    new = [a for a in emulator.control("GET", "/_emulator/assets") if a["id"] not in before]
    assert len(new) == 1 and new[0]["name"] == media_file.name
    info = emulator.wait_asset_state(new[0]["id"])
    assert info["state"] == "uploaded" and info["sha256"] == sha256_file(media_file)
    assert len(info["parts"]) >= (2 if realtime else 1)  # basic: the server plans ~25 MiB parts


@needs_ffmpeg
def test_upload_is_a_file_like_destination(paired, emulator, media_file):
    with open(media_file, "rb") as src, paired.upload("copied.mp4", CT) as up:
        shutil.copyfileobj(src, up, 3 * MiB + 17)
    assert up.stats.bytes_done == media_file.stat().st_size
    assert emulator.wait_asset_state(up.asset_id)["sha256"] == sha256_file(media_file)


# -- cancel, callbacks, threads ----------------------------------------------------------------------


def slow_upload(client, **kw):
    """A pushed-bytes upload capped at 2 MB/s so that it is still running when the test acts."""
    kw.setdefault("bandwidth_limit", 2 * MiB)
    return client.upload("slow.mov", "video/quicktime", **kw)


def test_cancel_from_another_thread(paired, emulator):
    data = os.urandom(12 * MiB)
    up = slow_upload(paired)
    up.write(data)
    threading.Timer(0.5, up.cancel).start()
    t0 = time.monotonic()
    with pytest.raises(fio.CancelledError) as ei:
        up.finish()
    assert time.monotonic() - t0 < 4, "cancel did not stop the upload promptly"
    assert ei.value.status == fio.Status.CANCELLED
    assert isinstance(up.error, fio.CancelledError)
    up.close()
    assert emulator.asset(up.asset_id)["state"] != "uploaded"


def test_cancel_unblocks_a_blocked_write(paired):
    up = slow_upload(paired, buffer_budget=10 * MiB + 1)
    data = os.urandom(30 * MiB)
    threading.Timer(0.5, up.cancel).start()
    t0 = time.monotonic()
    with pytest.raises(fio.CancelledError):
        up.write(data)  # blocks on backpressure until the cancel
    assert 0.4 < time.monotonic() - t0 < 4
    with pytest.raises(fio.CancelledError):
        up.write(b"more")
    up.close()


def test_progress_callback_that_raises_cancels_and_is_reraised(paired, emulator):
    class RigFailure(Exception):
        pass

    calls = []

    def progress(p: fio.Progress):
        calls.append(threading.current_thread().name)
        if len(calls) == 3:
            raise RigFailure("monitor exploded")

    data = os.urandom(12 * MiB)
    with pytest.raises(RigFailure, match="monitor exploded") as ei:
        with slow_upload(paired, progress=progress, progress_interval=0.05) as up:
            up.write(data)
            # leaving the block calls finish(), which raises the callback's exception
    assert isinstance(ei.value.__cause__, fio.CancelledError)
    assert up.callback_error is ei.value
    assert len(calls) >= 3
    assert threading.main_thread().name not in calls  # ran on a library thread
    assert emulator.asset(up.asset_id)["state"] != "uploaded"


def test_progress_callback_returning_false_cancels(paired):
    up = slow_upload(paired, progress=lambda p: p.bytes_sent < 2 * MiB)
    up.write(os.urandom(8 * MiB))
    with pytest.raises(fio.CancelledError):
        up.finish()
    assert up.callback_error is None
    up.close()


def test_exception_in_with_block_cancels(paired, emulator):
    with pytest.raises(KeyError):
        with slow_upload(paired) as up:
            up.write(os.urandom(6 * MiB))
            raise KeyError("camera unplugged")
    assert up.stats.complete is False
    assert emulator.asset(up.asset_id)["state"] != "uploaded"


def _ticker(stop: threading.Event, gaps: List[float]) -> None:
    last = time.monotonic()
    while not stop.is_set():
        time.sleep(0.005)
        now = time.monotonic()
        gaps.append(now - last)
        last = now


def test_gil_released_during_blocking_calls(paired, emulator):
    """Another Python thread keeps running while write() blocks on backpressure and while finish()
    waits for the parts (both called directly on a non-main thread, without the package's helper)."""
    gaps: List[float] = []
    stop = threading.Event()
    errors: List[BaseException] = []
    data = os.urandom(16 * MiB)
    blocked = {}

    def uploader():
        try:
            # budget 10 MiB + 1: write() of 16 MiB at 4 MB/s must block until parts are sent
            up = paired.upload("gil.mov", "video/quicktime", bandwidth_limit=4 * MiB, buffer_budget=10 * MiB + 1)
            t0 = time.monotonic()
            up.write(data)
            blocked["write"] = time.monotonic() - t0
            t0 = time.monotonic()
            up.finish()
            blocked["finish"] = time.monotonic() - t0
            blocked["asset"] = up.asset_id
            up.close()
        except BaseException as e:  # reported below
            errors.append(e)

    tick = threading.Thread(target=_ticker, args=(stop, gaps))
    tick.start()
    worker = threading.Thread(target=uploader)
    worker.start()
    worker.join(60)
    stop.set()
    tick.join()
    assert not errors, errors
    assert blocked["write"] > 1.0, blocked  # write really blocked (about 6 MiB at 4 MiB/s)
    assert blocked["finish"] > 1.0, blocked
    assert len(gaps) > 100
    # Had a foreign call held the GIL, the ticker would have stopped for the whole call.
    worst = max(gaps)
    assert worst < 0.5 * min(blocked["write"], blocked["finish"]), f"ticker stalled {worst:.2f} s: GIL held?"
    assert emulator.wait_asset_state(blocked["asset"])["sha256"] == hashlib.sha256(data).hexdigest()


def test_stats_from_another_thread_while_finishing(paired):
    up = slow_upload(paired, bandwidth_limit=8 * MiB)
    up.write(os.urandom(11 * MiB))
    snaps: List[fio.Progress] = []
    t = threading.Thread(target=lambda: [snaps.append(up.stats) or time.sleep(0.05) for _ in range(10)])
    t.start()
    final = up.finish()
    t.join()
    up.close()
    assert snaps and all(s.bytes_recorded == 11 * MiB for s in snaps)
    assert final.complete and final.bytes_done == 11 * MiB
    assert up.stats == final or up.stats.complete  # kept after close


def test_resume_after_cancel(paired, emulator, tmp_path):
    """A file upload with a state file is cancelled midway; resume_upload continues it without
    re-sending finished parts, and the asset is byte-identical."""
    data = os.urandom(16 * MiB + 777)
    media = tmp_path / "take.mov"
    media.write_bytes(data)
    state = tmp_path / "take.state"
    up = paired.upload("take.mov", "video/quicktime", path=media, state_file=state, bandwidth_limit=4 * MiB)
    up.file_grew(len(data))
    deadline = time.monotonic() + 20
    while up.stats.parts_done < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    up.cancel()
    first_done = up.stats.parts_done
    up.close()
    assert first_done >= 1 and state.exists()
    resumed = paired.resume_upload(state)
    with resumed:
        assert resumed.asset_id == up.asset_id
        resumed.file_grew(len(data))
        final = resumed.finish()
    assert final.complete
    info = emulator.wait_asset_state(up.asset_id)
    assert info["state"] == "uploaded" and info["sha256"] == hashlib.sha256(data).hexdigest()


def test_resume_written_bytes_from_resume_offset(paired, emulator, tmp_path):
    """A written-bytes upload is cancelled midway; after resume_upload the bytes are written again from
    resume_offset on, and the asset is byte-identical."""
    data = os.urandom(17 * MiB + 99)
    state = tmp_path / "bytes.state"
    up = paired.upload("bytes.mov", "video/quicktime", state_file=state, bandwidth_limit=4 * MiB)
    up.write(data[: 14 * MiB])
    deadline = time.monotonic() + 20
    while up.stats.parts_done < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    up.cancel()
    up.close()
    with paired.resume_upload(state) as again:
        off = again.resume_offset
        assert 5 * MiB <= off <= 14 * MiB, off
        again.write(data[off:])
    info = emulator.wait_asset_state(up.asset_id)
    assert info["state"] == "uploaded" and info["sha256"] == hashlib.sha256(data).hexdigest()
