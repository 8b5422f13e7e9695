"""HTTPS against `fio-emulator --tls`: the emulator's CA given as extra_ca_pem (path, PEM text or
bytes) makes pairing and a part upload work; without it the client fails with a TLS error."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterator, List

import pytest

from conftest import Emulator, client_factory
import frameio_c2c as fio

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def tls_emulator() -> Iterator[Emulator]:
    emu = Emulator(extra_args=["--tls"])
    assert emu.api.startswith("https://") and emu.ca_cert
    yield emu
    emu.stop()


@pytest.mark.parametrize("ca_as", ["path", "text", "bytes"])
def test_https_with_the_emulator_ca(tls_emulator, ca_as):
    pem = Path(tls_emulator.ca_cert)
    ca = {"path": pem, "text": pem.read_text(), "bytes": pem.read_bytes()}[ca_as]
    made: List[fio.Client] = []
    try:
        c = client_factory(tls_emulator, made)(allow_http=False, extra_ca_pem=ca)
        with c.pair() as p:
            p.wait(timeout=30)
        data = os.urandom(5 * MiB + 3)
        with c.upload("tls.mov", "video/quicktime") as up:
            up.write(data)
        info = tls_emulator.wait_asset_state(up.asset_id)
        assert info["sha256"] == hashlib.sha256(data).hexdigest()
    finally:
        for x in made:
            x.close()


def test_https_without_the_ca_is_a_tls_error(tls_emulator):
    made: List[fio.Client] = []
    try:
        c = client_factory(tls_emulator, made)(allow_http=False, retry_attempts=1)
        with pytest.raises(fio.NetworkError) as ei:
            c.pair()
        assert ei.value.status == fio.Status.TLS
    finally:
        for x in made:
            x.close()
