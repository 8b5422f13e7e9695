#!/usr/bin/env python3
"""Peer for the part-PUT benchmark: Python `requests` PUTting one part, timed in-process like the C benches.

    put_requests.py URL FILE memory|file [CAFILE]

memory: the file is read into a bytes object first (not timed), then PUT (what Frame.io's Python client does:
        it reads each chunk into memory). file: the open file object is the body (requests streams it).
Prints one JSON line with seconds, cpu_user, cpu_sys (the PUT only), status, bytes.
"""
import json
import os
import resource
import sys
import time

import requests


def main() -> int:
    url, path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    verify = sys.argv[4] if len(sys.argv) > 4 else True
    size = os.path.getsize(path)
    body = None
    f = None
    if mode == "memory":
        with open(path, "rb") as fh:
            body = fh.read()
    else:
        f = open(path, "rb")
        body = f
    session = requests.Session()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    resp = session.put(url, data=body, headers={"Content-Length": str(size)}, verify=verify)
    t1 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    if f:
        f.close()
    print(json.dumps({
        "seconds": t1 - t0,
        "cpu_user": r1.ru_utime - r0.ru_utime,
        "cpu_sys": r1.ru_stime - r0.ru_stime,
        "status": resp.status_code,
        "bytes": size,
        "requests_version": requests.__version__,
    }))
    return 0 if 200 <= resp.status_code < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
