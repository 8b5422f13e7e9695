"""The upload engine: send a recording to a real-time asset while it is being recorded."""

from __future__ import annotations

import ctypes
import enum
import os
import threading
from ctypes import POINTER, byref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Union

from . import _lib as C
from ._lib import lib
from ._util import Handle, StrLike, blocking, dec, enc, enc_opt
from .errors import FrameioError, InvalidArgumentError, StateError, Status, check, last_error

if TYPE_CHECKING:
    from .client import Client

PathLike = Union[str, bytes, "os.PathLike[str]"]


@dataclass(frozen=True)
class Progress:
    """An upload's counters (given to the progress callback, returned by ``stats`` and ``finish()``)."""

    #: Bytes recorded so far (written, or the file size the engine knows).
    bytes_recorded: int
    #: Bytes of finished parts plus bytes of parts on the wire now.
    bytes_sent: int
    #: Bytes of finished parts.
    bytes_done: int
    #: Parts uploaded.
    parts_done: int
    #: Parts cut so far (the final count once finishing).
    parts_total: int
    #: Parts on the wire now.
    parts_in_flight: int
    #: Transient failures that were retried.
    retries: int
    #: Parts registered again after S3 rejected their (expired) URL.
    reregistrations: int
    #: Send rate over the last second or so, bytes per second.
    throughput_bps: float
    #: Written bytes held in memory now, and the most held at once (never above the buffer budget).
    bytes_buffered: int
    peak_bytes_buffered: int
    #: Seconds since the upload started.
    elapsed_secs: float
    #: True once every part is uploaded: the asset is complete.
    complete: bool

    @classmethod
    def _from_c(cls, p: C.fio_progress) -> "Progress":
        return cls(**{f[0]: getattr(p, f[0]) for f in C.fio_progress._fields_})


class PartState(enum.IntEnum):
    """Where a part of an upload is (``FIO_PART_*``)."""

    QUEUED = 0
    SENDING = 1
    DONE = 2
    FAILED = 3


@dataclass(frozen=True)
class UploadPart:
    """One part of an upload."""

    number: int
    offset: int
    size: int
    is_final: bool
    state: Union[PartState, int]
    #: PUT attempts (each retry and each re-registration adds one).
    attempts: int
    #: Status of this part's last failure (``Status.OK`` if none) and its HTTP status (0 if none).
    last_status: Union[Status, int]
    last_http_status: int


ProgressCallback = Callable[[Progress], Optional[bool]]

# Set while a progress callback runs on this thread (a library thread): an Upload collected there
# must not be freed on it (fio_upload_free waits for that very thread).
_in_callback = threading.local()


class _ProgressHook:
    """The ctypes progress callback of one upload. It holds no reference to the Upload (so the
    Upload is never collected from inside its own callback); an exception raised by the Python
    callback is kept here and cancels the upload."""

    def __init__(self, fn: Optional[ProgressCallback]) -> None:
        self.fn = fn
        self.error: Optional[BaseException] = None
        self.calls = 0
        self.cfunc = C.fio_progress_cb(self._call) if fn is not None else None

    def _call(self, _userdata: Optional[int], p: "ctypes._Pointer[C.fio_progress]") -> int:
        if self.error is not None:
            return 1
        _in_callback.active = True
        try:
            self.calls += 1
            return 1 if self.fn(Progress._from_c(p.contents)) is False else 0  # type: ignore[misc]
        except BaseException as e:  # noqa: BLE001 - must not cross into C; raised by finish()
            self.error = e
            return 1
        finally:
            _in_callback.active = False


class UploadOptions:
    """Settings of an upload (see :meth:`Client.upload`); builds an ``fio_upload_options``."""

    def __init__(
        self,
        *,
        progress: Optional[ProgressCallback] = None,
        progress_interval: float = 0.1,
        concurrency: Optional[int] = None,
        buffer_budget: Optional[int] = None,
        first_part_size: Optional[int] = None,
        growth_divisor: Optional[int] = None,
        max_part_size: Optional[int] = None,
        bandwidth_limit: Optional[int] = None,
        retry_deadline: Optional[float] = None,
        retry_backoff: Optional[float] = None,
        state_file: Optional[PathLike] = None,
        watch_interval: Optional[float] = None,
        final_name: Optional[StrLike] = None,
    ) -> None:
        self.hook = _ProgressHook(progress)
        L = lib()
        self.ptr = L.fio_upload_options_new()
        if not self.ptr:
            raise MemoryError("fio_upload_options_new")
        try:
            p = self.ptr
            if concurrency is not None:
                check(L.fio_upload_options_set_concurrency(p, _u32(concurrency, "concurrency")))
            if buffer_budget is not None:
                check(L.fio_upload_options_set_buffer_budget(p, _u64(buffer_budget, "buffer_budget")))
            if any(x is not None for x in (first_part_size, growth_divisor, max_part_size)):
                check(
                    L.fio_upload_options_set_part_sizes(
                        p,
                        _u64(first_part_size or 0, "first_part_size"),
                        _u64(growth_divisor or 0, "growth_divisor"),
                        _u64(max_part_size or 0, "max_part_size"),
                    )
                )
            if bandwidth_limit is not None:
                check(L.fio_upload_options_set_bandwidth_limit(p, _u64(bandwidth_limit, "bandwidth_limit")))
            if retry_deadline is not None or retry_backoff is not None:
                check(
                    L.fio_upload_options_set_retry(
                        p,
                        _u64(_ms(retry_deadline), "retry_deadline"),
                        _u32(_ms(retry_backoff), "retry_backoff"),
                    )
                )
            if self.hook.cfunc is not None:
                interval = max(1, _ms(progress_interval))
                check(L.fio_upload_options_set_progress(p, self.hook.cfunc, None, _u32(interval, "progress_interval")))
            if state_file is not None:
                check(L.fio_upload_options_set_state_file(p, enc(os.fspath(state_file), "state_file")))
            if watch_interval is not None:
                check(L.fio_upload_options_set_watch_interval(p, _u32(max(1, _ms(watch_interval)), "watch_interval")))
            if final_name is not None:
                check(L.fio_upload_options_set_final_name(p, enc(final_name, "final_name")))
        except BaseException:
            self.free()
            raise

    def free(self) -> None:
        p, self.ptr = self.ptr, None
        if p:
            lib().fio_upload_options_free(p)


class Upload:
    """One upload of a recording to a real-time asset (from :meth:`Client.upload`).

    Feed it with :meth:`write` (bytes as they are recorded) or, for a file source, :meth:`file_grew`
    (or let the engine watch the file), then call :meth:`finish`. :meth:`cancel` works from any thread.
    As a context manager, leaving the block finishes the upload, or cancels it when the block raised.

    The progress callback runs on a library thread; returning False cancels the upload, and an
    exception raised in it cancels the upload and is raised again by :meth:`finish` (and by a later
    :meth:`write`).
    """

    def __init__(self, client: "Client", ptr: "ctypes._Pointer[C.fio_upload]", hook: _ProgressHook) -> None:
        # The client object owns the token/log callbacks the engine may still call: keep it alive.
        self._client = client
        self._h = Handle(ptr, "upload")
        self._hook = hook  # the ctypes progress callback: alive as long as the native upload
        self._finished: Optional[Progress] = None
        self._closed_stats: Optional[Progress] = None  # snapshots kept by close()
        self._closed_parts: List[UploadPart] = []
        self.asset_id: str = dec(lib().fio_upload_asset_id(ptr)) or ""
        """The real-time asset's id."""

    def _call(self, name: str, *args: Any) -> Any:
        with self._h.use() as p:
            return getattr(lib(), name)(p, *args)

    def _raise(self, status: int) -> None:
        err = last_error(status)
        if self._hook.error is not None:
            raise self._hook.error from err
        raise err

    # -- feeding -----------------------------------------------------------------------------------

    def write(self, data: Union[bytes, bytearray, memoryview]) -> int:
        """Append recorded bytes (copied by the library); returns how many (all of them), like a file,
        so an Upload can be the destination of ``shutil.copyfileobj``. Blocks while the buffer budget
        is full (backpressure), with the GIL released."""
        from .client import _buffer

        buf, n = _buffer(data)
        st = self._call("fio_upload_write", buf, n)
        if st != Status.OK:
            self._raise(st)
        return n

    def file_grew(self, new_size: int) -> None:
        """File source: the file now holds ``new_size`` bytes; parts whose bytes exist are queued."""
        st = self._call("fio_upload_file_grew", _u64(new_size, "new_size"))
        if st != Status.OK:
            self._raise(st)

    def finish(self) -> Progress:
        """The recording ended: send the final part and wait until the asset is complete. Returns the
        final counters. Raises the failure that stopped the upload, :class:`CancelledError` after
        :meth:`cancel`, or the exception a progress callback raised. Ctrl-C cancels the upload."""
        if self._finished is not None:
            return self._finished
        out = C.fio_progress()
        try:
            blocking(lambda: self._call("fio_upload_finish", byref(out)), self.cancel)
        except FrameioError as err:
            if self._hook.error is not None:
                raise self._hook.error from err
            raise
        self._finished = Progress._from_c(out)
        return self._finished

    def cancel(self) -> None:
        """Cancel the upload from any thread: a blocked :meth:`write` or :meth:`finish` raises
        :class:`CancelledError`. A state file is kept, so the upload can be resumed. No-op once
        closed."""
        try:
            self._call("fio_upload_cancel")
        except StateError:
            pass

    # -- state -------------------------------------------------------------------------------------

    @property
    def stats(self) -> Progress:
        """The current counters (thread-safe); after :meth:`close`, the last ones."""
        if self._h.closed and self._closed_stats is not None:
            return self._closed_stats
        out = C.fio_progress()
        check(self._call("fio_upload_stats", byref(out)))
        return Progress._from_c(out)

    @property
    def error(self) -> Optional[FrameioError]:
        """The failure that stopped the upload (a :class:`CancelledError` after a cancel), or None
        while it runs or once it is complete."""
        st = self._call("fio_upload_status")
        return None if st == Status.OK else last_error(st)

    @property
    def callback_error(self) -> Optional[BaseException]:
        """The exception a progress callback raised, if any."""
        return self._hook.error

    @property
    def resume_offset(self) -> int:
        """After :meth:`Client.resume_upload` of a written-bytes upload: the offset of the first byte
        to write again (0 otherwise)."""
        return int(self._call("fio_upload_resume_offset"))

    @property
    def parts(self) -> List[UploadPart]:
        """Per-part detail (number, offset, size, state, attempts, last failure); after :meth:`close`,
        as it was then."""
        if self._h.closed:
            return list(self._closed_parts)
        with self._h.use() as p:
            return _read_parts(p)

    @property
    def closed(self) -> bool:
        return self._h.closed

    # -- lifetime ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the upload: cancelled first if not complete (a state file is kept for resume); a
        :meth:`write` or :meth:`finish` blocked on another thread returns (CancelledError) and is
        waited for; then waits until the library's threads ended, so no callback runs afterwards."""
        if self._h.closed:
            return
        try:
            with self._h.use() as p:
                st = C.fio_progress()
                if lib().fio_upload_stats(p, byref(st)) == Status.OK:
                    self._closed_stats = Progress._from_c(st)
                self._closed_parts = _read_parts(p)
        except Exception:
            pass
        L = lib()
        # Cancel only an unfinished upload (a complete one has nothing to cancel).
        cancel = None if self._finished is not None else L.fio_upload_cancel
        # Closed (or collected) from inside a progress callback, on the upload's own monitor thread:
        # fio_upload_free waits for that very thread, so wait and free on another one.
        in_cb = bool(getattr(_in_callback, "active", False))
        self._h.close(L.fio_upload_free, before_wait=cancel, in_background=in_cb)

    def __enter__(self) -> "Upload":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is not None:
                self.cancel()
            elif not self._h.closed and self._finished is None:
                self.finish()
        finally:
            self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self._h.closed else ("finished" if self._finished else "open")
        return f"Upload(asset_id={self.asset_id!r}, {state})"


def _read_parts(p: "ctypes._Pointer[C.fio_upload]") -> List[UploadPart]:
    L = lib()
    out: List[UploadPart] = []
    for i in range(L.fio_upload_part_count(p)):
        info = C.fio_upload_part()
        if L.fio_upload_part_info(p, i, byref(info)) != Status.OK:
            break
        out.append(
            UploadPart(
                number=info.number,
                offset=info.offset,
                size=info.size,
                is_final=info.is_final,
                state=_enum(PartState, info.state),
                attempts=info.attempts,
                last_status=_enum(Status, info.last_status),
                last_http_status=info.last_http_status,
            )
        )
    return out


def _enum(cls: Any, v: int) -> Any:
    try:
        return cls(v)
    except ValueError:
        return v


def _ms(seconds: Optional[float]) -> int:
    return 0 if seconds is None else int(round(float(seconds) * 1000))


def _u32(v: int, what: str) -> int:
    v = int(v)
    if not 0 <= v < 1 << 32:
        raise InvalidArgumentError(Status.INVALID_ARGUMENT, f"{what} out of range: {v}")
    return v


def _u64(v: int, what: str) -> int:
    v = int(v)
    if not 0 <= v < 1 << 64:
        raise InvalidArgumentError(Status.INVALID_ARGUMENT, f"{what} out of range: {v}")
    return v


def start(
    client: "Client",
    params: C.fio_asset_params,
    path: Optional[PathLike],
    options: UploadOptions,
) -> Upload:
    out = POINTER(C.fio_upload)()
    try:
        check(
            client._call(
                "fio_upload_start", byref(params), enc_opt(None if path is None else os.fspath(path), "path"), options.ptr, byref(out)
            )
        )
    finally:
        options.free()  # copied by fio_upload_start; the hook lives on in the Upload
    return Upload(client, out, options.hook)


def resume(client: "Client", state_file: PathLike, options: UploadOptions) -> Upload:
    out = POINTER(C.fio_upload)()
    try:
        check(client._call("fio_upload_resume", enc(os.fspath(state_file), "state_file"), options.ptr, byref(out)))
    finally:
        options.free()
    return Upload(client, out, options.hook)


def upload_file(client: "Client", params: C.fio_asset_params, path: PathLike, options: UploadOptions) -> Progress:
    out = C.fio_progress()
    try:
        p = enc(os.fspath(path), "path")
        # A one-shot upload has no handle to cancel from Ctrl-C; a callback error cancels it.
        st = client._call("fio_upload_file", byref(params), p, options.ptr, byref(out))
        if st != Status.OK:
            err = last_error(st)
            if options.hook.error is not None:
                raise options.hook.error from err
            raise err
    finally:
        options.free()
    return Progress._from_c(out)
