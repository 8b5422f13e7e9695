"""Fixtures for the Python package tests: a freshly started fio-emulator and clients talking to it.

The package under test is the one in this checkout (``python/``); the library is found as the package
finds it (``$FRAMEIO_C2C_LIB``, the package folder, ``target/{release,debug}``). The emulator binary is
``$FIO_EMULATOR_BIN`` or ``target/debug/fio-emulator`` (``make emulator`` builds it).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))

import frameio_c2c as fio  # noqa: E402

SECRET = "fio-emulator-secret"
_ids = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{next(_ids)}"


class Emulator:
    """A running fio-emulator process and its control API."""

    def __init__(self, extra_args: Optional[List[str]] = None, auto_approve: bool = True) -> None:
        bin_path = os.environ.get("FIO_EMULATOR_BIN") or str(ROOT / "target" / "debug" / "fio-emulator")
        if not Path(bin_path).is_file():
            pytest.fail(f"fio-emulator not found at {bin_path}: run `make emulator` or set FIO_EMULATOR_BIN")
        self.data_dir = tempfile.mkdtemp(prefix="fio-py-emu-")
        args = [
            bin_path, "--port", "0", "--s3-port", "0", "--data-dir", self.data_dir,
            "--poll-interval", "0.2", "--quiet",
        ] + (["--auto-approve"] if auto_approve else []) + (extra_args or [])
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            self.proc.kill()
            pytest.fail("fio-emulator exited before printing its ready line")
        ready = json.loads(line)
        self.api: str = ready["api"]
        self.s3: str = ready["s3"]
        self.ca_cert: Optional[str] = ready.get("ca_cert")

    def control(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.api + path, data=data, method=method)
        if data is not None:
            req.add_header("content-type", "application/json")
        ctx = None
        if self.ca_cert:
            import ssl

            ctx = ssl.create_default_context(cafile=self.ca_cert)
        with urllib.request.urlopen(req, timeout=30, context=ctx) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def asset(self, asset_id: str) -> dict:
        return self.control("GET", f"/_emulator/assets/{asset_id}")

    def wait_asset_state(self, asset_id: str, state: str = "uploaded", timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            a = self.asset(asset_id)
            if a["state"] == state or time.monotonic() > deadline:
                return a
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    emu = Emulator()
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def manual_emulator() -> Iterator[Emulator]:
    """An emulator that does not approve pairing codes by itself."""
    emu = Emulator(auto_approve=False)
    yield emu
    emu.stop()


def client_factory(emulator: Emulator, made: List[fio.Client]) -> Callable[..., fio.Client]:
    def make(**kw: Any) -> fio.Client:
        kw.setdefault("client_version", "1.2.3")
        kw.setdefault("base_url", emulator.api)
        kw.setdefault("allow_http", True)
        kw.setdefault("retry_attempts", 3)
        kw.setdefault("retry_backoff", 0.05)
        kw.setdefault("retry_max_backoff", 0.2)
        kw.setdefault("retry_deadline", 20)
        client_id = kw.pop("client_id", None) or unique("py")
        c = fio.Client(client_id, kw.pop("client_secret", SECRET), **kw)
        made.append(c)
        return c

    return make


@pytest.fixture
def make_client(emulator: Emulator) -> Iterator[Callable[..., fio.Client]]:
    """A factory for clients of the session's emulator (each with its own client id by default)."""
    made: List[fio.Client] = []
    yield client_factory(emulator, made)
    for c in made:
        c.close()


@pytest.fixture
def paired(make_client: Callable[..., fio.Client]) -> fio.Client:
    """A client paired with the emulator (auto-approve)."""
    c = make_client()
    with c.pair() as p:
        p.wait(timeout=30)
    return c
