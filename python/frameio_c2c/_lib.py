"""Loading ``libframeio_c2c`` and declaring every exported function for ctypes.

Nothing here is public API: the rest of the package calls ``lib().fio_...`` with the argument types
declared in :data:`DECLARATIONS`. Every function of ``include/frameio_c2c.h`` has an entry (a test
parses the header and compares), so no argument or result is ever guessed as a C ``int`` by ctypes:
64-bit sizes stay 64-bit and pointers are never truncated.

The library is loaded with :class:`ctypes.CDLL`, so every foreign call releases the GIL while it runs
(other Python threads keep running during a long upload or a pairing wait).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_double,
    c_int,
    c_int32,
    c_int64,
    c_size_t,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ._version import __version__

#: The environment variable naming the shared library to load (a file path).
LIB_ENV = "FRAMEIO_C2C_LIB"

_SONAME = {"darwin": "libframeio_c2c.dylib", "win32": "frameio_c2c.dll"}.get(sys.platform, "libframeio_c2c.so")

# ---------------------------------------------------------------------------------------------------------
# C types

fio_status = c_int32
fio_log_level = c_int32


class _Opaque(Structure):
    """Base of the opaque handle types: only ever used behind a pointer."""

    _fields_ = []


class fio_config(_Opaque):
    pass


class fio_client(_Opaque):
    pass


class fio_pairing(_Opaque):
    pass


class fio_asset(_Opaque):
    pass


class fio_url_list(_Opaque):
    pass


class fio_upload(_Opaque):
    pass


class fio_upload_options(_Opaque):
    pass


class fio_asset_params(Structure):
    """``struct fio_asset_params`` (include/frameio_c2c.h)."""

    _fields_ = [
        ("name", c_char_p),
        ("extension", c_char_p),
        ("filetype", c_char_p),
        ("filesize", c_uint64),
        ("realtime", c_bool),
        ("has_channel", c_bool),
        ("channel", c_int64),
        ("has_offset", c_bool),
        ("offset", c_int64),
    ]


class fio_part_spec(Structure):
    """``struct fio_part_spec``."""

    _fields_ = [
        ("number", c_uint32),
        ("size", c_uint64),
        ("is_final", c_bool),
    ]


class fio_progress(Structure):
    """``struct fio_progress``: an upload's counters."""

    _fields_ = [
        ("bytes_recorded", c_uint64),
        ("bytes_sent", c_uint64),
        ("bytes_done", c_uint64),
        ("parts_done", c_uint32),
        ("parts_total", c_uint32),
        ("parts_in_flight", c_uint32),
        ("retries", c_uint32),
        ("reregistrations", c_uint32),
        ("throughput_bps", c_double),
        ("bytes_buffered", c_uint64),
        ("peak_bytes_buffered", c_uint64),
        ("elapsed_secs", c_double),
        ("complete", c_bool),
    ]


fio_part_state = c_uint32


class fio_upload_part(Structure):
    """``struct fio_upload_part``: one part of an upload."""

    _fields_ = [
        ("number", c_uint32),
        ("offset", c_uint64),
        ("size", c_uint64),
        ("is_final", c_bool),
        ("state", fio_part_state),
        ("attempts", c_uint32),
        ("last_status", c_int32),
        ("last_http_status", c_uint16),
    ]


# Callback types. `void *userdata` is declared as c_void_p; the package passes NULL and keeps the
# Python state in the closure instead (the CFUNCTYPE object is kept alive by its owner).
fio_part_progress_cb = CFUNCTYPE(c_int, c_void_p, c_uint64)
fio_log_cb = CFUNCTYPE(None, c_void_p, fio_log_level, c_char_p)
fio_token_cb = CFUNCTYPE(None, c_void_p, c_char_p, c_char_p, c_uint64)
fio_progress_cb = CFUNCTYPE(c_int, c_void_p, POINTER(fio_progress))

P = POINTER
char_out = P(c_void_p)  # `char **`: read with ctypes.string_at, release with fio_string_free

# ---------------------------------------------------------------------------------------------------------
# Declarations: name -> (restype, argtypes). Keep in the header's order.

DECLARATIONS: Dict[str, Tuple[object, Sequence[object]]] = {
    # version, status, last error
    "fio_version": (c_char_p, []),
    "fio_status_str": (c_char_p, [fio_status]),
    "fio_last_error_status": (fio_status, []),
    "fio_last_error_message": (fio_status, [c_void_p, c_size_t]),
    "fio_last_error_length": (c_size_t, []),
    "fio_last_http_status": (c_uint16, []),
    "fio_last_server_code": (fio_status, [c_void_p, c_size_t]),
    "fio_last_error_retryable": (c_bool, []),
    "fio_string_free": (None, [c_void_p]),
    # assets
    "fio_asset_params_init": (None, [P(fio_asset_params)]),
    "fio_asset_create": (fio_status, [P(fio_client), P(fio_asset_params), P(P(fio_asset))]),
    "fio_asset_id": (c_char_p, [P(fio_asset)]),
    "fio_asset_name": (c_char_p, [P(fio_asset)]),
    "fio_asset_is_realtime": (c_bool, [P(fio_asset)]),
    "fio_asset_upload_url_count": (c_size_t, [P(fio_asset)]),
    "fio_asset_upload_url": (c_char_p, [P(fio_asset), c_size_t]),
    "fio_asset_free": (None, [P(fio_asset)]),
    "fio_comment_create": (fio_status, [P(fio_client), c_char_p, c_char_p, c_double, char_out]),
    # real-time parts, low level
    "fio_register_parts": (
        fio_status,
        [P(fio_client), c_char_p, P(fio_part_spec), c_size_t, c_char_p, c_uint64, P(P(fio_url_list))],
    ),
    "fio_url_list_len": (c_size_t, [P(fio_url_list)]),
    "fio_url_list_get": (c_char_p, [P(fio_url_list), c_size_t]),
    "fio_url_list_free": (None, [P(fio_url_list)]),
    "fio_put_part": (
        fio_status,
        [P(fio_client), c_char_p, c_void_p, c_size_t, c_char_p, fio_part_progress_cb, c_void_p],
    ),
    "fio_put_part_fd": (
        fio_status,
        [P(fio_client), c_char_p, c_int, c_uint64, c_uint64, c_char_p, fio_part_progress_cb, c_void_p],
    ),
    # client, tokens
    "fio_client_new": (fio_status, [P(fio_config), P(P(fio_client))]),
    "fio_client_free": (None, [P(fio_client)]),
    "fio_client_set_tokens": (fio_status, [P(fio_client), c_char_p, c_char_p, c_uint64]),
    "fio_client_get_tokens": (fio_status, [P(fio_client), char_out, char_out, P(c_uint64)]),
    "fio_client_clear_tokens": (fio_status, [P(fio_client)]),
    "fio_client_refresh": (fio_status, [P(fio_client)]),
    "fio_client_revoke": (fio_status, [P(fio_client)]),
    # pairing
    "fio_pairing_start": (fio_status, [P(fio_client), P(P(fio_pairing))]),
    "fio_pairing_user_code": (c_char_p, [P(fio_pairing)]),
    "fio_pairing_verification_uri": (c_char_p, [P(fio_pairing)]),
    "fio_pairing_verification_uri_complete": (c_char_p, [P(fio_pairing)]),
    "fio_pairing_name": (c_char_p, [P(fio_pairing)]),
    "fio_pairing_expires_in": (c_uint32, [P(fio_pairing)]),
    "fio_pairing_remaining": (c_uint32, [P(fio_pairing)]),
    "fio_pairing_interval_ms": (c_uint32, [P(fio_pairing)]),
    "fio_pairing_poll": (fio_status, [P(fio_client), P(fio_pairing)]),
    "fio_pairing_wait": (fio_status, [P(fio_client), P(fio_pairing)]),
    "fio_pairing_cancel": (None, [P(fio_pairing)]),
    "fio_pairing_free": (None, [P(fio_pairing)]),
    # device
    "fio_device_info": (fio_status, [P(fio_client), char_out]),
    "fio_heartbeat": (fio_status, [P(fio_client)]),
    "fio_heartbeat_start": (fio_status, [P(fio_client), c_uint32]),
    "fio_heartbeat_stop": (fio_status, [P(fio_client)]),
    # config
    "fio_config_new": (P(fio_config), []),
    "fio_config_free": (None, [P(fio_config)]),
    "fio_config_set_base_url": (fio_status, [P(fio_config), c_char_p]),
    "fio_config_set_client_id": (fio_status, [P(fio_config), c_char_p]),
    "fio_config_set_client_secret": (fio_status, [P(fio_config), c_char_p]),
    "fio_config_set_client_version": (fio_status, [P(fio_config), c_char_p]),
    "fio_config_set_scope": (fio_status, [P(fio_config), c_char_p]),
    "fio_config_set_url_pairing": (fio_status, [P(fio_config), c_bool]),
    "fio_config_set_timeouts": (
        fio_status,
        [P(fio_config), c_uint32, c_uint32, c_uint32, c_uint32, c_uint64],
    ),
    "fio_config_set_retry": (fio_status, [P(fio_config), c_uint32, c_uint32, c_uint32, c_uint32]),
    "fio_config_set_extra_ca_pem": (fio_status, [P(fio_config), c_void_p, c_size_t]),
    "fio_config_set_proxy": (fio_status, [P(fio_config), c_char_p]),
    "fio_config_set_allow_http": (fio_status, [P(fio_config), c_bool]),
    "fio_config_set_refresh_margin": (fio_status, [P(fio_config), c_uint32]),
    "fio_config_set_max_idle_connections": (fio_status, [P(fio_config), c_uint32]),
    "fio_config_set_expect_continue": (fio_status, [P(fio_config), c_bool]),
    "fio_config_set_log_callback": (fio_status, [P(fio_config), fio_log_level, fio_log_cb, c_void_p]),
    "fio_config_set_token_callback": (fio_status, [P(fio_config), fio_token_cb, c_void_p]),
    # upload engine
    "fio_upload_options_new": (P(fio_upload_options), []),
    "fio_upload_options_free": (None, [P(fio_upload_options)]),
    "fio_upload_options_set_concurrency": (fio_status, [P(fio_upload_options), c_uint32]),
    "fio_upload_options_set_buffer_budget": (fio_status, [P(fio_upload_options), c_uint64]),
    "fio_upload_options_set_part_sizes": (fio_status, [P(fio_upload_options), c_uint64, c_uint64, c_uint64]),
    "fio_upload_options_set_bandwidth_limit": (fio_status, [P(fio_upload_options), c_uint64]),
    "fio_upload_options_set_retry": (fio_status, [P(fio_upload_options), c_uint64, c_uint32]),
    "fio_upload_options_set_progress": (fio_status, [P(fio_upload_options), fio_progress_cb, c_void_p, c_uint32]),
    "fio_upload_options_set_state_file": (fio_status, [P(fio_upload_options), c_char_p]),
    "fio_upload_options_set_watch_interval": (fio_status, [P(fio_upload_options), c_uint32]),
    "fio_upload_options_set_final_name": (fio_status, [P(fio_upload_options), c_char_p]),
    "fio_upload_start": (
        fio_status,
        [P(fio_client), P(fio_asset_params), c_char_p, P(fio_upload_options), P(P(fio_upload))],
    ),
    "fio_upload_resume": (fio_status, [P(fio_client), c_char_p, P(fio_upload_options), P(P(fio_upload))]),
    "fio_upload_write": (fio_status, [P(fio_upload), c_void_p, c_size_t]),
    "fio_upload_file_grew": (fio_status, [P(fio_upload), c_uint64]),
    "fio_upload_finish": (fio_status, [P(fio_upload), P(fio_progress)]),
    "fio_upload_cancel": (None, [P(fio_upload)]),
    "fio_upload_stats": (fio_status, [P(fio_upload), P(fio_progress)]),
    "fio_upload_set_bandwidth_limit": (fio_status, [P(fio_upload), c_uint64]),
    "fio_upload_status": (fio_status, [P(fio_upload)]),
    "fio_upload_asset_id": (c_char_p, [P(fio_upload)]),
    "fio_upload_resume_offset": (c_uint64, [P(fio_upload)]),
    "fio_upload_part_count": (c_size_t, [P(fio_upload)]),
    "fio_upload_part_info": (fio_status, [P(fio_upload), c_size_t, P(fio_upload_part)]),
    "fio_upload_free": (None, [P(fio_upload)]),
    "fio_upload_file": (
        fio_status,
        [P(fio_client), P(fio_asset_params), c_char_p, P(fio_upload_options), P(fio_progress)],
    ),
}

# ---------------------------------------------------------------------------------------------------------
# Loading


class LibraryError(ImportError):
    """The shared library could not be found or loaded, or its version is not the package's."""


def candidate_paths() -> List[Path]:
    """Where the library is looked for, in order: ``$FRAMEIO_C2C_LIB`` (alone, when set), the package
    folder, the build tree (``target/release`` and ``target/debug`` of the repository, or of
    ``$CARGO_TARGET_DIR``; the newer wins). Last, the system's library path (``make install``)."""
    out: List[Path] = []
    env = os.environ.get(LIB_ENV)
    if env:
        out.append(Path(env))
        return out  # an explicit choice is never second-guessed
    here = Path(__file__).resolve().parent
    out.append(here / _SONAME)
    roots = []
    if os.environ.get("CARGO_TARGET_DIR"):
        roots.append(Path(os.environ["CARGO_TARGET_DIR"]))
    if (here.parent / "pyproject.toml").is_file():  # running from a checkout: <repo>/python/frameio_c2c
        roots.append(here.parent.parent / "target")
    for root in roots:
        for profile in ("release", "debug"):
            out.append(root / profile / _SONAME)
    return out


def _system_library() -> Optional[str]:
    """The library as installed system-wide (``make install``), found by the dynamic loader's rules."""
    return ctypes.util.find_library("frameio_c2c")


def _pick_path() -> Path:
    cands = candidate_paths()
    existing = [p for p in cands if p.is_file()]
    if not existing and not os.environ.get(LIB_ENV):
        system = _system_library()
        if system:
            return Path(system)
    if not existing:
        tried = "\n  ".join(str(p) for p in cands)
        raise LibraryError(
            f"frameio_c2c: cannot find {_SONAME}; tried:\n  {tried}\n"
            f"Build it (`make build` or `make release`) and set {LIB_ENV} to its path, copy it into the "
            f"package folder, or install it system-wide."
        )
    if os.environ.get(LIB_ENV):
        return existing[0]
    # Package folder first (an installed copy); otherwise the most recently built of release/debug.
    if existing[0].parent == Path(__file__).resolve().parent:
        return existing[0]
    return max(existing, key=lambda p: p.stat().st_mtime)


class Library:
    """A loaded ``libframeio_c2c`` with every declared function typed."""

    def __init__(self, path: Path, expected_version: str = __version__) -> None:
        try:
            dll = ctypes.CDLL(str(path))
        except OSError as e:
            raise LibraryError(f"frameio_c2c: cannot load {path}: {e}") from e
        self.path = path
        self.dll = dll
        self.missing: List[str] = []
        for name, (restype, argtypes) in DECLARATIONS.items():
            try:
                fn = getattr(dll, name)
            except AttributeError:
                self.missing.append(name)
                continue
            fn.restype = restype
            fn.argtypes = list(argtypes)
            setattr(self, name, fn)
        if "fio_version" in self.missing:
            raise LibraryError(f"frameio_c2c: {path} does not export fio_version; is it libframeio_c2c?")
        version = dll.fio_version().decode("utf-8", "replace")
        self.version = version
        if version != expected_version:
            raise LibraryError(
                f"frameio_c2c: library version mismatch: {path} is version {version}, "
                f"but this Python package is version {expected_version}. Install the package that "
                f"matches the library (pip install ./python from the same checkout), or point "
                f"{LIB_ENV} at a libframeio_c2c of version {expected_version}."
            )

    def __getattr__(self, name: str) -> Any:
        # Only reached for names not set in __init__: a declared function the library lacks.
        if name.startswith("fio_") and name in DECLARATIONS:
            raise LibraryError(
                f"frameio_c2c: {self.path} does not export {name} (an older build?); rebuild the library"
            )
        raise AttributeError(name)


_lib: Optional[Library] = None
_lock = threading.Lock()


def lib() -> Library:
    """The process-wide library, loaded on first use."""
    global _lib
    if _lib is None:
        with _lock:
            if _lib is None:
                _lib = Library(_pick_path())
    return _lib


def load(path: "os.PathLike[str] | str", expected_version: str = __version__) -> Library:
    """Load a library from an explicit path (checked like the default one) without installing it as
    the process-wide library."""
    return Library(Path(path), expected_version)
