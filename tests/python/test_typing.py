"""The package's type hints hold under mypy --strict (skipped when mypy is not installed)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT


def test_mypy_strict():
    pytest.importorskip("mypy")
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "frameio_c2c", "examples/record_and_upload.py"],
        cwd=ROOT / "python", capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
