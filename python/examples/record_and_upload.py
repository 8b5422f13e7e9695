#!/usr/bin/env python3
"""Record with ffmpeg and upload to Frame.io Camera-to-Cloud while recording.

ffmpeg records a live test pattern (or replays --file at its own speed) as fragmented MP4, which
only ever grows by appending. Each chunk it writes is kept in a local file and handed to the
upload engine at once, so parts go out while the recording runs; when ffmpeg ends, finish() sends
the final part and waits for the asset to be complete.

    # against a local emulator started for you (auto-approves the pairing code):
    python3 python/examples/record_and_upload.py --duration 10

    # against an emulator you run, or Frame.io itself (enter the code shown at the URL shown):
    python3 python/examples/record_and_upload.py --base-url https://api.frame.io \\
        --client-id SERIAL-0001 --client-secret "$SECRET" --token-file ~/.c2c-tokens.json

Tokens are saved to --token-file whenever they change (refresh tokens are single-use), so the next
run does not pair again. Ctrl-C cancels the upload.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

import frameio_c2c as fio  # noqa: E402

EMULATOR_SECRET = "fio-emulator-secret"


def ffmpeg_cmd(args: argparse.Namespace) -> List[str]:
    base = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re"]
    if args.file:
        src = ["-i", args.file, "-c", "copy"]
    else:
        src = [
            "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", str(args.duration),
            "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
            "-b:v", f"{args.bitrate}M", "-minrate", f"{args.bitrate}M", "-maxrate", f"{args.bitrate}M",
            "-bufsize", f"{args.bitrate // 2 or 1}M", "-x264-params", "nal-hrd=cbr",
            "-pix_fmt", "yuv420p", "-g", "30", "-c:a", "aac", "-b:a", "128k",
        ]
    return base + src + ["-f", "mp4", "-movflags", "frag_keyframe+empty_moov+default_base_moof", "pipe:1"]


def start_emulator(workdir: str) -> "Tuple[subprocess.Popen[str], str]":
    root = HERE.parent.parent
    binary = os.environ.get("FIO_EMULATOR_BIN") or str(root / "target" / "debug" / "fio-emulator")
    if not Path(binary).is_file():
        sys.exit(f"no emulator at {binary}: run `make emulator` (or pass --base-url)")
    proc = subprocess.Popen(
        [binary, "--port", "0", "--s3-port", "0", "--auto-approve", "--poll-interval", "0.5", "--quiet",
         "--data-dir", os.path.join(workdir, "emulator")],
        stdout=subprocess.PIPE, stderr=open(os.path.join(workdir, "emulator.log"), "wb"), text=True,
    )
    ready = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
    return proc, ready["api"]


def load_tokens(path: Optional[str]) -> Optional[fio.Tokens]:
    if path and os.path.exists(path):
        with open(path) as f:
            d = json.load(f)
        return fio.Tokens(d["access_token"], d["refresh_token"], d.get("expires_at", 0))
    return None


def saver(path: Optional[str]) -> Callable[[fio.Tokens], None]:
    def save(t: fio.Tokens) -> None:
        if not path:
            return
        tmp = f"{path}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"access_token": t.access_token, "refresh_token": t.refresh_token, "expires_at": t.expires_at}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic: a crash leaves the old pair or the new one

    return save


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", help="API base URL (default: start a local emulator)")
    ap.add_argument("--client-id", default=f"py-example-{os.getpid()}")
    ap.add_argument("--client-secret", default=EMULATOR_SECRET)
    ap.add_argument("--client-version", default="1.0.0")
    ap.add_argument("--token-file", help="where tokens are kept between runs")
    ap.add_argument("--name", default=None, help="asset name (default: C2C_<time>.mp4)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds to record (test pattern)")
    ap.add_argument("--bitrate", type=int, default=20, help="video bitrate, Mbit/s (test pattern)")
    ap.add_argument("--file", help="replay this media file at its own speed instead of the test pattern")
    ap.add_argument("--out", help="keep the recording here (default: a temp file)")
    ap.add_argument("--channel", type=int, default=None)
    args = ap.parse_args()

    if shutil.which("ffmpeg") is None:
        sys.exit("ffmpeg is needed (make setup installs it)")
    work = tempfile.mkdtemp(prefix="c2c-example-")
    emulator = None
    base_url = args.base_url
    if base_url is None:
        emulator, base_url = start_emulator(work)
        print(f"emulator at {base_url}")
    name = args.name or time.strftime("C2C_%Y%m%d_%H%M%S.mp4")
    out = Path(args.out or os.path.join(work, name))

    try:
        with fio.Client(
            args.client_id,
            args.client_secret,
            client_version=args.client_version,
            base_url=base_url,
            allow_http=base_url.startswith("http://"),
            tokens=load_tokens(args.token_file),
            on_tokens=saver(args.token_file),
        ) as client:
            print(f"library {fio.library_version()} at {fio.library_path()}")
            if client.tokens is None:
                with client.pair() as pairing:
                    print(f"pair this device: enter {pairing.user_code} at {pairing.verification_uri}")
                    pairing.wait(timeout=pairing.expires_in)
                print("paired")
            client.heartbeat()

            def progress(p: fio.Progress) -> None:
                print(
                    f"\r  recorded {p.bytes_recorded / 1e6:7.1f} MB  uploaded {p.bytes_done / 1e6:7.1f} MB  "
                    f"parts {p.parts_done}/{p.parts_total}  {p.throughput_bps * 8 / 1e6:6.1f} Mbit/s ",
                    end="",
                    flush=True,
                )

            rec = subprocess.Popen(ffmpeg_cmd(args), stdout=subprocess.PIPE)
            assert rec.stdout is not None
            t0 = time.monotonic()
            what = args.file or f"{args.duration:g} s of test pattern"
            print(f"recording {what} to {out} and uploading it as {name!r}")
            with open(out, "wb") as local, client.upload(
                name, "video/mp4", channel=args.channel, offset=0, progress=progress, progress_interval=0.25
            ) as up:
                try:
                    while True:
                        chunk = rec.stdout.read(256 * 1024)
                        if not chunk:
                            break
                        local.write(chunk)
                        up.write(chunk)
                finally:
                    if rec.wait() != 0:
                        raise SystemExit(f"ffmpeg failed ({rec.returncode})")
                recorded = time.monotonic() - t0
                stats = up.finish()
            tail = time.monotonic() - t0 - recorded
            print()
            sha = hashlib.sha256(out.read_bytes()).hexdigest()
            print(f"ASSET_ID={up.asset_id}")
            print(f"uploaded {stats.bytes_done} bytes in {stats.parts_total} parts; "
                  f"{tail:.2f} s after the recording ended; sha256 {sha}")
            if emulator is not None:
                import urllib.request

                with urllib.request.urlopen(f"{base_url}/_emulator/assets/{up.asset_id}") as r:
                    info = json.load(r)
                ok = info.get("state") == "uploaded" and info.get("sha256") == sha
                print(f"emulator: state {info.get('state')}, sha256 {'matches' if ok else 'DIFFERS'}")
                return 0 if ok else 1
            return 0
    except KeyboardInterrupt:
        print("\ncancelled")
        return 130
    except fio.FrameioError as e:
        print(f"\nerror: {e} (status {e.status!r}, HTTP {e.http_status})", file=sys.stderr)
        return 1
    finally:
        if emulator is not None:
            emulator.terminate()
            emulator.wait()
        if not args.out:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
