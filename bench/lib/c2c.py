"""A minimal Frame.io C2C client in Python (requests), for the benchmarks only: pairing against the emulator,
basic asset create, and the naive uploader that copies what Frame.io's own Python client does.

It is deliberately the floor, not a model: no retries, whole chunks read into memory, no progress."""
import json
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

CLIENT_SECRET = "fio-emulator-secret"
CLIENT_VERSION = "0.1.0"


def pair(api: str, client_id: str, verify=True, timeout=60.0) -> dict:
    """Device-code pairing; the emulator runs with --auto-approve. Returns the token response."""
    s = requests.Session()
    h = {"x-client-version": CLIENT_VERSION}
    form = {"client_id": client_id, "client_secret": CLIENT_SECRET, "scope": "asset_create offline"}
    r = s.post(f"{api}/v2/auth/device/code", files={k: (None, v) for k, v in form.items()}, headers=h, verify=verify)
    r.raise_for_status()
    code = r.json()
    interval = float(code.get("interval", 1))
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(interval)
        tok = {"client_id": client_id, "client_secret": CLIENT_SECRET,
               "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": code["device_code"]}
        r = s.post(f"{api}/v2/auth/token", files={k: (None, v) for k, v in tok.items()}, headers=h, verify=verify)
        if r.status_code == 200:
            return dict(r.json(), client_id=client_id)
        err = r.json().get("error") if r.headers.get("content-type", "").startswith("application/json") else r.text
        if err == "slow_down":
            interval += 1
        elif err != "authorization_pending":
            raise RuntimeError(f"pairing failed: {r.status_code} {err}")
    raise RuntimeError("pairing timed out")


def naive_upload(api: str, token: str, path: str, name: str, filetype="video/mp4", threads=1, verify=True) -> dict:
    """What Frame.io's Python client does, after the recording has ended: create a basic asset with the file
    size, split the file into len(upload_urls) chunks (ceil), read each chunk into memory and PUT it with
    Content-Type and x-amz-acl: private. threads=1 is sequential; the official SDK uses a pool of 5."""
    import os
    size = os.path.getsize(path)
    h = {"Authorization": f"Bearer {token}", "x-client-version": CLIENT_VERSION, "Content-Type": "application/json"}
    t0 = time.monotonic()
    r = requests.post(f"{api}/v2/devices/assets", data=json.dumps(
        {"name": name, "filetype": filetype, "filesize": size, "offset": 0}), headers=h, verify=verify)
    r.raise_for_status()
    asset = r.json()
    urls = asset["upload_urls"]
    chunk = math.ceil(size / len(urls))

    local = threading.local()  # like the SDK: one keep-alive session per worker thread

    def put(i):
        with open(path, "rb") as f:
            f.seek(i * chunk)
            data = f.read(chunk)
        if not hasattr(local, "session"):
            local.session = requests.Session()
        resp = local.session.put(urls[i], data=data, headers={"Content-Type": filetype, "x-amz-acl": "private"},
                                 verify=verify)
        if resp.status_code != 200:
            raise RuntimeError(f"part {i + 1}: HTTP {resp.status_code}: {resp.text[:200]}")

    if threads <= 1:
        for i in range(len(urls)):
            put(i)
    else:
        with ThreadPoolExecutor(threads) as ex:
            list(ex.map(put, range(len(urls))))
    return {"asset_id": asset["id"], "parts": len(urls), "chunk": chunk, "seconds": time.monotonic() - t0}
