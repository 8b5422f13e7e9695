#!/usr/bin/env python3
"""Peer: the naive uploader (what Frame.io's own Python client does), run after the recording has ended.

    naive_upload.py API_BASE ACCESS_TOKEN FILE [--threads N] [--cacert CA]

Prints one JSON line: asset_id, parts, chunk, seconds (create + every part PUT)."""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import c2c  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("api")
    ap.add_argument("token")
    ap.add_argument("path")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cacert", default=None)
    a = ap.parse_args()
    r = c2c.naive_upload(a.api, a.token, a.path, os.path.basename(a.path) + ".mov", filetype="video/quicktime",
                         threads=a.threads, verify=a.cacert or True)
    with open("/proc/self/status") as f:
        r["vmhwm_kib"] = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
