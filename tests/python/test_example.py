"""The runnable example records with ffmpeg and uploads while recording (own emulator, SHA-256 check)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

EXAMPLE = ROOT / "python" / "examples" / "record_and_upload.py"


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
def test_record_and_upload_example(tmp_path):
    token_file = tmp_path / "tokens.json"
    r = subprocess.run(
        [sys.executable, str(EXAMPLE), "--duration", "2", "--token-file", str(token_file), "--name", "Beispiel Ü.mp4"],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ASSET_ID=" in r.stdout and "sha256 matches" in r.stdout
    assert token_file.exists() and oct(token_file.stat().st_mode & 0o777) == "0o600"
