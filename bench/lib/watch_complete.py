#!/usr/bin/env python3
"""Watches the emulator's control API for the first asset (not in --exclude) that reaches a final state, and
prints one JSON line with the CLOCK_MONOTONIC time it saw the change (the same clock the C benchmarks and
time.monotonic() use, shared by every network namespace). Run it next to the emulator (inside the benchmark's
namespace) so that polling does not cross the shaped link.

    watch_complete.py API_BASE [--timeout S] [--interval S] [--exclude ID,ID]
"""
import argparse
import json
import sys
import time

import requests


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("api")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--interval", type=float, default=0.005)
    ap.add_argument("--exclude", default="")
    ap.add_argument("--ready-file", default="")
    a = ap.parse_args()
    exclude = set(filter(None, a.exclude.split(",")))
    s = requests.Session()
    deadline = time.monotonic() + a.timeout
    first = True
    t_completing = {}  # asset id -> first time seen assembling (every byte received, S3 completion running)
    while time.monotonic() < deadline:
        try:
            assets = s.get(f"{a.api}/_emulator/assets", timeout=5).json()
        except Exception as e:  # noqa: BLE001
            time.sleep(a.interval)
            continue
        t = time.monotonic()
        if first and a.ready_file:
            open(a.ready_file, "w").write("ready\n")
            first = False
        for asset in assets:
            if asset.get("id") in exclude:
                continue
            parts = asset.get("parts") or []
            if (asset.get("state") not in ("uploaded", "failed") and parts and any(p.get("is_final") for p in parts)
                    and all(p.get("uploaded") for p in parts)):
                t_completing.setdefault(asset["id"], t)  # every part received; the emulator is assembling
            if asset.get("state") in ("uploaded", "failed"):
                print(json.dumps({"id": asset["id"], "state": asset["state"], "t_complete": t,
                                  "t_completing": t_completing.get(asset["id"]),
                                  "parts": asset.get("parts", []), "filesize": asset.get("filesize"),
                                  "failure": asset.get("failure")}), flush=True)
                return 0 if asset["state"] == "uploaded" else 1
        time.sleep(a.interval)
    print(json.dumps({"error": "timeout"}), flush=True)
    return 2


if __name__ == "__main__":
    sys.exit(main())
