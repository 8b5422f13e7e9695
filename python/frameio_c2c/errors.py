"""Status codes and the exceptions they become.

Every failing library call raises a :class:`FrameioError` (or a subclass per group of statuses that a
caller handles differently). The exception carries the library's ``status`` (a :class:`Status`), the
``http_status`` of the reply behind it (0 if none), the ``message`` (never a secret), the server's
error ``server_code`` and whether the failure is ``retryable`` later.
"""

from __future__ import annotations

import ctypes
import enum
from typing import Any, Callable, Dict, Type


class Status(enum.IntEnum):
    """The library's status codes (``FIO_OK``, ``FIO_ERR_*`` in frameio_c2c.h)."""

    OK = 0
    NULL_ARGUMENT = 1
    INVALID_ARGUMENT = 2
    BAD_UTF8 = 3
    NETWORK = 4
    TIMEOUT = 5
    TLS = 6
    BAD_REQUEST = 7
    UNAUTHORIZED = 8
    PAIRING_REQUIRED = 9
    NOT_FOUND = 10
    CHANNEL_PAUSED = 11
    RATE_LIMITED = 12
    SERVER_ERROR = 13
    URL_EXPIRED = 14
    S3 = 15
    PROTOCOL = 16
    IO = 17
    CANCELLED = 18
    LIMIT_EXCEEDED = 19
    WRONG_STATE = 20
    PANIC = 21
    AUTHORIZATION_PENDING = 22
    SLOW_DOWN = 23
    CODE_EXPIRED = 24
    BUFFER_TOO_SMALL = 25
    INVALID_CLIENT = 26
    HTTP_STATUS = 27


class FrameioError(Exception):
    """Base of every error raised by this package for a failed library call.

    Attributes:
        status: the library status (a :class:`Status`, or a plain ``int`` for a code newer than this
            package).
        http_status: HTTP status of the reply behind the error, or 0 when there was none.
        message: what failed, with the server's error code and message when there was one (never a
            token, secret or presigned query string).
        server_code: the server's error code (``"invalid_client"``, ``"Channel Paused"``...), or ``""``.
        retryable: the failure is transient (network, timeout, 429, 5xx): trying again later may work.
            The library has already retried it per its retry policy.
    """

    def __init__(
        self,
        status: int,
        message: str = "",
        http_status: int = 0,
        server_code: str = "",
        retryable: bool = False,
    ) -> None:
        try:
            status = Status(status)
        except ValueError:
            pass
        self.status = status
        self.http_status = http_status
        self.message = message
        self.server_code = server_code
        self.retryable = retryable
        name = status.name if isinstance(status, Status) else str(status)
        text = message or name.lower().replace("_", " ")
        if http_status and f"{http_status}" not in text:
            text = f"{text} (HTTP {http_status})"
        super().__init__(f"[{name}] {text}")


class InvalidArgumentError(FrameioError, ValueError):
    """An argument was rejected: by the library before any request (NULL_ARGUMENT, INVALID_ARGUMENT,
    BAD_UTF8, BUFFER_TOO_SMALL), or by the server (:class:`BadRequestError`)."""


class BadRequestError(InvalidArgumentError):
    """HTTP 400: the server rejected the request (not retried)."""


class AuthError(FrameioError):
    """Authentication failed: HTTP 401 a token refresh did not cure (UNAUTHORIZED), no usable tokens
    (PAIRING_REQUIRED: pair again), or a wrong client id/secret (INVALID_CLIENT)."""


class PairingExpiredError(AuthError):
    """The pairing code expired before the user entered it: start pairing again."""


class NotFoundError(FrameioError):
    """HTTP 404: the asset (or endpoint) does not exist for this device."""


class ChannelPausedError(FrameioError):
    """HTTP 409 Channel Paused: the media was recorded while the channel was paused; do not retry
    this file."""


class RateLimitedError(FrameioError):
    """HTTP 429 (or S3 SlowDown) still failing after the library's retries."""


class NetworkError(FrameioError, ConnectionError):
    """The network failed (connection refused/reset, DNS), a deadline passed (TIMEOUT) or TLS failed,
    after the library's retries."""


class CancelledError(FrameioError):
    """The operation was cancelled: ``cancel()`` was called, or a callback asked to stop (when a
    Python callback raised, that exception is raised instead, chained to this one)."""


class ServerError(FrameioError):
    """HTTP 5xx still failing after the retries, or an HTTP status the API does not document."""


class UploadError(FrameioError):
    """S3 refused a part: URL_EXPIRED (register the part again for a fresh URL) or another S3 error."""


class ProtocolError(FrameioError):
    """The server's reply could not be understood (malformed JSON, an HTML page from a proxy...)."""


class LocalIOError(FrameioError, OSError):
    """A local file could not be read (or is shorter than the range given)."""


class StateError(FrameioError):
    """The object is in the wrong state for this call (WRONG_STATE), a limit was exceeded, or the
    library caught an internal panic (PANIC: the handle is poisoned)."""


_BY_STATUS: Dict[int, Type[FrameioError]] = {
    Status.NULL_ARGUMENT: InvalidArgumentError,
    Status.INVALID_ARGUMENT: InvalidArgumentError,
    Status.BAD_UTF8: InvalidArgumentError,
    Status.BUFFER_TOO_SMALL: InvalidArgumentError,
    Status.BAD_REQUEST: BadRequestError,
    Status.UNAUTHORIZED: AuthError,
    Status.PAIRING_REQUIRED: AuthError,
    Status.INVALID_CLIENT: AuthError,
    Status.CODE_EXPIRED: PairingExpiredError,
    Status.NOT_FOUND: NotFoundError,
    Status.CHANNEL_PAUSED: ChannelPausedError,
    Status.RATE_LIMITED: RateLimitedError,
    Status.NETWORK: NetworkError,
    Status.TIMEOUT: NetworkError,
    Status.TLS: NetworkError,
    Status.CANCELLED: CancelledError,
    Status.SERVER_ERROR: ServerError,
    Status.HTTP_STATUS: ServerError,
    Status.URL_EXPIRED: UploadError,
    Status.S3: UploadError,
    Status.PROTOCOL: ProtocolError,
    Status.IO: LocalIOError,
    Status.WRONG_STATE: StateError,
    Status.LIMIT_EXCEEDED: StateError,
    Status.PANIC: StateError,
    Status.AUTHORIZATION_PENDING: AuthError,
    Status.SLOW_DOWN: AuthError,
}


def error_class(status: int) -> Type[FrameioError]:
    """The exception class for a status code."""
    return _BY_STATUS.get(status, FrameioError)


def _copy_text(fn: Callable[[Any, int], int]) -> str:
    size = 256
    while True:
        buf = ctypes.create_string_buffer(size)
        st = fn(buf, size)
        if st != Status.BUFFER_TOO_SMALL or size >= 1 << 20:
            return buf.value.decode("utf-8", "replace")
        size *= 4


def last_error(status: int) -> FrameioError:
    """Build the exception for ``status`` from the calling thread's last-error detail. Must run on the
    thread that made the failing call, right after it (the detail is thread-local)."""
    from ._lib import lib

    L = lib()
    n = L.fio_last_error_length()
    buf = ctypes.create_string_buffer(n + 1)
    L.fio_last_error_message(buf, n + 1)
    message = buf.value.decode("utf-8", "replace")
    server_code = _copy_text(L.fio_last_server_code)
    http = int(L.fio_last_http_status())
    retryable = bool(L.fio_last_error_retryable())
    if not message:
        message = L.fio_status_str(status).decode("utf-8", "replace")
    return error_class(status)(status, message, http, server_code, retryable)


def check(status: int) -> None:
    """Raise the exception for a failed status (on the calling thread, right after the call)."""
    if status != Status.OK:
        raise last_error(status)


def status_text(status: int) -> str:
    """The library's static text for a status code."""
    from ._lib import lib

    return str(lib().fio_status_str(status).decode("utf-8", "replace"))


def make_error(status: int, message: str = "", http_status: int = 0) -> FrameioError:
    """An exception of the right class for ``status`` without reading the thread's last error."""
    return error_class(status)(status, message or status_text(status), http_status)


__all__ = [
    "Status",
    "FrameioError",
    "InvalidArgumentError",
    "BadRequestError",
    "AuthError",
    "PairingExpiredError",
    "NotFoundError",
    "ChannelPausedError",
    "RateLimitedError",
    "NetworkError",
    "CancelledError",
    "ServerError",
    "UploadError",
    "ProtocolError",
    "LocalIOError",
    "StateError",
    "error_class",
    "check",
    "last_error",
    "status_text",
]
