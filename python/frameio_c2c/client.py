"""The client: configuration, pairing, tokens, device calls, assets, comments and real-time parts."""

from __future__ import annotations

import ctypes
import enum
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from ctypes import POINTER, byref, c_uint64, c_void_p
from pathlib import Path
from typing import (
    Any,
    BinaryIO,
    Callable,
    Dict,
    Iterable,
    List,
    NamedTuple,
    Optional,
    Tuple,
    Union,
)

from . import _lib as C
from ._lib import lib
from ._util import Handle, StrLike, blocking, dec, enc, enc_opt, take_string
from .upload import Progress, ProgressCallback, Upload, PathLike
from .errors import (
    AuthError,
    CancelledError,
    FrameioError,
    InvalidArgumentError,
    StateError,
    Status,
    check,
    last_error,
)

_log = logging.getLogger("frameio_c2c")

#: "No size given" for optional 64-bit sizes (``FIO_SIZE_NONE``).
SIZE_NONE = (1 << 64) - 1

DEFAULT_BASE_URL = "https://api.frame.io"


class LogLevel(enum.IntEnum):
    """Library log levels (``FIO_LOG_*``)."""

    ERROR = 1
    WARN = 2
    INFO = 3
    DEBUG = 4
    TRACE = 5


_TO_LOGGING = {
    LogLevel.ERROR: logging.ERROR,
    LogLevel.WARN: logging.WARNING,
    LogLevel.INFO: logging.INFO,
    LogLevel.DEBUG: logging.DEBUG,
    LogLevel.TRACE: logging.DEBUG - 5,
}


@dataclass(frozen=True)
class Tokens:
    """An OAuth token pair. Persist it (atomically) whenever ``on_tokens`` gives a new one: refresh
    tokens are single-use, so a lost pair means pairing the device again. The tokens are kept out of
    ``repr()``."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    #: Access token expiry, seconds since the Unix epoch (0 = unknown).
    expires_at: int = 0


@dataclass(frozen=True)
class Asset:
    """A created asset. ``upload_urls`` (basic uploads only) are credentials: kept out of ``repr()``."""

    id: str
    name: str
    realtime: bool
    upload_urls: List[str] = field(default_factory=list, repr=False)


class Part(NamedTuple):
    """One part for :meth:`Client.register_parts`: number 1..10000, size in bytes (>= 5 MiB unless
    final, <= 5 GiB), and whether it is the final part."""

    number: int
    size: int
    is_final: bool = False


PartLike = Union[Part, Tuple[int, int], Tuple[int, int, bool]]
TokenCallback = Callable[[Tokens], None]
LogCallback = Callable[[LogLevel, str], None]


# Set while an on_tokens callback runs on this thread (the library holds the refresh lock then).
_in_token_callback = threading.local()


def _report_callback_error(where: str) -> None:
    _log.exception("frameio_c2c: exception in %s (ignored)", where)


class _PartProgress:
    """Wraps a Python part-progress callable as an ``fio_part_progress_cb``; an exception in it aborts
    the PUT and is kept to be raised by the caller."""

    def __init__(self, fn: Optional[Callable[[int], Any]]) -> None:
        self.fn = fn
        self.error: Optional[BaseException] = None
        self.sent = 0
        # A prototype called without arguments is a NULL function pointer (no callback).
        self.cfunc = C.fio_part_progress_cb(self._call) if fn is not None else C.fio_part_progress_cb()

    def _call(self, _userdata: Optional[int], n: int) -> int:
        try:
            self.sent += n
            return 1 if self.fn(n) is False else 0  # type: ignore[misc]
        except BaseException as e:  # noqa: BLE001 - must not cross into C
            self.error = e
            return 1


class Pairing:
    """A pairing in progress (OAuth device-code flow).

    Show :attr:`user_code` and :attr:`verification_uri` to the user (or a QR code of
    :attr:`verification_uri_complete`), then call :meth:`wait`. Use it as a context manager, or call
    :meth:`close` (also done when it is garbage collected).
    """

    def __init__(self, client: "Client", ptr: "ctypes._Pointer[C.fio_pairing]") -> None:
        self._client = client
        self._h = Handle(ptr, "pairing")
        L = lib()
        self.user_code: str = dec(L.fio_pairing_user_code(ptr)) or ""
        """The six-digit code the user types into Frame.io."""
        self.verification_uri: str = dec(L.fio_pairing_verification_uri(ptr)) or ""
        """Where the user enters the code."""
        self.verification_uri_complete: Optional[str] = dec(L.fio_pairing_verification_uri_complete(ptr))
        """The URL with the code prefilled (for a link or QR code); None unless the client was made
        with ``url_pairing=True`` and the server gave one."""
        self.name: str = dec(L.fio_pairing_name(ptr)) or ""
        """The device name the server reported (may be empty)."""
        self.expires_in: int = int(L.fio_pairing_expires_in(ptr))
        """Seconds the code stays valid, counted from the start of pairing."""

    def _call(self, name: str, *args: Any) -> Any:
        with self._h.use() as p:
            return getattr(lib(), name)(p, *args)

    @property
    def remaining(self) -> int:
        """Seconds left before the code expires (0 once expired)."""
        return int(self._call("fio_pairing_remaining"))

    @property
    def interval(self) -> float:
        """Current polling interval in seconds (grows by 5 s after each slow_down)."""
        return int(self._call("fio_pairing_interval_ms")) / 1000.0

    def poll(self) -> bool:
        """Poll once: True once paired (the tokens are installed in the client and were given to
        ``on_tokens``); False while the user has not entered the code yet (poll again after
        :attr:`interval`). Raises :class:`PairingExpiredError` when the code expired and
        :class:`CancelledError` after :meth:`cancel`."""
        with self._client._h.use() as c, self._h.use() as p:
            st = lib().fio_pairing_poll(c, p)
        if st in (Status.AUTHORIZATION_PENDING, Status.SLOW_DOWN):
            return False
        check(st)
        return True

    def wait(self, timeout: Optional[float] = None) -> None:
        """Block until the user entered the code (the tokens are then installed in the client).

        Honours the server's polling interval and slow_down; transient network errors are retried.
        Raises :class:`PairingExpiredError` when the code expires, :class:`CancelledError` when
        :meth:`cancel` is called from another thread, and :class:`TimeoutError` after ``timeout``
        seconds (the pairing is cancelled then). The GIL is released while waiting; Ctrl-C cancels.
        """
        timer: Optional[threading.Timer] = None
        fired = threading.Event()
        if timeout is not None:

            def expire() -> None:
                fired.set()
                self.cancel()

            timer = threading.Timer(timeout, expire)
            timer.daemon = True
            timer.start()
        try:
            with self._client._h.use() as client, self._h.use() as ptr:
                blocking(lambda: lib().fio_pairing_wait(client, ptr), self.cancel)
        except CancelledError as e:
            if fired.is_set():
                raise TimeoutError(f"pairing not approved within {timeout} s") from e
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def cancel(self) -> None:
        """Cancel a :meth:`wait` running on any thread (it raises :class:`CancelledError`); later
        polls raise it too."""
        try:
            self._call("fio_pairing_cancel")
        except StateError:
            pass  # closed: nothing to cancel

    def close(self) -> None:
        """Release the pairing. A :meth:`wait` running on another thread is cancelled first."""
        self._h.close(lib().fio_pairing_free, before_wait=lib().fio_pairing_cancel)

    def __enter__(self) -> "Pairing":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"Pairing(user_code={self.user_code!r}, verification_uri={self.verification_uri!r})"


class Client:
    """A Frame.io Camera-to-Cloud client (one per device; safe to share between threads).

    Use it as a context manager or call :meth:`close`. Every failure raises a
    :class:`~frameio_c2c.FrameioError` subclass. Long calls release the GIL.

    Args:
        client_id: unique and stable per physical unit (serial number or a persisted UUID).
        client_secret: per device model, issued by Frame.io.
        client_version: the firmware version, semver ("1.2.3"), sent on every API call.
        base_url: API base URL (default https://api.frame.io).
        allow_http: allow plain http:// (emulator and tests only).
        scope: OAuth scope requested when pairing (default "asset_create offline").
        url_pairing: ask for URL/QR pairing so ``Pairing.verification_uri_complete`` is filled.
        tokens: tokens saved earlier, installed at once (:class:`Tokens` or a 2/3-tuple).
        on_tokens: called with every new :class:`Tokens` (after pairing and each refresh), before the
            library uses them, on the thread that obtained them, while the client's refresh lock is
            held: persist them and return. Calling this client from it raises :class:`StateError`
            (it would deadlock). Exceptions are logged and ignored.
        on_log: receives library log lines: a callable ``(level, message)`` or a
            :class:`logging.Logger`. Runs on library threads; must be quick. Lines never hold secrets.
        log_level: most verbose level passed to ``on_log`` (default INFO).
        connect_timeout, request_timeout, response_timeout, stall_timeout: seconds (None: default).
        min_throughput: bytes/s used to derive a part body's deadline.
        retry_attempts, retry_backoff, retry_max_backoff, retry_deadline: retry policy (attempts in
            total; seconds). Given together or with the defaults 5, 0.5, 30, 300.
        extra_ca_pem: extra CA certificates (PEM text, bytes, or a path to a PEM file), added to the
            built-in roots.
        proxy: "http://host:port" or "https://host:port" (SOCKS is refused).
        refresh_margin: refresh the access token this many seconds before it expires.
        max_idle_connections: idle connections kept per host (>= parallel part uploads).
        expect_continue: send ``Expect: 100-continue`` on part PUTs (default on;
            URLs this client registered less than half their lifetime ago go without it).
    """

    def __init__(
        self,
        client_id: StrLike,
        client_secret: StrLike,
        *,
        client_version: StrLike = "0.0.0",
        base_url: Optional[StrLike] = None,
        allow_http: bool = False,
        scope: Optional[StrLike] = None,
        url_pairing: bool = False,
        tokens: Union[Tokens, Tuple[str, str], Tuple[str, str, int], None] = None,
        on_tokens: Optional[TokenCallback] = None,
        on_log: Union[LogCallback, logging.Logger, None] = None,
        log_level: int = LogLevel.INFO,
        connect_timeout: Optional[float] = None,
        request_timeout: Optional[float] = None,
        response_timeout: Optional[float] = None,
        stall_timeout: Optional[float] = None,
        min_throughput: Optional[int] = None,
        retry_attempts: Optional[int] = None,
        retry_backoff: Optional[float] = None,
        retry_max_backoff: Optional[float] = None,
        retry_deadline: Optional[float] = None,
        extra_ca_pem: Union[bytes, str, "os.PathLike[str]", None] = None,
        proxy: Optional[StrLike] = None,
        refresh_margin: Optional[int] = None,
        max_idle_connections: Optional[int] = None,
        expect_continue: Optional[bool] = None,
    ) -> None:
        self._h = Handle(None, "client")
        # Callback objects the library may call: kept for this object's whole life (uploads keep a
        # reference to their client, so these outlive every native object that can call them).
        self._callbacks: List[object] = []
        self._on_tokens = on_tokens
        L = lib()
        cfg = L.fio_config_new()
        if not cfg:
            raise FrameioError(Status.PANIC, "fio_config_new failed")
        try:
            if allow_http:
                check(L.fio_config_set_allow_http(cfg, True))
            if base_url is not None:
                check(L.fio_config_set_base_url(cfg, enc(base_url, "base_url")))
            check(L.fio_config_set_client_id(cfg, enc(client_id, "client_id")))
            check(L.fio_config_set_client_secret(cfg, enc(client_secret, "client_secret")))
            check(L.fio_config_set_client_version(cfg, enc(client_version, "client_version")))
            if scope is not None:
                check(L.fio_config_set_scope(cfg, enc(scope, "scope")))
            if url_pairing:
                check(L.fio_config_set_url_pairing(cfg, True))
            if any(x is not None for x in (connect_timeout, request_timeout, response_timeout, stall_timeout, min_throughput)):
                check(
                    L.fio_config_set_timeouts(
                        cfg,
                        _ms(connect_timeout),
                        _ms(request_timeout),
                        _ms(response_timeout),
                        _ms(stall_timeout),
                        int(min_throughput or 0),
                    )
                )
            if any(x is not None for x in (retry_attempts, retry_backoff, retry_max_backoff, retry_deadline)):
                check(
                    L.fio_config_set_retry(
                        cfg,
                        5 if retry_attempts is None else int(retry_attempts),
                        _ms(0.5 if retry_backoff is None else retry_backoff),
                        _ms(30.0 if retry_max_backoff is None else retry_max_backoff),
                        _ms(300.0 if retry_deadline is None else retry_deadline),
                    )
                )
            if extra_ca_pem is not None:
                pem = _read_pem(extra_ca_pem)
                check(L.fio_config_set_extra_ca_pem(cfg, pem, len(pem)))
            if proxy is not None:
                check(L.fio_config_set_proxy(cfg, enc(proxy, "proxy")))
            if refresh_margin is not None:
                check(L.fio_config_set_refresh_margin(cfg, int(refresh_margin)))
            if max_idle_connections is not None:
                check(L.fio_config_set_max_idle_connections(cfg, int(max_idle_connections)))
            if expect_continue is not None:
                check(L.fio_config_set_expect_continue(cfg, bool(expect_continue)))
            if on_log is not None:
                cb = C.fio_log_cb(_make_log_callback(on_log))
                self._callbacks.append(cb)
                check(L.fio_config_set_log_callback(cfg, int(log_level), cb, None))
            if on_tokens is not None:
                cb = C.fio_token_cb(self._token_callback)
                self._callbacks.append(cb)
                check(L.fio_config_set_token_callback(cfg, cb, None))
            out = POINTER(C.fio_client)()
            check(L.fio_client_new(cfg, byref(out)))
            self._h = Handle(out, "client")
        finally:
            L.fio_config_free(cfg)
        if tokens is not None:
            self.tokens = tokens

    # -- lifetime ----------------------------------------------------------------------------------

    def _call(self, name: str, *args: Any) -> Any:
        """Call ``name(client, *args)`` holding the handle (so close() waits for it)."""
        if getattr(_in_token_callback, "active", False):
            # The library holds the client's refresh lock while the token callback runs.
            raise StateError(Status.WRONG_STATE, "on_tokens must not call the client (it would deadlock)")
        with self._h.use() as p:
            return getattr(lib(), name)(p, *args)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._h.closed

    def close(self) -> None:
        """Stop the heartbeat thread, wipe the tokens and close connections. Calls running on other
        threads are waited for; later calls raise :class:`StateError`. Uploads made from this client
        keep working until they are closed."""
        self._h.close(lib().fio_client_free)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # -- callbacks ---------------------------------------------------------------------------------

    def _token_callback(self, _ud: Optional[int], access: Optional[bytes], refresh: Optional[bytes], expires_at: int) -> None:
        _in_token_callback.active = True
        try:
            fn = self._on_tokens
            if fn is not None:
                fn(Tokens(dec(access) or "", dec(refresh) or "", int(expires_at)))
        except BaseException:  # noqa: BLE001 - must not cross into C
            _report_callback_error("on_tokens callback")
        finally:
            _in_token_callback.active = False

    # -- pairing and tokens ------------------------------------------------------------------------

    def pair(self) -> Pairing:
        """Start pairing (device-code flow): returns a :class:`Pairing` with ``user_code``,
        ``verification_uri`` and ``verification_uri_complete``; call its ``wait()``."""
        out = POINTER(C.fio_pairing)()
        check(self._call("fio_pairing_start", byref(out)))
        return Pairing(self, out)

    @property
    def tokens(self) -> Optional[Tokens]:
        """The current tokens (None when the device is not paired). Assign a :class:`Tokens` (or an
        ``(access, refresh[, expires_at])`` tuple) saved earlier to install it; assign None to forget
        the tokens locally (see :meth:`revoke` to un-pair)."""
        a, r, exp = c_void_p(), c_void_p(), c_uint64()
        st = self._call("fio_client_get_tokens", byref(a), byref(r), byref(exp))
        if st == Status.PAIRING_REQUIRED:
            return None
        check(st)
        return Tokens(take_string(a), take_string(r), int(exp.value))

    @tokens.setter
    def tokens(self, value: Union[Tokens, Tuple[str, str], Tuple[str, str, int], None]) -> None:
        if value is None:
            check(self._call("fio_client_clear_tokens"))
            return
        if not isinstance(value, Tokens):
            value = Tokens(*value)
        check(
            self._call(
                "fio_client_set_tokens", enc(value.access_token, "access_token"),
                enc(value.refresh_token or "", "refresh_token"),
                int(value.expires_at),
            )
        )

    def refresh(self) -> Tokens:
        """Refresh the access token now (single-flight with automatic refreshes); returns the new
        tokens (also given to ``on_tokens``). :class:`AuthError` (PAIRING_REQUIRED) means pair again."""
        check(self._call("fio_client_refresh"))
        t = self.tokens
        if t is None:
            raise AuthError(Status.PAIRING_REQUIRED, "no tokens after refresh")
        return t

    def revoke(self) -> None:
        """Un-pair the device: revoke the refresh token at Frame.io and forget the tokens."""
        check(self._call("fio_client_revoke"))

    # -- device --------------------------------------------------------------------------------------

    def device_info(self) -> Dict[str, Any]:
        """GET /v2/devices/me: the device's description (project, status, scopes...) as a dict."""
        out = c_void_p()
        check(self._call("fio_device_info", byref(out)))
        info: Dict[str, Any] = json.loads(take_string(out))
        return info

    def heartbeat(self) -> None:
        """Send one heartbeat (marks the device online)."""
        check(self._call("fio_heartbeat"))

    def start_heartbeat(self, interval: int = 120) -> None:
        """Send a heartbeat every ``interval`` seconds (clamped to 60..300) from a library thread until
        :meth:`stop_heartbeat` or :meth:`close`. Failures are logged, not raised."""
        check(self._call("fio_heartbeat_start", int(interval)))

    def stop_heartbeat(self) -> None:
        """Stop the background heartbeat (no-op when it is not running)."""
        check(self._call("fio_heartbeat_stop"))

    # -- assets and comments -------------------------------------------------------------------------

    def create_asset(
        self,
        name: Optional[StrLike],
        filetype: StrLike,
        *,
        filesize: Optional[int] = None,
        realtime: bool = False,
        extension: Optional[StrLike] = None,
        channel: Optional[int] = None,
        offset: Optional[int] = None,
    ) -> Asset:
        """Create an asset.

        Basic upload (``realtime=False``): ``name`` and ``filesize`` are required; the returned
        :class:`Asset` carries the presigned ``upload_urls`` (part i covers bytes
        ``[i*chunk, min((i+1)*chunk, filesize))`` with ``chunk = ceil(filesize / len(upload_urls))``).

        Real-time upload (``realtime=True``): ``name`` must end in an extension unless ``extension``
        (".mov") is given; register parts with :meth:`register_parts` as they are recorded (or use
        :meth:`upload`, which does all of it).

        ``channel`` is the device channel; ``offset`` the seconds since the media was created (send it:
        it files the media under its capture date, and a channel paused at that time gives
        :class:`ChannelPausedError`).
        """
        if realtime and filesize is not None:
            raise InvalidArgumentError(Status.INVALID_ARGUMENT, "a real-time asset takes no filesize")
        if not realtime and filesize is None:
            raise InvalidArgumentError(Status.INVALID_ARGUMENT, "a basic asset needs filesize")
        p, _keep = _asset_params(name, filetype, filesize, realtime, extension, channel, offset)
        out = POINTER(C.fio_asset)()
        L = lib()
        check(self._call("fio_asset_create", byref(p), byref(out)))
        try:
            n = L.fio_asset_upload_url_count(out)
            urls = [dec(L.fio_asset_upload_url(out, i)) or "" for i in range(n)]
            return Asset(
                id=dec(L.fio_asset_id(out)) or "",
                name=dec(L.fio_asset_name(out)) or "",
                realtime=bool(L.fio_asset_is_realtime(out)),
                upload_urls=urls,
            )
        finally:
            L.fio_asset_free(out)

    def comment(self, asset_id: StrLike, text: StrLike, timestamp: Optional[float] = None) -> str:
        """Add a comment to an asset, at ``timestamp`` (frames from 0) or on the whole asset (None).
        Returns the new comment's id."""
        out = c_void_p()
        ts = -1.0 if timestamp is None else float(timestamp)
        check(self._call("fio_comment_create", enc(asset_id, "asset_id"), enc(text, "text"), ts, byref(out)))
        return take_string(out)

    # -- real-time parts, low level ----------------------------------------------------------------

    def register_parts(
        self,
        asset_id: StrLike,
        parts: Iterable[PartLike],
        *,
        asset_name: Optional[StrLike] = None,
        asset_filesize: Optional[int] = None,
    ) -> List[str]:
        """Register parts of a real-time asset; returns their presigned URLs in the order given.

        ``parts`` are :class:`Part` (or ``(number, size[, is_final])`` tuples). ``asset_filesize`` (the
        whole file's size) is required with the final part; ``asset_name`` renames an asset created with
        only an extension. Registering a number again with the same size and finality gives a fresh URL
        (after :class:`UploadError` URL_EXPIRED). The URLs are credentials: do not log them.
        """
        plist = [p if isinstance(p, Part) else Part(*p) for p in parts]
        arr = (C.fio_part_spec * max(len(plist), 1))()
        for i, p in enumerate(plist):
            if not 0 <= p.number < 1 << 32 or not 0 <= p.size < 1 << 64:
                raise InvalidArgumentError(Status.INVALID_ARGUMENT, f"part {p.number}: number or size out of range")
            arr[i].number, arr[i].size, arr[i].is_final = p.number, p.size, bool(p.is_final)
        size = SIZE_NONE if asset_filesize is None else int(asset_filesize)
        if not 0 <= size < 1 << 64:
            raise InvalidArgumentError(Status.INVALID_ARGUMENT, "asset_filesize out of range")
        out = POINTER(C.fio_url_list)()
        L = lib()
        check(
            self._call(
                "fio_register_parts", enc(asset_id, "asset_id"), arr, len(plist), enc_opt(asset_name, "asset_name"), size, byref(out)
            )
        )
        try:
            return [dec(L.fio_url_list_get(out, i)) or "" for i in range(L.fio_url_list_len(out))]
        finally:
            L.fio_url_list_free(out)

    def put_part(
        self,
        url: StrLike,
        data: Union[bytes, bytearray, memoryview, int, BinaryIO],
        *,
        content_type: StrLike,
        offset: int = 0,
        length: Optional[int] = None,
        progress: Optional[Callable[[int], Optional[bool]]] = None,
    ) -> None:
        """PUT one part to its presigned URL.

        ``data`` is a bytes-like object (sent without a copy where possible), or a file (an ``int`` fd or
        an object with ``fileno()``) of which ``length`` bytes from ``offset`` are streamed (default: to
        the end of the file; the file position is not used). ``content_type`` is the asset's filetype.
        ``progress(n)`` is called with the size of each chunk handed to the socket (when the library
        retries the part, it is sent again from its start, so the sum can exceed the part size);
        returning False cancels (:class:`CancelledError`), and an exception raised in it aborts the
        PUT and is raised here. Transient failures are retried; :class:`UploadError`
        (URL_EXPIRED) means: register the part again for a fresh URL.
        """
        cb = _PartProgress(progress)
        u, ct = enc(url, "url"), enc(content_type, "content_type")
        if isinstance(data, (bytes, bytearray, memoryview)):
            if offset or length is not None:
                data = memoryview(data)[offset : None if length is None else offset + length]
            buf, n = _buffer(data)
            st = self._call("fio_put_part", u, buf, n, ct, cb.cfunc, None)
        else:
            fd = data if isinstance(data, int) else data.fileno()
            if length is None:
                length = os.fstat(fd).st_size - offset
            if offset < 0 or length < 0:
                raise InvalidArgumentError(Status.INVALID_ARGUMENT, "offset and length must be >= 0")
            st = self._call("fio_put_part_fd", u, fd, int(offset), int(length), ct, cb.cfunc, None)
        if st != Status.OK:
            err = last_error(st)
            if cb.error is not None:
                raise cb.error from err
            raise err


    # -- the upload engine ---------------------------------------------------------------------------

    def upload(
        self,
        name: Optional[StrLike],
        filetype: StrLike,
        *,
        path: Optional[PathLike] = None,
        extension: Optional[StrLike] = None,
        channel: Optional[int] = None,
        offset: Optional[int] = None,
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
    ) -> Upload:
        """Create a real-time asset and upload a recording to it while it is recorded.

        Without ``path`` the bytes come from :meth:`Upload.write`; with ``path`` from that file, which
        must only grow by appending (report growth with :meth:`Upload.file_grew`, or set
        ``watch_interval`` seconds to let the engine poll its size). Then call
        :meth:`Upload.finish` (or use the upload as a context manager).

        Args:
            name: asset name with extension ("A001_C002.mov"), or None with ``extension`` (then
                ``final_name`` names it when the recording ends).
            filetype: MIME type ("video/quicktime"); also each part's Content-Type.
            channel, offset: see :meth:`create_asset`.
            progress: ``progress(Progress)`` on a library thread about every ``progress_interval``
                seconds and once at the end; returning False cancels; an exception cancels the upload
                and is raised again by :meth:`Upload.finish`.
            concurrency: parallel part uploads (default 3).
            buffer_budget: most written bytes held in memory (default 32 MiB); ``write`` blocks above.
            first_part_size, growth_divisor, max_part_size: part sizing (5 MiB parts growing with the
                recording by default).
            bandwidth_limit: cap on the send rate, bytes/s.
            retry_deadline, retry_backoff: seconds a part keeps retrying transient failures (300), and
                the first wait (0.5).
            state_file: keep resume state there (see :meth:`resume_upload`).
        """
        from . import upload as U

        params, keep = _asset_params(name, filetype, None, True, extension, channel, offset)
        opts = U.UploadOptions(
            progress=progress,
            progress_interval=progress_interval,
            concurrency=concurrency,
            buffer_budget=buffer_budget,
            first_part_size=first_part_size,
            growth_divisor=growth_divisor,
            max_part_size=max_part_size,
            bandwidth_limit=bandwidth_limit,
            retry_deadline=retry_deadline,
            retry_backoff=retry_backoff,
            state_file=state_file,
            watch_interval=watch_interval,
            final_name=final_name,
        )
        return U.start(self, params, path, opts)

    def resume_upload(
        self,
        state_file: PathLike,
        *,
        progress: Optional[ProgressCallback] = None,
        **options: Any,
    ) -> Upload:
        """Continue an upload after a restart from its ``state_file``. Finished parts are not sent
        again. A file source continues from its file; a written-bytes source needs its bytes again
        from :attr:`Upload.resume_offset` on. Options as for :meth:`upload`."""
        from . import upload as U

        return U.resume(self, state_file, U.UploadOptions(progress=progress, **options))

    def upload_file(
        self,
        path: PathLike,
        name: Optional[StrLike],
        filetype: StrLike,
        *,
        realtime: bool = True,
        channel: Optional[int] = None,
        offset: Optional[int] = None,
        progress: Optional[ProgressCallback] = None,
        **options: Any,
    ) -> Progress:
        """Upload a complete file in one blocking call (parallel parts): a real-time asset by default,
        or a basic one (``realtime=False``). ``name`` defaults to the file's name. Returns the final
        counters. To stop it early, return False from ``progress`` (or use :meth:`upload` with
        ``path=``, whose :meth:`Upload.cancel` works from any thread). Options as for :meth:`upload`."""
        from . import upload as U

        if name is None:
            name = os.path.basename(os.fsdecode(path))
        size = os.stat(path).st_size
        params, keep = _asset_params(name, filetype, None if realtime else size, realtime, None, channel, offset)
        return U.upload_file(self, params, path, U.UploadOptions(progress=progress, **options))


# ---------------------------------------------------------------------------------------------------------


def _asset_params(
    name: Optional[StrLike],
    filetype: StrLike,
    filesize: Optional[int],
    realtime: bool,
    extension: Optional[StrLike],
    channel: Optional[int],
    offset: Optional[int],
) -> Tuple[C.fio_asset_params, Tuple[Optional[bytes], ...]]:
    """The params struct, and the encoded strings it points into (keep them alive for the call)."""
    keep = (enc_opt(name, "name"), enc_opt(extension, "extension"), enc(filetype, "filetype"))
    p = C.fio_asset_params()
    lib().fio_asset_params_init(byref(p))
    p.name, p.extension, p.filetype = keep
    size = int(filesize or 0)
    if not 0 <= size < 1 << 64:
        raise InvalidArgumentError(Status.INVALID_ARGUMENT, f"filesize out of range: {size}")
    p.filesize = size
    p.realtime = bool(realtime)
    if channel is not None:
        p.has_channel, p.channel = True, int(channel)
    if offset is not None:
        p.has_offset, p.offset = True, int(offset)
    return p, keep


def _ms(seconds: Optional[float]) -> int:
    if seconds is None:
        return 0
    ms = int(round(float(seconds) * 1000))
    if not 0 <= ms < 1 << 32:
        raise InvalidArgumentError(Status.INVALID_ARGUMENT, f"duration out of range: {seconds} s")
    return ms


def _read_pem(v: Union[bytes, str, "os.PathLike[str]"]) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, str) and "-----BEGIN" in v:
        return v.encode("ascii")
    return Path(v).read_bytes()


def _buffer(data: Union[bytes, bytearray, memoryview]) -> Tuple[object, int]:
    """A pointer argument and length for a bytes-like object, without copying when possible."""
    if isinstance(data, bytes):
        return data, len(data)  # c_void_p passes the bytes object's own buffer
    mv = memoryview(data)
    n = mv.nbytes
    if n == 0:
        return None, 0
    if mv.readonly or not mv.c_contiguous:
        # ctypes cannot point into a read-only (or scattered) buffer: copy it.
        return mv.tobytes(), n
    return (ctypes.c_char * n).from_buffer(mv.cast("B")), n


def _make_log_callback(on_log: Union[LogCallback, logging.Logger]) -> Callable[[Optional[int], int, Optional[bytes]], None]:
    if isinstance(on_log, logging.Logger):
        logger = on_log

        def fn(level: LogLevel, msg: str) -> None:
            logger.log(_TO_LOGGING.get(level, logging.DEBUG), "%s", msg)

    else:
        fn = on_log  # type: ignore[assignment]

    def cb(_ud: Optional[int], level: int, message: Optional[bytes]) -> None:
        try:
            try:
                lv = LogLevel(level)
            except ValueError:
                lv = level  # type: ignore[assignment]
            fn(lv, dec(message) or "")
        except BaseException:  # noqa: BLE001 - must not cross into C
            _report_callback_error("on_log callback")

    return cb
